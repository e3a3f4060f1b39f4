//! The wake registry behind long-polling lease requests.
//!
//! A well (or factory) asks for work; when there is none, its request
//! waits until something it could use may have appeared (the driver's
//! `WakeWells { rtype }` effect), or until its time is up. Two things must
//! never happen:
//!
//! - a lost wake-up: a wake that lands between "the driver found nothing
//!   for me" and "I start waiting" must still end the wait. Each key has a
//!   generation; a waiter takes a [`Ticket`] (the generations of its keys)
//!   *before* asking the driver, and its wait ends as soon as any of them
//!   has moved on, however early that happened;
//! - over-admission: at most `waiters_max` requests wait at once; the
//!   next is refused at once rather than queued without bound.
//!
//! Only `std` (or, under `cfg(loom)`, loom's models of it) is used, so loom
//! can explore every interleaving of registering, waking and waiting.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[cfg(loom)]
use loom::sync::Mutex;
#[cfg(not(loom))]
use std::sync::Mutex;

/// What was seen of some keys' generations when a waiter began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket<K> {
    seen: Vec<(K, u64)>,
}

struct Inner<K> {
    generations: BTreeMap<K, u64>,
    /// Registered waiters, by slot; `None` is a free slot.
    waiters: Vec<Option<Waiter<K>>>,
    admitted: usize,
}

struct Waiter<K> {
    keys: Vec<K>,
    waker: Option<Waker>,
}

pub struct Registry<K> {
    inner: Mutex<Inner<K>>,
    waiters_max: usize,
}

/// The registry is full: the caller should answer "busy, try later".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full {
    pub waiters_max: usize,
}

impl<K: Ord + Clone> Registry<K> {
    #[must_use]
    pub fn new(waiters_max: usize) -> Registry<K> {
        Registry {
            inner: Mutex::new(Inner {
                generations: BTreeMap::new(),
                waiters: Vec::new(),
                admitted: 0,
            }),
            waiters_max,
        }
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = Inner<K>> + '_ {
        // A poisoned lock means a panic while holding it, which only this
        // module's own short critical sections could cause: carry on with
        // the data, which every section leaves consistent.
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Admits a waiter for `keys` and notes their generations. Take the
    /// ticket *before* looking for work.
    pub fn admit(&self, keys: Vec<K>) -> Result<Wait<'_, K>, Full> {
        let mut inner = self.lock();
        if inner.admitted >= self.waiters_max {
            return Err(Full {
                waiters_max: self.waiters_max,
            });
        }
        inner.admitted += 1;
        let seen = keys
            .iter()
            .map(|k| (k.clone(), inner.generations.get(k).copied().unwrap_or(0)))
            .collect();
        let slot = match inner.waiters.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                inner.waiters.push(None);
                inner.waiters.len() - 1
            }
        };
        inner.waiters[slot] = Some(Waiter { keys, waker: None });
        Ok(Wait {
            registry: self,
            slot,
            ticket: Ticket { seen },
        })
    }

    /// Something for `key` may have appeared: every waiter on it wakes.
    pub fn wake(&self, key: &K) {
        let mut inner = self.lock();
        *inner.generations.entry(key.clone()).or_insert(0) += 1;
        let wakers: Vec<Waker> = inner
            .waiters
            .iter_mut()
            .flatten()
            .filter(|w| w.keys.contains(key))
            .filter_map(|w| w.waker.take())
            .collect();
        drop(inner);
        for w in wakers {
            w.wake();
        }
    }

    /// How many requests wait now.
    #[must_use]
    pub fn admitted(&self) -> usize {
        self.lock().admitted
    }

    fn moved_on(inner: &Inner<K>, ticket: &Ticket<K>) -> bool {
        ticket
            .seen
            .iter()
            .any(|(k, g)| inner.generations.get(k).copied().unwrap_or(0) != *g)
    }
}

/// One admitted waiter. Awaiting it ends when one of its keys is woken
/// (at any time after admission); dropping it frees its place.
pub struct Wait<'a, K: Ord + Clone> {
    registry: &'a Registry<K>,
    slot: usize,
    ticket: Ticket<K>,
}

impl<K: Ord + Clone> Future for Wait<'_, K> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.registry.lock();
        if Registry::moved_on(&inner, &self.ticket) {
            return Poll::Ready(());
        }
        if let Some(Some(w)) = inner.waiters.get_mut(self.slot) {
            w.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<K: Ord + Clone> Drop for Wait<'_, K> {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(slot) = inner.waiters.get_mut(self.slot) {
            *slot = None;
        }
        inner.admitted -= 1;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll(wait: &mut Wait<'_, &'static str>, flag: &Arc<Flag>) -> Poll<()> {
        let waker = Waker::from(flag.clone());
        Pin::new(wait).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_wake_before_the_first_poll_is_not_lost() {
        let r = Registry::new(4);
        let mut wait = r.admit(vec!["a"]).expect("admitted");
        r.wake(&"a");
        let flag = Arc::new(Flag(false.into()));
        assert_eq!(poll(&mut wait, &flag), Poll::Ready(()));
    }

    #[test]
    fn only_the_keys_waited_for_wake_a_waiter() {
        let r = Registry::new(4);
        let mut wait = r.admit(vec!["a", "b"]).expect("admitted");
        let flag = Arc::new(Flag(false.into()));
        assert_eq!(poll(&mut wait, &flag), Poll::Pending);
        r.wake(&"c");
        assert!(!flag.0.load(std::sync::atomic::Ordering::SeqCst));
        r.wake(&"b");
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(poll(&mut wait, &flag), Poll::Ready(()));
    }

    #[test]
    fn admission_is_bounded_and_places_come_back() {
        let r: Registry<&str> = Registry::new(2);
        let a = r.admit(vec!["a"]).expect("first");
        let b = r.admit(vec!["a"]).expect("second");
        assert_eq!(r.admit(vec!["a"]).err(), Some(Full { waiters_max: 2 }));
        drop(a);
        let c = r.admit(vec!["b"]).expect("a place came back");
        assert_eq!(r.admitted(), 2);
        drop((b, c));
        assert_eq!(r.admitted(), 0);
    }
}
