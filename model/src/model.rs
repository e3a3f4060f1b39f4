//! The stateright model: the core's own `step` and `apply`, driven by
//! every input the outside world could send in a bounded scope. Nothing
//! here decides who gets what; the model only chooses which input comes
//! next and checks what the core made of it.

use crate::properties::{
    CONFIRMED, DEADLINES, DEPENDENCIES, EFFECTS, FIFO, HOLD, INVARIANTS, NO_DEADLOCK, NO_PANIC,
    POOLS, RANK_ORDER, REPLAY, RESTART_MID_ACQUISITION, RUNS_WITH_ALL, SEEN_HELD, SEEN_LATE_INPUT,
    SEEN_MIXED_SIZES, SERVED_AFTER_EXPIRY, STALE, SUCCEEDS, WORKER_LAST, check_rules,
    check_transition, dependencies_honoured, ended_as, mixed_sizes_wait, rank_order, runs_with_all,
    worker_after_resources,
};
use crate::scope::Scope;
use aquifer_core::job::{GroupState, Phase};
use aquifer_core::{
    Event, FactoryId, Input, JobId, LeaseId, Limits, ResourceId, Rules, State, Time, WellId,
    WorkerId, apply, invariants, next_deadline, pending_effects, step,
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
pub const SEEN_LATE: u8 = 4;

/// What the model remembers only to witness its `sometimes` properties.
/// Like the log, it is left out of hashing and equality, so it never tells
/// two states apart: a state is explored once, with the memory of the
/// first path that reached it. That can only hide a witness (a `sometimes`
/// property then fails, loudly), never a violation, since no `always`
/// property and no action reads it.
#[derive(Clone, Debug, Default)]
pub struct Ghost {
    pub seen: u8,
    /// Groups whose lease expired, waiting to be served again.
    pub expired: BTreeSet<(JobId, u8)>,
}

impl Hash for Ghost {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl PartialEq for Ghost {
    fn eq(&self, _: &Ghost) -> bool {
        true
    }
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct ModelState {
    pub core: State,
    pub now: Time,
    /// How many of the scope's jobs have been submitted (in order).
    pub submitted: u8,
    /// The scope's late wells registered so far, one bit per well index.
    pub registered_late: u8,
    /// The jobs whose inputs the submitter has finished uploading, one
    /// bit per job index.
    pub inputs_sent: u8,
    pub budget: Budget,
    /// The outcomes of retired jobs of the scope's dependencies, as the
    /// server's store keeps them after the core forgets the job.
    pub retired: BTreeMap<JobId, aquifer_core::Outcome>,
    /// A check made on a transition that failed: the property it breaks.
    pub broken: Option<&'static str>,
    /// Set by a restart in the middle of an acquisition and cleared by the
    /// next transition: the witness of `restart-mid-acquisition`. Unlike
    /// the ghost it tells states apart, for one step only, because the
    /// same state is usually reached first by restarting earlier, which
    /// witnesses nothing.
    pub restarted_mid_acquisition: bool,
    pub ghost: Ghost,
    pub log: Log,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Submit(usize),
    /// The submitter of the scope's job (by index) has uploaded its inputs.
    InputsComplete(usize),
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
    /// Time reaches the next deadline, and inputs arrive before the tick
    /// that would act on it.
    Wait,
    Restart,
    /// An administrator holds leases (a fault: nothing may be granted),
    /// or lifts the hold (progress).
    Hold(bool),
    /// An administrator registers one of the scope's late wells.
    Register(usize),
    /// A well asks for a lease reporting more room than it has (it lost
    /// count, say after a restart) or less (something else uses it).
    SkewedLease(WellId, Skew),
    /// The same of a factory asking for a worker lease.
    SkewedWorker(FactoryId, Skew),
    /// A late, duplicate or misdirected report that the core must refuse.
    Stale(Input),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skew {
    /// Every pool's whole capacity.
    More,
    /// One less than the well's own count leaves.
    Less,
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
                | Action::Wait
                | Action::Restart
                | Action::Hold(true)
                | Action::SkewedLease(..)
                | Action::SkewedWorker(..)
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
pub fn model_limits(scope: &Scope) -> Limits {
    Limits {
        lease_ttl_ms: 10,
        worker_lease_ttl_ms: 20,
        group_failures_max: 2,
        destroy_failures_max: scope.destroy_failures_max,
        ..Limits::default()
    }
}

impl AquiferModel {
    #[must_use]
    pub fn new(scope: Scope, rules: Rules, faults: Faults) -> AquiferModel {
        let limits = model_limits(&scope);
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
            registered_late: 0,
            inputs_sent: 0,
            budget: Budget::for_faults(faults, scope.fault_budget),
            retired: BTreeMap::new(),
            broken: None,
            restarted_mid_acquisition: false,
            ghost: Ghost::default(),
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

    /// The server restarts: it rebuilds its state from the committed log
    /// through `apply`, which must give back exactly the state it had.
    fn restart(&self, last: &ModelState) -> ModelState {
        let mut next = last.clone();
        Self::spend(&mut next.budget, &Action::Restart, last);
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
        next.restarted_mid_acquisition = mid_acquisition;
        next.core = rebuilt;
        next
    }
}

impl ModelState {
    /// This state, marked as reached by a transition that broke `property`.
    fn broken_by(&self, property: &'static str) -> ModelState {
        let mut next = self.clone();
        next.broken = Some(property);
        next
    }
}

impl AquiferModel {
    /// The state after `events`, with the ghost bookkeeping done in the
    /// same pass: each event is read against the state just before it,
    /// then applied. The core is cloned once, here.
    fn apply_with_ghost(&self, last: &ModelState, events: &[Event]) -> ModelState {
        let mut next = ModelState {
            core: last.core.clone(),
            now: last.now,
            submitted: last.submitted,
            registered_late: last.registered_late,
            inputs_sent: last.inputs_sent,
            budget: last.budget,
            retired: last.retired.clone(),
            broken: None,
            restarted_mid_acquisition: false,
            ghost: last.ghost.clone(),
            log: Log::default(),
        };
        for e in events {
            let at = &next.core;
            if let Event::JobRetired { job } = e
                && let Phase::Ended(outcome) = at.jobs[job].phase
                && self.scope.is_dependency(*job)
            {
                next.retired.insert(*job, outcome);
            }
            match e {
                Event::JobEnded { outcome, .. } if *outcome == aquifer_core::Outcome::Succeeded => {
                    next.ghost.seen |= SEEN_SUCCESS;
                }
                Event::LeaseEnded {
                    lease,
                    cause: aquifer_core::LeaseEnd::Expired,
                } if next.ghost.seen & SEEN_SERVED_AFTER_EXPIRY == 0 => {
                    let l = &at.leases[lease];
                    next.ghost.expired.insert((l.job, l.group));
                }
                Event::GroupReady { job, group } if next.ghost.expired.remove(&(*job, *group)) => {
                    next.ghost.seen |= SEEN_SERVED_AFTER_EXPIRY;
                    // Seen once is enough: stop keeping track.
                    next.ghost.expired.clear();
                }
                Event::JobRetired { job } => next.ghost.expired.retain(|(j, _)| j != job),
                _ => {}
            }
            apply(&mut next.core, e);
        }
        next
    }
}

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
        if action == Action::Wait {
            let deadline = next_deadline(&last.core).filter(|&d| d > last.now)?;
            let mut next = last.clone();
            next.restarted_mid_acquisition = false;
            next.now = deadline;
            Self::spend(&mut next.budget, &action, last);
            return Some(next);
        }
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
            step(&last.core, input.clone(), now).map(|t| {
                if matches!(action, Action::Stale(_)) || t.events.is_empty() {
                    return (t, None);
                }
                let ghost = self.apply_with_ghost(last, &t.events);
                (t, Some(ghost))
            })
        }));
        let result = match stepped {
            Ok(result) => result,
            Err(_) => return Some(last.broken_by(NO_PANIC)),
        };
        if let Action::Stale(_) = action {
            return match result {
                Ok((t, _)) if !t.events.is_empty() => Some(last.broken_by(STALE)),
                Ok(_) | Err(_) => None,
            };
        }
        // The ghost's core is the core with the step's events applied,
        // which also showed, inside the panic guard, that they apply.
        let (t, ghost) = result.ok()?;
        let mut next = ghost?;
        next.now = now;
        Self::spend(&mut next.budget, &action, last);
        match action {
            Action::Submit(_) => next.submitted += 1,
            Action::InputsComplete(i) => next.inputs_sent |= 1 << i,
            Action::Register(i) => next.registered_late |= 1 << i,
            _ => {}
        }
        if action != Action::Tick && !crate::properties::nothing_due(&last.core, now) {
            next.ghost.seen |= SEEN_LATE;
        }
        next.broken = check_transition(&last.core, &next.core, &t.events, &t.effects)
            .or_else(|| check_rules(&last.core, &next.core, now, &input, &t.events));
        next.log = last.log.push(t.events);
        Some(next)
    }
    fn properties(&self) -> Vec<Property<Self>> {
        all(self)
    }
}

/// Every property of the model, named.
fn all(model: &AquiferModel) -> Vec<Property<AquiferModel>> {
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
            m.scope.pools_within_capacity(&s.core)
        }),
        Property::always(CONFIRMED, |_, s: &ModelState| s.broken != Some(CONFIRMED)),
        Property::always(EFFECTS, |_, s: &ModelState| s.broken != Some(EFFECTS)),
        Property::always(FIFO, |_, s: &ModelState| s.broken != Some(FIFO)),
        Property::always(DEADLINES, |_, s: &ModelState| s.broken != Some(DEADLINES)),
        Property::always(HOLD, |_, s: &ModelState| s.broken != Some(HOLD)),
        Property::always(WORKER_LAST, |_, s: &ModelState| {
            worker_after_resources(&s.core)
        }),
        Property::always(DEPENDENCIES, |m: &AquiferModel, s: &ModelState| {
            dependencies_honoured(
                &s.core,
                |job| m.scope.dependencies(job),
                |job| ended_as(&s.core, job).or_else(|| s.retired.get(&job).copied()),
                |job| !m.scope.awaits_inputs(job) || s.inputs_sent & (1 << (job.0 - 1)) != 0,
            )
        }),
        Property::sometimes(SUCCEEDS, |_, s: &ModelState| {
            s.ghost.seen & SEEN_SUCCESS != 0
        }),
    ];
    if model.scope.has_mixed_sizes() {
        props.push(Property::sometimes(
            SEEN_MIXED_SIZES,
            |_, s: &ModelState| mixed_sizes_wait(&s.core),
        ));
    }
    if model.faults == Faults::All {
        props.extend([
            Property::always(STALE, |_, s: &ModelState| s.broken != Some(STALE)),
            Property::always(REPLAY, |_, s: &ModelState| s.broken != Some(REPLAY)),
            Property::sometimes(SERVED_AFTER_EXPIRY, |_, s: &ModelState| {
                s.ghost.seen & SEEN_SERVED_AFTER_EXPIRY != 0
            }),
            Property::sometimes(RESTART_MID_ACQUISITION, |_, s: &ModelState| {
                s.restarted_mid_acquisition
            }),
            Property::sometimes(SEEN_HELD, |_, s: &ModelState| {
                (s.core.resources.values())
                    .any(|r| r.state == aquifer_core::resource::ResourceState::Held)
            }),
            Property::sometimes(SEEN_LATE_INPUT, |_, s: &ModelState| {
                s.ghost.seen & SEEN_LATE != 0
            }),
        ]);
    }
    props
}
