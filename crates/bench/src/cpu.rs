//! CPU time (user + system) of the processes behind a scenario, from `/proc/<pid>/stat` (Linux), so that a figure
//! of CPU per request can project how many replicas a given number of cores carries.

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

/// User + system ticks of every process named `postgres` on the machine: the backends of the shared cluster, whoever
/// they serve (other engineers' runs included), and not those that exited since the previous sample.
pub fn postgres_ticks() -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Ok(line) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some(("postgres", ticks)) = parse_stat(&line)
        {
            total += ticks;
        }
    }
    Some(total)
}

/// What a measured window is charged with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// The servers (or the peer) of the scenario, summed.
    pub servers: Option<u64>,
    /// PostgreSQL's backends, when the scenario runs on it.
    pub postgres: Option<u64>,
}

/// Reads the ticks of `pids` (all of them, or none when one is gone) and, if asked, of PostgreSQL.
pub fn sample(pids: &[u32], postgres: bool) -> Sample {
    let servers = if pids.is_empty() { None } else { pids.iter().map(|&pid| process_ticks(pid)).sum() };
    Sample { servers, postgres: if postgres { postgres_ticks() } else { None } }
}

/// Microseconds of CPU per request between two samples.
pub fn per_request(before: Option<u64>, after: Option<u64>, requests: u64) -> Option<f64> {
    let ticks = after?.checked_sub(before?)?;
    (requests > 0).then(|| seconds(ticks) * 1e6 / requests as f64)
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
        assert_eq!(per_request(Some(1), Some(2), 0), None);
        assert_eq!(per_request(None, Some(2), 10), None);
    }
}
