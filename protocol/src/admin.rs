//! The admin API (`docs/api.md`, "Admins"): resource types and targets,
//! users with their privileges and tokens, wells and factories, the lease
//! hold and held resources.

use crate::user::{PrincipalKind, UserId};
use crate::well::ResourceState;
use crate::{FactoryId, JobId, Privilege, ResourceId, TargetId, TypeId, WellId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `POST /0/admin/types`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewType {
    pub name: TypeId,
    /// The largest group of this type one job may ask for.
    pub max_per_job: u16,
    /// What a user must hold to ask for the type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privilege: Option<Privilege>,
}

/// `POST /0/admin/targets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    pub name: TargetId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privilege: Option<Privilege>,
}

/// The answer to a definition (`201`): the name defined, a `TypeId` or a
/// `TargetId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Created<N> {
    pub name: N,
}

/// `GET /0/admin/types`: one of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TypeView {
    pub name: TypeId,
    pub max_per_job: u16,
    pub privilege: Option<Privilege>,
}

/// `GET /0/admin/targets`: one of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TargetView {
    pub name: TargetId,
    pub privilege: Option<Privilege>,
}

/// `POST /0/admin/users`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub privileges: BTreeSet<Privilege>,
}

/// The answer to `POST /0/admin/users` (`201`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewUserToken {
    pub id: UserId,
    pub name: String,
    /// Shown this once; only its hash is kept.
    pub token: String,
}

/// `GET /0/admin/users`: one of the list; and the answer to a change of
/// privileges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserView {
    pub id: UserId,
    pub name: String,
    pub privileges: BTreeSet<Privilege>,
}

/// `POST /0/admin/users/{id}/privileges`. Jobs already submitted keep
/// running: a privilege is checked at submission.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PrivilegeChange {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub grant: BTreeSet<Privilege>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub revoke: BTreeSet<Privilege>,
}

/// The answer to `POST /0/admin/{users,wells,factories}/{id}/tokens`
/// (`201`): a new token beside the old ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IssuedToken {
    /// `user`, `well` or `factory`.
    pub kind: PrincipalKind,
    /// The id among its kind.
    pub id: u64,
    /// Shown this once; only its hash is kept.
    pub token: String,
}

/// The answer to `DELETE /0/admin/users/{id}/tokens`: how many stopped
/// working.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Revoked {
    pub revoked: u64,
}

/// `POST /0/admin/wells`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWell {
    pub name: String,
    /// Capacity per resource type: one pool each. A pool must hold the
    /// type's `max_per_job`.
    pub pools: BTreeMap<TypeId, u16>,
}

/// `POST /0/admin/factories`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewFactory {
    pub name: String,
    /// Capacity per target.
    pub targets: BTreeMap<TargetId, u16>,
}

/// The answer to a registration (`201`); `I` is `WellId` or `FactoryId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Registered<I> {
    pub id: I,
    pub name: String,
    /// The service's token, shown this once.
    pub token: String,
}

/// A pool's or a target's capacity and its room by the books; on the wire
/// the pair `[capacity, free]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(from = "(u16, u16)", into = "(u16, u16)")]
pub struct Slots {
    pub capacity: u16,
    pub free: u16,
}

impl From<(u16, u16)> for Slots {
    fn from((capacity, free): (u16, u16)) -> Slots {
        Slots { capacity, free }
    }
}

impl From<Slots> for (u16, u16) {
    fn from(s: Slots) -> (u16, u16) {
        (s.capacity, s.free)
    }
}

/// `GET /0/admin/wells`: one of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WellView {
    pub id: WellId,
    pub name: String,
    pub pools: BTreeMap<TypeId, Slots>,
    /// When it last called the server (ms since the epoch), if it has
    /// since the server started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact_ms: Option<u64>,
}

/// `GET /0/admin/factories`: one of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FactoryView {
    pub id: FactoryId,
    pub name: String,
    pub targets: BTreeMap<TargetId, Slots>,
    /// When it last called the server (ms since the epoch), if it has
    /// since the server started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact_ms: Option<u64>,
}

/// `POST /0/admin/hold`: hold (or lift the hold on) every new lease,
/// server-wide. Running jobs go on, waiting ones wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Hold {
    pub held: bool,
}

/// The answer to `POST /0/admin/hold`: whether new leases are held now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HoldState {
    pub held: bool,
}

/// `GET /0/admin/resources`: one of the list. `held` ones need an
/// operator: their well could not destroy them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ResourceView {
    pub id: ResourceId,
    pub job: JobId,
    pub rtype: TypeId,
    pub well: WellId,
    pub state: ResourceState,
    /// Why its well could not destroy it, the last time it tried: what an
    /// operator needs beside a held resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to `POST /0/admin/resources/{id}/release`: the held
/// resource goes back to its well for destruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Released {
    pub resource: ResourceId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn json_of(v: &impl Serialize) -> Value {
        serde_json::to_value(v).expect("serialises")
    }

    #[test]
    fn requests_are_read_strictly_and_leave_out_what_they_do_not_set() {
        let t: NewType = serde_json::from_value(json!({"name": "pg", "max_per_job": 2}))
            .expect("the documented request");
        assert_eq!(t.privilege, None);
        assert_eq!(json_of(&t), json!({"name": "pg", "max_per_job": 2}));
        let change = PrivilegeChange {
            grant: BTreeSet::from([Privilege::new("lab")]),
            ..PrivilegeChange::default()
        };
        assert_eq!(json_of(&change), json!({"grant": ["lab"]}));
        for bad in [json!({"add": ["x"]}), json!({"grant": "x"})] {
            assert!(serde_json::from_value::<PrivilegeChange>(bad).is_err());
        }
        assert!(serde_json::from_value::<Hold>(json!({"held": "yes"})).is_err());
        assert!(serde_json::from_value::<Hold>(json!({"held": true, "why": 1})).is_err());
        let w = json!({"name": "w", "pools": {"pg": 1}, "colour": "red"});
        assert!(serde_json::from_value::<NewWell>(w).is_err());
        let f: NewFactory =
            serde_json::from_value(json!({"name": "f", "targets": {"t": 4}})).expect("a factory");
        assert_eq!(f.targets.get(&TargetId::new("t")), Some(&4));
    }

    #[test]
    fn answers_read_as_the_server_writes_them_and_tolerate_new_fields() {
        let wells: Vec<WellView> = serde_json::from_value(json!([
            {"id": 1, "name": "pg-east", "pools": {"pg": [2, 1]}, "region": "east"}
        ]))
        .expect("a list of wells");
        let pg = wells[0].pools.get(&TypeId::new("pg")).copied();
        let slots = Slots {
            capacity: 2,
            free: 1,
        };
        assert_eq!(pg, Some(slots));
        assert_eq!(json_of(&wells[0].pools), json!({"pg": [2, 1]}));
        let r: Vec<ResourceView> = serde_json::from_value(json!([
            {"id": 11, "job": 4, "rtype": "pg", "well": 1, "state": "melting"}
        ]))
        .expect("resources");
        assert_eq!(r[0].state, ResourceState::Other);
        let made: Registered<FactoryId> =
            serde_json::from_value(json!({"id": 2, "name": "f", "token": "aq_x", "since": 1}))
                .expect("a registration");
        assert_eq!(made.id, FactoryId(2));
        let issued: IssuedToken =
            serde_json::from_value(json!({"kind": "well", "id": 1, "token": "aq_y"}))
                .expect("a token");
        assert_eq!(issued.kind, PrincipalKind::Well);
        let defined = Created {
            name: TypeId::new("pg"),
        };
        assert_eq!(json_of(&defined), json!({"name": "pg"}));
        assert_eq!(json_of(&HoldState { held: true }), json!({"held": true}));
        let released = Released {
            resource: ResourceId(6),
        };
        assert_eq!(json_of(&released), json!({"resource": 6}));
        assert_eq!(json_of(&Revoked { revoked: 2 }), json!({"revoked": 2}));
    }
}
