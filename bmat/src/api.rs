//! bmat's side of the job API: the one client, with the job token from the
//! environment, retrying through a server restart, and its failures in
//! words a script's author can act on.

use aquifer_protocol::{CallError, Client};
use std::time::Duration;

/// How long bmat keeps trying a server that does not answer (a restart, a
/// busy database) before it fails the script's call, unless the job sets
/// `AQUIFER_BMAT_PATIENCE_MS` (a script that would rather fail fast).
pub const PATIENCE: Duration = Duration::from_secs(120);

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

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        Failure::Lookup(match &e {
            CallError::Refused { status: 401, .. } => {
                "the server refused the job token: the job has ended".to_string()
            }
            CallError::Refused {
                status: 404,
                message,
                ..
            } => message.clone(),
            _ => e.to_string(),
        })
    }
}

/// The server and job token the agent gave this job.
pub fn from_env() -> Result<Client, Failure> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(base), Some(token)) = (var("AQUIFER_URL"), var("AQUIFER_JOB_TOKEN")) else {
        return Err(Failure::Usage(
            "AQUIFER_URL and AQUIFER_JOB_TOKEN are not set: bmat works only inside an aquifer job"
                .into(),
        ));
    };
    let patience = match var("AQUIFER_BMAT_PATIENCE_MS") {
        None => PATIENCE,
        Some(ms) => ms.parse().map(Duration::from_millis).map_err(|_| {
            Failure::Usage(format!(
                "AQUIFER_BMAT_PATIENCE_MS is {ms:?}; give a number of milliseconds"
            ))
        })?,
    };
    Ok(Client::new(&base, Some(token))
        .map_err(Failure::from)?
        .with_patience(Some(patience)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_lookup_failures_exit_differently() {
        assert_eq!(Failure::Usage("u".into()).exit_code(), 2);
        assert_eq!(Failure::Lookup("l".into()).exit_code(), 1);
    }

    #[test]
    fn a_refused_token_means_the_job_has_ended() {
        let f = Failure::from(CallError::Refused {
            status: 401,
            code: "unauthorized".into(),
            message: "no".into(),
        });
        assert_eq!(
            f.to_string(),
            "the server refused the job token: the job has ended"
        );
    }
}
