//! The registry: resource types, targets, wells and their pools, factories
//! and their capacity per target. Administrators change it (`admin`); the
//! scheduler reads it.

use crate::ids::{Privilege, TargetId, TypeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The longest name a type or target may have.
pub const NAME_LEN_MAX: usize = 63;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TypeSpec {
    /// The largest group of this type one job may ask for. Every pool
    /// serving the type must hold at least this many, so that any group can
    /// be granted whole by any one well (rule 4).
    pub max_per_job: u16,
    pub privilege: Option<Privilege>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TargetSpec {
    pub privilege: Option<Privilege>,
}

/// The capacity of one well for the types it names. Under the production
/// rules a pool names exactly one type (rule 7).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Pool {
    pub types: BTreeSet<TypeId>,
    pub capacity: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Well {
    pub pools: Vec<Pool>,
}

impl Well {
    /// The pool that serves `rtype`, if this well serves it.
    #[must_use]
    pub fn pool_of(&self, rtype: &TypeId) -> Option<(usize, &Pool)> {
        self.pools
            .iter()
            .enumerate()
            .find(|(_, p)| p.types.contains(rtype))
    }

    #[must_use]
    pub fn serves(&self, rtype: &TypeId) -> bool {
        self.pool_of(rtype).is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Factory {
    /// How many workers this factory may have at once, per target.
    pub capacity: BTreeMap<TargetId, u16>,
}
