//! One reader per stored change feed (credential changes, payout change transitions) per replica, shared by every
//! subscriber: after each poke it reads the new changes once (every seller) and broadcasts them; each subscriber
//! keeps the ones its token reaches. A subscriber that resumes from a cursor, or falls behind the broadcast, reads
//! the database from its own position until it meets the reader, then follows the broadcast again, without a gap or
//! a duplicate. A cursor older than the retained changes (see `retention`) is refused as expired.
//!
//! Positions are global `seq`s: the changes commit in `seq` order, so "every change up to n" is well defined. The
//! reader publishes its position before it broadcasts the batch that got it there, and a subscriber joins the
//! broadcast before it reads that position: whatever the reader sends later reaches the subscriber.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cdvault_domain::policy::SellerReach;
use cdvault_storage::change_feed::{self, Feed};
use cdvault_storage::{Database, StorageError};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Mutex, broadcast, watch};

use super::listening::{Listening, ListeningCount};
use crate::error::ApiError;

/// How long a change is kept unless configured (`CDVAULT_CHANGE_FEED_RETENTION`): a tool away for a week can
/// still resume from its cursor.
pub const DEFAULT_CHANGE_FEED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Changes read from the database at once, by the reader or a subscriber catching up.
const CHANGE_PAGE: u64 = 100;
/// Batches the broadcast keeps for a slow subscriber before it lags (and catches up from the database).
const BROADCAST_BATCHES: usize = 256;
/// How long the reader waits before trying again after a failed read.
const RETRY_READ: Duration = Duration::from_secs(1);

/// A stored change feed, as its reader and subscribers read it.
pub(super) trait FeedSource: Send + Sync + 'static {
    type Change: Clone + std::fmt::Debug + Send + Sync + 'static;
    /// The stored feed (its retention, and its name in logs).
    const FEED: Feed;
    fn seq(change: &Self::Change) -> i64;
    fn seller_login(change: &Self::Change) -> &str;
    /// Changes after `after`, oldest first, of one seller or of every seller in `reach`.
    fn list_after(
        db: &Database,
        reach: &SellerReach,
        only: Option<&str>,
        after: i64,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<Self::Change>, StorageError>> + Send;
    /// The `seq` of the newest change, 0 when there is none.
    fn latest_seq(db: &Database) -> impl Future<Output = Result<i64, StorageError>> + Send;
}

/// The changes `(after, through]` of every seller, as the reader read them.
#[derive(Debug)]
struct Batch<C> {
    after: i64,
    through: i64,
    changes: Vec<C>,
}

/// The running reader, as subscribers join it. The reader task holds the only strong sender: when it ends (the
/// server shuts down), the broadcast closes and its subscribers end.
#[derive(Debug)]
struct Reader<C> {
    batches: broadcast::WeakSender<Arc<Batch<C>>>,
    /// Every change up to this `seq` has been broadcast.
    position: watch::Receiver<i64>,
}

/// The shared reader of one feed of one vault, started by the first subscriber.
#[derive(Debug)]
pub(super) struct ChangeFeed<S: FeedSource> {
    reader: Mutex<Option<Reader<S::Change>>>,
    /// Database reads of the feed (the reader's and catching-up subscribers'): one per change however many
    /// subscribe.
    reads: Arc<AtomicU64>,
}

impl<S: FeedSource> Default for ChangeFeed<S> {
    fn default() -> Self {
        Self { reader: Mutex::new(None), reads: Arc::default() }
    }
}

/// What a subscriber wants and where it starts.
pub(super) struct Subscriber {
    pub(super) reach: SellerReach,
    /// The one seller asked for, if any.
    pub(super) only: Option<String>,
    /// The cursor to resume after; `None` is from now on.
    pub(super) after: Option<i64>,
}

impl<S: FeedSource> ChangeFeed<S> {
    /// Database reads made for the feed so far.
    pub(super) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Joins the reader (starting it if none runs) and returns the subscriber's changes; the subscriber counts in
    /// `listening` from the moment it can miss no change. `pokes` and `closed` are the vault's, for a reader
    /// started here. A cursor whose next changes were pruned is refused with [`ApiError::CursorExpired`].
    pub(super) async fn follow(
        &self,
        db: &Database,
        pokes: watch::Receiver<u64>,
        closed: impl Future<Output = ()> + Send + 'static,
        subscriber: Subscriber,
        listening: &ListeningCount,
    ) -> Result<impl Stream<Item = S::Change> + Send + 'static, ApiError> {
        if let Some(after) = subscriber.after
            && !retained_after(db, S::FEED, after).await?
        {
            return Err(ApiError::CursorExpired);
        }
        let (batches, position) = self.join(db, pokes, closed).await?;
        // Joined before the position is read: every batch past it is received.
        let reader_at = *position.borrow();
        // Only now: a change committed before the position was read may be behind it, and not sent.
        let listening = listening.enter();
        let follower = Follower::<S> {
            db: db.clone(),
            reads: self.reads.clone(),
            reach: subscriber.reach,
            only: subscriber.only,
            position: subscriber.after.unwrap_or(reader_at),
            catching_up: subscriber.after.is_some(),
            reader: position,
            batches,
            buffer: VecDeque::new(),
            _listening: listening,
        };
        Ok(futures::stream::unfold(follower, |mut follower| async move {
            let change = follower.next().await?;
            Some((change, follower))
        }))
    }

    async fn join(
        &self,
        db: &Database,
        pokes: watch::Receiver<u64>,
        closed: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(broadcast::Receiver<Arc<Batch<S::Change>>>, watch::Receiver<i64>), StorageError> {
        let mut reader = self.reader.lock().await;
        if let Some(running) = reader.as_ref()
            && let Some(batches) = running.batches.upgrade()
        {
            return Ok((batches.subscribe(), running.position.clone()));
        }
        // None yet, or the last one ended (after a shutdown, the new one ends at once, and so do its subscribers).
        self.reads.fetch_add(1, Ordering::Relaxed);
        let start = S::latest_seq(db).await?;
        let (batches, receiver) = broadcast::channel(BROADCAST_BATCHES);
        let (publish, position) = watch::channel(start);
        *reader = Some(Reader { batches: batches.downgrade(), position: position.clone() });
        tokio::spawn(read::<S>(db.clone(), self.reads.clone(), pokes, closed, batches, publish));
        Ok((receiver, position))
    }
}

/// The reader: after each poke, every new page once, broadcast. Ends when the server shuts down or the vault is
/// gone.
async fn read<S: FeedSource>(
    db: Database,
    reads: Arc<AtomicU64>,
    mut pokes: watch::Receiver<u64>,
    closed: impl Future<Output = ()> + Send + 'static,
    batches: broadcast::Sender<Arc<Batch<S::Change>>>,
    publish: watch::Sender<i64>,
) {
    tokio::pin!(closed);
    loop {
        // Marked seen before the read: a change committed after it pokes again.
        pokes.borrow_and_update();
        loop {
            let after = *publish.borrow();
            reads.fetch_add(1, Ordering::Relaxed);
            match S::list_after(&db, &SellerReach::All, None, after, CHANGE_PAGE).await {
                Ok(changes) => {
                    let Some(through) = changes.last().map(S::seq) else { break };
                    let more = changes.len() as u64 == CHANGE_PAGE;
                    publish.send_replace(through);
                    // No subscriber now is fine: the next one starts from the position.
                    let _ = batches.send(Arc::new(Batch { after, through, changes }));
                    if !more {
                        break;
                    }
                }
                Err(error) => {
                    // The position did not move: the next read gets what this one missed.
                    tracing::warn!(error = %error, feed = S::FEED.name(), "a change feed reader could not read; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY_READ) => {}
                        () = &mut closed => return,
                    }
                }
            }
        }
        tokio::select! {
            changed = pokes.changed() => if changed.is_err() { return },
            () = &mut closed => return,
        }
    }
}

/// One subscriber's place in the feed.
struct Follower<S: FeedSource> {
    db: Database,
    reads: Arc<AtomicU64>,
    reach: SellerReach,
    only: Option<String>,
    /// Every change up to this `seq` that the subscriber wants is sent or in `buffer`.
    position: i64,
    /// Reading the database from `position` until it meets the reader.
    catching_up: bool,
    reader: watch::Receiver<i64>,
    batches: broadcast::Receiver<Arc<Batch<S::Change>>>,
    buffer: VecDeque<S::Change>,
    _listening: Listening,
}

impl<S: FeedSource> Follower<S> {
    /// The next change, or `None` when the feed ends (shutdown, or a failed read: the tool resumes with its cursor).
    async fn next(&mut self) -> Option<S::Change> {
        loop {
            if let Some(change) = self.buffer.pop_front() {
                return Some(change);
            }
            if self.catching_up {
                if let Err(error) = self.catch_up().await {
                    tracing::warn!(error = %error, feed = S::FEED.name(), "a change subscription could not read; ending it");
                    return None;
                }
                continue;
            }
            match self.batches.recv().await {
                // A batch that starts past the position would leave a gap: the database fills it.
                Ok(batch) if batch.after > self.position => self.catching_up = true,
                Ok(batch) => {
                    let (position, reach, only) = (self.position, &self.reach, self.only.as_deref());
                    let wanted = |change: &&S::Change| {
                        S::seq(change) > position
                            && reach.includes(S::seller_login(change))
                            && only.is_none_or(|only| only == S::seller_login(change))
                    };
                    self.buffer.extend(batch.changes.iter().filter(wanted).cloned());
                    self.position = position.max(batch.through);
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(
                        missed,
                        feed = S::FEED.name(),
                        "a change subscriber fell behind; reading the database"
                    );
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// One page from the database after the position. A short page means the subscriber has every change it wants
    /// up to where the reader was before the read: it follows the broadcast from there. Changes pruned under the
    /// page end the subscription (resumed from its cursor, it is told the cursor expired).
    async fn catch_up(&mut self) -> Result<(), ApiError> {
        let reader_at = *self.reader.borrow();
        self.reads.fetch_add(1, Ordering::Relaxed);
        let page = S::list_after(&self.db, &self.reach, self.only.as_deref(), self.position, CHANGE_PAGE).await?;
        if !retained_after(&self.db, S::FEED, self.position).await? {
            return Err(ApiError::CursorExpired);
        }
        let full = page.len() as u64 == CHANGE_PAGE;
        if let Some(last) = page.last() {
            self.position = S::seq(last);
        }
        self.buffer.extend(page);
        if !full {
            self.position = self.position.max(reader_at);
            self.catching_up = false;
        }
        Ok(())
    }
}

/// Whether every change after `after` is still retained: retention prunes a prefix of the feed and keeps its newest
/// change, so the changes after `after` are all there when the oldest retained one is at most `after + 1`.
async fn retained_after(db: &Database, feed: Feed, after: i64) -> Result<bool, StorageError> {
    Ok(change_feed::oldest_seq(db, feed).await?.is_none_or(|oldest| oldest <= after.saturating_add(1)))
}
