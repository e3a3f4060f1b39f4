//! Every interleaving of a waiter and a waker, explored by loom:
//! `RUSTFLAGS="--cfg loom" cargo test -p aquifer-longpoll --test loom --release`.

#![cfg(loom)]

use aquifer_longpoll::Registry;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

/// The pattern a lease request follows: take a ticket, look for work,
/// and wait only if there was none. Whatever the interleaving with the
/// driver (publish work, then wake), the request either sees the work or
/// is woken: a lost wake-up would leave it waiting forever, which loom
/// reports as a deadlock.
#[test]
fn no_lost_wake_ups() {
    loom::model(|| {
        let registry = Arc::new(Registry::new(2));
        let work = Arc::new(AtomicBool::new(false));
        let driver = {
            let (registry, work) = (registry.clone(), work.clone());
            thread::spawn(move || {
                work.store(true, Ordering::SeqCst);
                registry.wake(&"a");
            })
        };
        let wait = registry.admit(vec!["a"]).expect("room");
        if !work.load(Ordering::SeqCst) {
            loom::future::block_on(wait);
        }
        driver.join().expect("the driver thread ends");
        assert!(work.load(Ordering::SeqCst));
    });
}

/// Two requests race for the last place: exactly one is admitted at a
/// time, and the place comes back when it is done.
#[test]
fn no_over_admission() {
    loom::model(|| {
        let registry = Arc::new(Registry::<&str>::new(1));
        let admitted_at_once = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (registry, at_once) = (registry.clone(), admitted_at_once.clone());
                thread::spawn(move || {
                    if let Ok(wait) = registry.admit(vec!["a"]) {
                        let n = at_once.fetch_add(1, Ordering::SeqCst) + 1;
                        assert_eq!(n, 1, "two requests admitted to one place");
                        at_once.fetch_sub(1, Ordering::SeqCst);
                        drop(wait);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("ends");
        }
        assert_eq!(registry.admitted(), 0);
    });
}

/// Once admitted, a waiter is ended by a wake of its key whenever it
/// comes (before the first poll, or while parked), and a wake of another
/// key on the way does not confuse it.
#[test]
fn an_admitted_waiter_is_woken_by_its_key() {
    loom::model(|| {
        let registry = Arc::new(Registry::new(2));
        let wait = registry.admit(vec!["a"]).expect("room");
        let waker = {
            let registry = registry.clone();
            thread::spawn(move || {
                registry.wake(&"other");
                registry.wake(&"a");
            })
        };
        loom::future::block_on(wait);
        waker.join().expect("ends");
    });
}
