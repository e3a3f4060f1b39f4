//! The well protocol (`docs/protocol.md`, "Wells").

use crate::{JobId, LeaseAnswer, LeaseId, LeaseRequest, ResourceId, TypeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /0/well/lease`: free slots per type.
pub type WellLeaseRequest = LeaseRequest<TypeId, ResourceId>;
/// The answer: a grant and the resources to destroy now.
pub type WellLeaseAnswer = LeaseAnswer<Grant, ResourceId>;

/// A lease the server granted: create one thing per resource id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "WellGrant"))]
pub struct Grant {
    pub id: LeaseId,
    pub job: JobId,
    pub rtype: TypeId,
    pub resources: Vec<ResourceId>,
    /// The job's deadline: a hint for token lifetimes.
    pub deadline_ms: u64,
    pub expires_at_ms: u64,
}

/// `POST /0/well/leases/{id}/renew`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Renewed {
    pub expires_at_ms: u64,
}

/// `POST /0/well/resources/{id}/ready`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Ready {
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// `POST /0/well/resources/{id}/failed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Failed {
    pub reason: String,
    pub retryable: bool,
}

/// `POST /0/well/resources/{id}/destroy-failed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DestroyFailed {
    #[serde(default)]
    pub reason: String,
}

/// `GET /0/well/resources`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "WellListing"))]
pub struct Listing {
    pub resources: Vec<Listed>,
}

/// One of the well's resources in the server's books.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "WellListed"))]
pub struct Listed {
    pub id: ResourceId,
    pub job: JobId,
    pub rtype: TypeId,
    pub state: ResourceState,
    pub want: Want,
}

/// A resource's state in the server's books.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ResourceState {
    Creating,
    Ready,
    Releasing,
    Held,
    /// A state this client does not know (a newer server): leave it be.
    #[serde(other)]
    Other,
}

/// What the server wants of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Want {
    Keep,
    /// Destroy it, then confirm.
    Release,
    /// Destruction failed too often: an operator decides; leave it alone.
    Hold,
    #[serde(other)]
    Other,
}

impl From<&aquifer_core::resource::ResourceState> for ResourceState {
    fn from(s: &aquifer_core::resource::ResourceState) -> ResourceState {
        use aquifer_core::resource::ResourceState as Core;
        match s {
            Core::Creating { .. } => ResourceState::Creating,
            Core::Ready => ResourceState::Ready,
            Core::Releasing { .. } => ResourceState::Releasing,
            Core::Held => ResourceState::Held,
        }
    }
}

impl From<aquifer_core::resource::Want> for Want {
    fn from(w: aquifer_core::resource::Want) -> Want {
        use aquifer_core::resource::Want as Core;
        match w {
            Core::Keep => Want::Keep,
            Core::Release => Want::Release,
            Core::Hold => Want::Hold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_and_tolerate_what_is_new() {
        let a: WellLeaseAnswer = serde_json::from_str(
            r#"{"lease": {"id": 7, "job": 3, "rtype": "pg", "resources": [11, 12],
                "deadline_ms": 5, "expires_at_ms": 6, "new_field": 1}, "destroy": [4]}"#,
        )
        .expect("a lease answer");
        assert_eq!(
            a.lease.map(|l| l.resources),
            Some(vec![ResourceId(11), ResourceId(12)])
        );
        assert_eq!(a.destroy, [ResourceId(4)]);
        let l: Listing = serde_json::from_str(
            r#"{"resources": [{"id": 1, "job": 2, "rtype": "pg", "state": "frozen", "want": "hold"}]}"#,
        )
        .expect("a listing");
        assert_eq!(l.resources[0].state, ResourceState::Other);
        assert_eq!(l.resources[0].want, Want::Hold);
    }

    #[test]
    fn a_wait_ends_for_what_the_caller_does_not_know_yet() {
        let named = std::collections::BTreeSet::from([ResourceId(1)]);
        let answer = |destroy: &[u32]| WellLeaseAnswer {
            lease: None,
            destroy: destroy.iter().copied().map(ResourceId).collect(),
        };
        assert!(answer(&[1]).if_news(&named).is_none(), "nothing new");
        assert!(answer(&[1, 2]).if_news(&named).is_some(), "more to destroy");
        assert!(
            answer(&[]).if_news(&named).is_some(),
            "1 was confirmed (maybe before the poll came in): a slot is coming free"
        );
    }

    #[test]
    fn requests_are_read_strictly_and_serialise_as_documented() {
        let r: WellLeaseRequest = serde_json::from_str(
            r#"{"free": {"postgres": 2}, "wait_ms": 20000, "destroying": [4]}"#,
        )
        .expect("the documented request");
        assert_eq!(r.free.get(&TypeId::new("postgres")), Some(&2));
        assert!(serde_json::from_str::<WellLeaseRequest>(r#"{"fre": {}}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Failed {
                reason: "r".into(),
                retryable: true
            })
            .expect("json"),
            r#"{"reason":"r","retryable":true}"#
        );
    }
}
