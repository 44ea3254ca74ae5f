//! The checkpoints' emission (at start-up and every interval) and the background verifier of the audit chain, with
//! its last result (`auditChainStatus`). Every replica walks the
//! chain from the position it last verified every few seconds, and the whole chain at start-up and then every hour,
//! each time also against the last checkpoint it emitted: a deleted tail with the head moved back, or a chain
//! rewritten under it, shows. A query reads the last result; it never walks the chain.

use std::sync::Arc;
use std::time::Duration;

use cdvault_domain::audit::{AuditAction, Checkpoint, GENESIS_HASH};
use cdvault_domain::policy::Scope;
use cdvault_storage::StorageError;
use cdvault_storage::audit;
use time::OffsetDateTime;

use super::authorize::Caller;
use super::checkpoints::{ChainState, ChainStatus, CheckpointEmitter, CheckpointSettings};
use super::vault::Vault;
use crate::error::ApiError;

/// Time between two incremental rounds (from the last verified position).
pub const INCREMENTAL_EVERY: Duration = Duration::from_secs(5);
/// Time between two full walks (the first at start-up).
pub const FULL_WALK_EVERY: Duration = Duration::from_secs(3600);

/// How one round ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Round {
    /// Every event from `first_retained` (the live table's first) up to `through` verified.
    Passed { through: i64, first_retained: i64 },
    /// The chain is broken: why.
    Broke(String),
    /// The database could not be read: that says nothing about the chain.
    Unreadable,
}

/// The status after `round`. A broken chain stays broken until a full walk passes (the operator restored the
/// database); an unreadable database changes nothing.
fn next(previous: &ChainStatus, full: bool, round: Round, now: OffsetDateTime) -> ChainStatus {
    let mut status = previous.clone();
    if previous.state == ChainState::Broken && !full {
        return status;
    }
    match round {
        Round::Passed { through, first_retained } => {
            status.state = ChainState::Intact;
            status.verified_through = through;
            status.first_retained_seq = first_retained;
            status.checked_at = Some(now);
            status.problem = None;
        }
        Round::Broke(problem) => {
            status.state = ChainState::Broken;
            status.checked_at = Some(now);
            status.problem = Some(problem);
        }
        Round::Unreadable => {}
    }
    status
}

impl Vault {
    /// This vault, emitting its checkpoints so (the default: to the log, as a random replica, every minute).
    pub fn with_checkpoints(mut self, settings: CheckpointSettings) -> Self {
        self.checkpoints = Arc::new(CheckpointEmitter::new(self.db.clone(), settings));
        self
    }

    /// Signs the chain head for this replica and writes it to the configured sink (see [`CheckpointEmitter::emit`]).
    pub async fn emit_checkpoint(&self) -> Result<Checkpoint, ApiError> {
        self.checkpoints.emit().await
    }

    /// The emitter, for the checkpoint at shutdown: it outlives the vault (which holds an audit sink).
    pub fn checkpoint_emitter(&self) -> Arc<CheckpointEmitter> {
        self.checkpoints.clone()
    }

    /// Emits a checkpoint now (start-up) and then every interval until the server shuts down. The one at
    /// shutdown is the server's, after the audit writer drained, so that it covers the last event.
    pub(super) fn start_checkpoints(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let emitter = self.checkpoints.clone();
        let closed = self.sessions_closed();
        tokio::spawn(async move {
            tokio::pin!(closed);
            let interval = emitter.settings().interval;
            loop {
                if let Err(e) = emitter.emit().await {
                    tracing::error!(error = %crate::error::error_chain(&e), "no audit checkpoint could be made");
                }
                tokio::select! {
                    () = &mut closed => return,
                    () = tokio::time::sleep(interval) => {}
                }
            }
        })
    }

    /// The last result of the background verifier, with this replica's last checkpoint and sink failure, for a
    /// caller holding `audit:read` (a denial is audited, like other audit reads).
    pub async fn audit_chain_status(&self, caller: &Caller) -> Result<ChainStatus, ApiError> {
        self.authorize_scope(caller, AuditAction::AuditRead, Scope::AuditRead).await?;
        let mut status = self.chain_status();
        // Read now, not at the last round: an archival may have run since (one indexed row).
        status.first_retained_seq = audit::first_retained_seq(&self.db).await?;
        Ok(status)
    }

    /// The last result of the background verifier (no authorization: for the server and the tests).
    pub fn chain_status(&self) -> ChainStatus {
        let mut status = self.chain.status.borrow().clone();
        status.last_checkpoint = self.checkpoints.last().map(|c| (c.seq, c.at));
        status.checkpoint_sink_error = self.checkpoints.sink_error();
        status
    }

    /// Runs one round now: a full walk, or a walk from the last verified position (a full walk when there is
    /// none). Tests call it instead of waiting for the background task.
    pub async fn verify_audit_chain_now(&self, full: bool) -> ChainStatus {
        let mut position = self.chain.position.lock().await;
        let previous = self.chain.status.borrow().clone();
        if previous.state == ChainState::Broken && !full {
            return self.chain_status();
        }
        let from = if full { None } else { *position };
        // Taken before the walk reads the head: the checkpoint is never past the head it is checked against.
        let checkpoints: Vec<_> = self.checkpoints.last().into_iter().collect();
        let round = match audit::verify_from(&self.db, from.unwrap_or((0, GENESIS_HASH)), &checkpoints).await {
            Ok(verified) => {
                *position = Some(verified.head);
                Round::Passed { through: verified.head.0, first_retained: verified.archived.0 + 1 }
            }
            Err(StorageError::ChainBroken(problem)) => {
                *position = None;
                Round::Broke(problem.to_string())
            }
            Err(e) => {
                tracing::warn!(error = %crate::error::error_chain(&e), "the audit chain could not be read to verify it");
                Round::Unreadable
            }
        };
        let status = next(&previous, full, round, OffsetDateTime::now_utc());
        match (previous.state, status.state) {
            (ChainState::Broken, ChainState::Broken) => {}
            (_, ChainState::Broken) => {
                let problem = status.problem.as_deref().unwrap_or_default();
                tracing::error!(problem, "the audit chain is BROKEN: it was changed outside the vault");
            }
            (ChainState::Broken, ChainState::Intact) => {
                tracing::warn!(through = status.verified_through, "the audit chain verifies again (full walk)");
            }
            _ => {}
        }
        self.chain.status.send_replace(status);
        drop(position);
        self.chain_status()
    }

    /// Starts this replica's checkpoints and its background verifier; both stop when the server shuts down.
    pub fn start_audit_evidence(self: &Arc<Self>) {
        drop(self.start_checkpoints());
        let vault = self.clone();
        let closed = self.sessions_closed();
        drop(tokio::spawn(async move {
            tokio::pin!(closed);
            let mut last_full: Option<tokio::time::Instant> = None;
            loop {
                let full = last_full.is_none_or(|at| at.elapsed() >= FULL_WALK_EVERY);
                tokio::select! {
                    () = &mut closed => return,
                    _ = vault.verify_audit_chain_now(full) => {}
                }
                if full {
                    last_full = Some(tokio::time::Instant::now());
                }
                tokio::select! {
                    () = &mut closed => return,
                    () = tokio::time::sleep(INCREMENTAL_EVERY) => {}
                }
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: u8) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH.replace_minute(minute).unwrap()
    }

    fn broken() -> ChainStatus {
        next(&ChainStatus::default(), true, Round::Broke("audit event seq 3 was edited".into()), at(1))
    }

    #[test]
    fn a_passing_round_makes_a_pending_chain_intact_through_the_head() {
        let status = next(&ChainStatus::default(), true, Round::Passed { through: 7, first_retained: 1 }, at(1));
        assert_eq!(status.state, ChainState::Intact);
        assert_eq!(status.verified_through, 7);
        assert_eq!(status.checked_at, Some(at(1)));
        assert_eq!(status.problem, None);
    }

    #[test]
    fn a_failing_round_makes_the_chain_broken_with_the_problem_and_keeps_what_was_verified() {
        let intact = next(&ChainStatus::default(), false, Round::Passed { through: 2, first_retained: 1 }, at(1));
        let status = next(&intact, false, Round::Broke("audit event seq 3 was edited".into()), at(2));
        assert_eq!(status.state, ChainState::Broken);
        assert_eq!(status.problem.as_deref(), Some("audit event seq 3 was edited"));
        assert_eq!(status.verified_through, 2);
        assert_eq!(status.checked_at, Some(at(2)));
    }

    #[test]
    fn a_broken_chain_stays_broken_through_incremental_rounds() {
        let status = next(&broken(), false, Round::Passed { through: 9, first_retained: 1 }, at(5));
        assert_eq!(status, broken());
    }

    #[test]
    fn a_broken_chain_turns_intact_again_only_when_a_full_walk_passes() {
        let status = next(&broken(), true, Round::Passed { through: 9, first_retained: 1 }, at(5));
        assert_eq!(status.state, ChainState::Intact);
        assert_eq!(status.problem, None);
        assert_eq!(status.verified_through, 9);
    }

    #[test]
    fn an_unreadable_database_changes_nothing() {
        let intact = next(&ChainStatus::default(), true, Round::Passed { through: 4, first_retained: 1 }, at(1));
        assert_eq!(next(&intact, false, Round::Unreadable, at(2)), intact);
        assert_eq!(next(&broken(), true, Round::Unreadable, at(2)), broken());
        assert_eq!(next(&ChainStatus::default(), true, Round::Unreadable, at(2)).state, ChainState::Pending);
    }
}
