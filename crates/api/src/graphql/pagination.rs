//! Relay connections: page size, cursors, page info and page complexity, and the one way a page is cut from a
//! fetch of `limit + 1` items. Imports no resource module, so every resource may import it.

use async_graphql::SimpleObject;
use base64::Engine;
use cdvault_domain::{Reason, ValidationError};

use crate::error::ApiError;

/// Default page size of connections.
pub const DEFAULT_PAGE: i32 = 20;
/// Largest page size of connections.
pub const MAX_PAGE: i32 = 100;

/// Reads `first`: absent is the default, outside 0..=MAX_PAGE is refused.
pub fn page_size(first: Option<i32>) -> Result<u64, ApiError> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(
            ValidationError::new("first", Reason::OutOfRange, format!("first is between 0 and {MAX_PAGE}")).into()
        );
    }
    Ok(u64::try_from(first).unwrap_or(0))
}

/// A page costs its size times the cost of one item, so `first: 100` with a deep selection hits the limit.
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let size = usize::try_from(first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)).unwrap_or(1);
    size.saturating_mul(child_complexity).saturating_add(1)
}

/// The cursors of one list: base64 of `<prefix>:<value>`, so a cursor of one list is refused by another.
#[derive(Debug, Clone, Copy)]
pub struct Cursors {
    prefix: &'static str,
}

impl Cursors {
    pub const fn new(prefix: &'static str) -> Self {
        Self { prefix }
    }

    pub fn encode(self, value: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{value}", self.prefix))
    }

    /// Reads a cursor made by [`Cursors::encode`] of the same list, holding a value of type `T` (a login, a sequence
    /// number, an id).
    pub fn decode<T: std::str::FromStr>(self, cursor: &str) -> Result<T, ApiError> {
        let bad = || ApiError::from(ValidationError::new("after", Reason::InvalidCursor, "not a cursor of this list"));
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let value = text.strip_prefix(self.prefix).and_then(|t| t.strip_prefix(':')).ok_or_else(bad)?;
        value.parse().map_err(|_| bad())
    }
}

/// Where a page sits in its list (Relay).
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "PageInfo")]
pub struct PageInfoGql {
    /// Whether there are items before this page (true when `after` was given).
    pub has_previous_page: bool,
    /// Whether there are items after this page: pass `endCursor` as `after` to get them.
    pub has_next_page: bool,
    /// The cursor of the first item of this page.
    pub start_cursor: Option<String>,
    /// The cursor of the last item of this page.
    pub end_cursor: Option<String>,
}

/// A page asked for with `first` and `after`: what to fetch, and how to cut the page from what was fetched.
#[derive(Debug)]
pub struct PageRequest<C> {
    cursors: Cursors,
    /// The position `after` names, if given: the list goes on after it.
    pub after: Option<C>,
    size: u64,
}

impl<C: std::str::FromStr> PageRequest<C> {
    /// Reads `first` (checked first) and `after`.
    pub fn read(cursors: Cursors, first: Option<i32>, after: Option<String>) -> Result<Self, ApiError> {
        let size = page_size(first)?;
        let after = after.map(|c| cursors.decode(&c)).transpose()?;
        Ok(Self { cursors, after, size })
    }

    /// How many items to fetch: one more than the page holds, so whether a next page exists is known without
    /// counting.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Cuts the page from `fetched` (at most [`Self::fetch_limit`] items, in list order): `cursor` gives an item's
    /// cursor value, `edge` makes the edge of an item and its cursor.
    pub fn page<T, E>(
        &self,
        mut fetched: Vec<T>,
        cursor: impl Fn(&T) -> String,
        edge: impl Fn(String, T) -> E,
    ) -> Page<E> {
        let has_next_page = fetched.len() as u64 > self.size;
        fetched.truncate(usize::try_from(self.size).unwrap_or(0));
        let cursors: Vec<String> = fetched.iter().map(|item| self.cursors.encode(&cursor(item))).collect();
        let page_info = PageInfoGql {
            has_previous_page: self.after.is_some(),
            has_next_page,
            start_cursor: cursors.first().cloned(),
            end_cursor: cursors.last().cloned(),
        };
        let edges = cursors.into_iter().zip(fetched).map(|(c, item)| edge(c, item)).collect();
        Page { edges, page_info }
    }
}

/// The edges of one page and where it sits in its list.
#[derive(Debug)]
pub struct Page<E> {
    pub edges: Vec<E>,
    pub page_info: PageInfoGql,
}

#[cfg(test)]
mod tests {
    use super::{Cursors, PageRequest};

    const NUMBERS: Cursors = Cursors::new("number");

    #[test]
    fn a_cursor_reads_back_in_its_own_list_and_is_refused_by_another() {
        let cursor = NUMBERS.encode("42");
        assert_eq!(NUMBERS.decode::<i64>(&cursor).ok(), Some(42));
        assert!(Cursors::new("num").decode::<String>(&cursor).is_err());
        assert!(NUMBERS.decode::<i64>("not base64 !").is_err());
        assert!(NUMBERS.decode::<i64>(&NUMBERS.encode("forty-two")).is_err());
    }

    #[test]
    fn a_page_fetched_with_one_extra_item_knows_a_next_page_follows() {
        let page = PageRequest::<i64>::read(NUMBERS, Some(2), Some(NUMBERS.encode("7"))).unwrap();
        assert_eq!(page.after, Some(7));
        assert_eq!(page.fetch_limit(), 3);
        let cut = page.page(vec![8, 9, 10], |n| n.to_string(), |cursor, n| (cursor, n));
        assert_eq!(cut.edges.iter().map(|e| e.1).collect::<Vec<_>>(), vec![8, 9]);
        assert!(cut.page_info.has_previous_page);
        assert!(cut.page_info.has_next_page);
        assert_eq!(cut.page_info.start_cursor, Some(NUMBERS.encode("8")));
        assert_eq!(cut.page_info.end_cursor, Some(NUMBERS.encode("9")));
    }

    #[test]
    fn the_last_page_has_no_next_page_and_an_empty_page_has_no_cursors() {
        let page = PageRequest::<i64>::read(NUMBERS, None, None).unwrap();
        let last = page.page(vec![1, 2], |n| n.to_string(), |cursor, n| (cursor, n));
        assert!(!last.page_info.has_previous_page);
        assert!(!last.page_info.has_next_page);
        let empty = page.page(Vec::<i64>::new(), |n| n.to_string(), |cursor, n| (cursor, n));
        assert_eq!(empty.page_info.start_cursor, None);
        assert_eq!(empty.page_info.end_cursor, None);
    }

    #[test]
    fn a_page_size_outside_zero_to_a_hundred_is_refused() {
        assert!(PageRequest::<i64>::read(NUMBERS, Some(101), None).is_err());
        assert!(PageRequest::<i64>::read(NUMBERS, Some(-1), None).is_err());
        assert!(PageRequest::<i64>::read(NUMBERS, Some(0), None).is_ok());
    }
}
