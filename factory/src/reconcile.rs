//! The runner's book of workers and the reconciliation plan: given what the
//! factory finds it owns and what the server lists, what to do about each
//! worker. Pure, so every case is a unit test; the runner performs the
//! actions.
//!
//! Workers with an operation in flight (being created, reported, destroyed)
//! are left alone: the operation's own result decides their next step.

use crate::sdk::Lease;
use crate::sdk::{AgentState, Owned};
use aquifer_protocol::factory::{Listed, Want, WorkerState as ListedState};
use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Being made, reported created and started.
    Creating,
    /// Its agent runs.
    Running,
    /// Its agent has stopped; the server decides what follows (it asks
    /// for destruction once the job has ended or the loss is recorded).
    Stopped,
    /// Being reported lost.
    Reporting,
    /// Being destroyed.
    Destroying,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unknown for an orphan the server never listed.
    pub target: Option<String>,
    pub phase: Phase,
    /// Destructions that failed in a row, and when to try again.
    pub destroy_failures: u32,
    pub retry_at: Option<Instant>,
}

impl Entry {
    #[must_use]
    pub fn new(target: Option<String>, phase: Phase) -> Entry {
        Entry {
            target,
            phase,
            destroy_failures: 0,
            retry_at: None,
        }
    }

    /// Whether an operation on the worker is in flight.
    #[must_use]
    pub fn busy(&self) -> bool {
        matches!(
            self.phase,
            Phase::Creating | Phase::Reporting | Phase::Destroying
        )
    }

    /// Whether a destruction may start now.
    #[must_use]
    pub fn may_destroy(&self, now: Instant) -> bool {
        !self.busy() && self.retry_at.is_none_or(|at| at <= now)
    }
}

/// Every worker the runner knows of on this host, by id.
#[derive(Clone, Debug, Default)]
pub struct Book {
    pub entries: BTreeMap<u32, Entry>,
}

impl Book {
    /// How many more workers of each target the factory can make now.
    #[must_use]
    pub fn free(&self, capacity: &BTreeMap<String, u16>) -> BTreeMap<String, u16> {
        capacity
            .iter()
            .map(|(target, &cap)| (target.clone(), cap.saturating_sub(self.used(target))))
            .collect()
    }

    /// The workers being destroyed now or after a back-off: not news when
    /// the server lists them again.
    #[must_use]
    pub fn destroying(&self) -> std::collections::BTreeSet<u32> {
        (self.entries.iter())
            .filter(|(_, e)| e.phase == Phase::Destroying || e.retry_at.is_some())
            .map(|(&id, _)| id)
            .collect()
    }

    fn used(&self, target: &str) -> u16 {
        let n = (self.entries.values())
            .filter(|e| e.target.as_deref() == Some(target))
            .count();
        u16::try_from(n).unwrap_or(u16::MAX)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make this leased worker (again) and start its agent.
    Create(Lease),
    /// The worker was reported created but its agent never started: ask
    /// for a new key and start it.
    Restart { worker: u32, target: String },
    /// Its agent stopped (or the worker vanished) while the server still
    /// wants it: the job cannot finish on it.
    ReportLost { worker: u32, target: String },
    /// Destroy it; `confirm` tells the server afterwards (an orphan the
    /// server does not list needs no confirmation).
    Destroy {
        worker: u32,
        target: Option<String>,
        confirm: bool,
    },
    /// Its agent runs (started before a restart): keep it in the book.
    Adopt { worker: u32, target: String },
    /// Neither the server nor this host has it any more.
    Forget { worker: u32 },
}

/// What to do, given the book, what the factory owns and what the server
/// lists. `owned` is read before `listed`: the server's view is then the
/// newer one, so an agent seen dead that the server still wants is truly
/// lost (a dead agent cannot finish its job any more).
#[must_use]
pub fn plan(
    book: &Book,
    owned: &[Owned],
    listed: &[Listed],
    capacity: &BTreeMap<String, u16>,
    now: Instant,
) -> Vec<Action> {
    let owned: BTreeMap<u32, AgentState> = owned.iter().map(|o| (o.worker, o.agent)).collect();
    let mut free = book.free(capacity);
    let mut actions = Vec::new();
    let mut seen = BTreeSet::new();
    for l in listed {
        seen.insert(l.id.0);
        let entry = book.entries.get(&l.id.0);
        if entry.is_some_and(Entry::busy) {
            continue;
        }
        let target = l.target.0.clone();
        match (l.want, l.state, owned.get(&l.id.0)) {
            (Want::Destroy, ..) => {
                if entry.is_none_or(|e| e.may_destroy(now)) {
                    actions.push(Action::Destroy {
                        worker: l.id.0,
                        target: Some(target),
                        confirm: true,
                    });
                }
            }
            (Want::Keep, ListedState::Leased, _) => {
                // A lease whose answer was lost, or a worker half made
                // before a restart: make it (anew). One already in the
                // book holds its slot.
                let room = free.get_mut(&target);
                let counted = entry.is_some();
                if let Some(room) = room
                    && (counted || *room > 0)
                {
                    if !counted {
                        *room -= 1;
                    }
                    actions.push(Action::Create(Lease {
                        worker: l.id.0,
                        job: l.job.0,
                        target,
                        expires_at_ms: 0,
                    }));
                }
            }
            (Want::Keep, ListedState::Created, Some(AgentState::NotStarted)) => {
                actions.push(Action::Restart {
                    worker: l.id.0,
                    target,
                });
            }
            (Want::Keep, ListedState::Created | ListedState::Online, Some(AgentState::Running)) => {
                if entry.is_none() {
                    actions.push(Action::Adopt {
                        worker: l.id.0,
                        target,
                    });
                }
            }
            (
                Want::Keep,
                ListedState::Created | ListedState::Online,
                Some(AgentState::Exited | AgentState::NotStarted) | None,
            ) => {
                actions.push(Action::ReportLost {
                    worker: l.id.0,
                    target,
                });
            }
            (Want::Keep, ListedState::Releasing | ListedState::Other, _) | (Want::Other, ..) => {}
        }
    }
    for (&worker, _) in owned.iter().filter(|(w, _)| !seen.contains(w)) {
        let entry = book.entries.get(&worker);
        if entry.is_none_or(|e| e.may_destroy(now)) {
            actions.push(Action::Destroy {
                worker,
                target: entry.and_then(|e| e.target.clone()),
                confirm: false,
            });
        }
    }
    for (&worker, entry) in &book.entries {
        if !entry.busy() && !seen.contains(&worker) && !owned.contains_key(&worker) {
            actions.push(Action::Forget { worker });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn listed(id: u32, state: ListedState, want: Want) -> Listed {
        Listed {
            id: aquifer_protocol::WorkerId(id),
            job: aquifer_protocol::JobId(id + 100),
            target: aquifer_protocol::TargetId::new("t"),
            state,
            want,
        }
    }

    fn owned(worker: u32, agent: AgentState) -> Owned {
        Owned { worker, agent }
    }

    fn cap(n: u16) -> BTreeMap<String, u16> {
        BTreeMap::from([("t".to_string(), n)])
    }

    fn book(entries: &[(u32, Phase)]) -> Book {
        Book {
            entries: entries
                .iter()
                .map(|&(w, p)| (w, Entry::new(Some("t".into()), p)))
                .collect(),
        }
    }

    #[test]
    fn free_slots_count_every_worker_in_the_book() {
        let b = book(&[(1, Phase::Running), (2, Phase::Destroying)]);
        assert_eq!(b.free(&cap(3))["t"], 1);
        assert_eq!(b.free(&cap(1))["t"], 0);
    }

    #[test]
    fn a_restarted_factory_adopts_running_agents_and_reports_dead_ones() {
        let now = Instant::now();
        let actions = plan(
            &Book::default(),
            &[
                owned(1, AgentState::Running),
                owned(2, AgentState::Exited),
                owned(3, AgentState::NotStarted),
            ],
            &[
                listed(1, ListedState::Online, Want::Keep),
                listed(2, ListedState::Online, Want::Keep),
                listed(3, ListedState::Created, Want::Keep),
                listed(4, ListedState::Online, Want::Keep),
            ],
            &cap(4),
            now,
        );
        let t = || "t".to_string();
        assert_eq!(
            actions,
            vec![
                Action::Adopt {
                    worker: 1,
                    target: t()
                },
                Action::ReportLost {
                    worker: 2,
                    target: t()
                },
                Action::Restart {
                    worker: 3,
                    target: t()
                },
                Action::ReportLost {
                    worker: 4,
                    target: t()
                },
            ]
        );
    }

    #[test]
    fn what_the_server_wants_destroyed_and_orphans_are_destroyed() {
        let now = Instant::now();
        let actions = plan(
            &Book::default(),
            &[owned(1, AgentState::Exited), owned(9, AgentState::Running)],
            &[
                listed(1, ListedState::Releasing, Want::Destroy),
                listed(2, ListedState::Releasing, Want::Destroy),
            ],
            &cap(4),
            now,
        );
        assert_eq!(
            actions,
            vec![
                Action::Destroy {
                    worker: 1,
                    target: Some("t".into()),
                    confirm: true
                },
                Action::Destroy {
                    worker: 2,
                    target: Some("t".into()),
                    confirm: true
                },
                Action::Destroy {
                    worker: 9,
                    target: None,
                    confirm: false
                },
            ]
        );
    }

    #[test]
    fn leases_whose_answer_was_lost_are_taken_up_while_there_is_room() {
        let now = Instant::now();
        let actions = plan(
            &book(&[(1, Phase::Running)]),
            &[
                owned(1, AgentState::Running),
                owned(2, AgentState::NotStarted),
            ],
            &[
                listed(1, ListedState::Online, Want::Keep),
                listed(2, ListedState::Leased, Want::Keep),
                listed(3, ListedState::Leased, Want::Keep),
            ],
            &cap(2),
            now,
        );
        // Worker 2 (half made) takes the last slot; 3 waits for its lease
        // to expire and go to another factory.
        assert_eq!(actions.len(), 1);
        assert!(matches!(&actions[0], Action::Create(l) if l.worker == 2 && l.job == 102));
    }

    #[test]
    fn busy_workers_are_left_to_their_operation() {
        let now = Instant::now();
        let actions = plan(
            &book(&[
                (1, Phase::Creating),
                (2, Phase::Destroying),
                (3, Phase::Reporting),
            ]),
            &[
                owned(1, AgentState::NotStarted),
                owned(2, AgentState::Exited),
            ],
            &[
                listed(1, ListedState::Leased, Want::Keep),
                listed(3, ListedState::Online, Want::Keep),
            ],
            &cap(4),
            now,
        );
        assert_eq!(actions, vec![]);
    }

    #[test]
    fn failed_destructions_wait_for_their_retry_time() {
        let now = Instant::now();
        let mut b = book(&[(1, Phase::Stopped)]);
        if let Some(e) = b.entries.get_mut(&1) {
            e.destroy_failures = 1;
            e.retry_at = Some(now + Duration::from_secs(5));
        }
        let l = [listed(1, ListedState::Releasing, Want::Destroy)];
        let o = [owned(1, AgentState::Exited)];
        assert_eq!(plan(&b, &o, &l, &cap(1), now), vec![]);
        assert_eq!(
            plan(&b, &o, &l, &cap(1), now + Duration::from_secs(5)).len(),
            1
        );
    }

    #[test]
    fn workers_gone_everywhere_are_forgotten() {
        let now = Instant::now();
        let actions = plan(&book(&[(1, Phase::Stopped)]), &[], &[], &cap(1), now);
        assert_eq!(actions, vec![Action::Forget { worker: 1 }]);
    }
}
