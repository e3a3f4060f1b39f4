//! What a job leaves behind: its output rules, the agent's upload of the
//! files they match (begin, chunks, commit: resumable, checked by size and
//! SHA-256), and the listing users read (`docs/outputs.md`).

use crate::JobId;
use serde::{Deserialize, Serialize};

/// The longest rule or output path taken.
pub const PATH_BYTES_MAX: usize = 1024;

/// One rule of a job file's `output_rules`, read: a glob relative to the
/// job's work directory, prefixed by `=` (it must match at least one file
/// or the job fails), `%` (the file may change size while it is sent: a
/// log still written), or `!` (matching files are not outputs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRule {
    pub glob: String,
    pub required: bool,
    pub growing: bool,
    pub exclude: bool,
}

impl std::str::FromStr for OutputRule {
    type Err = String;

    fn from_str(rule: &str) -> Result<OutputRule, String> {
        let (mut required, mut growing, mut exclude) = (false, false, false);
        let mut glob = rule;
        loop {
            match glob.chars().next() {
                Some('=') if !required => required = true,
                Some('%') if !growing => growing = true,
                Some('!') if !exclude => exclude = true,
                _ => break,
            }
            glob = &glob[1..];
        }
        if exclude && (required || growing) {
            return Err(format!(
                "output rule {rule:?}: `!` excludes; it cannot be combined with `=` or `%`"
            ));
        }
        relative_path(glob).map_err(|why| format!("output rule {rule:?}: {why}"))?;
        Ok(OutputRule {
            glob: glob.to_string(),
            required,
            growing,
            exclude,
        })
    }
}

/// Whether `path` is a path (or glob) inside a job's work directory:
/// relative, without `..`, empty or `.` components, a NUL or a control
/// character, and at most `PATH_BYTES_MAX` bytes.
pub fn relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.len() > PATH_BYTES_MAX {
        return Err(format!("the path is longer than {PATH_BYTES_MAX} bytes"));
    }
    if path.starts_with('/') {
        return Err("the path is absolute; give it relative to the work directory".into());
    }
    if path.chars().any(char::is_control) {
        return Err("the path holds a control character".into());
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("the path has an empty, `.` or `..` component".into());
    }
    Ok(())
}

/// An output's number within its job, from 1.
pub type OutputNumber = u32;

/// `POST /0/agent/outputs`: begin sending the file at `path` (relative to
/// the work directory) of `size` bytes; again for the same path, to
/// resume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OutputBegin {
    pub path: String,
    pub size: u64,
}

/// The answer to a begin: the output's number, and how many bytes the
/// server holds already (send from there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OutputUpload {
    pub output: OutputNumber,
    pub received: u64,
}

/// `POST /0/agent/outputs/{output}/chunk?offset=N`: the query. The body
/// is the bytes (`application/octet-stream`) from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ChunkQuery {
    pub offset: u64,
}

/// The answer to a chunk: how many bytes the server now holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Received {
    pub received: u64,
}

/// `POST /0/agent/outputs/{output}/commit`: what was sent, in all. The
/// server checks both before the output is listed; a mismatch discards
/// what it holds, and the agent sends it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OutputCommit {
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Where a file is sent, in the same three steps (begin, chunks,
/// commit): the running job's outputs (by its agent), or the inputs of a
/// job (by its submitter, after submitting it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sending {
    Output,
    Input(JobId),
}

impl Sending {
    /// `output` or `input`, for messages.
    #[must_use]
    pub fn what(self) -> &'static str {
        match self {
            Sending::Output => "output",
            Sending::Input(_) => "input",
        }
    }
}

/// Whether `name` may name an input or a dependency's directory in the
/// job's input directory: one path component of letters, digits, `-`,
/// `_` and `.`, not `.` or `..`, at most 128 bytes.
pub fn input_name(name: &str) -> Result<(), String> {
    let fine = (1..=128).contains(&name.len())
        && name != "."
        && name != ".."
        && (name.chars()).all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "bad name {name:?}: use 1 to 128 letters, digits, '-', '_' or '.' (one path component, not . or ..)"
        ))
    }
}

/// `GET /0/jobs/{id}/inputs`: one input the job file names, and how far
/// its upload is. `input` is its number (its place in the job file's
/// `inputs`, from 1), which its chunks and commit name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InputView {
    pub input: u32,
    pub name: String,
    /// The size it was begun at, once begun.
    pub size: Option<u64>,
    pub complete: bool,
    /// Once complete; lower-case hex.
    pub sha256: Option<String>,
}

/// `GET /0/agent/inputs`: one file the agent places in the job's input
/// directory before its first task: an input its submitter uploaded (at
/// `NAME`), or an output of a dependency with `copy_outputs` (at
/// `DEPENDENCY/PATH`). `input` numbers it for `GET /0/agent/inputs/{n}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentInput {
    pub input: u32,
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// `GET /0/jobs/{id}/outputs`: one complete output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OutputView {
    pub output: OutputNumber,
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Result<OutputRule, String> {
        s.parse()
    }

    #[test]
    fn rules_read_their_prefixes() {
        let r = rule("=report.xml").expect("a rule");
        assert_eq!(
            (r.glob.as_str(), r.required, r.growing, r.exclude),
            ("report.xml", true, false, false)
        );
        let r = rule("%logs/*.log").expect("a rule");
        assert_eq!(
            (r.glob.as_str(), r.required, r.growing),
            ("logs/*.log", false, true)
        );
        let r = rule("=%out/*.bin").expect("a rule");
        assert!(r.required && r.growing);
        let r = rule("!tmp/*").expect("a rule");
        assert!(r.exclude && !r.required);
        let r = rule("target/release/aquifer").expect("a rule");
        assert_eq!((r.required, r.growing, r.exclude), (false, false, false));
    }

    #[test]
    fn rules_that_leave_the_work_directory_are_refused() {
        for bad in [
            "",
            "=",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "!=a",
            "a\nb",
        ] {
            assert!(rule(bad).is_err(), "{bad:?}");
        }
        assert!(rule(&"a".repeat(PATH_BYTES_MAX + 1)).is_err());
        assert!(rule(&"a".repeat(PATH_BYTES_MAX)).is_ok());
        assert!(relative_path("a/b.c/d").is_ok());
        assert!(
            relative_path("..a/b..").is_ok(),
            "dots inside a name are names"
        );
    }
}
