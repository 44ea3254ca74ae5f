//! The audit of rate-limit denials, without letting a flood write the audit. Per key, a window opens at its first
//! denial and lasts the denial interval: its first few denials are audited one by one, the rest counted. The count
//! is written as one summary once the window has ended, by the next denial of its key or by the sweep (every
//! interval, and at shutdown), whichever comes first: every denial is in exactly one audit event, its own or one
//! summary's count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::LimitKey;

/// Denials audited individually per key and window.
pub(super) const DENIALS_WRITTEN: u32 = 5;

/// How a denial is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::http) enum DenialAudit {
    /// One of the first of its window: its own event.
    Individually,
    /// The first denial after a window that counted some: one event standing for them and for this one.
    Summary { counted: u64 },
    /// Counted, not written (yet).
    Counted,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    written: u32,
    counted: u64,
}

impl Window {
    fn ended(&self, now: Instant, interval: Duration) -> bool {
        now.saturating_duration_since(self.started) >= interval
    }
}

/// The denial windows of every key of one limiter.
pub(super) struct Denials {
    interval: Duration,
    windows: Mutex<HashMap<LimitKey, Window>>,
}

impl Denials {
    pub(super) fn new(interval: Duration) -> Self {
        Self { interval, windows: Mutex::new(HashMap::new()) }
    }

    /// How long a window lasts, and how often the sweep runs.
    pub(super) fn interval(&self) -> Duration {
        self.interval
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<LimitKey, Window>> {
        // A panic elsewhere cannot leave a window half-updated: every update is one assignment.
        self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Decides how a denial of `key` at `now` is audited.
    pub(super) fn note(&self, key: &LimitKey, now: Instant) -> DenialAudit {
        let mut windows = self.windows();
        let Some(window) = windows.get_mut(key) else {
            windows.insert(key.clone(), Window { started: now, written: 1, counted: 0 });
            return DenialAudit::Individually;
        };
        if window.ended(now, self.interval) {
            let counted = window.counted;
            if counted > 0 {
                // This denial is in the summary's count, so the new window has written none yet.
                *window = Window { started: now, written: 0, counted: 0 };
                return DenialAudit::Summary { counted: counted + 1 };
            }
            *window = Window { started: now, written: 1, counted: 0 };
            return DenialAudit::Individually;
        }
        if window.written < DENIALS_WRITTEN {
            window.written += 1;
            DenialAudit::Individually
        } else {
            window.counted += 1;
            DenialAudit::Counted
        }
    }

    /// Forgets every window that ended by `now` (every window, when `closing`) and returns the counts of those that
    /// counted some, to be written as summaries. A window is taken once: a later denial of its key opens a new one.
    pub(super) fn sweep(&self, now: Instant, closing: bool) -> Vec<(LimitKey, u64)> {
        let mut windows = self.windows();
        let mut summaries = Vec::new();
        windows.retain(|key, window| {
            if !closing && !window.ended(now, self.interval) {
                return true;
            }
            if window.counted > 0 {
                summaries.push((key.clone(), window.counted));
            }
            false
        });
        summaries
    }

    /// Forgets the windows that ended with nothing counted (those with a count wait for their summary).
    pub(super) fn prune(&self, now: Instant) {
        self.windows().retain(|_, window| window.counted > 0 || !window.ended(now, self.interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(60);

    fn address(ip: &str) -> LimitKey {
        LimitKey::Address(Some(ip.parse().unwrap()))
    }

    #[test]
    fn the_first_denials_of_a_window_are_written_and_the_rest_summarised_by_the_next_denial() {
        let denials = Denials::new(INTERVAL);
        let key = address("192.0.2.1");
        let start = Instant::now();
        let audits: Vec<_> = (0..8).map(|_| denials.note(&key, start)).collect();
        assert_eq!(audits.iter().filter(|audit| **audit == DenialAudit::Individually).count(), 5);
        assert_eq!(audits.iter().filter(|audit| **audit == DenialAudit::Counted).count(), 3);
        // The three counted and this one.
        assert_eq!(denials.note(&key, start + INTERVAL), DenialAudit::Summary { counted: 4 });
        assert_eq!(denials.note(&key, start + INTERVAL), DenialAudit::Individually);
        assert_eq!(denials.note(&key, start + INTERVAL * 3), DenialAudit::Individually);
    }

    #[test]
    fn the_sweep_takes_each_ended_window_with_a_count_once() {
        let denials = Denials::new(INTERVAL);
        let (flooded, quiet) = (address("192.0.2.1"), address("192.0.2.2"));
        let start = Instant::now();
        for _ in 0..7 {
            denials.note(&flooded, start);
        }
        denials.note(&quiet, start);
        assert!(denials.sweep(start + INTERVAL / 2, false).is_empty(), "no window has ended");
        assert_eq!(denials.sweep(start + INTERVAL, false), vec![(flooded.clone(), 2)]);
        assert!(denials.sweep(start + INTERVAL * 2, false).is_empty(), "taken once");
        // The window is gone: the next denial opens a new one instead of summarising again.
        assert_eq!(denials.note(&flooded, start + INTERVAL * 2), DenialAudit::Individually);
    }

    #[test]
    fn a_window_summarised_by_a_denial_is_not_swept_again() {
        let denials = Denials::new(INTERVAL);
        let key = address("192.0.2.1");
        let start = Instant::now();
        for _ in 0..6 {
            denials.note(&key, start);
        }
        assert_eq!(denials.note(&key, start + INTERVAL), DenialAudit::Summary { counted: 2 });
        assert!(denials.sweep(start + INTERVAL * 3, false).is_empty());
    }

    #[test]
    fn at_shutdown_the_sweep_takes_every_window_still_counting() {
        let denials = Denials::new(INTERVAL);
        let key = address("192.0.2.1");
        let start = Instant::now();
        for _ in 0..9 {
            denials.note(&key, start);
        }
        assert_eq!(denials.sweep(start, true), vec![(key, 4)]);
    }

    #[test]
    fn pruning_keeps_the_windows_that_wait_for_a_summary() {
        let denials = Denials::new(INTERVAL);
        let (flooded, quiet) = (address("192.0.2.1"), address("192.0.2.2"));
        let start = Instant::now();
        for _ in 0..6 {
            denials.note(&flooded, start);
        }
        denials.note(&quiet, start);
        denials.prune(start + INTERVAL);
        assert_eq!(denials.windows().len(), 1);
        assert_eq!(denials.sweep(start + INTERVAL, false), vec![(flooded, 1)]);
    }
}
