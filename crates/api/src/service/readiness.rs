//! What `/readyz` reports of this replica's parts: the audit writer, the database, the keyring, the freeze and the
//! audit stream. Only the writer and the database decide readiness (every issue waits on both); the others are
//! detail for the operator. Nothing here is secret: versions, counts, states.

use cdvault_storage::audit::{self, WriterHealth};
use serde_json::{Value, json};

use super::Vault;

/// One part of the service as a readiness probe sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentReport {
    /// Its name in the answer (`audit_writer`, `database`, ...).
    pub name: &'static str,
    /// Whether it works.
    pub ok: bool,
    /// Whether the replica is unready while it does not work.
    pub required: bool,
    /// What is wrong, in a few words (the plain-text answer `/readyz` gave before it had detail).
    pub problem: Option<String>,
    /// The component's state, a JSON object.
    pub detail: Value,
}

impl ComponentReport {
    /// A component that works.
    pub fn ok(name: &'static str, required: bool, detail: Value) -> Self {
        Self { name, ok: true, required, problem: None, detail }
    }

    /// A component that does not work, and why.
    pub fn failing(name: &'static str, required: bool, problem: impl Into<String>, detail: Value) -> Self {
        Self { name, ok: false, required, problem: Some(problem.into()), detail }
    }
}

/// Every component of this replica, in a stable order.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub components: Vec<ComponentReport>,
}

impl Readiness {
    /// The first problem of a required component: the replica is unready while there is one.
    pub fn blocking_problem(&self) -> Option<&str> {
        self.components.iter().filter(|c| c.required && !c.ok).find_map(|c| c.problem.as_deref())
    }
}

impl Vault {
    /// The state of this replica's components. Pings the database and reads the chain head (when streaming); the
    /// rest is read from memory.
    pub async fn readiness(&self) -> Readiness {
        let mut components = vec![self.writer_report()];
        let database = self.db.ping().await;
        components.push(match &database {
            Ok(()) => ComponentReport::ok("database", true, json!({ "reachable": true })),
            Err(err) => {
                tracing::warn!(error = %crate::error::error_chain(err), "readiness: the database does not answer");
                ComponentReport::failing("database", true, "database unreachable", json!({ "reachable": false }))
            }
        });
        let ring = self.keys.current();
        components.push(match ring.active_version() {
            Some(version) => ComponentReport::ok("keyring", false, json!({ "active_version": version })),
            None => ComponentReport::failing("keyring", false, "no active key", json!({ "active_version": null })),
        });
        let frozen = self.frozen();
        components.push(ComponentReport::ok("freeze", false, json!({ "frozen": frozen })));
        components.push(self.stream_report(database.is_ok()).await);
        Readiness { components }
    }

    fn writer_report(&self) -> ComponentReport {
        let (state, problem) = match self.audit_health() {
            WriterHealth::Alive => ("alive", None),
            WriterHealth::Stuck { .. } => ("stuck", Some("audit writer stuck")),
            WriterHealth::Restarting => ("restarting", Some("audit writer restarting")),
            WriterHealth::Dead => ("dead", Some("audit writer dead")),
        };
        let detail = json!({ "state": state });
        match problem {
            None => ComponentReport::ok("audit_writer", true, detail),
            Some(problem) => ComponentReport::failing("audit_writer", true, problem, detail),
        }
    }

    /// The stream's lag in events: the head now (or as the tailer last read it) minus the last `seq` streamed.
    async fn stream_report(&self, database_up: bool) -> ComponentReport {
        let Some(status) = self.audit_stream_status() else {
            return ComponentReport::ok("audit_stream", false, json!({ "enabled": false }));
        };
        let head = match database_up {
            true => audit::head(&self.db).await.map_or_else(|_| status.head_seen(), |(seq, _)| seq),
            false => status.head_seen(),
        };
        let streamed = status.streamed_through();
        let error = status.last_error();
        let detail = json!({
            "enabled": true,
            "streamed_through": streamed,
            "head": head,
            "lag": (head - streamed).max(0),
            "last_error": error,
        });
        match error {
            None => ComponentReport::ok("audit_stream", false, detail),
            Some(_) => ComponentReport::failing("audit_stream", false, "audit stream failing", detail),
        }
    }
}
