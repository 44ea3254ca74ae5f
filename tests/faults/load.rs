//! The load of the fault tests: clients issuing credentials in a loop, each request with a purpose of its own so
//! that its audit event can be found, and what became of every request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cdvault_tests::TestDb;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// Issues the API password of `$login` for `$purpose`.
pub const ISSUE: &str = "mutation($login: String!, $purpose: String!) { issueApiCredential(sellerLogin: $login, purpose: $purpose) { password } }";

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The credential came back.
    Issued,
    /// A GraphQL error with this `extensions.code`.
    Refused(String),
    /// No answer: the connection failed or was closed (the server was killed, or is not listening).
    NoAnswer(String),
}

/// One request: the purpose of each try (unique, the key to its audit event), the address of its last try, when it
/// was sent and answered, and the outcome of its last try.
#[derive(Debug, Clone)]
pub struct Request {
    pub purposes: Vec<String>,
    pub address: String,
    pub sent: Instant,
    pub took: Duration,
    pub outcome: Outcome,
}

/// Where requests go: one address, or several in turn with one retry on a connection error.
#[derive(Debug, Clone)]
pub struct Target {
    pub addresses: Vec<String>,
    pub retry_on_connection_error: bool,
}

/// A running load: `clients` tasks issuing until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicUsize>,
    tasks: JoinSet<Vec<Request>>,
}

impl Load {
    /// Starts `clients` tasks issuing `login`'s password with `token` against `target`, back to back.
    pub fn start(clients: usize, target: Target, token: &str, login: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        // A bound well past any answer the tests accept: a hang shows as a slow request, not a stuck test.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for client in 0..clients {
            let (stop, issued, http, next, target) =
                (stop.clone(), issued.clone(), http.clone(), next.clone(), target.clone());
            let (token, login) = (token.to_owned(), login.to_owned());
            tasks.spawn(async move {
                let mut requests = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let mut request =
                        send(&http, &target, &next, &token, &login, &format!("fault c{client} n{n}")).await;
                    n += 1;
                    request.sent = sent;
                    request.took = sent.elapsed();
                    if request.outcome == Outcome::Issued {
                        issued.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // A failing server answers fast: do not spin on it.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    requests.push(request);
                }
                requests
            });
        }
        Self { stop, issued, tasks }
    }

    /// Credentials issued so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::Relaxed)
    }

    /// Waits until `more` further credentials were issued (panics after `within`).
    pub async fn issues_more(&self, more: usize, within: Duration) {
        let target = self.issued() + more;
        cdvault_tests::eventually("credentials are issued", within, || async { self.issued() >= target }).await;
    }

    /// Stops the clients and returns every request they made, in the order they were sent.
    pub async fn finish(mut self) -> Vec<Request> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        while let Some(requests) = self.tasks.join_next().await {
            all.extend(requests.unwrap());
        }
        all.sort_by_key(|r| r.sent);
        all
    }
}

async fn send(
    http: &reqwest::Client,
    target: &Target,
    next: &AtomicUsize,
    token: &str,
    login: &str,
    purpose: &str,
) -> Request {
    let tries = if target.retry_on_connection_error { 2 } else { 1 };
    let first = next.fetch_add(1, Ordering::Relaxed);
    let mut request = Request {
        purposes: Vec::new(),
        address: String::new(),
        sent: Instant::now(),
        took: Duration::ZERO,
        outcome: Outcome::NoAnswer("no try".into()),
    };
    for attempt in 0..tries {
        // A retry goes to the next address: the one that failed may be the replica going down.
        let address = &target.addresses[(first + attempt) % target.addresses.len()];
        let purpose = format!("{purpose} t{attempt}");
        let body = json!({ "query": ISSUE, "variables": { "login": login, "purpose": purpose } });
        request.purposes.push(purpose);
        address.clone_into(&mut request.address);
        let answer = http.post(format!("http://{address}/graphql")).bearer_auth(token).json(&body).send().await;
        request.outcome = match answer {
            Ok(response) => match response.json::<Value>().await {
                Ok(body) => outcome_of(&body),
                Err(e) => Outcome::NoAnswer(format!("body: {e}")),
            },
            Err(e) => Outcome::NoAnswer(format!("{e}")),
        };
        if !matches!(&request.outcome, Outcome::NoAnswer(_)) {
            break;
        }
    }
    request
}

fn outcome_of(body: &Value) -> Outcome {
    if body["data"]["issueApiCredential"]["password"].is_string() {
        return Outcome::Issued;
    }
    let code = body["errors"][0]["extensions"]["code"].as_str().unwrap_or("(no code)");
    Outcome::Refused(code.to_owned())
}

/// How the requests fared against the audit trail: `SUCCESS` issue events per purpose.
#[derive(Debug)]
pub struct Audited {
    pub issued: usize,
    pub failed: usize,
    /// Tries without an answer whose event was committed anyway: the reply was lost (allowed; an issue is safe to
    /// retry).
    pub lost_replies: usize,
}

/// Checks that every issued request has exactly one `SUCCESS` issue event, that no request has more than one, and
/// that no event belongs to no request; counts the failed requests whose event committed.
pub async fn audit_matches(db: &TestDb, requests: &[Request]) -> Audited {
    let conn = db.raw().await;
    let rows = conn
        .query_all_raw(db.statement(
            "SELECT purpose, count(*) AS n FROM audit_events WHERE action = 'credential.issue' AND outcome = 'SUCCESS' \
             AND purpose LIKE 'fault %' GROUP BY purpose",
            vec![],
        ))
        .await
        .unwrap();
    let mut events: HashMap<String, i64> =
        rows.iter().map(|r| (r.try_get::<String>("", "purpose").unwrap(), r.try_get("", "n").unwrap())).collect();
    conn.close().await.unwrap();
    let (mut issued, mut failed, mut lost_replies) = (0, 0, 0);
    for request in requests {
        let (last, earlier) = request.purposes.split_last().unwrap();
        for purpose in earlier {
            // A try that ended without an answer: committed or not, at most once.
            let n = events.remove(purpose).unwrap_or(0);
            assert!(n <= 1, "{purpose} has {n} audit events");
            lost_replies += usize::try_from(n).unwrap();
        }
        let n = events.remove(last).unwrap_or(0);
        assert!(n <= 1, "{last} has {n} audit events");
        if request.outcome == Outcome::Issued {
            issued += 1;
            assert_eq!(n, 1, "the issue '{last}' has no audit event");
        } else {
            failed += 1;
            lost_replies += usize::try_from(n).unwrap();
        }
    }
    assert!(events.is_empty(), "audit events of no request: {events:?}");
    Audited { issued, failed, lost_replies }
}

/// The codes of the refused requests and how many of each.
pub fn codes(requests: &[Request]) -> HashMap<String, usize> {
    let mut codes = HashMap::new();
    for request in requests {
        let key = match &request.outcome {
            Outcome::Issued => continue,
            Outcome::Refused(code) => code.clone(),
            Outcome::NoAnswer(_) => "(no answer)".to_owned(),
        };
        *codes.entry(key).or_insert(0) += 1;
    }
    codes
}
