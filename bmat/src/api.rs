//! bmat's side of the job API (`GET /0/job/resources[/NAME]`), with the
//! job token from the environment, and its failures in words a script's
//! author can act on.

use std::time::Duration;

/// Why bmat could not answer.
#[derive(Debug)]
pub enum Failure {
    /// Used wrongly: outside a job, or with bad arguments.
    Usage(String),
    /// The question has no answer (no such resource or key, the job has
    /// ended), or the server could not be asked.
    Lookup(String),
}

impl Failure {
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Lookup(_) => 1,
            Failure::Usage(_) => 2,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Lookup(m) => f.write_str(m),
        }
    }
}

pub struct JobApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl JobApi {
    /// The server and job token the agent gave this job.
    pub fn from_env() -> Result<JobApi, Failure> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(base), Some(token)) = (var("AQUIFER_URL"), var("AQUIFER_JOB_TOKEN")) else {
            return Err(Failure::Usage(
                "AQUIFER_URL and AQUIFER_JOB_TOKEN are not set: bmat works only inside an aquifer job"
                    .into(),
            ));
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Failure::Lookup(format!("cannot make an HTTP client: {e}")))?;
        Ok(JobApi {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub async fn resources(&self) -> Result<serde_json::Value, Failure> {
        self.get("/0/job/resources").await
    }

    pub async fn resource(&self, name: &str) -> Result<serde_json::Value, Failure> {
        self.get(&format!("/0/job/resources/{}", encode(name)))
            .await
    }

    async fn get(&self, path: &str) -> Result<serde_json::Value, Failure> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| {
                Failure::Lookup(format!("cannot reach the server at {}: {e}", self.base))
            })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Lookup(format!("reading the server's answer: {e}")))?;
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = body["message"].as_str().unwrap_or("").to_string();
        Err(Failure::Lookup(match status {
            401 => "the server refused the job token: the job has ended".to_string(),
            404 if !message.is_empty() => message,
            _ => format!(
                "the server answered {status}{}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ),
        }))
    }
}

/// Percent-encodes a path segment: names may hold `/` (`db/0`).
#[must_use]
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_segment() {
        assert_eq!(encode("db/0"), "db%2F0");
        assert_eq!(encode("plain-name_1.x~"), "plain-name_1.x~");
        assert_eq!(encode("a b%"), "a%20b%25");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn usage_and_lookup_failures_exit_differently() {
        assert_eq!(Failure::Usage("u".into()).exit_code(), 2);
        assert_eq!(Failure::Lookup("l".into()).exit_code(), 1);
    }
}
