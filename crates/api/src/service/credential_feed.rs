//! One reader of the credential change feed per replica, shared by every subscriber: after each poke it reads the
//! new changes once (every seller) and broadcasts them; each subscriber keeps the ones its token reaches. A
//! subscriber that resumes from a cursor, or falls behind the broadcast, reads the database from its own position
//! until it meets the reader, then follows the broadcast again, without a gap or a duplicate.
//!
//! Positions are global `seq`s: the changes commit in `seq` order, so "every change up to n" is well defined. The
//! reader publishes its position before it broadcasts the batch that got it there, and a subscriber joins the
//! broadcast before it reads that position: whatever the reader sends later reaches the subscriber.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cdvault_domain::credential::CredentialChange;
use cdvault_domain::policy::SellerReach;
use cdvault_storage::{Database, StorageError, credential_changes};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Mutex, broadcast, watch};

use super::listening::{Listening, ListeningCount};

/// Changes read from the database at once, by the reader or a subscriber catching up.
const CHANGE_PAGE: u64 = 100;
/// Batches the broadcast keeps for a slow subscriber before it lags (and catches up from the database).
const BROADCAST_BATCHES: usize = 256;
/// How long the reader waits before trying again after a failed read.
const RETRY_READ: Duration = Duration::from_secs(1);

/// The changes `(after, through]` of every seller, as the reader read them.
#[derive(Debug)]
struct Batch {
    after: i64,
    through: i64,
    changes: Vec<CredentialChange>,
}

/// The running reader, as subscribers join it. The reader task holds the only strong sender: when it ends (the
/// server shuts down), the broadcast closes and its subscribers end.
#[derive(Debug)]
struct Reader {
    batches: broadcast::WeakSender<Arc<Batch>>,
    /// Every change up to this `seq` has been broadcast.
    position: watch::Receiver<i64>,
}

/// The shared reader of one vault, started by the first subscriber.
#[derive(Debug, Default)]
pub(super) struct ChangeFeed {
    reader: Mutex<Option<Reader>>,
    /// Database reads of the feed (the reader's and catching-up subscribers'): one per change however many
    /// subscribe.
    reads: Arc<AtomicU64>,
}

/// What a subscriber wants and where it starts.
pub(super) struct Subscriber {
    pub(super) reach: SellerReach,
    /// The one seller asked for, if any.
    pub(super) only: Option<String>,
    /// The cursor to resume after; `None` is from now on.
    pub(super) after: Option<i64>,
}

impl ChangeFeed {
    /// Database reads made for the feed so far.
    pub(super) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Joins the reader (starting it if none runs) and returns the subscriber's changes; the subscriber counts in
    /// `listening` from the moment it can miss no change. `pokes` and `closed` are the vault's, for a reader
    /// started here.
    pub(super) async fn follow(
        &self,
        db: &Database,
        pokes: watch::Receiver<u64>,
        closed: impl Future<Output = ()> + Send + 'static,
        subscriber: Subscriber,
        listening: &ListeningCount,
    ) -> Result<impl Stream<Item = CredentialChange> + Send + 'static, StorageError> {
        let (batches, position) = self.join(db, pokes, closed).await?;
        // Joined before the position is read: every batch past it is received.
        let reader_at = *position.borrow();
        // Only now: a change committed before the position was read may be behind it, and not sent.
        let listening = listening.enter();
        let follower = Follower {
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
    ) -> Result<(broadcast::Receiver<Arc<Batch>>, watch::Receiver<i64>), StorageError> {
        let mut reader = self.reader.lock().await;
        if let Some(running) = reader.as_ref()
            && let Some(batches) = running.batches.upgrade()
        {
            return Ok((batches.subscribe(), running.position.clone()));
        }
        // None yet, or the last one ended (after a shutdown, the new one ends at once, and so do its subscribers).
        self.reads.fetch_add(1, Ordering::Relaxed);
        let start = credential_changes::latest_seq(db).await?;
        let (batches, receiver) = broadcast::channel(BROADCAST_BATCHES);
        let (publish, position) = watch::channel(start);
        *reader = Some(Reader { batches: batches.downgrade(), position: position.clone() });
        tokio::spawn(read(db.clone(), self.reads.clone(), pokes, closed, batches, publish));
        Ok((receiver, position))
    }
}

/// The reader: after each poke, every new page once, broadcast. Ends when the server shuts down or the vault is
/// gone.
async fn read(
    db: Database,
    reads: Arc<AtomicU64>,
    mut pokes: watch::Receiver<u64>,
    closed: impl Future<Output = ()> + Send + 'static,
    batches: broadcast::Sender<Arc<Batch>>,
    publish: watch::Sender<i64>,
) {
    tokio::pin!(closed);
    loop {
        // Marked seen before the read: a change committed after it pokes again.
        pokes.borrow_and_update();
        loop {
            let after = *publish.borrow();
            reads.fetch_add(1, Ordering::Relaxed);
            match credential_changes::list_after(&db, &SellerReach::All, None, after, CHANGE_PAGE).await {
                Ok(changes) => {
                    let Some(through) = changes.last().map(|change| change.seq) else { break };
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
                    tracing::warn!(error = %error, "the credential change reader could not read; retrying");
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
struct Follower {
    db: Database,
    reads: Arc<AtomicU64>,
    reach: SellerReach,
    only: Option<String>,
    /// Every change up to this `seq` that the subscriber wants is sent or in `buffer`.
    position: i64,
    /// Reading the database from `position` until it meets the reader.
    catching_up: bool,
    reader: watch::Receiver<i64>,
    batches: broadcast::Receiver<Arc<Batch>>,
    buffer: VecDeque<CredentialChange>,
    _listening: Listening,
}

impl Follower {
    /// The next change, or `None` when the feed ends (shutdown, or a failed read: the tool resumes with its cursor).
    async fn next(&mut self) -> Option<CredentialChange> {
        loop {
            if let Some(change) = self.buffer.pop_front() {
                return Some(change);
            }
            if self.catching_up {
                if let Err(error) = self.catch_up().await {
                    tracing::warn!(error = %error, "a credential change subscription could not read; ending it");
                    return None;
                }
                continue;
            }
            match self.batches.recv().await {
                // A batch that starts past the position would leave a gap: the database fills it.
                Ok(batch) if batch.after > self.position => self.catching_up = true,
                Ok(batch) => {
                    let (position, reach, only) = (self.position, &self.reach, self.only.as_deref());
                    let wanted = |change: &&CredentialChange| {
                        change.seq > position
                            && reach.includes(&change.seller_login)
                            && only.is_none_or(|only| only == change.seller_login)
                    };
                    self.buffer.extend(batch.changes.iter().filter(wanted).cloned());
                    self.position = position.max(batch.through);
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "a credential change subscriber fell behind; reading from the database");
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// One page from the database after the position. A short page means the subscriber has every change it wants
    /// up to where the reader was before the read: it follows the broadcast from there.
    async fn catch_up(&mut self) -> Result<(), StorageError> {
        let reader_at = *self.reader.borrow();
        self.reads.fetch_add(1, Ordering::Relaxed);
        let page =
            credential_changes::list_after(&self.db, &self.reach, self.only.as_deref(), self.position, CHANGE_PAGE)
                .await?;
        let full = page.len() as u64 == CHANGE_PAGE;
        if let Some(last) = page.last() {
            self.position = last.seq;
        }
        self.buffer.extend(page);
        if !full {
            self.position = self.position.max(reader_at);
            self.catching_up = false;
        }
        Ok(())
    }
}
