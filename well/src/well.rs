//! The trait a well author implements, and the values that cross it.
//!
//! The runner calls these methods; it does the leasing, renewing, reporting
//! and reconciling, so an implementation only makes, unmakes and lists
//! things. Every method may run concurrently with the others, for different
//! resources.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

/// What the server asked for: one thing, tagged with `resource`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// The id to tag the thing with, so that `list_owned` can name it later.
    pub resource: u32,
    pub rtype: String,
    pub job: u32,
    /// The job's deadline (ms since the Unix epoch): a hint for token
    /// lifetimes and `VALID UNTIL`.
    pub deadline_ms: u64,
}

/// A thing made: what the job may read about it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Created {
    /// Visible to the job's owner.
    pub metadata: BTreeMap<String, String>,
    /// Visible only to the job while it runs.
    pub secrets: BTreeMap<String, String>,
}

// Secrets must never reach a log line, so Debug names their keys only.
impl fmt::Debug for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Created")
            .field("metadata", &self.metadata)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a thing could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct CreateError {
    pub reason: String,
    /// Whether the job may ask again (a quota, a flaky API) or should fail
    /// (the request can never be met).
    pub retryable: bool,
}

impl CreateError {
    pub fn retryable(reason: impl Into<String>) -> CreateError {
        CreateError {
            reason: reason.into(),
            retryable: true,
        }
    }

    pub fn fatal(reason: impl Into<String>) -> CreateError {
        CreateError {
            reason: reason.into(),
            retryable: false,
        }
    }
}

/// A thing that exists and that this well made, with the resource id it was
/// tagged with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owned {
    pub resource: u32,
    pub rtype: String,
}

/// A well: something that makes and unmakes resources of one or more types.
///
/// Implementations write `async fn` for each method; the futures must be
/// `Send` because the runner runs them on tokio tasks.
pub trait Well: Send + Sync + 'static {
    /// Makes one thing for `req`, tagged with `req.resource`. The runner may
    /// give up on it (a timeout, a shutdown) by dropping the future, and
    /// then destroys whatever may have been made.
    fn create(
        &self,
        req: &CreateRequest,
    ) -> impl Future<Output = Result<Created, CreateError>> + Send;

    /// Unmakes the thing tagged with `resource`. Idempotent: a thing that
    /// does not exist counts as destroyed.
    fn destroy(
        &self,
        resource: u32,
        rtype: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Everything this well made that still exists, however long ago and
    /// by whichever run of the process.
    fn list_owned(&self) -> impl Future<Output = Result<Vec<Owned>, String>> + Send;
}
