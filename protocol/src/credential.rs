//! The keys that every configuration file naming an HTTP service shares:
//! the service's URL, and the bearer token, given in the file (`token`) or
//! in a file of its own (`token_file`), exactly one of the two.
//!
//! The well's and the local factory's files name the aquifer server this
//! way, and the oxide well's `[well]` table names the rack. Each file keeps
//! its own struct (so that `deny_unknown_fields` still catches a typo) and
//! checks and reads these keys here, so all three say the same thing about
//! the same mistake.

use std::path::{Path, PathBuf};

/// A service's URL and where its token is.
#[derive(Clone, Copy, Debug)]
pub struct Credential<'a> {
    /// The key that names the URL in the file (`url`, `host`).
    pub url_key: &'a str,
    pub url: &'a str,
    /// Whose token it is, for messages: "the well's", "the oxide".
    pub whose: &'a str,
    pub token: Option<&'a str>,
    pub token_file: Option<&'a Path>,
}

/// Why a token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the token file is empty")]
    Empty { path: PathBuf },
    #[error("the token is empty")]
    Blank,
}

impl Credential<'_> {
    /// The checks that need no file: an `http://` or `https://` URL, and
    /// exactly one of `token` and `token_file`.
    pub fn check(&self) -> Result<(), String> {
        let Credential { url_key, url, .. } = *self;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "{url_key} {url:?}: use http://host:port or https://host:port"
            ));
        }
        let whose = self.whose;
        match (self.token, self.token_file) {
            (Some(_), Some(_)) => Err(format!(
                "give {whose} token as token or token_file, not both"
            )),
            (None, None) => Err(format!("give {whose} token: set token or token_file")),
            _ => Ok(()),
        }
    }

    /// The token, without surrounding whitespace, from the file or its
    /// own file. An empty token is refused: it would only be refused
    /// later, by the service, with less said about why.
    pub fn token(&self) -> Result<String, TokenError> {
        let token = match (self.token, self.token_file) {
            (Some(t), _) => t.trim().to_string(),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let t = text.trim().to_string();
                if t.is_empty() {
                    return Err(TokenError::Empty {
                        path: path.to_path_buf(),
                    });
                }
                t
            }
            (None, None) => String::new(),
        };
        if token.is_empty() {
            return Err(TokenError::Blank);
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential<'a>(
        url: &'a str,
        token: Option<&'a str>,
        file: Option<&'a Path>,
    ) -> Credential<'a> {
        Credential {
            url_key: "url",
            url,
            whose: "the well's",
            token,
            token_file: file,
        }
    }

    #[test]
    fn the_url_and_exactly_one_token_are_checked() {
        let file = Path::new("t");
        assert!(credential("http://h:1", Some("x"), None).check().is_ok());
        assert!(credential("https://h", None, Some(file)).check().is_ok());
        let url = credential("h:1", Some("x"), None)
            .check()
            .expect_err("no scheme");
        assert!(
            url.contains("url \"h:1\"") && url.contains("http://"),
            "{url}"
        );
        let both = credential("http://h", Some("x"), Some(file)).check();
        assert!(both.expect_err("both").contains("not both"));
        let neither = credential("http://h", None, None).check();
        assert!(neither.expect_err("neither").contains("the well's token"));
    }

    #[test]
    fn tokens_are_trimmed_and_never_empty() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "aq_secret\n").expect("written");
        let from_file = credential("http://h", None, Some(&path)).token();
        assert_eq!(from_file.expect("read"), "aq_secret");
        assert_eq!(
            credential("http://h", Some(" aq_x "), None)
                .token()
                .expect("given"),
            "aq_x"
        );
        std::fs::write(&path, "\n").expect("written");
        let empty = credential("http://h", None, Some(&path)).token();
        assert!(matches!(empty, Err(TokenError::Empty { .. })));
        let blank = credential("http://h", Some("  "), None).token();
        assert!(matches!(blank, Err(TokenError::Blank)));
        let missing = dir.path().join("none");
        let missing = credential("http://h", None, Some(&missing)).token();
        assert!(matches!(missing, Err(TokenError::Read { .. })));
    }
}
