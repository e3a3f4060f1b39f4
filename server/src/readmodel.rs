//! Read models: what the API lists and shows, projected from the core's
//! events and the payloads that came with the inputs (owners, names,
//! scripts: things the core's state does not keep). They are written in
//! the same transaction as the events, so they never disagree with the
//! log.

use aquifer_core::{Event, JobId, Outcome, State};
use serde::{Deserialize, Serialize};

/// What the store keeps beside an input: the parts of a request that the
/// core does not decide from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    Job(JobRecord),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub owner: u64,
    pub name: String,
    /// The whole submission as the user wrote it (tasks, names, env).
    pub spec: serde_json::Value,
}

/// The job states the read model shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Waiting,
    Acquiring,
    Running,
    Ended,
}

impl JobState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Acquiring => "acquiring",
            JobState::Running => "running",
            JobState::Ended => "ended",
        }
    }
}

/// One change to the read models.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    InsertJob {
        job: JobId,
        record: JobRecord,
        submitted_ms: u64,
    },
    JobState {
        job: JobId,
        state: JobState,
        outcome: Option<Outcome>,
    },
    /// One entry of a job's watch stream, numbered per job from 1.
    JobEvent {
        job: JobId,
        at_ms: u64,
        body: serde_json::Value,
    },
}

/// The read-model writes that `event` implies, given the state just
/// before it and the payload that came with the input that caused it.
/// Every event about a job but lease renewals (routine while a well
/// creates) goes to the job's watch stream.
pub fn project(
    before: &State,
    event: &Event,
    payload: Option<&Payload>,
    now_ms: u64,
    out: &mut Vec<Write>,
) {
    if !matches!(event, Event::LeaseRenewed { .. })
        && let Some(job) = aquifer_core::explain::subject(before, event)
    {
        out.push(Write::JobEvent {
            job,
            at_ms: now_ms,
            body: serde_json::to_value(event).unwrap_or_default(),
        });
    }
    match event {
        Event::JobSubmitted { job, .. } => {
            if let Some(Payload::Job(record)) = payload {
                out.push(Write::InsertJob {
                    job: *job,
                    record: record.clone(),
                    submitted_ms: now_ms,
                });
            }
        }
        Event::AcquisitionBegan { job } => out.push(Write::JobState {
            job: *job,
            state: JobState::Acquiring,
            outcome: None,
        }),
        Event::JobStarted { job } => out.push(Write::JobState {
            job: *job,
            state: JobState::Running,
            outcome: None,
        }),
        Event::JobEnded { job, outcome } => out.push(Write::JobState {
            job: *job,
            state: JobState::Ended,
            outcome: Some(*outcome),
        }),
        _ => {}
    }
}
