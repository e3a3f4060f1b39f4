//! The environment's choices: which inputs the outside world may send in a
//! state (progress by cooperating parties, faults within the budget, and
//! stale reports that must be refused), and the input each action sends.

use crate::model::{Action, AquiferModel, Budget, ModelState, Skew};
use crate::scope::{factory_id, job_id, well_id};
use aquifer_core::job::Phase;
use aquifer_core::resource::ResourceState;
use aquifer_core::worker::WorkerState;
use aquifer_core::{
    FactoryId, Input, LeaseId, ResourceId, State, TargetId, TypeId, WellId, apply, next_deadline,
    step,
};
use std::collections::BTreeMap;

impl AquiferModel {
    /// The input an action sends (`None` for a restart, which is not an
    /// input but the server rebuilding its state).
    #[must_use]
    pub fn input_of(&self, state: &ModelState, action: &Action) -> Option<Input> {
        Some(match action {
            Action::Submit(i) => self.scope.submission(*i, &state.retired),
            Action::InputsComplete(i) => Input::InputsComplete { job: job_id(*i) },
            Action::RequestLease(well) => Input::RequestLease {
                well: *well,
                free: self.free_slots(&state.core, *well, None),
            },
            Action::SkewedLease(well, skew) => Input::RequestLease {
                well: *well,
                free: self.free_slots(&state.core, *well, Some(*skew)),
            },
            Action::Hold(held) => Input::HoldLeases { held: *held },
            Action::Register(i) => self.scope.register_well(*i),
            Action::Ready(r) => Input::ReportReady {
                well: state.core.resources[r].well,
                resource: *r,
            },
            Action::Renew(l) => Input::RenewLease {
                well: state.core.leases[l].well,
                lease: *l,
            },
            Action::CreateFailed(r, retryable) => Input::ReportFailed {
                well: state.core.resources[r].well,
                resource: *r,
                retryable: *retryable,
            },
            Action::Destroyed(r) => Input::ConfirmDestroyed {
                well: state.core.resources[r].well,
                resource: *r,
            },
            Action::DestroyFailed(r) => Input::ReportDestroyFailed {
                well: state.core.resources[r].well,
                resource: *r,
            },
            Action::ReleaseHeld(r) => Input::ReleaseHeld { resource: *r },
            Action::RequestWorker(f) => Input::RequestWorker {
                factory: *f,
                free: self.free_workers(&state.core, *f, None),
            },
            Action::SkewedWorker(f, skew) => Input::RequestWorker {
                factory: *f,
                free: self.free_workers(&state.core, *f, Some(*skew)),
            },
            Action::WorkerCreated(w) => Input::ReportWorkerCreated {
                factory: state.core.workers[w].factory,
                worker: *w,
            },
            Action::WorkerOnline(w) => Input::ReportWorkerOnline { worker: *w },
            Action::Start(w) => Input::StartJob { worker: *w },
            Action::Finish(w, ok) => Input::FinishJob {
                worker: *w,
                succeeded: *ok,
            },
            Action::WorkerLost(w) => Input::ReportWorkerLost {
                factory: state.core.workers[w].factory,
                worker: *w,
            },
            Action::WorkerDestroyed(w) => Input::ConfirmWorkerDestroyed {
                factory: state.core.workers[w].factory,
                worker: *w,
            },
            Action::Cancel(j) => Input::CancelJob { job: *j },
            Action::Tick => Input::Tick,
            Action::Restart | Action::Wait => return None,
            Action::Stale(input) => input.clone(),
        })
    }

    /// What the well reports free: each pool's capacity less what the well
    /// holds in it (the well's own count, from the things it has made), or
    /// skewed: more (the whole capacity) or one less.
    fn free_slots(&self, core: &State, well: WellId, skew: Option<Skew>) -> BTreeMap<TypeId, u16> {
        let index = usize::try_from(well.0 - 1).expect("small ids");
        let mut free = BTreeMap::new();
        for (types, capacity) in &self.scope.wells[index] {
            let used = core
                .resources
                .values()
                .filter(|r| r.well == well && types.contains(&r.rtype.as_str()))
                .count();
            let left = capacity.saturating_sub(u16::try_from(used).expect("small"));
            let left = match skew {
                None => left,
                Some(Skew::More) => *capacity,
                Some(Skew::Less) => left.saturating_sub(1),
            };
            if left > 0 {
                for t in types {
                    free.insert(TypeId::new(*t), left);
                }
            }
        }
        free
    }

    fn free_workers(
        &self,
        core: &State,
        factory: FactoryId,
        skew: Option<Skew>,
    ) -> BTreeMap<TargetId, u16> {
        let index = usize::try_from(factory.0 - 1).expect("small ids");
        let mut free = BTreeMap::new();
        for (target, capacity) in &self.scope.factories[index] {
            let used = core
                .workers
                .values()
                .filter(|w| w.factory == factory && w.target.as_str() == *target)
                .count();
            let left = capacity.saturating_sub(u16::try_from(used).expect("small"));
            let left = match skew {
                None => left,
                Some(Skew::More) => *capacity,
                Some(Skew::Less) => left.saturating_sub(1),
            };
            if left > 0 {
                free.insert(TargetId::new(*target), left);
            }
        }
        free
    }

    pub(crate) fn progress_actions(&self, state: &ModelState, out: &mut Vec<Action>) {
        let core = &state.core;
        if usize::from(state.submitted) < self.scope.jobs.len() {
            out.push(Action::Submit(usize::from(state.submitted)));
        }
        for (i, def) in self.scope.jobs.iter().enumerate() {
            let sent = state.inputs_sent & (1 << i) != 0;
            if def.awaits_inputs && i < usize::from(state.submitted) && !sent {
                out.push(Action::InputsComplete(i));
            }
        }
        for (&r, res) in &core.resources {
            match res.state {
                ResourceState::Creating { lease } => {
                    out.push(Action::Ready(r));
                    // A renewal that would not move the expiry changes
                    // nothing (a random walk would stop at it as a loop).
                    let l = &core.leases[&lease];
                    if l.resources[0] == r
                        && l.expires_at < state.now.plus_ms(self.limits.lease_ttl_ms)
                    {
                        out.push(Action::Renew(lease));
                    }
                }
                ResourceState::Releasing { .. } => out.push(Action::Destroyed(r)),
                ResourceState::Held => out.push(Action::ReleaseHeld(r)),
                ResourceState::Ready => {}
            }
        }
        for (&w, worker) in &core.workers {
            match worker.state {
                WorkerState::Leased { .. } => out.push(Action::WorkerCreated(w)),
                WorkerState::Created => out.push(Action::WorkerOnline(w)),
                WorkerState::Online => match core.jobs[&worker.job].phase {
                    Phase::Running => out.push(Action::Finish(w, true)),
                    Phase::Blocked | Phase::Acquiring | Phase::Ended(_) => {
                        out.push(Action::Start(w))
                    }
                },
                WorkerState::Releasing => out.push(Action::WorkerDestroyed(w)),
            }
        }
        for i in 0..self.scope.wells.len() {
            if self.registered(state, i) {
                out.push(Action::RequestLease(well_id(i)));
            } else {
                out.push(Action::Register(i));
            }
        }
        for i in 0..self.scope.factories.len() {
            out.push(Action::RequestWorker(factory_id(i)));
        }
        if core.lease_hold {
            out.push(Action::Hold(false));
        }
        // Once time has reached a deadline (`Wait`), the server's own
        // clock ticks: that is progress, not a fault.
        if next_deadline(core).is_some_and(|d| d <= state.now) {
            out.push(Action::Tick);
        }
    }

    /// Whether the scope's well `index` is registered by now.
    pub(crate) fn registered(&self, state: &ModelState, index: usize) -> bool {
        !self.scope.late_wells.contains(&index) || state.registered_late & (1 << index) != 0
    }

    pub(crate) fn fault_actions(&self, state: &ModelState, out: &mut Vec<Action>) {
        let core = &state.core;
        out.extend(stale_inputs(core).into_iter().map(Action::Stale));
        if state.budget.faults == 0 {
            return;
        }
        // Moving time on is the environment's choice (a due tick is
        // progress; see `progress_actions`).
        if next_deadline(core).is_some_and(|d| d > state.now) {
            out.push(Action::Tick);
            out.push(Action::Wait);
        }
        out.push(Action::Restart);
        if !core.lease_hold {
            out.push(Action::Hold(true));
        }
        for i in 0..self.scope.wells.len() {
            if self.registered(state, i) {
                out.push(Action::SkewedLease(well_id(i), Skew::More));
                out.push(Action::SkewedLease(well_id(i), Skew::Less));
            }
        }
        for i in 0..self.scope.factories.len() {
            out.push(Action::SkewedWorker(factory_id(i), Skew::More));
            out.push(Action::SkewedWorker(factory_id(i), Skew::Less));
        }
        for (&r, res) in &core.resources {
            match res.state {
                ResourceState::Creating { .. } => {
                    out.push(Action::CreateFailed(r, true));
                    out.push(Action::CreateFailed(r, false));
                }
                ResourceState::Releasing { .. } => {
                    out.push(Action::DestroyFailed(r));
                }
                _ => {}
            }
        }
        for (&w, worker) in &core.workers {
            if worker.state != WorkerState::Releasing {
                out.push(Action::WorkerLost(w));
            }
            if worker.state == WorkerState::Online && core.jobs[&worker.job].phase == Phase::Running
            {
                out.push(Action::Finish(w, false));
            }
        }
        for (&j, job) in &core.jobs {
            if !job.is_ended() {
                out.push(Action::Cancel(j));
            }
        }
    }

    /// Spends the budget on a fault. A tick that is already due costs
    /// nothing: time reached it by an earlier `Wait`, which paid.
    pub(crate) fn spend(budget: &mut Budget, action: &Action, last: &ModelState) {
        let due_tick =
            *action == Action::Tick && next_deadline(&last.core).is_some_and(|d| d <= last.now);
        if action.is_fault() && !matches!(action, Action::Stale(_)) && !due_tick {
            budget.faults -= 1;
        }
    }
}

/// Inputs the core must refuse in this state: duplicate, late or
/// misdirected reports. One of each kind, where one exists.
fn stale_inputs(core: &State) -> Vec<Input> {
    let mut out = Vec::new();
    if let Some((&resource, r)) = core
        .resources
        .iter()
        .find(|(_, r)| r.state == ResourceState::Ready)
    {
        out.push(Input::ReportReady {
            well: r.well,
            resource,
        });
    }
    if let Some((&resource, r)) = core
        .resources
        .iter()
        .find(|(_, r)| matches!(r.state, ResourceState::Creating { .. }))
    {
        out.push(Input::ReportReady {
            well: WellId(r.well.0 + 100),
            resource,
        });
    }
    let gone_resource = (1..core.next_resource.0)
        .map(ResourceId)
        .rfind(|r| !core.resources.contains_key(r));
    if let Some(resource) = gone_resource {
        out.push(Input::ConfirmDestroyed {
            well: WellId(1),
            resource,
        });
    }
    let gone_lease = (1..core.next_lease.0)
        .map(LeaseId)
        .rfind(|l| !core.leases.contains_key(l));
    if let Some(lease) = gone_lease {
        out.push(Input::RenewLease {
            well: WellId(1),
            lease,
        });
    }
    if let Some((&worker, _)) = core
        .workers
        .iter()
        .find(|(_, w)| w.state != WorkerState::Online)
    {
        out.push(Input::FinishJob {
            worker,
            succeeded: true,
        });
    }
    if let Some((&job, _)) = core.jobs.iter().find(|(_, j)| j.is_ended()) {
        out.push(Input::CancelJob { job });
    }
    if let Some((&job, _)) = (core.jobs.iter()).find(|(_, j)| !j.is_ended() && !j.awaits_inputs) {
        out.push(Input::InputsComplete { job });
    }
    out
}

impl AquiferModel {
    /// Everything submitted has ended and left the books, and every
    /// resource is destroyed or held for an operator.
    #[must_use]
    pub fn done(&self, s: &ModelState) -> bool {
        usize::from(s.submitted) == self.scope.jobs.len()
            && s.core.workers.is_empty()
            && s.core
                .resources
                .values()
                .all(|r| r.state == ResourceState::Held)
            && s.core.jobs.values().all(|j| j.is_ended())
    }

    /// Whether some party other than a fault can move the system on.
    #[must_use]
    pub fn can_progress(&self, s: &ModelState) -> bool {
        let mut actions = Vec::new();
        self.progress_actions(s, &mut actions);
        actions.into_iter().any(|a| self.moves_on(s, &a))
    }

    /// Whether `action` changes the core (or submits a job): what
    /// `next_state` would decide, without building the next model state,
    /// since this runs on every state the checker visits. A panic is not
    /// progress (the checker reports it on the transition itself).
    fn moves_on(&self, s: &ModelState, action: &Action) -> bool {
        let Some(input) = self.input_of(s, action) else {
            return false;
        };
        let now = match action {
            Action::Tick => match next_deadline(&s.core) {
                Some(d) => d,
                None => return false,
            },
            _ => s.now,
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Ok(t) = step(&s.core, input, now) else {
                return false;
            };
            if t.events.is_empty() {
                return false;
            }
            if matches!(action, Action::Submit(_)) {
                return true;
            }
            let mut after = s.core.clone();
            for e in &t.events {
                apply(&mut after, e);
            }
            after != s.core
        }))
        .unwrap_or(false)
    }
}
