//! Process groups: signalling a whole group, telling whether any member is
//! left, and terminating groups politely then firmly. A worker's agent and
//! each of its tasks run in their own group, so killing the groups kills
//! what they started, grandchildren included.
//!
//! Liveness is read from `/proc` where there is one: a killed process stays
//! a zombie until its parent reaps it (which may be never, for an orphan
//! in a container whose init does not reap), and a zombie runs nothing.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::time::Duration;
use tokio::time::Instant;

/// How often a wait for a group to empty looks again. No event tells us
/// when a process that is not our child dies, so this is a poll.
const POLL: Duration = Duration::from_millis(20);
/// How long SIGKILL may take to empty a group before we call it stuck
/// (a process in uninterruptible sleep, say).
const KILL_WAIT: Duration = Duration::from_secs(10);

/// What `/proc/PID/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub pgrp: i32,
    /// Clock ticks after boot: with the pid, it names one process for the
    /// whole of a boot, where a pid alone may be reused.
    pub start: u64,
}

impl Stat {
    /// Whether it can still run anything (not a zombie, not dead).
    #[must_use]
    pub fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/PID/stat`. The command name sits in
/// parentheses and may itself hold spaces and parentheses, so the fields
/// are counted from the last `)`.
#[must_use]
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (3), ppid (4), pgrp (5), ... starttime (22).
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some(Stat { state, pgrp, start })
}

/// The stat of process `pid`, if it exists and this is Linux.
#[must_use]
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This boot's id, if the kernel tells (Linux): pids recorded under another
/// boot name nothing now.
#[must_use]
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whether process group `pgid`, recorded with its leader's start time,
/// may still be the one recorded. A pid is reused only once its process
/// is gone and a group id only once its group is empty; so the group is
/// another's only if a process of that pid lives and started at another
/// time than the one recorded.
#[must_use]
pub fn still_ours(pgid: i32, start: Option<u64>) -> bool {
    match (stat(pgid), start) {
        (Some(now), Some(then)) => now.start == then,
        _ => true,
    }
}

/// Whether the process `pid`, recorded with its start time, still runs.
#[must_use]
pub fn leader_alive(pid: i32, start: Option<u64>) -> bool {
    match stat(pid) {
        Some(s) => s.is_live() && start.is_none_or(|t| t == s.start),
        // No /proc (not Linux): ask the kernel whether anything answers.
        None if !std::path::Path::new("/proc/self/stat").exists() => {
            nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
        }
        None => false,
    }
}

/// Whether a group id is one we may signal at all: never init's, the
/// "every process" wildcard, or our own group.
#[must_use]
pub fn may_signal(pgid: i32) -> bool {
    pgid > 1 && pgid != nix::unistd::getpgrp().as_raw()
}

/// Whether any live process is left in group `pgid`.
#[must_use]
pub fn alive(pgid: i32) -> bool {
    if killpg(Pid::from_raw(pgid), None) == Err(Errno::ESRCH) {
        return false;
    }
    // Something answers to the group: unless /proc shows only zombies,
    // count it as alive.
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    let mut seen_any = false;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(s) = stat(pid)
            && s.pgrp == pgid
        {
            seen_any = true;
            if s.is_live() {
                return true;
            }
        }
    }
    // A group that answered `kill` but showed no member in /proc (it left
    // in between, or /proc is not our pid namespace's): trust `kill`, and
    // the caller looks again.
    !seen_any
}

/// Sends `signal` to every group in `pgids` that may be signalled; a group
/// already gone is fine.
pub fn signal_all(pgids: &[i32], signal: Signal) {
    for &pgid in pgids.iter().filter(|&&p| may_signal(p)) {
        match killpg(Pid::from_raw(pgid), signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pgid, %e, ?signal, "cannot signal the process group"),
        }
    }
}

/// Waits until no group in `pgids` has a live member, or `limit` passes.
/// Returns whether they are all gone.
pub async fn wait_gone(pgids: &[i32], limit: Duration) -> bool {
    let until = Instant::now() + limit;
    // Most groups are gone within a few milliseconds of SIGTERM: look
    // again after 1 ms, doubling up to `POLL`, so that a quick exit is
    // seen quickly and a slow one costs few looks.
    let mut pause = Duration::from_millis(1);
    loop {
        if !pgids.iter().any(|&p| may_signal(p) && alive(p)) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL);
    }
}

/// SIGTERM to every group, then SIGKILL to what is left after `grace`;
/// `Ok` once no member of any group is alive.
pub async fn terminate(pgids: &[i32], grace: Duration) -> Result<(), String> {
    signal_all(pgids, Signal::SIGTERM);
    // A stopped process cannot act on SIGTERM until it is continued.
    signal_all(pgids, Signal::SIGCONT);
    if wait_gone(pgids, grace).await {
        return Ok(());
    }
    signal_all(pgids, Signal::SIGKILL);
    if wait_gone(pgids, KILL_WAIT).await {
        return Ok(());
    }
    let left: Vec<i32> = pgids.iter().copied().filter(|&p| alive(p)).collect();
    Err(format!(
        "process groups {left:?} survived SIGKILL for {} s",
        KILL_WAIT.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    #[test]
    fn stat_lines_parse_with_awkward_names() {
        let line =
            "4242 (a (b) c) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                pgrp: 4240,
                start: 987654
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        let zombie =
            parse_stat("7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0").expect("parses");
        assert!(!zombie.is_live());
    }

    #[test]
    fn init_and_our_own_group_are_never_signalled() {
        assert!(!may_signal(0));
        assert!(!may_signal(1));
        assert!(!may_signal(-1));
        assert!(!may_signal(nix::unistd::getpgrp().as_raw()));
    }

    /// A real shell in its own group with a grandchild in the background:
    /// terminating the group ends both, though only the shell is our child.
    #[tokio::test]
    async fn terminating_a_group_kills_grandchildren_too() {
        let mut child = tokio::process::Command::new("bash")
            .args(["-c", "sleep 300 & echo $!; wait"])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bash starts");
        let pgid = i32::try_from(child.id().expect("running")).expect("a pid");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("the grandchild's pid");
        let grandchild: i32 = line.trim().parse().expect("a pid");
        assert_eq!(stat(grandchild).map(|s| s.pgrp), Some(pgid));
        assert!(alive(pgid));

        // bash waits for `sleep`, and ignores nothing: SIGTERM is enough.
        terminate(&[pgid], Duration::from_secs(5))
            .await
            .expect("the group ends");
        assert!(!alive(pgid));
        assert!(stat(grandchild).is_none_or(|s| !s.is_live()));
        let status = child.wait().await.expect("reaped");
        assert!(!status.success());
    }

    /// A group that ignores SIGTERM is killed after the grace period.
    #[tokio::test]
    async fn a_group_that_ignores_sigterm_gets_sigkill() {
        let mut child = tokio::process::Command::new("bash")
            .args(["-c", "trap '' TERM; sleep 300 & echo $!; wait"])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bash starts");
        let pgid = i32::try_from(child.id().expect("running")).expect("a pid");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("the grandchild's pid");
        let started = Instant::now();
        terminate(&[pgid], Duration::from_millis(300))
            .await
            .expect("the group ends");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(!alive(pgid));
        let _ = child.wait().await;
    }
}
