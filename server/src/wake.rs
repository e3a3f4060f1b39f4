//! Waking long-polls: the driver's effects, performed. A well waiting for
//! work of a type wakes on `WakeWells`, and for destruction work on
//! `DestroyResource`; a factory likewise; an agent waiting for its job's
//! end wakes on `NotifyJob`. The registry (checked by loom in
//! `aquifer-longpoll`) guarantees no wake-up is lost between "nothing for
//! me" and "I wait", and bounds how many may wait.

use crate::driver::EffectSink;
use aquifer_core::{Effect, FactoryId, JobId, TargetId, TypeId, WellId};
use aquifer_longpoll::Registry;
use std::sync::Arc;

/// What a long-poll waits on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// Work for wells serving this type.
    Type(TypeId),
    /// Destruction work for this well.
    Well(WellId),
    /// Work for factories of this target.
    Target(TargetId),
    /// Destruction work for this factory.
    Factory(FactoryId),
    /// Something about this job changed.
    Job(JobId),
}

/// The most long-polls that may wait at once; more are told "busy".
pub const WAITERS_MAX: usize = 4096;

/// The effect sink of a running server: wakes long-polls, and hands every
/// effect on to `also` (a test's recorder, say).
pub struct Wakers {
    pub registry: Registry<Key>,
    also: Option<Arc<dyn EffectSink>>,
}

impl Wakers {
    #[must_use]
    pub fn new(also: Option<Arc<dyn EffectSink>>) -> Wakers {
        Wakers {
            registry: Registry::new(WAITERS_MAX),
            also,
        }
    }
}

impl Default for Wakers {
    fn default() -> Self {
        Wakers::new(None)
    }
}

impl EffectSink for Wakers {
    fn perform(&self, effect: &Effect) {
        tracing::debug!(?effect, "effect");
        let key = match effect {
            Effect::WakeWells { rtype } => Key::Type(rtype.clone()),
            Effect::WakeFactories { target } => Key::Target(target.clone()),
            Effect::DestroyResource { well, .. } => Key::Well(*well),
            Effect::DestroyWorker { factory, .. } => Key::Factory(*factory),
            Effect::NotifyJob { job } => Key::Job(*job),
        };
        self.registry.wake(&key);
        if let Some(also) = &self.also {
            also.perform(effect);
        }
    }
}
