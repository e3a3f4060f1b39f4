//! How long things take, read off the scheduler's own events as they
//! commit (all the events of a batch share its time):
//!
//! - a group's wait in its type's queue: queued, then granted a lease;
//! - a job's wait for a worker: all its resources ready, then a worker
//!   leased for it;
//! - the hand-off: a worker leased for the job, then the job started by
//!   that worker's agent (the factory's create and the agent's check-in);
//! - a resource's lifetime: granted, then confirmed destroyed.
//!
//! Fed by the driver after each commit, read by `/metrics`. Nothing here
//! decides anything. What was under way when this process started is not
//! timed: its beginning is in no event this process saw.

use aquifer_core::{Event, JobId, ResourceId, TargetId, Time, TypeId};
use std::collections::BTreeMap;

/// Bucket bounds of every span, in ms: 100 ms to 4 h.
pub const SPAN_BUCKETS_MS: [u64; 10] = [
    100, 500, 1_000, 5_000, 15_000, 60_000, 300_000, 900_000, 3_600_000, 14_400_000,
];

/// At most this many beginnings are remembered per kind; past that, new
/// ones are not timed (the core's own limits keep far fewer alive).
const TRACKED_MAX: usize = 100_000;

/// A histogram of spans: a count per bucket of `SPAN_BUCKETS_MS` (the last
/// for longer ones), their sum and their count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spans {
    pub buckets: [u64; SPAN_BUCKETS_MS.len() + 1],
    pub sum_ms: u64,
    pub count: u64,
}

impl Spans {
    fn observe(&mut self, ms: u64) {
        let i = (SPAN_BUCKETS_MS.iter())
            .position(|&b| ms <= b)
            .unwrap_or(SPAN_BUCKETS_MS.len());
        self.buckets[i] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.count += 1;
    }
}

/// The histograms of `Timings`, as `/metrics` reads them.
#[derive(Clone, Debug, Default)]
pub struct Histograms {
    pub type_wait: BTreeMap<TypeId, Spans>,
    pub target_wait: BTreeMap<TargetId, Spans>,
    pub handoff: Spans,
    pub lifetime: BTreeMap<TypeId, Spans>,
}

#[derive(Clone, Debug, Default)]
pub struct Timings {
    /// What each job asks for, from its submission.
    jobs: BTreeMap<JobId, (TargetId, Vec<TypeId>)>,
    queued: BTreeMap<(JobId, u8), Time>,
    waiting_for_worker: BTreeMap<JobId, Time>,
    handed_off: BTreeMap<JobId, Time>,
    granted: BTreeMap<ResourceId, (TypeId, Time)>,
    pub type_wait: BTreeMap<TypeId, Spans>,
    pub target_wait: BTreeMap<TargetId, Spans>,
    pub handoff: Spans,
    pub lifetime: BTreeMap<TypeId, Spans>,
}

fn remember<K: Ord, V>(map: &mut BTreeMap<K, V>, k: K, v: V) {
    if map.len() < TRACKED_MAX {
        map.insert(k, v);
    }
}

impl Timings {
    /// Takes in a committed batch's events, which happened `at`.
    pub fn observe(&mut self, events: &[Event], at: Time) {
        let since = |t: Time| at.ms().saturating_sub(t.ms());
        for e in events {
            match e {
                Event::JobSubmitted {
                    job,
                    target,
                    groups,
                    ..
                } => {
                    let types = groups.iter().map(|(t, _)| t.clone()).collect();
                    remember(&mut self.jobs, *job, (target.clone(), types));
                }
                Event::GroupQueued { job, group } => {
                    remember(&mut self.queued, (*job, *group), at);
                }
                Event::LeaseGranted {
                    job,
                    group,
                    rtype,
                    resources,
                    ..
                } => {
                    if let Some(q) = self.queued.remove(&(*job, *group)) {
                        let spans = self.type_wait.entry(rtype.clone()).or_default();
                        spans.observe(since(q));
                    }
                    for r in resources {
                        remember(&mut self.granted, *r, (rtype.clone(), at));
                    }
                }
                Event::WorkerQueued { job } => {
                    remember(&mut self.waiting_for_worker, *job, at);
                }
                Event::WorkerLeased { job, .. } => {
                    let queued = self.waiting_for_worker.remove(job);
                    if let (Some(q), Some((target, _))) = (queued, self.jobs.get(job)) {
                        let spans = self.target_wait.entry(target.clone()).or_default();
                        spans.observe(since(q));
                    }
                    remember(&mut self.handed_off, *job, at);
                }
                Event::JobStarted { job } => {
                    if let Some(leased) = self.handed_off.remove(job) {
                        self.handoff.observe(since(leased));
                    }
                }
                Event::JobEnded { job, .. } => {
                    self.queued.retain(|(j, _), _| j != job);
                    self.waiting_for_worker.remove(job);
                    self.handed_off.remove(job);
                }
                Event::JobRetired { job } => {
                    self.jobs.remove(job);
                }
                Event::ResourceDestroyed { resource } => {
                    if let Some((rtype, granted)) = self.granted.remove(resource) {
                        let spans = self.lifetime.entry(rtype).or_default();
                        spans.observe(since(granted));
                    }
                }
                _ => {}
            }
        }
    }

    /// A copy of the histograms (not of what is under way).
    #[must_use]
    pub fn spans(&self) -> Histograms {
        Histograms {
            type_wait: self.type_wait.clone(),
            target_wait: self.target_wait.clone(),
            handoff: self.handoff.clone(),
            lifetime: self.lifetime.clone(),
        }
    }

    /// How long the longest waiter of each type's queue, and of each
    /// target's, has waited by `now` (ms); types and targets nobody waits
    /// for are absent.
    #[must_use]
    pub fn oldest(&self, now: Time) -> (BTreeMap<TypeId, u64>, BTreeMap<TargetId, u64>) {
        let age = |t: &Time| now.ms().saturating_sub(t.ms());
        let mut types: BTreeMap<TypeId, u64> = BTreeMap::new();
        for ((job, group), t) in &self.queued {
            let rtype = (self.jobs.get(job)).and_then(|(_, g)| g.get(usize::from(*group)));
            if let Some(rtype) = rtype {
                let oldest = types.entry(rtype.clone()).or_default();
                *oldest = (*oldest).max(age(t));
            }
        }
        let mut targets: BTreeMap<TargetId, u64> = BTreeMap::new();
        for (job, t) in &self.waiting_for_worker {
            if let Some((target, _)) = self.jobs.get(job) {
                let oldest = targets.entry(target.clone()).or_default();
                *oldest = (*oldest).max(age(t));
            }
        }
        (types, targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aquifer_core::{FactoryId, LeaseId, Outcome, WellId, WorkerId};

    fn submitted(job: u32) -> Event {
        Event::JobSubmitted {
            job: JobId(job),
            owner: 0,
            target: TargetId::new("t"),
            deadline: Time(1_000_000),
            groups: vec![(TypeId::new("a"), 1), (TypeId::new("b"), 1)],
            depends_on: std::collections::BTreeSet::new(),
            run_on: std::collections::BTreeMap::new(),
            awaits_inputs: false,
        }
    }

    fn granted(job: u32, group: u8, rtype: &str, resource: u32) -> Event {
        Event::LeaseGranted {
            lease: LeaseId(resource),
            job: JobId(job),
            group,
            rtype: TypeId::new(rtype),
            well: WellId(1),
            resources: vec![ResourceId(resource)],
            expires_at: Time(0),
        }
    }

    #[test]
    fn each_span_runs_from_its_beginning_to_its_end() {
        let mut t = Timings::default();
        let job = JobId(1);
        t.observe(
            &[submitted(1), Event::GroupQueued { job, group: 0 }],
            Time(1_000),
        );
        let (types, targets) = t.oldest(Time(1_700));
        assert_eq!(types, BTreeMap::from([(TypeId::new("a"), 700)]));
        assert!(targets.is_empty());
        t.observe(&[granted(1, 0, "a", 5)], Time(1_800));
        t.observe(&[Event::GroupQueued { job, group: 1 }], Time(2_000));
        assert_eq!(
            t.oldest(Time(2_000)).0,
            BTreeMap::from([(TypeId::new("b"), 0)])
        );
        t.observe(&[granted(1, 1, "b", 6)], Time(8_000));
        t.observe(&[Event::WorkerQueued { job }], Time(9_000));
        assert_eq!(
            t.oldest(Time(9_100)).1,
            BTreeMap::from([(TargetId::new("t"), 100)])
        );
        let leased = Event::WorkerLeased {
            worker: WorkerId(1),
            job,
            factory: FactoryId(1),
            expires_at: Time(0),
        };
        t.observe(&[leased], Time(9_600));
        t.observe(&[Event::JobStarted { job }], Time(12_000));
        t.observe(
            &[Event::ResourceDestroyed {
                resource: ResourceId(5),
            }],
            Time(70_000),
        );

        let one = |ms: u64| {
            let mut s = Spans::default();
            s.observe(ms);
            s
        };
        assert_eq!(t.type_wait[&TypeId::new("a")], one(800));
        assert_eq!(t.type_wait[&TypeId::new("b")], one(6_000));
        assert_eq!(t.target_wait[&TargetId::new("t")], one(600));
        assert_eq!(t.handoff, one(2_400));
        assert_eq!(t.lifetime[&TypeId::new("a")], one(68_200));
        assert!(
            !t.lifetime.contains_key(&TypeId::new("b")),
            "b is not destroyed yet"
        );
        assert_eq!(t.oldest(Time(99_000)), (BTreeMap::new(), BTreeMap::new()));
    }

    #[test]
    fn buckets_hold_spans_up_to_their_bound_and_the_last_the_rest() {
        let mut s = Spans::default();
        for ms in [0, 100, 101, 14_400_000, 14_400_001] {
            s.observe(ms);
        }
        assert_eq!(&s.buckets[..2], &[2, 1]);
        assert_eq!(s.buckets[SPAN_BUCKETS_MS.len() - 1], 1);
        assert_eq!(s.buckets[SPAN_BUCKETS_MS.len()], 1);
        assert_eq!((s.count, s.sum_ms), (5, 28_800_202));
    }

    #[test]
    fn an_ended_job_leaves_nothing_waiting_and_unknown_beginnings_are_not_timed() {
        let mut t = Timings::default();
        let job = JobId(2);
        t.observe(
            &[
                submitted(2),
                Event::GroupQueued { job, group: 0 },
                Event::WorkerQueued { job: JobId(3) },
            ],
            Time(0),
        );
        let ended = Event::JobEnded {
            job,
            outcome: Outcome::Cancelled,
        };
        t.observe(&[ended], Time(10));
        assert_eq!(
            t.oldest(Time(20)),
            (BTreeMap::new(), BTreeMap::new()),
            "job 3 was never submitted here"
        );
        // A grant, start or destruction whose beginning this process never
        // saw is not timed.
        t.observe(
            &[
                granted(9, 0, "a", 9),
                Event::JobStarted { job: JobId(9) },
                Event::ResourceDestroyed {
                    resource: ResourceId(8),
                },
            ],
            Time(30),
        );
        assert!(t.type_wait.is_empty() && t.lifetime.is_empty());
        assert_eq!(t.handoff.count, 0);
    }
}
