//! The factory's side of the one book (`aquifer_protocol::book`): workers
//! as the book's things, and the server's listing and this host's workers
//! read into what the book reconciles. Pure, so every case is a unit test;
//! the runner performs the book's actions.
//!
//! What is a factory's own: a worker made but whose agent never started is
//! reported created again (for a new key) and started; one whose agent is
//! not running while the server keeps it is reported lost; a lease the
//! server lists whose answer never arrived is taken over.

use crate::sdk::{AgentState, Lease, Owned};
use aquifer_protocol::book::{self, Keep, Leasable, Report, Want};
use aquifer_protocol::factory::{Listed, Want as ServerWant, WorkerState as ServerState};
use std::collections::BTreeMap;

/// A factory's workers, as the book's things: counted by target, made for
/// a lease, started once reported created, lost when their agent stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workers;

impl Leasable for Workers {
    /// The worker's target: unknown (`None`) for a worker this host has
    /// that the server does not list, which then occupies no slot.
    type Kind = Option<String>;
    type Order = Lease;
    /// A ready ("created") report asks the server for the agent's key;
    /// the report carries nothing.
    type Made = ();
    /// How the agent stopped.
    type Loss = String;
}

/// The book's capacity for `targets`.
#[must_use]
pub fn capacity(targets: &BTreeMap<String, u16>) -> BTreeMap<Option<String>, u32> {
    (targets.iter())
        .map(|(t, n)| (Some(t.clone()), u32::from(*n)))
        .collect()
}

/// The server's listing and what this host has, as the book reads them.
/// `owned` is read before `listed`: the server's view is then the newer
/// one, so an agent seen dead that the server still wants is truly lost (a
/// dead agent cannot finish its job any more).
#[must_use]
pub fn read(
    listed: &[Listed],
    owned: &[Owned],
) -> (Vec<book::Listed<Workers>>, Vec<book::Owned<Option<String>>>) {
    let agents: BTreeMap<u32, AgentState> = owned.iter().map(|o| (o.worker, o.agent)).collect();
    let listed = (listed.iter())
        .map(|l| book::Listed {
            id: l.id.0,
            kind: Some(l.target.0.clone()),
            want: want(l, agents.get(&l.id.0).copied()),
        })
        .collect();
    let owned = (owned.iter())
        .map(|o| book::Owned {
            id: o.worker,
            kind: None,
        })
        .collect();
    (listed, owned)
}

/// What the server wants of a listed worker whose agent is in `agent`
/// here (`None`: this host does not have it).
fn want(l: &Listed, agent: Option<AgentState>) -> Want<Workers> {
    let lost = || {
        Want::Keep(Keep::Report(Report::Lost(
            "its agent is not running".into(),
        )))
    };
    match (l.want, l.state, agent) {
        (ServerWant::Destroy, ..) => Want::Release,
        // A lease whose answer was lost, or a worker half made before a
        // restart: make it (anew).
        (ServerWant::Keep, ServerState::Leased, _) => Want::Keep(Keep::Create(Lease {
            worker: l.id.0,
            job: l.job.0,
            target: l.target.0.clone(),
            expires_at_ms: 0,
        })),
        // Reported created, but its agent never started: report it again
        // for a new key, and start it.
        (ServerWant::Keep, ServerState::Created, Some(AgentState::NotStarted)) => {
            Want::Keep(Keep::Report(Report::Ready(())))
        }
        (
            ServerWant::Keep,
            ServerState::Created | ServerState::Online,
            Some(AgentState::Running),
        ) => Want::Keep(Keep::Alive),
        (
            ServerWant::Keep,
            ServerState::Created | ServerState::Online,
            Some(AgentState::Exited | AgentState::NotStarted) | None,
        ) => lost(),
        (ServerWant::Keep, ServerState::Releasing | ServerState::Other, _)
        | (ServerWant::Other, ..) => Want::Leave,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aquifer_protocol::Backoff;
    use aquifer_protocol::book::{Action, Book, Phase};
    use std::time::{Duration, Instant};

    type Act = Action<Workers>;

    fn listed(id: u32, state: ServerState, want: ServerWant) -> Listed {
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

    fn book(n: u16) -> Book<Workers> {
        let targets = BTreeMap::from([("t".to_string(), n)]);
        Book::new(capacity(&targets), Backoff::default(), Backoff::default())
    }

    /// The reconcile pass `b` makes of this listing and these workers.
    fn pass(b: &mut Book<Workers>, listed: &[Listed], owned: &[Owned], now: Instant) -> Vec<Act> {
        let since = b.mark();
        let (listed, owned) = read(listed, owned);
        b.reconciled(since, &listed, Some(&owned), now)
    }

    fn t() -> Option<String> {
        Some("t".into())
    }

    fn lost(id: u32) -> Act {
        Action::Report {
            id,
            report: Report::Lost("its agent is not running".into()),
        }
    }

    #[test]
    fn a_restarted_factory_adopts_running_agents_and_reports_dead_ones() {
        let mut b = book(4);
        let actions = pass(
            &mut b,
            &[
                listed(1, ServerState::Online, ServerWant::Keep),
                listed(2, ServerState::Online, ServerWant::Keep),
                listed(3, ServerState::Created, ServerWant::Keep),
                listed(4, ServerState::Online, ServerWant::Keep),
            ],
            &[
                owned(1, AgentState::Running),
                owned(2, AgentState::Exited),
                owned(3, AgentState::NotStarted),
            ],
            Instant::now(),
        );
        let restart = Action::Report {
            id: 3,
            report: Report::Ready(()),
        };
        assert_eq!(actions, [lost(2), restart, lost(4)]);
        assert_eq!(b.entry(1).map(|e| e.phase), Some(Phase::Alive), "adopted");
    }

    #[test]
    fn what_the_server_wants_destroyed_and_orphans_are_destroyed() {
        let mut b = book(4);
        let actions = pass(
            &mut b,
            &[
                listed(1, ServerState::Releasing, ServerWant::Destroy),
                listed(2, ServerState::Releasing, ServerWant::Destroy),
            ],
            &[owned(1, AgentState::Exited), owned(9, AgentState::Running)],
            Instant::now(),
        );
        let destroy = |id, kind, confirm| Action::Destroy { id, kind, confirm };
        assert_eq!(
            actions,
            [
                destroy(1, t(), true),
                destroy(2, t(), true),
                destroy(9, None, false)
            ]
        );
        assert_eq!(
            b.free(),
            [(t(), 2)].into_iter().collect(),
            "an orphan of no known target"
        );
    }

    #[test]
    fn leases_whose_answer_was_lost_are_taken_up_while_there_is_room() {
        let mut b = book(2);
        let first = [listed(1, ServerState::Online, ServerWant::Keep)];
        let running = owned(1, AgentState::Running);
        pass(
            &mut b,
            &first,
            std::slice::from_ref(&running),
            Instant::now(),
        );
        let actions = pass(
            &mut b,
            &[
                first[0].clone(),
                listed(2, ServerState::Leased, ServerWant::Keep),
                listed(3, ServerState::Leased, ServerWant::Keep),
            ],
            &[running, owned(2, AgentState::NotStarted)],
            Instant::now(),
        );
        // Worker 2 (half made) takes the last slot; 3 waits for its lease
        // to expire and go to another factory.
        let lease = Lease {
            worker: 2,
            job: 102,
            target: "t".into(),
            expires_at_ms: 0,
        };
        assert_eq!(
            actions,
            [Action::Create {
                id: 2,
                kind: t(),
                order: lease
            }]
        );
    }

    #[test]
    fn failed_destructions_wait_for_their_retry_time() {
        let now = Instant::now();
        let mut b = book(1);
        let gone = [listed(1, ServerState::Releasing, ServerWant::Destroy)];
        let o = [owned(1, AgentState::Exited)];
        pass(&mut b, &gone, &o, now);
        b.destroyed(1, book::Destroyed::Failed, now);
        assert_eq!(pass(&mut b, &gone, &o, now), []);
        assert_eq!(
            pass(&mut b, &gone, &o, now + Duration::from_secs(1)).len(),
            1
        );
    }

    #[test]
    fn workers_gone_everywhere_are_forgotten() {
        let mut b = book(1);
        let l = [listed(1, ServerState::Online, ServerWant::Keep)];
        pass(&mut b, &l, &[owned(1, AgentState::Running)], Instant::now());
        assert_eq!(pass(&mut b, &[], &[], Instant::now()), []);
        assert!(b.is_empty());
    }

    #[test]
    fn workers_in_states_the_factory_does_not_act_on_are_left_alone() {
        let mut b = book(2);
        let l = [
            listed(1, ServerState::Releasing, ServerWant::Keep),
            listed(2, ServerState::Other, ServerWant::Other),
        ];
        assert_eq!(pass(&mut b, &l, &[], Instant::now()), []);
        assert_eq!(b.entry(2).map(|e| e.phase), Some(Phase::Parked));
    }
}
