//! CPU time (user + system) of the processes behind a scenario, from `/proc/<pid>/stat` (Linux), so that a figure
//! of CPU per request can project how many replicas a given number of cores carries.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Clock ticks per second of `/proc/*/stat`: `getconf CLK_TCK` (the workspace forbids the `unsafe` of a `sysconf`
/// call), else 100, Linux's `USER_HZ` on every common architecture.
pub fn ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// The command name and the user + system ticks of one `/proc/<pid>/stat` line (all threads of the process).
fn parse_stat(line: &str) -> Option<(&str, u64)> {
    // The name is in parentheses and may itself hold spaces or parentheses: the fields resume after the last `)`.
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let name = line.get(open + 1..close)?;
    let mut fields = line.get(close + 1..)?.split_whitespace();
    // After the name: state (field 3) ... utime (field 14), stime (field 15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

/// User + system ticks of a `/proc/.../stat` file (a process, or a thread's `/proc/thread-self/stat`).
pub fn stat_ticks(path: &str) -> Option<u64> {
    let line = std::fs::read_to_string(path).ok()?;
    parse_stat(&line).map(|(_, ticks)| ticks)
}

/// User + system ticks of process `pid`, if it still runs.
pub fn process_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

/// Ticks as seconds.
pub fn seconds(ticks: u64) -> f64 {
    ticks as f64 / ticks_per_second() as f64
}

/// User + system ticks of every process named `postgres` on the machine, by pid: the backends of the shared
/// cluster, whoever they serve (other engineers' runs included).
pub fn postgres_ticks() -> Option<HashMap<u32, u64>> {
    let mut ticks = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Ok(line) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some(("postgres", used)) = parse_stat(&line)
        {
            ticks.insert(pid, used);
        }
    }
    Some(ticks)
}

/// Ticks PostgreSQL used between two samples: what each process running at the end used since the first (all of
/// it for one started since). A backend that exited in between is missed: the server's pooled connections live on.
fn postgres_used(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> u64 {
    after.iter().map(|(pid, &now)| now.saturating_sub(before.get(pid).copied().unwrap_or(0))).sum()
}

/// What a measured window is charged with.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The servers (or the peer) of the scenario, summed.
    pub servers: Option<u64>,
    /// PostgreSQL's processes, when the scenario runs on it.
    pub postgres: Option<HashMap<u32, u64>>,
}

/// Reads the ticks of `pids` (all of them, or none when one is gone) and, if asked, of PostgreSQL.
pub fn sample(pids: &[u32], postgres: bool) -> Sample {
    let servers = if pids.is_empty() { None } else { pids.iter().map(|&pid| process_ticks(pid)).sum() };
    Sample { servers, postgres: if postgres { postgres_ticks() } else { None } }
}

/// Microseconds of CPU per request between two samples: the servers', and PostgreSQL's.
pub fn per_request(before: &Sample, after: &Sample, requests: u64) -> (Option<f64>, Option<f64>) {
    let servers = after.servers.zip(before.servers).and_then(|(a, b)| a.checked_sub(b));
    let postgres = after.postgres.as_ref().zip(before.postgres.as_ref()).map(|(a, b)| postgres_used(b, a));
    let per = |ticks: Option<u64>| ticks.filter(|_| requests > 0).map(|t| seconds(t) * 1e6 / requests as f64);
    (per(servers), per(postgres))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_user_plus_system_ticks() {
        let line = "4242 (postgres) S 1 4242 4242 0 -1 4194560 300 0 0 0 120 35 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat(line), Some(("postgres", 155)));
    }

    #[test]
    fn a_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let line = "7 (tokio (rt) 1) R 1 7 7 0 -1 0 0 0 0 0 9 1 0 0 20 0 4 0 100 0 0";
        assert_eq!(parse_stat(line), Some(("tokio (rt) 1", 10)));
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        assert!(process_ticks(std::process::id()).is_some());
    }

    #[test]
    fn cpu_per_request_is_undefined_without_requests_or_samples() {
        let sample = |ticks| Sample { servers: Some(ticks), postgres: None };
        assert_eq!(per_request(&sample(1), &sample(2), 0), (None, None));
        assert_eq!(per_request(&Sample::default(), &sample(2), 10), (None, None));
    }

    #[test]
    fn a_postgres_process_that_exits_or_starts_in_the_window_does_not_make_the_use_negative() {
        let before = HashMap::from([(10, 500), (11, 9_000)]);
        let after = HashMap::from([(10, 520), (12, 7)]);
        assert_eq!(postgres_used(&before, &after), 27);
    }
}
