//! The webhooks scenario's receiver: an HTTP server in the bench that checks every delivery's signature with its
//! own HMAC code and notes when it arrived, before any checking, so a latency is the server's, not the receiver's.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The receiver refuses a timestamp further than this from its clock, as Standard Webhooks receivers do.
const TOLERANCE_SECS: i64 = 300;

/// One delivery as the receiver saw it.
#[derive(Debug)]
pub struct Arrival {
    pub endpoint: usize,
    pub at: Instant,
    pub id: String,
    pub seller: String,
    pub version: i64,
}

/// What the receiver holds: each endpoint's key (by the number in its path), the deliveries in arrival order, and
/// how many it refused (a bad signature or timestamp: the server then retries, with backoff).
#[derive(Debug, Default)]
struct Inbox {
    keys: HashMap<usize, Vec<u8>>,
    arrivals: Vec<Arrival>,
    refused: u64,
}

type Shared = Arc<Mutex<Inbox>>;

fn lock(inbox: &Shared) -> std::sync::MutexGuard<'_, Inbox> {
    inbox.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether one of the `v1,` signatures of `header` is the HMAC-SHA256 of `{id}.{timestamp}.{body}` under `key`.
fn verified(key: &[u8], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).filter_map(|s| STANDARD.decode(s).ok()).any(|sig| {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else { return false };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    })
}

async fn receive(
    State(inbox): State<Shared>,
    Path(endpoint): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    // Before any checking: the latency is the server's, not the receiver's.
    let at = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let fresh = timestamp.parse::<i64>().is_ok_and(|t| (t - now).abs() <= TOLERANCE_SECS);
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let data = &event["data"];
    let (seller, version) = (data["sellerLogin"].as_str().unwrap_or_default().to_owned(), data["version"].as_i64());
    let mut inbox = lock(&inbox);
    let good = inbox.keys.get(&endpoint).is_some_and(|key| verified(key, &id, &timestamp, &body, &signature));
    match version {
        Some(version) if good && fresh => {
            inbox.arrivals.push(Arrival { endpoint, at, id, seller, version });
            StatusCode::NO_CONTENT
        }
        _ => {
            inbox.refused += 1;
            StatusCode::BAD_REQUEST
        }
    }
}

/// The receiver: an HTTP server on 127.0.0.1:0 in the bench's runtime, stopped when dropped.
pub struct Receiver {
    inbox: Shared,
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let inbox = Shared::default();
        let app = axum::Router::new().route("/hook/{n}", axum::routing::post(receive)).with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("webhooks: the receiver stopped: {e}");
            }
        });
        Ok(Self { inbox, address, task })
    }

    /// Accepts deliveries to `/hook/{endpoint}` signed with `key` from now on.
    pub fn trust(&self, endpoint: usize, key: Vec<u8>) {
        lock(&self.inbox).keys.insert(endpoint, key);
    }

    /// Deliveries to `endpoints` received so far.
    pub fn count(&self, endpoints: &HashSet<usize>) -> usize {
        lock(&self.inbox).arrivals.iter().filter(|a| endpoints.contains(&a.endpoint)).count()
    }

    /// Takes the deliveries to `endpoints` (in arrival order) and the count of refused requests, and forgets the rest.
    pub fn take(&self, endpoints: &HashSet<usize>) -> (Vec<Arrival>, u64) {
        let mut inbox = lock(&self.inbox);
        let arrivals = std::mem::take(&mut inbox.arrivals);
        (arrivals.into_iter().filter(|a| endpoints.contains(&a.endpoint)).collect(), std::mem::take(&mut inbox.refused))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
