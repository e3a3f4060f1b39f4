//! The book's reconcile pass: the server's listing and the well's own list
//! of what it owns, held against what the book knows, to find what to
//! destroy, what to forget and which things are orphans.

use super::{Action, Book, Made, ORPHANS_PER_PASS, Phase};
use crate::well::Owned;
use aquifer_protocol::well::{Listed, ResourceState as ServerState, Want};
use std::collections::BTreeSet;
use std::time::Instant;

impl Book {
    /// A reconcile pass: the server's listing and, if the well could say,
    /// what the well owns, both requested after `mark()` returned `since`.
    /// `initial` is the pass before the first lease poll, when anything the
    /// server has `creating` was begun by an earlier run of the process.
    pub fn reconciled(
        &mut self,
        since: u64,
        listed: &[Listed],
        owned: Option<&[Owned]>,
        initial: bool,
        now: Instant,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for l in listed {
            actions.extend(self.listed(l, since, initial, now));
        }
        let on_server: BTreeSet<u32> = listed.iter().map(|l| l.id.0).collect();
        let owned_ids: Option<BTreeSet<u32>> =
            owned.map(|o| o.iter().map(|o| o.resource).collect());
        // Settled entries the server no longer lists have left its books;
        // if the thing still exists, it is an orphan, below.
        let stale: Vec<u32> = (self.entries.iter())
            .filter(|(id, e)| e.touched <= since && !on_server.contains(id))
            .filter(|(id, e)| match e.phase {
                Phase::Alive | Phase::Parked => true,
                Phase::Retrying { .. } => owned_ids.as_ref().is_some_and(|o| !o.contains(id)),
                Phase::Creating { .. } | Phase::Reporting { .. } | Phase::Destroying { .. } => {
                    false
                }
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.forget(id);
        }
        let Some(owned) = owned else {
            return actions;
        };
        let mut taken = 0;
        for o in owned.iter().filter(|o| !on_server.contains(&o.resource)) {
            if taken >= ORPHANS_PER_PASS {
                break;
            }
            match self.entries.get(&o.resource).map(|e| (e.phase, e.touched)) {
                None => {
                    tracing::info!(resource = o.resource, rtype = %o.rtype, "destroying an orphan");
                    self.put(o.resource, o.rtype.clone(), Phase::Parked);
                    actions.extend(self.destroy(o.resource, false, 0));
                    taken += 1;
                }
                Some((Phase::Retrying { failures, at, .. }, touched))
                    if touched <= since && at <= now =>
                {
                    actions.extend(self.destroy(o.resource, false, failures));
                    taken += 1;
                }
                Some(_) => {}
            }
        }
        actions
    }

    /// One resource of the server's listing.
    fn listed(&mut self, l: &Listed, since: u64, initial: bool, now: Instant) -> Option<Action> {
        let Some(e) = self.entries.get(&l.id.0) else {
            if self.gone.contains(&l.id.0) {
                // Confirmed after the listing was made.
                return None;
            }
            return match (l.want, l.state) {
                (Want::Release, _) => {
                    self.put(l.id.0, l.rtype.0.clone(), Phase::Parked);
                    self.destroy(l.id.0, true, 0)
                }
                (Want::Keep, ServerState::Creating) if initial => {
                    // Begun by an earlier run: nobody is creating it now.
                    // Failing it at once gives the job its place back
                    // sooner than the lease's expiry would.
                    let phase = Phase::Reporting {
                        lease: None,
                        release: false,
                        made: Made::Failed,
                    };
                    self.put(l.id.0, l.rtype.0.clone(), phase);
                    Some(Action::ReportFailed {
                        resource: l.id.0,
                        reason: "the well restarted while creating it".into(),
                        retryable: true,
                    })
                }
                (Want::Keep, ServerState::Ready) => {
                    self.put(l.id.0, l.rtype.0.clone(), Phase::Alive);
                    None
                }
                _ => {
                    self.put(l.id.0, l.rtype.0.clone(), Phase::Parked);
                    None
                }
            };
        };
        if e.touched > since {
            // The listing is older than what this book knows of it.
            return None;
        }
        match (e.phase, l.want) {
            (
                Phase::Creating {
                    lease,
                    release: false,
                },
                Want::Release,
            ) => {
                self.set_phase(
                    l.id.0,
                    Phase::Creating {
                        lease,
                        release: true,
                    },
                );
                None
            }
            (
                Phase::Reporting {
                    lease,
                    release: false,
                    made,
                },
                Want::Release,
            ) => {
                let phase = Phase::Reporting {
                    lease,
                    release: true,
                    made,
                };
                self.set_phase(l.id.0, phase);
                None
            }
            (Phase::Alive | Phase::Parked, Want::Release) => self.destroy(l.id.0, true, 0),
            (Phase::Retrying { failures, at, .. }, Want::Release) if at <= now => {
                self.destroy(l.id.0, true, failures)
            }
            (Phase::Alive | Phase::Retrying { .. }, Want::Hold) => {
                self.set_phase(l.id.0, Phase::Parked);
                None
            }
            (Phase::Parked, Want::Keep) if l.state == ServerState::Ready => {
                self.set_phase(l.id.0, Phase::Alive);
                None
            }
            _ => None,
        }
    }
}
