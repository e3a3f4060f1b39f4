//! The job's outputs: when its tasks end, the files of the work directory
//! that its rules match are sent to the server, each in chunks, resumed
//! where the server's answer says, and committed with its size and
//! SHA-256 (`docs/outputs.md`). Only then is the job reported finished.

use aquifer_protocol::outputs::{OutputRule, Sending};
use aquifer_protocol::{Client, Outgoing};
use std::path::{Path, PathBuf};

/// Entries of the work directory looked at, at most: a runaway directory
/// tree fails the job instead of the agent.
const WALK_MAX: usize = 200_000;

/// A file to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Relative to the work directory, with `/`.
    pub path: String,
    /// Where its bytes are read (a symlink's target inside the work
    /// directory).
    pub file: PathBuf,
    /// It may change size while it is sent.
    pub growing: bool,
}

/// The files of `work` that `rules` keep, in path order; or why the job
/// fails: a rule is bad, a `=` rule matched nothing, a match is a symlink
/// that leaves the work directory.
pub fn matching(work: &Path, rules: &[String]) -> Result<Vec<Found>, String> {
    matching_within(work, rules, WALK_MAX)
}

/// `matching`, looking at no more than `walk_max` entries.
fn matching_within(work: &Path, rules: &[String], walk_max: usize) -> Result<Vec<Found>, String> {
    let rules: Vec<OutputRule> = (rules.iter())
        .map(|r| r.parse())
        .collect::<Result<_, _>>()?;
    let patterns: Vec<glob::Pattern> = (rules.iter())
        .map(|r| glob::Pattern::new(&r.glob).map_err(|e| format!("output rule {:?}: {e}", r.glob)))
        .collect::<Result<_, _>>()?;
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let root = work
        .canonicalize()
        .map_err(|e| format!("the work directory {}: {e}", work.display()))?;
    // Only where a rule could match is looked at: a literal path is
    // checked alone, a glob from its literal directory down, no deeper
    // than its components reach unless it has `**`. A large directory no
    // rule names (node_modules, target/debug) is never read.
    let mut files = std::collections::BTreeSet::new();
    let mut seen = 0;
    for r in rules.iter().filter(|r| !r.exclude) {
        let parts: Vec<&str> = r.glob.split('/').collect();
        match parts.iter().position(|p| p.contains(['*', '?', '['])) {
            None => {
                if let Ok(meta) = std::fs::symlink_metadata(root.join(&r.glob))
                    && (meta.is_file() || meta.is_symlink())
                {
                    files.insert((r.glob.clone(), meta.is_symlink()));
                }
            }
            Some(first) => {
                let prefix = parts[..first].join("/");
                let depth = (!parts[first..].contains(&"**")).then_some(parts.len() - first);
                let dir = root.join(&prefix);
                // A directory reached through a symlink out of the work
                // directory is not walked.
                let inside = dir.canonicalize().is_ok_and(|d| d.starts_with(&root));
                if inside && dir.is_dir() {
                    let mut found = Vec::new();
                    let walker = Walker {
                        depth,
                        max: walk_max,
                    };
                    walker.walk(&dir, &prefix, 1, &mut found, &mut seen)?;
                    files.extend(found);
                }
            }
        }
    }
    let mut used = vec![false; rules.len()];
    let mut found = Vec::new();
    for (path, is_link) in files {
        let hits: Vec<usize> = (0..rules.len())
            .filter(|&i| patterns[i].matches_with(&path, options))
            .collect();
        if hits.iter().any(|&i| rules[i].exclude) {
            continue;
        }
        if hits.is_empty() {
            continue;
        }
        for &i in &hits {
            used[i] = true;
        }
        // Whatever it is, its bytes must be a file inside the work
        // directory: not a symlink out, nor a file under a symlinked
        // directory that leads out.
        let file = (root.join(&path).canonicalize())
            .map_err(|e| format!("output {path} leads nowhere: {e}"))?;
        if !file.starts_with(&root) || !file.is_file() {
            return Err(if is_link {
                format!("output {path} is a symlink that leaves the work directory")
            } else {
                format!("output {path} is reached through a symlink that leaves the work directory")
            });
        }
        let growing = hits.iter().any(|&i| rules[i].growing);
        found.push(Found {
            path,
            file,
            growing,
        });
    }
    if let Some(i) = (0..rules.len()).find(|&i| rules[i].required && !used[i]) {
        return Err(format!(
            "the required output {:?} matched no file",
            rules[i].glob
        ));
    }
    Ok(found)
}

/// How far a walk goes: `depth` levels of entries (none: all), and at
/// most `max` entries in all the walks of one job.
struct Walker {
    depth: Option<usize>,
    max: usize,
}

impl Walker {
    /// Every regular file and symlink under `dir` (`rel` its path from the
    /// work directory), not following symlinked directories; `level` is
    /// the depth of `dir`'s entries.
    fn walk(
        &self,
        dir: &Path,
        rel: &str,
        level: usize,
        out: &mut Vec<(String, bool)>,
        seen: &mut usize,
    ) -> Result<(), String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            *seen += 1;
            if *seen > self.max {
                return Err(format!(
                    "the output rules look through more than {} entries of the work directory",
                    self.max
                ));
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().map_err(|e| format!("{path}: {e}"))?;
            if kind.is_dir() {
                if self.depth.is_none_or(|d| level < d) {
                    self.walk(&entry.path(), &path, level + 1, out, seen)?;
                }
            } else if kind.is_file() || kind.is_symlink() {
                out.push((path, kind.is_symlink()));
            }
        }
        Ok(())
    }
}

/// Sends every file found; the first failure, in words.
pub async fn send_all(api: &Client, found: &[Found]) -> Result<(), String> {
    for f in found {
        let out = Outgoing {
            name: &f.path,
            file: &f.file,
            growing: f.growing,
        };
        api.send_file(Sending::Output, out).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a dir");
        for f in files {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
            std::fs::write(&path, f.as_bytes()).expect("a file");
        }
        dir
    }

    fn paths(found: &[Found]) -> Vec<&str> {
        found.iter().map(|f| f.path.as_str()).collect()
    }

    fn rules(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn rules_pick_files_exclusions_win_and_globs_stay_in_their_directory() {
        let dir = tree(&[
            "report.xml",
            "logs/a.log",
            "logs/b.log",
            "logs/deep/c.log",
            "tmp/x.log",
            "target/release/aquifer",
        ]);
        let found = matching(
            dir.path(),
            &rules(&[
                "=report.xml",
                "%logs/*.log",
                "*/*.log",
                "!tmp/*",
                "target/release/aquifer",
            ]),
        )
        .expect("found");
        assert_eq!(
            paths(&found),
            [
                "logs/a.log",
                "logs/b.log",
                "report.xml",
                "target/release/aquifer"
            ]
        );
        assert!(found[0].growing && !found[2].growing);
        let all = matching(dir.path(), &rules(&["**/*.log"])).expect("found");
        assert_eq!(
            paths(&all),
            ["logs/a.log", "logs/b.log", "logs/deep/c.log", "tmp/x.log"]
        );
    }

    #[test]
    fn a_required_rule_that_matches_nothing_fails_the_job() {
        let dir = tree(&["a.txt"]);
        let e = matching(dir.path(), &rules(&["a.txt", "=report.xml"])).expect_err("missing");
        assert_eq!(e, "the required output \"report.xml\" matched no file");
        // Matched only by what is excluded is not matched.
        let e = matching(dir.path(), &rules(&["=a.txt", "!a.txt"])).expect_err("excluded");
        assert!(e.contains("a.txt"), "{e}");
        assert!(matching(dir.path(), &rules(&["../a.txt"])).is_err());
    }

    #[test]
    fn only_where_a_rule_could_match_is_looked_at() {
        let mut files: Vec<String> = (0..20)
            .map(|i| format!("node_modules/m{i}/index.js"))
            .collect();
        files.extend([
            "report.xml".into(),
            "out/a.bin".into(),
            "out/deep/b.bin".into(),
        ]);
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        let dir = tree(&refs);
        // Five entries may be looked at: the literal file and `out/`'s
        // first level are enough; node_modules is never read.
        let found = matching_within(dir.path(), &rules(&["=report.xml", "out/*"]), 5)
            .expect("found within the bound");
        assert_eq!(paths(&found), ["out/a.bin", "report.xml"]);
        let deep = matching_within(dir.path(), &rules(&["out/**/*.bin"]), 5).expect("found");
        assert_eq!(paths(&deep), ["out/a.bin", "out/deep/b.bin"]);
        let e = matching_within(dir.path(), &rules(&["**/*.js"]), 5).expect_err("too many");
        assert_eq!(
            e,
            "the output rules look through more than 5 entries of the work directory"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_directory_that_leaves_the_work_directory_is_not_followed() {
        let outside = tree(&["secret"]);
        let dir = tree(&["real.txt"]);
        std::os::unix::fs::symlink(outside.path(), dir.path().join("target")).expect("a link");
        // A glob does not walk it; a literal path through it is refused.
        let found = matching(dir.path(), &rules(&["target/*"])).expect("nothing");
        assert!(found.is_empty(), "{found:?}");
        let e = matching(dir.path(), &rules(&["target/secret"])).expect_err("outside");
        assert_eq!(
            e,
            "output target/secret is reached through a symlink that leaves the work directory"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_that_leaves_the_work_directory_fails_the_job() {
        let outside = tree(&["secret"]);
        let dir = tree(&["real.txt"]);
        std::os::unix::fs::symlink(dir.path().join("real.txt"), dir.path().join("inside"))
            .expect("a link");
        let found = matching(dir.path(), &rules(&["inside"])).expect("a link inside");
        assert_eq!(
            found[0].file,
            dir.path().canonicalize().expect("real").join("real.txt")
        );
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("out"))
            .expect("a link");
        let e = matching(dir.path(), &rules(&["*"])).expect_err("outside");
        assert_eq!(e, "output out is a symlink that leaves the work directory");
    }
}
