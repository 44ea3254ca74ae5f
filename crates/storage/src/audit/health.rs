//! What the audit writer publishes about itself, for readiness: the queue's sender staying alive proves nothing,
//! since the sender lives in the sinks, not in the writer.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A batch running longer than this makes the writer [`WriterHealth::Stuck`]: a commit takes milliseconds, so ten
/// seconds means a hung connection or a lock never released, and every issue waiting on it waits as long.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// How the audit writer is doing. Only `Alive` can commit events; in every other state issues fail closed or wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterHealth {
    /// Running, and no batch has been running for longer than [`STUCK_AFTER`].
    Alive,
    /// One batch has been running since `since`, longer than [`STUCK_AFTER`].
    Stuck { since: Instant },
    /// Failed, and about to be started again (or starting).
    Restarting,
    /// Failed too many times in a row, or stopped: it commits nothing any more.
    Dead,
}

const STARTING: u8 = 0;
const ALIVE: u8 = 1;
const RESTARTING: u8 = 2;
const DEAD: u8 = 3;

/// Shared by the writer's thread (which writes it) and the sinks (which read it); atomics, so reading it for a
/// readiness probe costs nothing.
#[derive(Debug)]
pub(super) struct Health {
    epoch: Instant,
    state: AtomicU8,
    /// When the batch in progress was taken, in nanoseconds since `epoch` plus one; zero between batches.
    batch_since: AtomicU64,
    /// Incarnations started so far (the first one included).
    incarnations: AtomicU32,
    /// Bumped after each batch the writer committed (or tried to): wakes the audit stream's tailer.
    commits: watch::Sender<u64>,
    /// Set by a test: the writer panics when it next takes a batch.
    #[cfg(feature = "fault-injection")]
    panic_requested: std::sync::atomic::AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            state: AtomicU8::new(STARTING),
            batch_since: AtomicU64::new(0),
            incarnations: AtomicU32::new(0),
            commits: watch::channel(0).0,
            #[cfg(feature = "fault-injection")]
            panic_requested: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Health {
    pub(super) fn get(&self) -> WriterHealth {
        self.at(Instant::now())
    }

    fn at(&self, now: Instant) -> WriterHealth {
        match self.state.load(Ordering::Acquire) {
            ALIVE => match self.batch_since.load(Ordering::Acquire) {
                0 => WriterHealth::Alive,
                nanos => {
                    let since = self.epoch + Duration::from_nanos(nanos - 1);
                    if now.saturating_duration_since(since) > STUCK_AFTER {
                        WriterHealth::Stuck { since }
                    } else {
                        WriterHealth::Alive
                    }
                }
            },
            STARTING | RESTARTING => WriterHealth::Restarting,
            _ => WriterHealth::Dead,
        }
    }

    /// A new incarnation begins: not alive until it has its connection.
    pub(super) fn starting(&self) {
        self.incarnations.fetch_add(1, Ordering::AcqRel);
        self.batch_since.store(0, Ordering::Release);
    }

    pub(super) fn incarnations(&self) -> u32 {
        self.incarnations.load(Ordering::Acquire)
    }

    pub(super) fn alive(&self) {
        self.state.store(ALIVE, Ordering::Release);
    }

    pub(super) fn restarting(&self) {
        self.state.store(RESTARTING, Ordering::Release);
    }

    pub(super) fn dead(&self) {
        self.state.store(DEAD, Ordering::Release);
    }

    /// A batch was committed (or failed): whoever tails the trail reads it again. Never blocks.
    pub(super) fn committed(&self) {
        self.commits.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Changes after each batch of the writer (see [`Self::committed`]).
    pub(super) fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// A batch is taken off the queue: it is in progress until the returned guard is dropped, however it ends.
    pub(super) fn batch_taken(&self) -> BatchInProgress<'_> {
        self.batch_taken_at(Instant::now());
        BatchInProgress(self)
    }

    fn batch_taken_at(&self, at: Instant) {
        let nanos = u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1);
        self.batch_since.store(nanos + 1, Ordering::Release);
    }

    fn batch_done(&self) {
        self.batch_since.store(0, Ordering::Release);
    }

    /// Panics if a test asked the writer to die: a real panic, so the supervision under test is the real one.
    pub(super) fn panic_if_requested(&self) {
        #[cfg(feature = "fault-injection")]
        if self.panic_requested.swap(false, Ordering::AcqRel) {
            panic!("audit writer panic injected by a test");
        }
    }

    #[cfg(feature = "fault-injection")]
    pub(super) fn request_panic(&self) {
        self.panic_requested.store(true, Ordering::Release);
    }
}

/// See [`Health::batch_taken`].
#[derive(Debug)]
pub(super) struct BatchInProgress<'a>(&'a Health);

impl Drop for BatchInProgress<'_> {
    fn drop(&mut self) {
        self.0.batch_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_is_restarting_until_it_has_its_connection_then_alive() {
        let health = Health::default();
        health.starting();
        assert_eq!(health.get(), WriterHealth::Restarting);
        health.alive();
        assert_eq!(health.get(), WriterHealth::Alive);
        health.restarting();
        assert_eq!(health.get(), WriterHealth::Restarting);
        health.dead();
        assert_eq!(health.get(), WriterHealth::Dead);
    }

    #[test]
    fn a_batch_running_longer_than_the_threshold_makes_the_writer_stuck_until_it_ends() {
        let health = Health::default();
        health.alive();
        let taken = Instant::now();
        health.batch_taken_at(taken);
        assert_eq!(health.at(taken + STUCK_AFTER), WriterHealth::Alive);
        let later = taken + STUCK_AFTER + Duration::from_millis(1);
        let WriterHealth::Stuck { since } = health.at(later) else { panic!("{:?}", health.at(later)) };
        assert!(taken - since < Duration::from_micros(1), "since is when the batch was taken");
        health.batch_done();
        assert_eq!(health.at(later), WriterHealth::Alive);
    }
}
