//! The stateright model: the core's own `step` and `apply`, driven by
//! every input the outside world could send in a bounded scope. Nothing
//! here decides who gets what; the model only chooses which input comes
//! next and checks what the core made of it.

use crate::scope::{Scope, factory_id, well_id};
use aquifer_core::invariants;
use aquifer_core::job::{GroupState, Phase, WorkerWant};
use aquifer_core::resource::ResourceState;
use aquifer_core::worker::WorkerState;
use aquifer_core::{
    Effect, Event, FactoryId, Input, JobId, LeaseId, Limits, ResourceId, Rules, State, Time,
    TypeId, WellId, WorkerId, apply, next_deadline, pending_effects, step,
};
use stateright::{Model, Property};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Which faults the environment may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Faults {
    None,
    All,
}

/// How many faults one run may still inject. Every kind of fault is
/// enabled while the budget lasts, at every point of every run; a bounded
/// budget keeps the model finite and acyclic. A budget of one per kind
/// multiplies the state space by every combination of kinds (2^7), so the
/// budget is a total instead, set per scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Budget {
    pub faults: u8,
}

impl Budget {
    #[must_use]
    pub fn for_faults(faults: Faults, total: u8) -> Budget {
        Budget {
            faults: match faults {
                Faults::None => 0,
                Faults::All => total,
            },
        }
    }
}

/// The committed event log, shared between states (a persistent list).
/// It is left out of hashing and equality: two states with the same core
/// state are the same state, however they were reached.
#[derive(Clone, Default)]
pub struct Log(Option<Arc<(Vec<Event>, Log)>>);

impl Log {
    fn push(&self, events: Vec<Event>) -> Log {
        Log(Some(Arc::new((events, self.clone()))))
    }

    /// Every event, oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        let mut chunks = Vec::new();
        let mut at = self;
        while let Some(node) = &at.0 {
            chunks.push(&node.0);
            at = &node.1;
        }
        chunks.into_iter().rev().flatten().cloned().collect()
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Log({} events)", self.events().len())
    }
}

impl Hash for Log {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl PartialEq for Log {
    fn eq(&self, _: &Log) -> bool {
        true
    }
}

/// Milestones, for the `sometimes` properties.
pub const SEEN_SUCCESS: u8 = 1;
pub const SEEN_SERVED_AFTER_EXPIRY: u8 = 2;
pub const SEEN_RESTART_MID_ACQUISITION: u8 = 4;

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct ModelState {
    pub core: State,
    pub now: Time,
    /// How many of the scope's jobs have been submitted (in order).
    pub submitted: u8,
    pub budget: Budget,
    pub seen: u8,
    /// Groups whose lease expired, waiting to be served again.
    pub expired: BTreeSet<(JobId, u8)>,
    /// The outcomes of retired jobs of the scope's dependencies, as the
    /// server's store keeps them after the core forgets the job.
    pub retired: BTreeMap<JobId, aquifer_core::Outcome>,
    /// A check made on a transition that failed: the property it breaks.
    pub broken: Option<&'static str>,
    pub log: Log,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Submit(usize),
    RequestLease(WellId),
    Ready(ResourceId),
    Renew(LeaseId),
    CreateFailed(ResourceId, bool),
    Destroyed(ResourceId),
    DestroyFailed(ResourceId),
    ReleaseHeld(ResourceId),
    RequestWorker(FactoryId),
    WorkerCreated(WorkerId),
    WorkerOnline(WorkerId),
    Start(WorkerId),
    Finish(WorkerId, bool),
    WorkerLost(WorkerId),
    WorkerDestroyed(WorkerId),
    Cancel(JobId),
    Tick,
    Restart,
    /// A late, duplicate or misdirected report that the core must refuse.
    Stale(Input),
}

impl Action {
    /// Faults are what the environment may do wrong. They do not count as
    /// progress: a state whose only way on is a fault is a deadlock.
    #[must_use]
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Action::CreateFailed(..)
                | Action::DestroyFailed(_)
                | Action::Finish(_, false)
                | Action::WorkerLost(_)
                | Action::Cancel(_)
                | Action::Tick
                | Action::Restart
                | Action::Stale(_)
        )
    }
}

pub struct AquiferModel {
    pub scope: Scope,
    pub rules: Rules,
    pub limits: Limits,
    pub faults: Faults,
    init: ModelState,
}

/// Limits small enough to reach every limit within the scope.
#[must_use]
pub fn model_limits() -> Limits {
    Limits {
        lease_ttl_ms: 10,
        worker_lease_ttl_ms: 20,
        group_failures_max: 2,
        destroy_failures_max: 1,
        ..Limits::default()
    }
}

impl AquiferModel {
    #[must_use]
    pub fn new(scope: Scope, rules: Rules, faults: Faults) -> AquiferModel {
        let limits = model_limits();
        let mut core = State::new(rules, limits);
        let mut log = Log::default();
        for input in scope.registration() {
            let t = step(&core, input.clone(), Time::ZERO)
                .unwrap_or_else(|r| panic!("scope registration {input:?} refused: {r}"));
            for e in &t.events {
                apply(&mut core, e);
            }
            log = log.push(t.events);
        }
        let init = ModelState {
            core,
            now: Time::ZERO,
            submitted: 0,
            budget: Budget::for_faults(faults, scope.fault_budget),
            seen: 0,
            expired: BTreeSet::new(),
            retired: BTreeMap::new(),
            broken: None,
            log,
        };
        AquiferModel {
            scope,
            rules,
            limits,
            faults,
            init,
        }
    }

    /// The input an action sends (`None` for a restart, which is not an
    /// input but the server rebuilding its state).
    #[must_use]
    pub fn input_of(&self, state: &ModelState, action: &Action) -> Option<Input> {
        Some(match action {
            Action::Submit(i) => self.scope.submission(*i, &state.retired),
            Action::RequestLease(well) => Input::RequestLease {
                well: *well,
                free: self.free_slots(&state.core, *well),
            },
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
                free: self.free_workers(&state.core, *f),
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
            Action::Restart => return None,
            Action::Stale(input) => input.clone(),
        })
    }

    /// What the well reports free: each pool's capacity less what the well
    /// holds in it (the well's own count, from the things it has made).
    fn free_slots(&self, core: &State, well: WellId) -> BTreeMap<TypeId, u16> {
        let index = usize::try_from(well.0 - 1).expect("small ids");
        let mut free = BTreeMap::new();
        for (types, capacity) in &self.scope.wells[index] {
            let used = core
                .resources
                .values()
                .filter(|r| r.well == well && types.contains(&r.rtype.as_str()))
                .count();
            let left = capacity.saturating_sub(u16::try_from(used).expect("small"));
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
    ) -> BTreeMap<aquifer_core::TargetId, u16> {
        let index = usize::try_from(factory.0 - 1).expect("small ids");
        let mut free = BTreeMap::new();
        for (target, capacity) in &self.scope.factories[index] {
            let used = core
                .workers
                .values()
                .filter(|w| w.factory == factory && w.target.as_str() == *target)
                .count();
            let left = capacity.saturating_sub(u16::try_from(used).expect("small"));
            if left > 0 {
                free.insert(aquifer_core::TargetId::new(*target), left);
            }
        }
        free
    }

    fn progress_actions(&self, state: &ModelState, out: &mut Vec<Action>) {
        let core = &state.core;
        if usize::from(state.submitted) < self.scope.jobs.len() {
            out.push(Action::Submit(usize::from(state.submitted)));
        }
        for (&r, res) in &core.resources {
            match res.state {
                ResourceState::Creating { lease } => {
                    out.push(Action::Ready(r));
                    if core.leases[&lease].resources[0] == r {
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
            out.push(Action::RequestLease(well_id(i)));
        }
        for i in 0..self.scope.factories.len() {
            out.push(Action::RequestWorker(factory_id(i)));
        }
    }

    fn fault_actions(&self, state: &ModelState, out: &mut Vec<Action>) {
        let core = &state.core;
        out.extend(stale_inputs(core).into_iter().map(Action::Stale));
        if state.budget.faults == 0 {
            return;
        }
        if next_deadline(core).is_some() {
            out.push(Action::Tick);
        }
        out.push(Action::Restart);
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

    fn spend(budget: &mut Budget, action: &Action) {
        if action.is_fault() && !matches!(action, Action::Stale(_)) {
            budget.faults -= 1;
        }
    }

    /// The server restarts: it rebuilds its state from the committed log
    /// through `apply`, which must give back exactly the state it had.
    fn restart(&self, last: &ModelState) -> ModelState {
        let mut next = last.clone();
        Self::spend(&mut next.budget, &Action::Restart);
        let mut rebuilt = State::new(self.rules, self.limits);
        for e in last.log.events() {
            apply(&mut rebuilt, &e);
        }
        if rebuilt != last.core || pending_effects(&rebuilt) != pending_effects(&last.core) {
            next.broken = Some(REPLAY);
        }
        let mid_acquisition = last.core.jobs.values().any(|j| {
            j.phase == Phase::Acquiring
                && j.groups
                    .iter()
                    .any(|g| matches!(g.state, GroupState::Acquiring { .. }))
        });
        if mid_acquisition {
            next.seen |= SEEN_RESTART_MID_ACQUISITION;
        }
        next.core = rebuilt;
        next
    }

    /// Checks made on each transition, which a property on states cannot
    /// see: only confirmed destruction removes things from the books, and
    /// the step's effects cover every new obligation.
    fn check_transition(
        before: &State,
        after: &State,
        events: &[Event],
        effects: &[Effect],
    ) -> Option<&'static str> {
        let destroyed: BTreeSet<ResourceId> = events
            .iter()
            .filter_map(|e| match e {
                Event::ResourceDestroyed { resource } => Some(*resource),
                _ => None,
            })
            .collect();
        let workers_destroyed: BTreeSet<WorkerId> = events
            .iter()
            .filter_map(|e| match e {
                Event::WorkerDestroyed { worker } => Some(*worker),
                _ => None,
            })
            .collect();
        let vanished = before
            .resources
            .keys()
            .any(|r| !after.resources.contains_key(r) && !destroyed.contains(r))
            || before
                .workers
                .keys()
                .any(|w| !after.workers.contains_key(w) && !workers_destroyed.contains(w));
        if vanished {
            return Some(CONFIRMED);
        }
        let owed_before: BTreeSet<Effect> = pending_effects(before).into_iter().collect();
        let covered = pending_effects(after)
            .iter()
            .all(|e| owed_before.contains(e) || effects.contains(e));
        if !covered {
            return Some(EFFECTS);
        }
        None
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
    out
}

pub const NO_PANIC: &str = "core-never-panics";
pub const INVARIANTS: &str = "core-invariants";
pub const NO_DEADLOCK: &str = "no-deadlock";
pub const RUNS_WITH_ALL: &str = "runs-holding-everything";
pub const RANK_ORDER: &str = "rank-order";
pub const POOLS: &str = "pools-within-capacity";
pub const CONFIRMED: &str = "confirmed-before-forgotten";
pub const STALE: &str = "stale-reports-refused";
pub const REPLAY: &str = "replay-rebuilds-state";
pub const EFFECTS: &str = "effects-cover-obligations";
pub const SUCCEEDS: &str = "a-job-succeeds";
pub const SERVED_AFTER_EXPIRY: &str = "served-after-expiry";
pub const RESTART_MID_ACQUISITION: &str = "restart-mid-acquisition";

impl Model for AquiferModel {
    type State = ModelState;
    type Action = Action;

    fn init_states(&self) -> Vec<ModelState> {
        vec![self.init.clone()]
    }

    fn actions(&self, state: &ModelState, actions: &mut Vec<Action>) {
        if state.broken.is_some() {
            return;
        }
        self.progress_actions(state, actions);
        if self.faults == Faults::All {
            self.fault_actions(state, actions);
        }
    }

    fn next_state(&self, last: &ModelState, action: Action) -> Option<ModelState> {
        let Some(input) = self.input_of(last, &action) else {
            return Some(self.restart(last));
        };
        let now = match action {
            Action::Tick => next_deadline(&last.core)?,
            _ => last.now,
        };
        // A panic in the core is a bug the model must report with its path,
        // not a crash of the checker.
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            step(&last.core, input, now).map(|t| {
                let mut after = last.core.clone();
                for e in &t.events {
                    apply(&mut after, e);
                }
                (t, after)
            })
        }));
        let result = match stepped {
            Ok(result) => result,
            Err(_) => {
                let mut next = last.clone();
                next.broken = Some(NO_PANIC);
                return Some(next);
            }
        };
        if let Action::Stale(_) = action {
            return match result {
                Ok((t, _)) if !t.events.is_empty() => {
                    let mut next = last.clone();
                    next.broken = Some(STALE);
                    Some(next)
                }
                Ok(_) | Err(_) => None,
            };
        }
        // `after` is the core with the step's events applied, which also
        // showed, inside the panic guard, that they apply.
        let (t, after) = result.ok()?;
        if t.events.is_empty() {
            return None;
        }
        let mut next = last.clone();
        next.now = now;
        Self::spend(&mut next.budget, &action);
        if let Action::Submit(_) = action {
            next.submitted += 1;
        }
        // Ghost bookkeeping reads each event against the state just before
        // it.
        let mut at = last.core.clone();
        for e in &t.events {
            if let Event::JobRetired { job } = e
                && let Phase::Ended(outcome) = at.jobs[job].phase
                && self.scope.is_dependency(*job)
            {
                next.retired.insert(*job, outcome);
            }
            match e {
                Event::JobEnded { outcome, .. } if *outcome == aquifer_core::Outcome::Succeeded => {
                    next.seen |= SEEN_SUCCESS;
                }
                Event::LeaseEnded {
                    lease,
                    cause: aquifer_core::LeaseEnd::Expired,
                } if next.seen & SEEN_SERVED_AFTER_EXPIRY == 0 => {
                    let l = &at.leases[lease];
                    next.expired.insert((l.job, l.group));
                }
                Event::GroupReady { job, group } if next.expired.remove(&(*job, *group)) => {
                    next.seen |= SEEN_SERVED_AFTER_EXPIRY;
                    // Seen once is enough: stop telling states apart by it.
                    next.expired.clear();
                }
                Event::JobRetired { job } => next.expired.retain(|(j, _)| j != job),
                _ => {}
            }
            apply(&mut at, e);
        }
        debug_assert_eq!(at, after);
        next.core = after;
        next.broken = Self::check_transition(&last.core, &next.core, &t.events, &t.effects);
        next.log = last.log.push(t.events);
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut props = vec![
            Property::always(NO_PANIC, |_, s: &ModelState| s.broken != Some(NO_PANIC)),
            Property::always(INVARIANTS, |_, s: &ModelState| {
                invariants::check(&s.core).is_ok()
            }),
            Property::always(NO_DEADLOCK, |m: &AquiferModel, s: &ModelState| {
                m.done(s) || m.can_progress(s)
            }),
            Property::always(RUNS_WITH_ALL, |_, s: &ModelState| runs_with_all(&s.core)),
            Property::always(RANK_ORDER, |_, s: &ModelState| rank_order(&s.core)),
            Property::always(POOLS, |m: &AquiferModel, s: &ModelState| {
                m.pools_within_capacity(&s.core)
            }),
            Property::always(CONFIRMED, |_, s: &ModelState| s.broken != Some(CONFIRMED)),
            Property::always(EFFECTS, |_, s: &ModelState| s.broken != Some(EFFECTS)),
            Property::sometimes(SUCCEEDS, |_, s: &ModelState| s.seen & SEEN_SUCCESS != 0),
        ];
        if self.faults == Faults::All {
            props.extend([
                Property::always(STALE, |_, s: &ModelState| s.broken != Some(STALE)),
                Property::always(REPLAY, |_, s: &ModelState| s.broken != Some(REPLAY)),
                Property::sometimes(SERVED_AFTER_EXPIRY, |_, s: &ModelState| {
                    s.seen & SEEN_SERVED_AFTER_EXPIRY != 0
                }),
                Property::sometimes(RESTART_MID_ACQUISITION, |_, s: &ModelState| {
                    s.seen & SEEN_RESTART_MID_ACQUISITION != 0
                }),
            ]);
        }
        props
    }
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
        actions.into_iter().any(|a| {
            self.next_state(s, a)
                .is_some_and(|n| n.core != s.core || n.submitted != s.submitted)
        })
    }

    fn pools_within_capacity(&self, core: &State) -> bool {
        self.scope.wells.iter().enumerate().all(|(i, pools)| {
            pools.iter().all(|(types, capacity)| {
                let used = core
                    .resources
                    .values()
                    .filter(|r| r.well == well_id(i) && types.contains(&r.rtype.as_str()))
                    .count();
                used <= usize::from(*capacity)
            })
        })
    }
}

/// A running job holds every instance it asked for, ready, and its worker,
/// online.
fn runs_with_all(core: &State) -> bool {
    core.jobs.iter().all(|(&id, job)| {
        if job.phase != Phase::Running {
            return true;
        }
        let groups_whole = job.groups.iter().enumerate().all(|(g, group)| {
            let ready = core
                .resources
                .values()
                .filter(|r| {
                    r.job == id && usize::from(r.group) == g && r.state == ResourceState::Ready
                })
                .count();
            ready == usize::from(group.count)
        });
        let worker_online = matches!(job.worker, WorkerWant::Bound(w)
            if core.workers.get(&w).is_some_and(|w| w.job == id && w.state == WorkerState::Online));
        groups_whole && worker_online
    })
}

/// A job never waits for a type ranked at or below one it holds, and never
/// waits for a resource while it holds a worker (the worker ranks last).
fn rank_order(core: &State) -> bool {
    let waiting = aquifer_core::lease::waiting(core);
    waiting.iter().all(|c| {
        let job = &core.jobs[&c.job];
        let holds_worker = matches!(job.worker, WorkerWant::Bound(w)
            if core.workers.get(&w).is_some_and(|w| w.state != WorkerState::Releasing));
        let holds_at_or_above = core
            .resources
            .values()
            .any(|r| r.job == c.job && r.state.is_live() && r.rtype >= c.rtype);
        !holds_worker && !holds_at_or_above
    })
}
