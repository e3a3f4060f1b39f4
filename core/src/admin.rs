//! An administrator's inputs: define types and targets, register wells
//! and factories, hold new leases, release a held resource.

use crate::config::PoolSharing;
use crate::event::Event;
use crate::ids::{FactoryId, ResourceId, TargetId, TypeId, WellId};
use crate::registry::{NAME_LEN_MAX, Pool, TargetSpec, TypeSpec};
use crate::rejection::Rejection;
use crate::resource::ResourceState;
use crate::tx::{Tx, in_books};
use std::collections::{BTreeMap, BTreeSet};

/// Names of types and targets: short, lower case, digits, `-`, `.` and `_`,
/// starting with a letter. They appear in URLs, logs and environment
/// variable names.
pub(crate) fn check_name(name: &str) -> Result<(), Rejection> {
    let ok = !name.is_empty()
        && name.len() <= NAME_LEN_MAX
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Rejection::BadName {
            name: name.to_string(),
        })
    }
}

pub(crate) fn handle_define_type(
    tx: &mut Tx,
    rtype: TypeId,
    spec: TypeSpec,
) -> Result<(), Rejection> {
    check_name(rtype.as_str())?;
    if tx.state.types.contains_key(&rtype) {
        return Err(Rejection::AlreadyExists {
            what: format!("resource type {rtype}"),
        });
    }
    if spec.max_per_job == 0 {
        return Err(Rejection::BadCount {
            rtype,
            count: 0,
            max: spec.max_per_job,
        });
    }
    tx.emit(Event::TypeDefined { rtype, spec });
    Ok(())
}

pub(crate) fn handle_define_target(
    tx: &mut Tx,
    target: TargetId,
    spec: TargetSpec,
) -> Result<(), Rejection> {
    check_name(target.as_str())?;
    if tx.state.targets.contains_key(&target) {
        return Err(Rejection::AlreadyExists {
            what: format!("target {target}"),
        });
    }
    tx.emit(Event::TargetDefined { target, spec });
    Ok(())
}

pub(crate) fn handle_register_well(
    tx: &mut Tx,
    well: WellId,
    pools: Vec<Pool>,
) -> Result<(), Rejection> {
    if tx.state.wells.contains_key(&well) {
        return Err(Rejection::AlreadyExists {
            what: well.to_string(),
        });
    }
    if pools.is_empty() {
        return Err(Rejection::BadPool {
            reason: "a well needs at least one pool".into(),
        });
    }
    let mut seen = BTreeSet::new();
    for pool in &pools {
        if pool.types.is_empty() {
            return Err(Rejection::BadPool {
                reason: "a pool must serve at least one resource type".into(),
            });
        }
        if pool.types.len() > 1 && tx.state.rules.pools == PoolSharing::PerType {
            return Err(Rejection::BadPool {
                reason: "a pool belongs to exactly one resource type; give each type its own pool"
                    .into(),
            });
        }
        for rtype in &pool.types {
            let spec = tx
                .state
                .types
                .get(rtype)
                .ok_or_else(|| Rejection::UnknownType {
                    rtype: rtype.clone(),
                })?;
            if pool.capacity < spec.max_per_job {
                return Err(Rejection::BadPool {
                    reason: format!(
                        "the pool for {rtype} holds {} but a job may ask for {} at once",
                        pool.capacity, spec.max_per_job
                    ),
                });
            }
            if !seen.insert(rtype.clone()) {
                return Err(Rejection::BadPool {
                    reason: format!("{rtype} is served by two pools of one well"),
                });
            }
        }
    }
    tx.emit(Event::WellRegistered { well, pools });
    Ok(())
}

pub(crate) fn handle_register_factory(
    tx: &mut Tx,
    factory: FactoryId,
    capacity: BTreeMap<TargetId, u16>,
) -> Result<(), Rejection> {
    if tx.state.factories.contains_key(&factory) {
        return Err(Rejection::AlreadyExists {
            what: factory.to_string(),
        });
    }
    if capacity.is_empty() || capacity.values().any(|&c| c == 0) {
        return Err(Rejection::BadPool {
            reason: "a factory needs a capacity of at least 1 for each target it serves".into(),
        });
    }
    if let Some(target) = capacity.keys().find(|t| !tx.state.targets.contains_key(*t)) {
        return Err(Rejection::UnknownTarget {
            target: target.clone(),
        });
    }
    tx.emit(Event::FactoryRegistered { factory, capacity });
    Ok(())
}

/// Stops (or resumes) the granting of new leases to wells and factories.
/// Saying what is already so decides nothing.
pub(crate) fn handle_hold_leases(tx: &mut Tx, held: bool) {
    if tx.state.lease_hold != held {
        tx.emit(Event::LeasesHeld { held });
    }
}

/// An operator has dealt with a held resource: its well tries again.
pub(crate) fn handle_release_held(tx: &mut Tx, resource: ResourceId) -> Result<(), Rejection> {
    let r = in_books(tx, resource)?;
    if r.state != ResourceState::Held {
        return Err(Rejection::WrongState {
            what: format!("resource {resource}"),
            state: r.state.name(),
            wanted: "held",
        });
    }
    tx.emit(Event::HeldReleased { resource });
    Ok(())
}
