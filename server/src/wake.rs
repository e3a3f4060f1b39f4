//! Waking long-polls: the driver's effects, performed. A well waiting for
//! work of a type wakes on `WakeWells`, and for destruction work on
//! `DestroyResource`; a factory likewise; an agent waiting for its job's
//! end wakes on `NotifyJob`. The registry (checked by loom in
//! `aquifer-longpoll`) guarantees no wake-up is lost between "nothing for
//! me" and "I wait", and bounds how many may wait.

use crate::auth::Principal;
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

/// Who may hold how many of the waiting places: each principal at most
/// `per_principal_max`, and users together (their watches) at most
/// `users_max`, so that one user's long-polls cannot starve the wells,
/// factories and agents, or every other user.
pub struct Shares {
    books: std::sync::Mutex<ShareBooks>,
    per_principal_max: usize,
    users_max: usize,
}

#[derive(Default)]
struct ShareBooks {
    by_principal: std::collections::BTreeMap<Principal, usize>,
    users: usize,
}

/// Why a place to wait was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoShare {
    /// The caller holds its whole share already.
    Own { max: usize },
    /// Users together hold theirs (the rest is kept for services).
    Users { max: usize },
}

/// A place held; dropping it gives it back.
pub struct Share<'a> {
    shares: &'a Shares,
    principal: Principal,
}

/// Users' watches are counted together; wells, factories and agents
/// are not, and so always find the places kept for them.
fn is_user(principal: Principal) -> bool {
    matches!(principal, Principal::User(_) | Principal::Admin)
}

impl Shares {
    #[must_use]
    pub fn new(per_principal_max: usize, users_max: usize) -> Shares {
        Shares {
            books: std::sync::Mutex::new(ShareBooks::default()),
            per_principal_max,
            users_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ShareBooks> {
        // Every section leaves the books consistent; a panic elsewhere
        // while holding the lock cannot happen in these few lines.
        self.books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a place for `principal`, or says whose share is full.
    pub fn take(&self, principal: Principal) -> Result<Share<'_>, NoShare> {
        let mut books = self.lock();
        let held = books.by_principal.get(&principal).copied().unwrap_or(0);
        if held >= self.per_principal_max {
            return Err(NoShare::Own {
                max: self.per_principal_max,
            });
        }
        if is_user(principal) {
            if books.users >= self.users_max {
                return Err(NoShare::Users {
                    max: self.users_max,
                });
            }
            books.users += 1;
        }
        *books.by_principal.entry(principal).or_insert(0) += 1;
        Ok(Share {
            shares: self,
            principal,
        })
    }

    /// How many places `principal` holds.
    #[must_use]
    pub fn held(&self, principal: Principal) -> usize {
        self.lock()
            .by_principal
            .get(&principal)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut books = self.shares.lock();
        if let Some(n) = books.by_principal.get_mut(&self.principal) {
            *n -= 1;
            if *n == 0 {
                books.by_principal.remove(&self.principal);
            }
        }
        if is_user(self.principal) {
            books.users -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_principal_and_users_together_have_a_share_and_get_it_back() {
        let shares = Shares::new(2, 3);
        let (alice, bob, carol) = (Principal::User(1), Principal::User(2), Principal::User(3));
        let a1 = shares.take(alice).expect("first");
        let a2 = shares.take(alice).expect("second");
        assert_eq!(shares.take(alice).err(), Some(NoShare::Own { max: 2 }));
        let b1 = shares.take(bob).expect("bob's own");
        assert_eq!(shares.take(carol).err(), Some(NoShare::Users { max: 3 }));
        // Services are not counted with users.
        let wells: Vec<_> = (0..2)
            .map(|_| shares.take(Principal::Well(1)).expect("a well"))
            .collect();
        let agent = shares.take(Principal::Worker(9)).expect("an agent");
        assert_eq!(shares.held(Principal::Well(1)), 2);
        drop(a1);
        let c1 = shares.take(carol).expect("a user's place came back");
        assert_eq!(shares.held(alice), 1);
        drop((a2, b1, c1, wells, agent));
        assert_eq!(shares.held(alice) + shares.held(Principal::Well(1)), 0);
        let again: Vec<_> = (0..2)
            .map(|_| shares.take(carol).expect("all back"))
            .collect();
        assert_eq!(again.len(), 2);
    }
}
