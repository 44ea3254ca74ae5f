//! Rewrap jobs: after a rotation, every ciphertext under an older keyring version is opened and sealed again under
//! the new one, in batches, by whichever replica holds the job's lease.
//!
//! Each row is rewritten with compare-and-set on its key version, nonce and ciphertext, so a row stored or changed
//! meanwhile (already under the new version, or with new content) is left alone. A row that cannot be opened is
//! listed as a failure of the job and skipped by later batches; it never blocks the rest.
//!
//! [`job`] holds the job's life (start, read, claim, finish); [`batch`] the steps of one batch.

mod batch;
mod job;

pub use batch::{BatchOutcome, run_batch};
pub use job::{
    JobFailure, JobState, Lease, RotationJob, StartError, WorkerShare, claim, failures, get, start, workers,
};
