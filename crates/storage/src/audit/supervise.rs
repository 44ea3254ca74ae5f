//! Keeps the audit writer running: an incarnation that panics or ends while sinks remain is started again, with
//! backoff, a few times in a row at most; after that the writer is dead and the service must stop.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::health::Health;

/// Restarts in a row before the writer is declared dead. A fault that comes back this often will not go away by
/// itself; a new process (the orchestrator restarts it) starts from a clean state.
pub const MAX_RESTARTS: u32 = 3;

/// The pause before the first restart, doubled before each further one in a row (0.5 s, 1 s, 2 s).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// An incarnation that ran this long before failing does not count towards [`MAX_RESTARTS`]: the failures are not
/// "in a row".
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// The writer is dead: it failed more than [`MAX_RESTARTS`] times in a row and is not started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the audit writer failed {} times in a row and was not restarted", MAX_RESTARTS + 1)]
pub struct WriterDead;

/// How restarts are paced (the constants above, shorter in tests).
#[derive(Debug, Clone, Copy)]
pub(super) struct Restarts {
    pub(super) max: u32,
    pub(super) first_backoff: Duration,
}

impl Default for Restarts {
    fn default() -> Self {
        Self { max: MAX_RESTARTS, first_backoff: FIRST_BACKOFF }
    }
}

/// Runs `incarnation` on a thread of its own until it returns `Ok` (stopped for good), starting it again when it
/// returns `Err` (why it ended) or panics. The returned receiver says how the writer ended. Whatever the
/// incarnation had in flight when it failed is dropped with it, so its waiters see the append fail: fail closed,
/// never an event reported as committed that was not.
pub(super) fn spawn<F>(
    health: Arc<Health>,
    restarts: Restarts,
    mut incarnation: F,
) -> std::io::Result<oneshot::Receiver<Result<(), WriterDead>>>
where
    F: FnMut() -> Result<(), String> + Send + 'static,
{
    let (ended_tx, ended) = oneshot::channel();
    std::thread::Builder::new().name("cdvault-audit".into()).spawn(move || {
        let outcome = supervise(&health, restarts, &mut incarnation);
        // Dropping the incarnation drops the queue: what still waits in it fails closed.
        drop(incarnation);
        let _ = ended_tx.send(outcome);
    })?;
    Ok(ended)
}

fn supervise(
    health: &Health,
    restarts: Restarts,
    incarnation: &mut impl FnMut() -> Result<(), String>,
) -> Result<(), WriterDead> {
    let mut in_a_row = 0u32;
    loop {
        health.starting();
        let began = Instant::now();
        // The incarnation owns nothing that outlives a panic but the queue, which stays consistent: a panic in the
        // writer's own code cannot leave the channel half-updated.
        let cause = match catch_unwind(AssertUnwindSafe(&mut *incarnation)) {
            Ok(Ok(())) => {
                health.dead();
                return Ok(());
            }
            Ok(Err(cause)) => cause,
            Err(panic) => panic_message(panic.as_ref()),
        };
        if began.elapsed() >= STABLE_AFTER {
            in_a_row = 0;
        }
        in_a_row += 1;
        if in_a_row > restarts.max {
            health.dead();
            tracing::error!(cause = %cause, failures = in_a_row, "the audit writer failed again and is dead: no issue can succeed");
            return Err(WriterDead);
        }
        health.restarting();
        let backoff = restarts.first_backoff.saturating_mul(1 << (in_a_row - 1).min(16));
        tracing::error!(
            cause = %cause,
            incarnation = health.incarnations(),
            restart = in_a_row,
            of = restarts.max,
            backoff_ms = backoff.as_millis(),
            "the audit writer failed; restarting it (its requests in flight failed closed)"
        );
        std::thread::sleep(backoff);
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message =
        panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned());
    format!("panicked: {}", message.as_deref().unwrap_or("(no message)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::WriterHealth;

    const QUICK: Restarts = Restarts { max: 2, first_backoff: Duration::from_millis(1) };

    fn run(incarnation: impl FnMut() -> Result<(), String> + Send + 'static) -> (Arc<Health>, Result<(), WriterDead>) {
        let health = Arc::new(Health::default());
        let ended = spawn(health.clone(), QUICK, incarnation).unwrap();
        (health, ended.blocking_recv().unwrap())
    }

    #[test]
    fn an_incarnation_that_panics_is_started_again_and_may_then_stop_for_good() {
        let mut turn = 0;
        let (health, ended) = run(move || {
            turn += 1;
            if turn < 3 {
                panic!("turn {turn}");
            }
            Ok(())
        });
        assert_eq!(ended, Ok(()));
        assert_eq!(health.incarnations(), 3);
    }

    #[test]
    fn a_writer_failing_more_times_in_a_row_than_the_limit_is_dead() {
        let (health, ended) = run(|| Err("the loop ended".into()));
        assert_eq!(ended, Err(WriterDead));
        assert_eq!(health.incarnations(), QUICK.max + 1);
        assert_eq!(health.get(), WriterHealth::Dead);
    }

    #[test]
    fn a_panic_message_is_kept_for_the_log() {
        assert_eq!(panic_message(&"static"), "panicked: static");
        assert_eq!(panic_message(&String::from("owned")), "panicked: owned");
    }
}
