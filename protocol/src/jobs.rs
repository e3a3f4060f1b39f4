//! The user API's jobs (`docs/api.md`, "Users"; `docs/jobs.md`): the job
//! file a submission carries, and what submitting, listing, showing,
//! cancelling, watching and explaining a job answer. The CLI reads the
//! job file from TOML, the server from JSON; both are this type.

use crate::user::UserId;
use crate::{JobId, ResourceId, TargetId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use aquifer_core::{Event, Failure, LeaseEnd, Outcome, RunOn};

/// `POST /0/jobs`: a job as a user writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub name: String,
    pub target: TargetId,
    #[serde(default)]
    pub resources: Vec<ResourceRequest>,
    pub tasks: Vec<Task>,
    pub timeout_s: u64,
    /// The jobs this one waits for: each a job id (run once it has
    /// succeeded) or `{ job = ID, on = "success" | "failure" | "either",
    /// copy_outputs = true, name = "build" }`.
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    /// Files its submitter uploads after submitting it (`aquifer job
    /// submit --input NAME=FILE`): the job acquires nothing until all are
    /// whole, and its agent places them in its input directory. Names
    /// follow `outputs::input_name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// Labels to find the job by (`repo`, `commit`): at most 32, keys of
    /// letters, digits, `_`, `.` and `-` (at most 63), values of at most
    /// 256 bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The job's store as it starts: `bmat store get KEY` reads it, and
    /// tasks may `bmat store put` more. At most 100 keys, values of at
    /// most 64 KiB.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub store: BTreeMap<String, StoreSetting>,
    /// What the job keeps when its tasks end (`crate::outputs::OutputRule`):
    /// `["=report.xml", "%logs/*.log", "target/release/*", "!tmp/*"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_rules: Vec<String>,
}

/// One entry of a job file's `depends_on`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Dependency {
    /// Run once this job has succeeded.
    Job(JobId),
    Full(DependencySpec),
}

/// A dependency with its conditions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DependencySpec {
    pub job: JobId,
    /// How it must end for this job to run; otherwise this job fails.
    #[serde(default)]
    pub on: RunOn,
    /// Its outputs are placed in this job's input directory, under
    /// `name`.
    #[serde(default)]
    pub copy_outputs: bool,
    /// The directory its outputs go in (by default its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Dependency {
    #[must_use]
    pub fn job(&self) -> JobId {
        match self {
            Dependency::Job(job) => *job,
            Dependency::Full(d) => d.job,
        }
    }

    #[must_use]
    pub fn on(&self) -> RunOn {
        match self {
            Dependency::Job(_) => RunOn::Success,
            Dependency::Full(d) => d.on,
        }
    }

    /// Where its outputs go in the input directory, if they are copied.
    #[must_use]
    pub fn copied_to(&self) -> Option<String> {
        match self {
            Dependency::Full(d) if d.copy_outputs => {
                Some(d.name.clone().unwrap_or_else(|| d.job.0.to_string()))
            }
            _ => None,
        }
    }
}

/// A value of a job's store as a job file sets it: a string, or
/// `{ value = "...", secret = true }` for one that is never shown outside
/// the job (not in events, listings, logs or the dashboard) and is deleted
/// when the job ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum StoreSetting {
    Plain(String),
    Full(StoreValue),
}

impl StoreSetting {
    #[must_use]
    pub fn value(&self) -> StoreValue {
        match self {
            StoreSetting::Plain(value) => StoreValue {
                value: value.clone(),
                secret: false,
            },
            StoreSetting::Full(v) => v.clone(),
        }
    }
}

/// `GET` and `POST /0/job/store/{key}`: one value of the running job's
/// store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StoreValue {
    pub value: String,
    #[serde(default)]
    pub secret: bool,
}

/// `GET /0/job/store`: the running job's keys, each with whether it is
/// secret; values are read one at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoreKeys {
    pub keys: BTreeMap<String, bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResourceRequest {
    /// How the job's scripts refer to it (`bmat resource get NAME`).
    pub name: String,
    /// The type's name. TODO-cleanup: a `TypeId`, once the server's agent
    /// API stops wrapping it in one itself (`api/agent.rs`).
    #[serde(rename = "type")]
    pub rtype: String,
    #[serde(default = "one")]
    pub count: u16,
}

fn one() -> u16 {
    1
}

/// One script the agent runs, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub name: String,
    pub script: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// The answer to a submission (`201`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Submitted {
    pub id: JobId,
}

/// Where a job is, as listings show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for the jobs it depends on.
    Waiting,
    /// In a type's queue, waiting for its turn.
    Queued,
    /// A lease is out for it: a well is creating its resources.
    Acquiring,
    /// It holds all its resources and waits for a worker.
    WaitingForWorker,
    Running,
    Ended,
    /// A state this client does not know (a newer server).
    #[serde(other)]
    Other,
}

impl std::fmt::Display for JobState {
    /// The name on the wire (and in the server's books).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.serialize(f)
    }
}

impl JobState {
    /// Every state a job can be in, in the order a job passes them.
    pub const ALL: [JobState; 6] = [
        JobState::Waiting,
        JobState::Queued,
        JobState::Acquiring,
        JobState::WaitingForWorker,
        JobState::Running,
        JobState::Ended,
    ];

    /// Every state's name, as a listing's filter takes them.
    pub const NAMES: &str = "waiting, queued, acquiring, waiting_for_worker, running or ended";

    /// The state in words: `waiting for a worker`.
    #[must_use]
    pub fn words(self) -> String {
        match self {
            JobState::WaitingForWorker => "waiting for a worker".into(),
            other => other.to_string(),
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;

    /// One of the four states; anything else is refused.
    fn from_str(s: &str) -> Result<JobState, String> {
        match by_name(s, JobState::Other) {
            JobState::Other => Err(format!(
                "no job state is named {s:?}: use {}",
                JobState::NAMES
            )),
            state => Ok(state),
        }
    }
}

/// `GET /0/jobs/{id}`, and the answer to a cancellation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobView {
    pub id: JobId,
    pub name: String,
    pub owner: UserId,
    /// `admin` for the bootstrap admin's jobs.
    #[serde(default)]
    pub owner_name: String,
    pub state: JobState,
    pub outcome: Option<Outcome>,
    /// Why it failed, in words, when a well or its tasks said.
    pub reason: Option<String>,
    /// The tags it was submitted with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// `GET /0/jobs`: the query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<JobState>,
    /// A user's name or id; another user's jobs need `admin.jobs`.
    pub owner: Option<String>,
    /// Only jobs with this tag: `KEY=VALUE`.
    pub tag: Option<String>,
    /// Only jobs older than this one (the next page).
    pub before: Option<JobId>,
    /// 1 to `PAGE_MAX`; 100 if absent.
    pub limit: Option<u32>,
}

/// The largest page of a listing or a watch.
pub const PAGE_MAX: u32 = 1000;

/// One job of a listing (newest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ListedJob {
    pub id: JobId,
    pub owner: UserId,
    /// `admin` for the bootstrap admin's jobs.
    pub owner_name: String,
    pub name: String,
    pub state: JobState,
    pub outcome: Option<Outcome>,
    pub submitted_ms: u64,
}

/// `GET /0/jobs/{id}/events`: the query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    /// The last entry already seen; 0 for the whole stream.
    #[serde(default)]
    pub after: u64,
    /// How long to wait for a new entry when there is none yet (at most
    /// `WAIT_MS_MAX`).
    #[serde(default)]
    pub wait_ms: u64,
    /// 1 to `PAGE_MAX`; the most if absent.
    pub limit: Option<u32>,
}

/// A page of a job's stream. `E` is the entry: `Entry`, or a
/// `serde_json::Value` for a reader that passes entries on as they came.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Watched<E = Entry> {
    pub events: Vec<E>,
    /// Pass as `after` to continue.
    pub next: u64,
    /// The job has ended, and this page reaches the end of its stream:
    /// nothing but its clean-up follows.
    pub ended: bool,
    /// The names of the wells and factories the page's entries name by id.
    #[serde(default, skip_serializing_if = "Names::is_empty")]
    pub names: Names,
}

/// Names of wells and factories by id, for entries that carry only ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Names {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wells: BTreeMap<crate::WellId, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub factories: BTreeMap<crate::FactoryId, String>,
}

impl Names {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.wells.is_empty() && self.factories.is_empty()
    }
}

/// One entry of a job's stream, numbered from 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Entry {
    pub n: u64,
    pub at_ms: u64,
    pub event: StreamEvent,
}

/// What an entry tells, tagged by its `event` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum StreamEvent {
    /// A fact the scheduler decided, as the core records it.
    Scheduled(Event),
    /// What the server notes beside the scheduler's facts.
    Noted(Note),
    /// A kind this client does not know (a newer server, or an entry an
    /// older one wrote): kept as it came, since nothing about its fields
    /// is known but the `event` tag.
    Other(serde_json::Value),
}

/// The server's own entries in a job's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Note {
    /// A piece of a task's output.
    Output {
        task: String,
        stream: crate::agent::Stream,
        text: String,
    },
    /// The job wrote more than the server keeps.
    OutputDropped { task: String, reason: String },
    /// The job's outputs were deleted (the server keeps them for a time).
    OutputsDeleted { reason: String },
    /// A well could not create a resource, and said why.
    ResourceFailed {
        resource: ResourceId,
        retryable: bool,
        reason: String,
    },
}

impl From<serde_json::Value> for StreamEvent {
    /// An entry as the server stored it.
    fn from(body: serde_json::Value) -> StreamEvent {
        StreamEvent::deserialize(&body).unwrap_or(StreamEvent::Other(body))
    }
}

/// The variant that `name` names on the wire, or `other`: for states that
/// reach the server as names (the store's job states, the core's
/// explanations).
pub(crate) fn by_name<T: DeserializeOwned>(name: &str, other: T) -> T {
    use serde::de::value::{Error, StrDeserializer};
    T::deserialize(StrDeserializer::<Error>::new(name)).unwrap_or(other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{admin, user};
    use serde_json::{Value, json};

    /// The JSON examples of `docs/api.md`, in order.
    fn documented() -> Vec<Value> {
        let doc = include_str!("../../docs/api.md");
        (doc.split("```json\n").skip(1))
            .map(|block| block.split("```").next().unwrap_or_default())
            .map(|text| serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}")))
            .collect()
    }

    /// Reads `v` as a `T` and writes it back: the same JSON.
    fn round_trip<T: Serialize + DeserializeOwned>(v: &Value) {
        let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
        assert_eq!(&serde_json::to_value(&t).expect("serialises"), v);
    }

    #[test]
    fn every_example_of_the_api_doc_reads_as_its_type_and_writes_back_the_same() {
        let readers: [fn(&Value); 14] = [
            round_trip::<JobFile>,
            round_trip::<Submitted>,
            round_trip::<JobView>,
            round_trip::<ListedJob>,
            round_trip::<Watched>,
            round_trip::<user::Explained>,
            round_trip::<user::Whoami>,
            round_trip::<admin::NewWell>,
            round_trip::<admin::Registered<crate::WellId>>,
            round_trip::<Vec<admin::WellView>>,
            round_trip::<admin::NewUser>,
            round_trip::<admin::PrivilegeChange>,
            round_trip::<admin::IssuedToken>,
            round_trip::<Vec<admin::ResourceView>>,
        ];
        let examples = documented();
        assert_eq!(examples.len(), readers.len(), "one reader per example");
        for (example, read) in examples.iter().zip(readers) {
            read(example);
        }
    }

    #[test]
    fn stream_entries_are_the_schedulers_facts_the_servers_notes_or_kept_as_they_came() {
        let page: Watched = serde_json::from_value(json!({"events": [
            {"n": 1, "at_ms": 5, "event": {"event": "job_ended", "job": 4, "outcome": "cancelled"}},
            {"n": 2, "at_ms": 6, "event": {"event": "resource_failed", "resource": 11,
                "retryable": false, "reason": "no"}},
            {"n": 3, "at_ms": 7, "event": {"event": "comet_sighted", "tail": 3}}
        ], "next": 3, "ended": true, "new_field": 1}))
        .expect("a page");
        let events: Vec<&StreamEvent> = page.events.iter().map(|e| &e.event).collect();
        assert!(matches!(
            events[0],
            StreamEvent::Scheduled(Event::JobEnded {
                outcome: Outcome::Cancelled,
                ..
            })
        ));
        assert!(matches!(
            events[1],
            StreamEvent::Noted(Note::ResourceFailed {
                retryable: false,
                ..
            })
        ));
        let other = json!({"event": "comet_sighted", "tail": 3});
        assert_eq!(events[2], &StreamEvent::Other(other.clone()));
        assert_eq!(StreamEvent::from(other.clone()), StreamEvent::Other(other));
        let raw: Watched<Value> =
            serde_json::from_value(json!({"events": [{"n": 1}], "next": 1, "ended": false}))
                .expect("entries as they came");
        assert_eq!(raw.events, [json!({"n": 1})]);
    }

    #[test]
    fn requests_are_read_strictly_and_states_by_their_names() {
        let job = json!({"name": "j", "target": "t", "tasks": [], "timeout_s": 1, "colour": 1});
        assert!(serde_json::from_value::<JobFile>(job).is_err());
        let q: ListQuery = serde_json::from_value(json!({"state": "lost"})).expect("read");
        assert_eq!(q.state, Some(JobState::Other), "the server refuses it");
        assert!(serde_json::from_value::<WatchQuery>(json!({"afterwards": 1})).is_err());
        assert_eq!("ended".parse(), Ok(JobState::Ended));
        assert!("other".parse::<JobState>().is_err());
        assert!("lost".parse::<JobState>().is_err());
        for s in JobState::ALL {
            assert_eq!(serde_json::to_value(s).expect("json"), s.to_string());
            assert_eq!(s.to_string().parse(), Ok(s));
            assert!(JobState::NAMES.contains(&s.to_string()), "{s}");
        }
        assert_eq!(JobState::WaitingForWorker.to_string(), "waiting_for_worker");
        assert_eq!(JobState::WaitingForWorker.words(), "waiting for a worker");
        assert_eq!(JobState::Queued.words(), "queued");
    }

    #[test]
    fn outcomes_and_answers_tolerate_new_fields() {
        let shown: JobView = serde_json::from_value(json!({"id": 1, "name": "n", "owner": 0,
            "state": "paused", "outcome": {"failed": "worker_lost"}, "reason": null, "x": 1}))
        .expect("a job");
        assert_eq!(shown.state, JobState::Other);
        assert_eq!(shown.outcome, Some(Outcome::Failed(Failure::WorkerLost)));
    }
}
