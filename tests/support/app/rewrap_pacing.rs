//! Rewrap worker pacings a test picks to control when a rotation job progresses.

use std::time::Duration;

use cdvault_api::service::RewrapSettings;

/// Small batches with a pause between them: the job runs long enough for a test to work beside it.
pub fn slow() -> RewrapSettings {
    RewrapSettings { batch_size: 4, pause: Duration::from_millis(15), lease: Duration::from_secs(30), workers: 1 }
}

/// Production's batches (1,000 rows, no pause, larger than one SQLite write turn), two at once on PostgreSQL so
/// that several workers of one replica share the job.
pub fn large_batches() -> RewrapSettings {
    RewrapSettings { batch_size: 1000, pause: Duration::ZERO, lease: Duration::from_secs(30), workers: 2 }
}

/// One batch of 4, then an hour's pause: the job stays `RUNNING` until another replica works on it (on SQLite,
/// once this worker's one-second lease has lapsed). No test waits that hour.
pub fn stalled_after_one_batch() -> RewrapSettings {
    RewrapSettings { batch_size: 4, pause: Duration::from_secs(3600), lease: Duration::from_secs(1), workers: 1 }
}
