//! Counterexamples as readable steps ("job 1 acquires a#1 from well 1"),
//! and a closing line per job saying what it holds and waits for.

use crate::model::{Action, AquiferModel, ModelState};
use aquifer_core::job::{GroupState, Phase, WorkerWant};
use aquifer_core::{Event, LeaseEnd, ResourceId, State, step};
use stateright::Path;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Renders a path of the model, step by step.
#[must_use]
pub fn path(model: &AquiferModel, path: &Path<ModelState, Action>) -> String {
    let mut out = String::new();
    let mut names: BTreeMap<ResourceId, String> = BTreeMap::new();
    let steps = path.clone().into_vec();
    let mut n = 0;
    for (state, action) in &steps {
        let Some(action) = action else { continue };
        n += 1;
        let lines = describe_action(model, state, action, &mut names);
        for (i, line) in lines.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "{n:>3}. {line}");
            } else {
                let _ = writeln!(out, "     {line}");
            }
        }
    }
    if let Some((last, _)) = steps.last() {
        out.push_str(&summary(&last.core, &names));
    }
    out
}

fn describe_action(
    model: &AquiferModel,
    state: &ModelState,
    action: &Action,
    names: &mut BTreeMap<ResourceId, String>,
) -> Vec<String> {
    if *action == Action::Wait {
        let at = aquifer_core::next_deadline(&state.core).unwrap_or(state.now);
        return vec![format!("time passes to {at}, before any tick")];
    }
    let Some(input) = model.input_of(state, action) else {
        return vec![format!(
            "the server restarts and rebuilds its state from {} committed events",
            state.log.events().len()
        )];
    };
    if let Action::Stale(_) = action {
        return vec![format!("a stale report arrives and is accepted: {input:?}")];
    }
    let now = match action {
        Action::Tick => aquifer_core::next_deadline(&state.core).unwrap_or(state.now),
        _ => state.now,
    };
    let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        step(&state.core, input.clone(), now)
    }));
    let Ok(result) = stepped else {
        return vec![format!("the core panics on {input:?}")];
    };
    match result {
        Ok(t) => {
            // Each event is told against the state just after it.
            let mut at = state.core.clone();
            let mut lines = Vec::new();
            for e in &t.events {
                aquifer_core::apply(&mut at, e);
                lines.extend(event(&at, e, names));
            }
            if let Action::Tick = action {
                lines.insert(0, format!("time passes to {now}"));
            }
            lines
        }
        Err(r) => vec![format!("{action:?} is refused: {r}")],
    }
}

fn label(names: &BTreeMap<ResourceId, String>, r: ResourceId) -> String {
    names.get(&r).cloned().unwrap_or_else(|| format!("{r}"))
}

/// One event in words, or nothing for bookkeeping events.
fn event(after: &State, e: &Event, names: &mut BTreeMap<ResourceId, String>) -> Option<String> {
    Some(match e {
        Event::TypeDefined { .. }
        | Event::TargetDefined { .. }
        | Event::WellRegistered { .. }
        | Event::FactoryRegistered { .. }
        | Event::LeasesHeld { .. }
        | Event::LeaseRenewed { .. }
        | Event::LeaseFulfilled { .. }
        | Event::AcquisitionBegan { .. } => return None,
        Event::JobSubmitted {
            job,
            target,
            groups,
            depends_on,
            ..
        } => {
            let asks: Vec<String> = groups.iter().map(|(t, n)| format!("{t}×{n}")).collect();
            let deps = if depends_on.is_empty() {
                String::new()
            } else {
                let d: Vec<String> = depends_on.iter().map(ToString::to_string).collect();
                format!(", after {}", d.join(", "))
            };
            format!(
                "{job} is submitted for {target}, asking for {}{deps}",
                asks.join(", ")
            )
        }
        Event::DependencySettled { job, dependency } => {
            format!("{job} no longer waits for {dependency}")
        }
        Event::InputsArrived { job } => format!("{job} has its inputs"),
        Event::GroupQueued { job, group } => {
            format!("{job} waits for {}", group_label(after, *job, *group))
        }
        Event::LeaseGranted {
            job,
            rtype,
            well,
            resources,
            ..
        } => {
            let mut got = Vec::new();
            for r in resources {
                let name = format!("{rtype}{r}");
                names.insert(*r, name.clone());
                got.push(name);
            }
            format!("{job} acquires {} from {well}", got.join(", "))
        }
        Event::ResourceReady { resource } => format!("{} is ready", label(names, *resource)),
        Event::GroupReady { job, group } => {
            format!("{job} holds all of {}", group_label(after, *job, *group))
        }
        Event::LeaseEnded { lease, cause } => match cause {
            LeaseEnd::Expired => format!(
                "{lease} expires; what it covered is released and its group keeps its place"
            ),
            LeaseEnd::Failed {
                resource,
                retryable,
            } => format!(
                "creating {} fails ({}); {lease} ends",
                label(names, *resource),
                if *retryable { "retryable" } else { "permanent" }
            ),
            LeaseEnd::JobEnded => format!("{lease} ends with its job"),
        },
        Event::WorkerQueued { job } => format!("{job} waits for a worker"),
        Event::WorkerLeased {
            worker,
            job,
            factory,
            ..
        } => format!("{job} gets {worker} from {factory}"),
        Event::WorkerLeaseExpired { worker } => {
            format!("the lease of {worker} expires; its job waits again")
        }
        Event::WorkerCreated { worker } => format!("{worker} is created"),
        Event::WorkerOnline { worker } => format!("{worker} is online"),
        Event::JobStarted { job } => format!("{job} runs"),
        Event::JobEnded { job, outcome } => format!("{job} ends: {outcome:?}"),
        Event::ResourceReleased { resource } => format!("{} is released", label(names, *resource)),
        Event::WorkerReleased { worker } => format!("{worker} is released"),
        Event::DestroyFailed { resource } => {
            format!("destroying {} fails", label(names, *resource))
        }
        Event::ResourceHeld { resource } => {
            format!("{} is held for an operator", label(names, *resource))
        }
        Event::HeldReleased { resource } => {
            format!("an operator releases {}", label(names, *resource))
        }
        Event::ResourceDestroyed { resource } => {
            format!("{} is destroyed", label(names, *resource))
        }
        Event::WorkerDestroyed { worker } => format!("{worker} is destroyed"),
        Event::JobRetired { job } => format!("{job} leaves the books"),
    })
}

/// A group as "type×count".
fn group_label(state: &State, job: aquifer_core::JobId, group: u8) -> String {
    state
        .jobs
        .get(&job)
        .and_then(|j| j.groups.get(usize::from(group)))
        .map(|g| format!("{}×{}", g.rtype, g.count))
        .unwrap_or_default()
}

/// What each job still in the books holds and waits for.
fn summary(core: &State, names: &BTreeMap<ResourceId, String>) -> String {
    let mut out = String::new();
    for (&id, job) in &core.jobs {
        let mut held: Vec<String> = core
            .resources
            .iter()
            .filter(|(_, r)| r.job == id && r.state.is_live())
            .map(|(rid, _)| label(names, *rid))
            .collect();
        let mut waits: Vec<String> = job
            .groups
            .iter()
            .filter(|g| matches!(g.state, GroupState::Acquiring { .. }))
            .map(|g| g.rtype.to_string())
            .collect();
        match job.worker {
            WorkerWant::Queued => waits.push("a worker".into()),
            WorkerWant::Bound(w) if !job.is_ended() => held.push(w.to_string()),
            WorkerWant::Idle | WorkerWant::Bound(_) => {}
        }
        let phase = match job.phase {
            Phase::Blocked => "blocked".to_string(),
            Phase::Acquiring => "acquiring".to_string(),
            Phase::Running => "running".to_string(),
            Phase::Ended(o) => format!("ended {o:?}"),
        };
        let _ = writeln!(
            out,
            "     at the end: {id} ({phase}) holds [{}] and waits for [{}]",
            held.join(", "),
            waits.join(", ")
        );
    }
    out
}
