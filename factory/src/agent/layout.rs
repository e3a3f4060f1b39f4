//! Where things are in a worker's directory. The agent and the local
//! factory both read it, so it is written down once:
//!
//! ```text
//! DIR/agent.pid      the local factory's record of the agent (pid, start, boot)
//! DIR/agent/         the agent's own files: task scripts, `pgids`
//! DIR/work/          the tasks' working directory
//! DIR/input/         the job's inputs and copied outputs (`AQUIFER_INPUT_DIR`)
//! ```
//!
//! Tasks run in `work/`, not in `DIR` itself, so a task that cleans its
//! working directory (`git clean -xdf`) cannot erase the records the
//! factory needs to find and kill what the worker started.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    #[must_use]
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    /// The tasks' working directory.
    #[must_use]
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// Where the job's inputs are placed before its first task.
    #[must_use]
    pub fn input(&self) -> PathBuf {
        self.dir.join("input")
    }

    /// The agent's own files.
    #[must_use]
    pub fn agent(&self) -> PathBuf {
        self.dir.join("agent")
    }

    /// The script of task number `n` (from 1).
    #[must_use]
    pub fn script(&self, n: usize, name: &str) -> PathBuf {
        self.agent().join(format!("{n}-{name}.sh"))
    }

    /// One process group id a line: every task the agent started. The
    /// groups may outlive their task (a service started in the
    /// background), so destroying the worker kills each of them.
    #[must_use]
    pub fn pgids(&self) -> PathBuf {
        self.agent().join("pgids")
    }

    /// The local factory's pid file.
    #[must_use]
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("agent.pid")
    }

    /// The task process groups recorded so far, each with its leader's
    /// start time where known (none if the file is missing; lines that do
    /// not parse are skipped).
    #[must_use]
    pub fn read_pgids(&self) -> Vec<(i32, Option<u64>)> {
        std::fs::read_to_string(self.pgids())
            .unwrap_or_default()
            .lines()
            .filter_map(parse_pgid_line)
            .collect()
    }
}

/// `PGID [START]`.
fn parse_pgid_line(line: &str) -> Option<(i32, Option<u64>)> {
    let mut words = line.split_whitespace();
    let pgid = words.next()?.parse().ok()?;
    let start = match words.next() {
        Some(w) => Some(w.parse().ok()?),
        None => None,
    };
    Some((pgid, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgid_lines_parse_with_and_without_a_start_time() {
        assert_eq!(parse_pgid_line("42 1234"), Some((42, Some(1234))));
        assert_eq!(parse_pgid_line("42"), Some((42, None)));
        assert_eq!(parse_pgid_line("x"), None);
        assert_eq!(parse_pgid_line("42 y"), None);
        assert_eq!(parse_pgid_line(""), None);
    }
}
