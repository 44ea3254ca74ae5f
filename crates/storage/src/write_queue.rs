//! SQLite has one write lock per file, and a writer that finds it taken polls in SQLite's busy handler, sleeping
//! 1, 2, 5, 10, 15, 20 ms and more between tries: a short transaction can wait tens of milliseconds behind a
//! writer that has long finished, and two writers that both loop (the audit writer and the rewrap worker) take
//! turns by luck. The writers of one process that run all the time therefore queue here first, in arrival order
//! (tokio's mutex is fair), one queue per database file shared by every pool on it. PostgreSQL needs no queue.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

use crate::StorageError;

/// A turn at writing a SQLite file: hold it from `BEGIN` to `COMMIT`.
pub(crate) type WriteTurn = OwnedMutexGuard<()>;

/// One queue per SQLite file, alive while a pool on that file is.
#[derive(Debug, Clone)]
pub(crate) struct WriteQueue(Arc<tokio::sync::Mutex<()>>);

static QUEUES: LazyLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> = LazyLock::new(Default::default);

/// As long as SQLite's own busy timeout: past it the database is stuck, not busy.
const WAIT: Duration = Duration::from_secs(10);

impl WriteQueue {
    /// The queue of the SQLite file at `path`, shared with every other pool of this process on that file.
    pub(crate) fn for_file(path: PathBuf) -> Self {
        let path = std::path::absolute(&path).unwrap_or(path);
        let mut queues = QUEUES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        queues.retain(|_, queue| queue.strong_count() > 0);
        if let Some(queue) = queues.get(&path).and_then(Weak::upgrade) {
            return Self(queue);
        }
        let queue = Arc::new(tokio::sync::Mutex::new(()));
        queues.insert(path, Arc::downgrade(&queue));
        Self(queue)
    }

    /// Waits for this process's turn at writing the file.
    pub(crate) async fn turn(&self) -> Result<WriteTurn, StorageError> {
        tokio::time::timeout(WAIT, self.0.clone().lock_owned()).await.map_err(|_| {
            StorageError::Unavailable(sea_orm::DbErr::Custom("no turn at writing the SQLite file within 10 s".into()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pools_on_one_file_share_a_queue_and_other_files_do_not() {
        let dir = std::env::temp_dir().join(format!("cdvault-queue-{}", std::process::id()));
        let (a, b, other) = (
            WriteQueue::for_file(dir.join("vault.db")),
            WriteQueue::for_file(dir.join("vault.db")),
            WriteQueue::for_file(dir.join("other.db")),
        );
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert!(!Arc::ptr_eq(&a.0, &other.0));

        let turn = a.turn().await.unwrap();
        let _other = other.turn().await.unwrap();
        let waiting = tokio::spawn(async move { b.turn().await.map(drop) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second writer of the file waits for the first");
        drop(turn);
        waiting.await.unwrap().unwrap();
    }
}
