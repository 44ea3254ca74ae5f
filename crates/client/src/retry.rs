//! When and how long to wait before trying a request again.

use std::time::Duration;

use rand::Rng;

use crate::Error;

/// Retries of transient failures (`UPSTREAM_UNAVAILABLE`, `SERVICE_UNAVAILABLE`, `RATE_LIMITED`, an unreachable
/// vault) with exponential backoff and full jitter; `RATE_LIMITED` waits at least its `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1: no retry).
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry, doubled on each further one.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling.
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited out: the error is returned instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// How long to wait after failed try number `attempt` (from 1) with `error`, or `None` to give up.
    pub fn delay(&self, attempt: u32, error: &Error) -> Option<Duration> {
        if attempt >= self.max_attempts || !error.is_transient() {
            return None;
        }
        let ceiling = self.backoff_ceiling(attempt);
        let jittered = ceiling.mul_f64(rand::rng().random_range(0.0..=1.0));
        match error.retry_after() {
            Some(wait) if wait > self.max_retry_after => None,
            Some(wait) => Some(wait.max(jittered)),
            None => Some(jittered),
        }
    }

    fn backoff_ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        self.initial_backoff.saturating_mul(1 << doublings).min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use crate::error::ServerError;

    fn server(code: ErrorCode) -> Error {
        Error::Server(ServerError { code, message: String::new(), reason: None, field: None, request_id: None })
    }

    #[test]
    fn a_rate_limit_waits_at_least_its_retry_after() {
        let policy = RetryPolicy::default();
        let limited = Error::RateLimited { retry_after: Some(Duration::from_secs(2)) };
        assert!(policy.delay(1, &limited).is_some_and(|d| d >= Duration::from_secs(2)));
        let too_long = Error::RateLimited { retry_after: Some(Duration::from_secs(3600)) };
        assert_eq!(policy.delay(1, &too_long), None);
    }

    #[test]
    fn frozen_and_auth_errors_are_never_retried_and_upstream_trouble_is_until_the_last_attempt() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, &server(ErrorCode::Frozen)), None);
        assert_eq!(policy.delay(1, &server(ErrorCode::Unauthenticated)), None);
        assert_eq!(policy.delay(1, &server(ErrorCode::Forbidden)), None);
        let upstream = server(ErrorCode::UpstreamUnavailable);
        assert!(policy.delay(1, &upstream).is_some_and(|d| d <= policy.initial_backoff));
        assert!(policy.delay(4, &upstream).is_some_and(|d| d <= policy.max_backoff));
        assert_eq!(policy.delay(5, &upstream), None);
        assert_eq!(RetryPolicy::none().delay(1, &upstream), None);
    }
}
