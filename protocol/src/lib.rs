//! aquifer's wire, defined once: every request and answer of the well,
//! factory, agent, `bmat`, user and admin APIs (`docs/protocol.md`,
//! `docs/api.md`), the ids they carry, the error shape, the paths, and
//! (feature `client`, on by default) the one HTTP client with its one retry
//! table and one capped back-off.
//!
//! The server answers with these types and every client reads them, so the
//! two ends cannot drift apart. Ids are the core's newtypes, which cross
//! the wire as plain numbers (and type and target names as plain strings).
//! Answers that may grow tolerate what an older client does not know: an
//! unknown state reads as `Other`, an unknown field is ignored. Requests
//! are read strictly by the server (`deny_unknown_fields`), so a typo is a
//! 400, not a silently dropped field.

pub mod admin;
pub mod agent;
pub mod backoff;
pub mod book;
pub mod credential;
pub mod error;
pub mod factory;
pub mod jobs;
pub mod outputs;
pub mod path;
pub mod story;
pub mod token;
pub mod user;
pub mod well;

#[cfg(feature = "client")]
pub mod client;

pub use aquifer_core::{
    FactoryId, JobId, LeaseId, Privilege, ResourceId, TargetId, TypeId, WellId, WorkerId,
};
pub use backoff::Backoff;
pub use credential::{Credential, TokenError};
pub use error::ErrorBody;

#[cfg(feature = "client")]
pub use client::files::Outgoing;
#[cfg(feature = "client")]
pub use client::{CallError, Client, Kind, Method};

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// An empty object (`{}`): the answer of calls that only confirm, and the
/// body of calls that carry nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Empty {}

/// A lease request, the same shape for wells (keyed by type, destroying
/// resources) and factories (keyed by target, destroying workers): the free
/// slots, how long to wait, and what the caller destroys already.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[serde(bound(
    serialize = "K: Serialize + Ord, D: Serialize + Ord",
    deserialize = "K: Deserialize<'de> + Ord, D: Deserialize<'de> + Ord"
))]
pub struct LeaseRequest<K, D> {
    #[serde(default)]
    pub free: BTreeMap<K, u16>,
    #[serde(default)]
    pub wait_ms: u64,
    /// Resources or workers the caller is destroying already: listed again
    /// in `destroy`, but not news that ends the wait.
    #[serde(default)]
    pub destroying: BTreeSet<D>,
}

impl<K: Ord + Clone, D: Ord> LeaseRequest<K, D> {
    /// The free slots worth asking for (those above zero).
    #[must_use]
    pub fn asking(&self) -> BTreeMap<K, u16> {
        (self.free.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }
}

/// A lease answer: a grant, if any, and what the caller must destroy now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LeaseAnswer<G, D> {
    pub lease: Option<G>,
    #[serde(default = "Vec::<D>::new")]
    pub destroy: Vec<D>,
}

impl<G, D> Default for LeaseAnswer<G, D> {
    fn default() -> Self {
        LeaseAnswer {
            lease: None,
            destroy: Vec::new(),
        }
    }
}

impl<G, D: Ord> LeaseAnswer<G, D> {
    /// The answer, if it tells the caller anything it did not know: a
    /// grant; something to destroy that it is not destroying already; or
    /// that something it says it is destroying is no longer to be
    /// destroyed (its destruction was confirmed, perhaps before this
    /// request arrived, or it is held). A confirmed destruction means a
    /// slot is coming free at the caller, which must ask again with it, or
    /// a group that needs that slot waits out the whole poll. (So callers
    /// name only what the server asked them to destroy, never their
    /// orphans, which the server does not list.)
    #[must_use]
    pub fn if_news(self, destroying: &BTreeSet<D>) -> Option<Self> {
        let news = self.lease.is_some()
            || self.destroy.iter().any(|d| !destroying.contains(d))
            || destroying.iter().any(|d| !self.destroy.contains(d));
        news.then_some(self)
    }
}

/// The longest a long-poll waits, in milliseconds.
pub const WAIT_MS_MAX: u64 = 60_000;
