//! Read models: what the API lists and shows, projected from the core's
//! events and the payloads that came with the inputs (owners, names,
//! scripts: things the core's state does not keep). They are written in
//! the same transaction as the events, so they never disagree with the
//! log.

use aquifer_core::{Event, JobId, LeaseEnd, Outcome, ResourceId, State};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the store keeps beside an input: the parts of a request that the
/// core does not decide from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    Job(JobRecord),
    /// A well's report that a resource is ready: what the job reads.
    Ready {
        metadata: BTreeMap<String, String>,
        secrets: BTreeMap<String, String>,
    },
    /// Why a well could not create a resource, or why a job's tasks failed.
    Reason(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub owner: u64,
    pub name: String,
    /// The whole submission as the user wrote it (tasks, names, env),
    /// but for its store, which is kept apart (`store`).
    pub spec: serde_json::Value,
    /// The job's store as it starts, secret values among it.
    pub store: BTreeMap<String, aquifer_protocol::jobs::StoreValue>,
}

/// The job states the read model shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for the jobs it depends on.
    Waiting,
    /// In a type's queue, waiting for its turn (no lease out for it).
    Queued,
    /// A lease is out for it: a well is creating its resources.
    Acquiring,
    /// It holds all its resources and waits for a worker (or for the
    /// agent of the worker leased for it).
    WaitingForWorker,
    Running,
    Ended,
}

impl JobState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Queued => "queued",
            JobState::Acquiring => "acquiring",
            JobState::WaitingForWorker => "waiting_for_worker",
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
    /// Why the job failed, in words, for its owner.
    JobReason { job: JobId, reason: String },
    /// A ready resource's metadata and secrets.
    ResourceData {
        resource: ResourceId,
        job: JobId,
        metadata: BTreeMap<String, String>,
        secrets: BTreeMap<String, String>,
    },
    /// Released: its secrets are deleted (DESIGN.md's rule for secrets).
    ForgetSecrets { resource: ResourceId },
    /// Destroyed: nothing of it is kept.
    DeleteResourceData { resource: ResourceId },
    /// Why its well could not destroy it, the last time it said.
    ResourceReason {
        resource: ResourceId,
        reason: String,
    },
    /// An input that decided something, and where its events begin.
    Input {
        first_seq: u64,
        at_ms: u64,
        input: aquifer_core::Input,
    },
    /// A running job set a value of its store.
    StorePut {
        job: JobId,
        key: String,
        value: aquifer_protocol::jobs::StoreValue,
    },
    /// The job has ended: the secret values of its store are deleted.
    ForgetStoreSecrets { job: JobId },
    /// An output's or input's send began (or began again, at another
    /// size).
    OutputBegun {
        files: crate::store::Files,
        job: JobId,
        n: u32,
        path: String,
        size: u64,
        at_ms: u64,
    },
    /// A job's outputs and inputs are deleted (retention): their rows go.
    OutputsDeleted { job: JobId },
    /// An output or input is whole in the object store.
    OutputCommitted {
        files: crate::store::Files,
        job: JobId,
        n: u32,
        size: u64,
        sha256: String,
    },
    /// Every token of a principal stops working (a job that ended, a worker
    /// that is gone).
    RevokeTokens { kind: &'static str, subject: u64 },
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
        && let Some(job) = aquifer_core::effect::subject(before, event)
    {
        out.push(Write::JobEvent {
            job,
            at_ms: now_ms,
            body: serde_json::to_value(event).unwrap_or_default(),
        });
    }
    // A lease that ends (another instance of its group failed, it
    // expired, its job was cancelled) releases what it covers, ready
    // instances too: their job can no longer read them.
    // A job whose lease ended is back in its queue, to ask again (a job
    // that ended has its own end written after this).
    if let Event::LeaseEnded { lease, cause } = event
        && *cause != LeaseEnd::JobEnded
        && let Some(l) = before.leases.get(lease)
    {
        out.push(Write::JobState {
            job: l.job,
            state: JobState::Queued,
            outcome: None,
        });
    }
    if let Event::LeaseEnded { lease, .. } = event {
        for resource in before.leases.get(lease).map_or(&[][..], |l| &l.resources) {
            out.push(Write::ForgetSecrets {
                resource: *resource,
            });
        }
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
        // Where a job stands as its owner means it: its turn in a queue,
        // a lease out for it, a worker to come. The last of a batch wins.
        Event::AcquisitionBegan { job } | Event::GroupQueued { job, .. } => {
            out.push(Write::JobState {
                job: *job,
                state: JobState::Queued,
                outcome: None,
            });
        }
        Event::LeaseGranted { job, .. } => out.push(Write::JobState {
            job: *job,
            state: JobState::Acquiring,
            outcome: None,
        }),
        Event::WorkerQueued { job } => out.push(Write::JobState {
            job: *job,
            state: JobState::WaitingForWorker,
            outcome: None,
        }),
        Event::JobStarted { job } => out.push(Write::JobState {
            job: *job,
            state: JobState::Running,
            outcome: None,
        }),
        Event::JobEnded { job, outcome } => {
            out.push(Write::JobState {
                job: *job,
                state: JobState::Ended,
                outcome: Some(*outcome),
            });
            if let Some(Payload::Reason(reason)) = payload {
                out.push(Write::JobReason {
                    job: *job,
                    reason: reason.clone(),
                });
            }
            out.push(Write::RevokeTokens {
                kind: "job",
                subject: u64::from(job.0),
            });
            out.push(Write::ForgetStoreSecrets { job: *job });
        }
        Event::ResourceReady { resource } => {
            if let (Some(Payload::Ready { metadata, secrets }), Some(r)) =
                (payload, before.resources.get(resource))
            {
                out.push(Write::ResourceData {
                    resource: *resource,
                    job: r.job,
                    metadata: metadata.clone(),
                    secrets: secrets.clone(),
                });
            }
        }
        Event::LeaseEnded {
            lease,
            cause:
                LeaseEnd::Failed {
                    resource,
                    retryable,
                },
        } => {
            if let (Some(Payload::Reason(reason)), Some(l)) = (payload, before.leases.get(lease)) {
                out.push(Write::JobEvent {
                    job: l.job,
                    at_ms: now_ms,
                    body: serde_json::json!({
                        "event": "resource_failed",
                        "resource": resource,
                        "retryable": retryable,
                        "reason": reason,
                    }),
                });
                out.push(Write::JobReason {
                    job: l.job,
                    reason: reason.clone(),
                });
            }
        }
        Event::ResourceReleased { resource } => {
            out.push(Write::ForgetSecrets {
                resource: *resource,
            });
        }
        Event::DestroyFailed { resource } => {
            if let Some(Payload::Reason(reason)) = payload {
                out.push(Write::ResourceReason {
                    resource: *resource,
                    reason: reason.clone(),
                });
            }
        }
        Event::ResourceDestroyed { resource } => {
            out.push(Write::DeleteResourceData {
                resource: *resource,
            });
        }
        Event::WorkerDestroyed { worker } => {
            for kind in ["worker", "bootstrap"] {
                out.push(Write::RevokeTokens {
                    kind,
                    subject: u64::from(worker.0),
                });
            }
        }
        _ => {}
    }
}
