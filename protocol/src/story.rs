//! A job's stream as a person reads it: one sentence per entry, with types,
//! names and spans of time rather than indexes, ids and milliseconds. The
//! CLI's `job watch` and the server's dashboard tell the same story.

use crate::jobs::{Entry, Event, LeaseEnd, Names, Note, StreamEvent};
use crate::{FactoryId, WellId};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What a job's stream is read against: the types of its groups in
/// acquisition order, learnt from its submission, so that a group reads as
/// its type (a stream read from the middle has groups by number); and the
/// names of the wells and factories that pages of the stream carry.
#[derive(Clone, Debug, Default)]
pub struct Story {
    types: Vec<String>,
    wells: BTreeMap<WellId, String>,
    factories: BTreeMap<FactoryId, String>,
}

impl Story {
    /// Learns the names a page of the stream carries.
    pub fn learn(&mut self, names: &Names) {
        self.wells.extend(names.wells.clone());
        self.factories.extend(names.factories.clone());
    }

    /// One entry as a line (several for output of several lines).
    pub fn tell(&mut self, entry: &Entry) -> String {
        let e = &entry.event;
        if let StreamEvent::Scheduled(Event::JobSubmitted { groups, .. }) = e {
            self.types = groups.iter().map(|(t, _)| t.to_string()).collect();
        }
        match e {
            StreamEvent::Scheduled(event) => self
                .scheduled(event, entry.at_ms)
                .unwrap_or_else(|| plain(e)),
            StreamEvent::Noted(Note::Output { task, stream, text }) => {
                let prefix = format!("[{task} {}]", cell(stream));
                (text.trim_end().lines())
                    .map(|l| format!("{prefix} {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            StreamEvent::Noted(Note::ResourceFailed {
                resource,
                retryable,
                reason,
            }) => {
                let again = if *retryable { "; it asks again" } else { "" };
                format!(
                    "resource #{} could not be made: {reason}{again}",
                    resource.0
                )
            }
            StreamEvent::Noted(Note::OutputDropped { task, reason }) => {
                format!("output of {task} dropped: {reason}")
            }
            StreamEvent::Noted(Note::OutputsDeleted { reason }) => {
                format!("its outputs were deleted: {reason}")
            }
            StreamEvent::Other(_) => plain(e),
        }
    }

    fn group(&self, group: u8) -> String {
        (self.types.get(usize::from(group))).map_or_else(|| format!("group {group}"), Clone::clone)
    }

    fn well(&self, well: WellId) -> String {
        self.wells
            .get(&well)
            .map_or_else(|| format!("well {}", well.0), |n| format!("well {n}"))
    }

    fn factory(&self, factory: FactoryId) -> String {
        (self.factories.get(&factory)).map_or_else(
            || format!("factory {}", factory.0),
            |n| format!("factory {n}"),
        )
    }

    /// The scheduler's facts that read as a sentence; the rest read plainly.
    fn scheduled(&self, e: &Event, at_ms: u64) -> Option<String> {
        Some(match e {
            Event::JobSubmitted {
                target,
                deadline,
                groups,
                ..
            } => {
                let wants: Vec<String> = groups.iter().map(|(t, n)| format!("{n} × {t}")).collect();
                let wants = if wants.is_empty() {
                    String::new()
                } else {
                    format!(", asking for {}", wants.join(" then "))
                };
                format!(
                    "submitted for {target}{wants}; its deadline is {} away",
                    span(deadline.ms().saturating_sub(at_ms))
                )
            }
            Event::DependencySettled { dependency, .. } => {
                format!(
                    "dependency job {} has ended as this job required",
                    dependency.0
                )
            }
            Event::InputsArrived { .. } => "its inputs are uploaded".into(),
            Event::AcquisitionBegan { .. } => "acquiring resources".into(),
            Event::GroupQueued { group, .. } => format!("queued for {}", self.group(*group)),
            Event::LeaseGranted {
                lease,
                rtype,
                well,
                resources,
                ..
            } => format!(
                "{} creates {} × {rtype} (lease {})",
                self.well(*well),
                resources.len(),
                lease.0
            ),
            Event::ResourceReady { resource } => format!("resource #{} ready", resource.0),
            Event::LeaseFulfilled { lease } => format!("lease {} fulfilled", lease.0),
            Event::LeaseEnded { lease, cause } => {
                let why = match cause {
                    LeaseEnd::Failed {
                        resource,
                        retryable: true,
                    } => format!("the well could not create #{}; it asks again", resource.0),
                    LeaseEnd::Failed { resource, .. } => {
                        format!("the well could not create #{}, for good", resource.0)
                    }
                    LeaseEnd::Expired => "the well went quiet; it asks again".into(),
                    LeaseEnd::JobEnded => "the job ended".into(),
                };
                format!("lease {} ended: {why}", lease.0)
            }
            Event::GroupReady { group, .. } => format!("{} ready", self.group(*group)),
            Event::WorkerQueued { .. } => "waiting for a worker".into(),
            Event::WorkerLeased {
                worker, factory, ..
            } => format!("{} makes worker {}", self.factory(*factory), worker.0),
            Event::WorkerCreated { worker } => format!("worker {} made", worker.0),
            Event::WorkerOnline { worker } => format!("worker {} online", worker.0),
            Event::WorkerLeaseExpired { worker } => {
                format!("worker {} was not made in time; it asks again", worker.0)
            }
            Event::JobStarted { .. } => "started".into(),
            Event::JobEnded { outcome, .. } => format!("ended: {outcome}"),
            Event::ResourceReleased { resource } => {
                format!("resource #{} released for destruction", resource.0)
            }
            Event::WorkerReleased { worker } => {
                format!("worker {} released for destruction", worker.0)
            }
            Event::DestroyFailed { resource } => {
                format!(
                    "resource #{} could not be destroyed; its well tries again",
                    resource.0
                )
            }
            Event::ResourceHeld { resource } => {
                format!(
                    "resource #{} held for an operator: its well gave up destroying it",
                    resource.0
                )
            }
            Event::HeldReleased { resource } => {
                format!("resource #{} released by an operator", resource.0)
            }
            Event::ResourceDestroyed { resource } => format!("resource #{} destroyed", resource.0),
            Event::WorkerDestroyed { worker } => format!("worker {} destroyed", worker.0),
            Event::JobRetired { .. } => "retired: everything it held is gone".into(),
            _ => return None,
        })
    }
}

/// A span of time as a person says it: `45 s`, `12 min`, `2 h 5 min`.
#[must_use]
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// An entry as its kind in words and its other fields as JSON.
fn plain(e: &StreamEvent) -> String {
    let mut rest = serde_json::to_value(e).unwrap_or_default();
    let kind = (rest.as_object_mut())
        .and_then(|m| m.remove("event"))
        .and_then(|k| k.as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!("{} {rest}", kind.replace('_', " "))
}

/// A value as a cell, by its JSON: a string bare, nothing as `-`, anything
/// else as compact JSON.
#[must_use]
pub fn cell(v: &impl Serialize) -> String {
    match serde_json::to_value(v).unwrap_or_default() {
        Value::Null => "-".into(),
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// An enum as a person reads it, by its JSON: a name bare (`cancelled`), a
/// name with data as `name: data` (`failed: tasks`), nothing as `-`.
#[must_use]
pub fn tagged(v: &impl Serialize) -> String {
    match serde_json::to_value(v).unwrap_or_default() {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}: {}", cell(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => cell(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{Failure, Outcome};
    use serde_json::json;

    #[test]
    fn cells_show_values_as_the_json_showed_them() {
        assert_eq!(cell(&None::<u32>), "-");
        assert_eq!(cell(&"pg"), "pg");
        assert_eq!(cell(&["a", "b"]), r#"["a","b"]"#);
        assert_eq!(tagged(&Outcome::Failed(Failure::Tasks)), "failed: tasks");
        assert_eq!(tagged(&Outcome::TimedOut), "timed_out");
        assert_eq!(tagged(&None::<Outcome>), "-");
    }

    #[test]
    fn events_read_as_sentences() {
        let mut story = Story::default();
        let read = |story: &mut Story, v: Value| {
            let entry = Entry {
                n: 1,
                at_ms: 1_000,
                event: StreamEvent::from(v),
            };
            story.tell(&entry)
        };
        let queued = json!({"event": "group_queued", "job": 1, "group": 0});
        assert_eq!(read(&mut story, queued.clone()), "queued for group 0");
        let e = json!({"event": "job_submitted", "job": 1, "target": "t", "deadline": 3_601_000,
            "groups": [["pg", 2], ["probe", 1]], "depends_on": [], "owner": 0});
        assert_eq!(
            read(&mut story, e),
            "submitted for t, asking for 2 × pg then 1 × probe; its deadline is 1 h 0 min away"
        );
        assert_eq!(read(&mut story, queued), "queued for pg");
        let ready = |g: u8| json!({"event": "group_ready", "job": 1, "group": g});
        assert_eq!(read(&mut story, ready(1)), "probe ready");
        assert_eq!(read(&mut story, ready(2)), "group 2 ready");
        assert_eq!(
            (span(59_999), span(60_000), span(7_500_000)),
            ("59 s".into(), "1 min".into(), "2 h 5 min".into())
        );
        let e = json!({"event": "lease_granted", "lease": 9, "job": 1, "group": 0,
            "rtype": "pg", "well": 2, "resources": [4, 5], "expires_at": 7});
        assert_eq!(
            read(&mut story, e.clone()),
            "well 2 creates 2 × pg (lease 9)"
        );
        let leased = json!({"event": "worker_leased", "job": 1, "worker": 6, "factory": 3,
            "target": "t", "expires_at": 7});
        assert_eq!(read(&mut story, leased.clone()), "factory 3 makes worker 6");
        let mut names = Names::default();
        names.wells.insert(WellId(2), "pg-1".into());
        names.factories.insert(FactoryId(3), "local".into());
        story.learn(&names);
        assert_eq!(read(&mut story, e), "well pg-1 creates 2 × pg (lease 9)");
        assert_eq!(read(&mut story, leased), "factory local makes worker 6");
        let e = json!({"event": "resource_failed", "resource": 4, "retryable": false,
            "reason": "quota"});
        assert_eq!(read(&mut story, e), "resource #4 could not be made: quota");
        let e = json!({"event": "job_ended", "job": 1, "outcome": {"failed": "tasks"}});
        assert_eq!(read(&mut story, e), "ended: failed: its tasks");
        let e = json!({"event": "lease_ended", "lease": 3,
            "cause": {"failed": {"resource": 4, "retryable": true}}});
        assert_eq!(
            read(&mut story, e),
            "lease 3 ended: the well could not create #4; it asks again"
        );
        let e = json!({"event": "lease_ended", "lease": 3, "cause": "expired"});
        assert_eq!(
            read(&mut story, e),
            "lease 3 ended: the well went quiet; it asks again"
        );
        let e = json!({"event": "output", "task": "t", "stream": "stderr", "text": "a\nb\n"});
        assert_eq!(read(&mut story, e), "[t stderr] a\n[t stderr] b");
        assert_eq!(
            read(&mut story, json!({"event": "worker_created", "worker": 3})),
            "worker 3 made"
        );
        assert_eq!(
            read(&mut story, json!({"event": "resource_held", "resource": 3})),
            "resource #3 held for an operator: its well gave up destroying it"
        );
        assert_eq!(
            read(
                &mut story,
                json!({"event": "dependency_settled", "job": 1, "dependency": 2, "outcome": "succeeded"})
            ),
            "dependency job 2 has ended as this job required"
        );
        assert_eq!(
            read(&mut story, json!({"event": "comet_sighted", "tail": 1})),
            r#"comet sighted {"tail":1}"#
        );
    }
}
