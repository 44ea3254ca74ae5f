//! Encryption keys: the census of keyring versions, rotation (a new keyring version and its rewrap job), reading
//! jobs, retiring a version, and the worker that every replica runs to take the running job's lease and rewrap in
//! batches.

use std::sync::Arc;
use std::time::Duration;

use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, AuditRecord, Outcome};
use cdvault_domain::policy::Scope;
use cdvault_storage::keyring::{self, KeyCensus, RetireError};
use cdvault_storage::rewrap::{self, JobFailure, RotationJob, StartError};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::authorize::Caller;
use super::vault::Vault;
use crate::error::ApiError;

/// How a replica's rewrap worker paces itself (`CDVAULT_REWRAP_BATCH_SIZE`, `CDVAULT_REWRAP_BATCH_PAUSE_MS`,
/// `CDVAULT_JOB_LEASE_TTL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewrapSettings {
    /// Rows per batch.
    pub batch_size: u64,
    /// Wait between batches, to leave room for requests.
    pub pause: Duration,
    /// How long a job's lease lasts without a batch renewing it; a crashed worker's job is taken over after it.
    pub lease: Duration,
    /// Batches this replica runs at once on PostgreSQL (each locks its own rows): more finish a job sooner but
    /// take more of the machine from requests. SQLite always runs one.
    pub workers: usize,
}

impl Default for RewrapSettings {
    fn default() -> Self {
        Self { batch_size: 500, pause: Duration::ZERO, lease: Duration::from_secs(30), workers: 1 }
    }
}

/// A rotation job and the rows it could not rewrap.
#[derive(Debug, Clone)]
pub struct RotationJobReport {
    pub job: RotationJob,
    pub failures: Vec<JobFailure>,
}

/// One progress subscriber's state: the report to send next, and the job as last sent.
struct Progress {
    db: cdvault_storage::Database,
    next: Option<RotationJobReport>,
    last: Option<RotationJob>,
}

/// How often a progress subscription reads its job.
const PROGRESS_POLL: Duration = Duration::from_millis(250);

/// How often an idle worker looks for a running job (a rotation on this replica wakes it at once).
const IDLE_POLL: Duration = Duration::from_secs(1);

impl Vault {
    /// Every keyring version with its census (ciphertexts per sealed table). Needs `keys:admin`.
    pub async fn encryption_keys(&self, caller: &Caller) -> Result<Vec<KeyCensus>, ApiError> {
        self.authorize_scope(caller, AuditAction::KeysRead, Scope::KeysAdmin).await?;
        Ok(keyring::census(&self.db).await?)
    }

    /// Makes a new keyring version `ACTIVE` and starts the job that rewraps every ciphertext to it. Needs
    /// `keys:admin`. `CONFLICT` while a job runs.
    pub async fn rotate_encryption_key(&self, caller: &Caller) -> Result<RotationJob, ApiError> {
        let act = AuditAction::KeysRotate;
        let p = self.authorize_scope(caller, act, Scope::KeysAdmin).await?;
        // The event commits with the rotation, or neither does.
        let event = |job: &RotationJob| {
            caller.audit_record(&p.subject, act, Outcome::Success).details(json!({
                "job": job.id.to_string(),
                "toVersion": job.to_version,
                "total": job.total,
            }))
        };
        match rewrap::start(&self.db, self.keys.root(), &p.subject, event).await {
            Ok(job) => {
                self.keys.reload().await?;
                self.rewrap_wake.notify_one();
                Ok(job)
            }
            Err(StartError::AlreadyRunning(id)) => {
                let record = caller.audit_record(&p.subject, act, Outcome::Failed).reason(Reason::JobRunning);
                self.record_best_effort(record).await;
                Err(ApiError::Conflict(format!("rotation job {id} is still running: wait for it to finish")))
            }
            Err(StartError::Storage(e)) => Err(e.into()),
        }
    }

    /// A rotation job and the rows it could not rewrap. Needs `keys:admin`.
    pub async fn rotation_job(&self, caller: &Caller, id: &str) -> Result<Option<RotationJobReport>, ApiError> {
        let act = AuditAction::KeysRead;
        self.authorize_scope(caller, act, Scope::KeysAdmin).await?;
        let id = Uuid::parse_str(id)
            .map_err(|_| cdvault_domain::ValidationError::new("id", Reason::InvalidId, "not a rotation job id"))?;
        let Some(job) = rewrap::get(&self.db, id).await? else { return Ok(None) };
        let failures = rewrap::failures(&self.db, id).await?;
        Ok(Some(RotationJobReport { job, failures }))
    }

    /// A job's progress: its state now, then each time its counts or state change, ending after it finishes.
    /// Needs `keys:admin`. Read from the database, so it follows the job whichever replica works on it.
    pub async fn rotation_progress(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<impl futures::Stream<Item = RotationJobReport> + Send + 'static + use<>, ApiError> {
        let Some(first) = self.rotation_job(caller, id).await? else {
            return Err(ApiError::NotFound(format!("rotation job {id}")));
        };
        let progress = Progress { db: self.db.clone(), next: Some(first), last: None };
        Ok(futures::stream::unfold(progress, |mut progress| async move {
            loop {
                if let Some(item) = progress.next.take() {
                    progress.last = Some(item.job.clone());
                    return Some((item, progress));
                }
                let previous = progress.last.as_ref()?;
                if previous.state != rewrap::JobState::Running {
                    return None;
                }
                tokio::time::sleep(PROGRESS_POLL).await;
                let job = match rewrap::get(&progress.db, previous.id).await {
                    Ok(Some(job)) => job,
                    _ => return None,
                };
                if job != *previous {
                    let failures = rewrap::failures(&progress.db, job.id).await.unwrap_or_default();
                    progress.next = Some(RotationJobReport { job, failures });
                }
            }
        }))
    }

    /// Retires a `DECRYPT_ONLY` keyring version once no ciphertext uses it: its material is destroyed. Needs
    /// `keys:admin`. `CONFLICT` (with the count) while ciphertexts use it or a job runs, and for the active or an
    /// already retired version; `NOT_FOUND` for a version that never existed.
    pub async fn retire_encryption_key(&self, caller: &Caller, version: i32) -> Result<KeyCensus, ApiError> {
        let act = AuditAction::KeysRetire;
        let p = self.authorize_scope(caller, act, Scope::KeysAdmin).await?;
        let refused = |reason: Reason| {
            caller.audit_record(&p.subject, act, Outcome::Failed).reason(reason).details(json!({ "version": version }))
        };
        // The event commits with the destruction of the material, or neither does.
        let retired = caller
            .audit_record(&p.subject, act, Outcome::Success)
            .details(json!({ "version": version, "material": "destroyed" }));
        match keyring::retire(&self.db, version, retired).await {
            Ok(()) => {}
            Err(RetireError::Unknown(_)) => return Err(ApiError::NotFound(format!("keyring version {version}"))),
            Err(RetireError::Storage(e)) => return Err(e.into()),
            Err(e) => {
                let reason = match e {
                    RetireError::InUse { .. } => Reason::KeyInUse,
                    RetireError::JobRunning(_) => Reason::JobRunning,
                    RetireError::Active(_) => Reason::KeyActive,
                    _ => Reason::AlreadyRetired,
                };
                self.record_best_effort(refused(reason)).await;
                return Err(ApiError::Conflict(e.to_string()));
            }
        }
        // This replica forgets the material now; the others within a second (their workers' refresh).
        self.keys.reload().await?;
        let census = keyring::census(&self.db).await?;
        census
            .into_iter()
            .find(|k| k.version == version)
            .ok_or_else(|| ApiError::NotFound(format!("keyring version {version}")))
    }

    /// Runs this replica's rewrap worker until the server shuts down: on PostgreSQL `settings.workers` loops, on
    /// SQLite one (see [`rewrap_loop`](Self::rewrap_loop)).
    pub fn start_rewrap_worker(self: &Arc<Self>, settings: RewrapSettings) -> tokio::task::JoinHandle<()> {
        let loops = if self.db.is_postgres() { settings.workers.max(1) } else { 1 };
        let handles: Vec<_> = (0..loops).map(|_| tokio::spawn(self.clone().rewrap_loop(settings))).collect();
        tokio::spawn(async move {
            for handle in handles {
                let _ = handle.await;
            }
        })
    }

    /// One loop of the worker: it takes the running job's lease when free, rewraps a batch, renews the lease with
    /// its progress, pauses, and goes on until nothing is left.
    async fn rewrap_loop(self: Arc<Self>, settings: RewrapSettings) {
        let closed = self.sessions_closed();
        tokio::pin!(closed);
        let owner = Uuid::now_v7();
        let mut busy = false;
        loop {
            let step = self.rewrap_step(owner, settings).await;
            crate::metrics::rewrap_running(matches!(step, Ok(true)));
            if matches!(step, Ok(true)) && !busy {
                // A job was found: the other loops, asleep until their next look, join in now.
                self.rewrap_wake.notify_waiters();
            }
            busy = matches!(step, Ok(true));
            let wait = match step {
                Ok(true) => settings.pause,
                Ok(false) => IDLE_POLL,
                Err(e) => {
                    tracing::warn!(error = %crate::error::error_chain(&e), "the rewrap worker failed a step");
                    IDLE_POLL
                }
            };
            tokio::select! {
                () = &mut closed => return,
                () = tokio::time::sleep(wait) => {}
                () = self.rewrap_wake.notified() => {}
            }
        }
    }

    /// One step of the worker: `true` when it rewrapped a batch and more may remain.
    async fn rewrap_step(&self, owner: Uuid, settings: RewrapSettings) -> Result<bool, ApiError> {
        let lease = time::Duration::try_from(settings.lease).unwrap_or(time::Duration::seconds(30));
        let now = OffsetDateTime::now_utc();
        let Some(job) = rewrap::claim(&self.db, rewrap::Lease { owner, until: now + lease }, now).await? else {
            // Idle: pick up keyring changes made elsewhere (a rotation, a retirement).
            self.keys.refresh_if_changed().await?;
            return Ok(false);
        };
        let mut ring = self.keys.current();
        if ring.active_version() != Some(job.to_version) {
            ring = self.keys.reload().await?;
        }
        let renewed = rewrap::Lease { owner, until: OffsetDateTime::now_utc() + lease };
        // The job's outcome is recorded in the transaction that ends it (on PostgreSQL with every replica's counts).
        let finished = |job: &RotationJob| {
            let outcome = if job.failed > 0 { Outcome::Failed } else { Outcome::Success };
            let record = AuditRecord::new("cdvault", AuditAction::KeysRewrap, outcome, &format!("rewrap-{}", job.id))
                .details(json!({
                    "job": job.id.to_string(),
                    "toVersion": job.to_version,
                    "rewrapped": job.done,
                    "failed": job.failed,
                }));
            if job.failed > 0 { record.reason(Reason::RowsFailed) } else { record }
        };
        let outcome = rewrap::run_batch(&self.db, &ring, &job, renewed, settings.batch_size, finished).await?;
        crate::metrics::rewrap_batch(outcome.rewrapped, outcome.failed, outcome.skipped);
        if outcome.remaining > 0 {
            return Ok(true);
        }
        if outcome.finished {
            tracing::info!(job = %job.id, "rewrap job finished");
        }
        Ok(false)
    }
}
