//! The paths of every endpoint, so that no client spells one by hand. The
//! server's router (`aquifer-server`, `api/route.rs`) resolves exactly
//! these; tests there (`api/jobs.rs`, `api/admin.rs`) walk the user and
//! admin paths and read the queries back.

use crate::jobs::{ListQuery, WatchQuery};
use crate::outputs::Sending;
use crate::user::UserId;
use crate::{FactoryId, JobId, LeaseId, ResourceId, WellId, WorkerId};

pub const WHOAMI: &str = "/0/whoami";
/// Every type's and target's queue and holdings.
pub const QUEUE: &str = "/0/queue";

/// `POST`: submit. A listing takes a query: `jobs_listed`.
pub const JOBS: &str = "/0/jobs";
/// `GET`: a page of the jobs the caller may see, newest first.
#[must_use]
pub fn jobs_listed(q: &ListQuery) -> String {
    let pairs = [
        ("state", q.state.map(|s| s.to_string())),
        ("owner", q.owner.clone()),
        ("tag", q.tag.clone()),
        ("before", q.before.map(|b| b.0.to_string())),
        ("limit", q.limit.map(|l| l.to_string())),
    ];
    with_query(JOBS, &pairs)
}
#[must_use]
pub fn job(id: JobId) -> String {
    format!("/0/jobs/{}", id.0)
}
#[must_use]
pub fn job_cancel(id: JobId) -> String {
    format!("/0/jobs/{}/cancel", id.0)
}
/// `GET`: a page of the job's stream.
#[must_use]
pub fn job_events(id: JobId, q: &WatchQuery) -> String {
    let pairs = [
        ("after", Some(q.after.to_string())),
        ("wait_ms", Some(q.wait_ms.to_string())),
        ("limit", q.limit.map(|l| l.to_string())),
    ];
    with_query(&format!("/0/jobs/{}/events", id.0), &pairs)
}
#[must_use]
pub fn job_explain(id: JobId) -> String {
    format!("/0/jobs/{}/explain", id.0)
}

/// `GET` the list, `POST` a definition; likewise targets, users, wells
/// and factories.
pub const ADMIN_TYPES: &str = "/0/admin/types";
pub const ADMIN_TARGETS: &str = "/0/admin/targets";
pub const ADMIN_USERS: &str = "/0/admin/users";
#[must_use]
pub fn admin_user_privileges(user: UserId) -> String {
    format!("/0/admin/users/{}/privileges", user.0)
}
/// `POST` a new token, `DELETE` them all.
#[must_use]
pub fn admin_user_tokens(user: UserId) -> String {
    format!("/0/admin/users/{}/tokens", user.0)
}
pub const ADMIN_WELLS: &str = "/0/admin/wells";
#[must_use]
pub fn admin_well_tokens(well: WellId) -> String {
    format!("/0/admin/wells/{}/tokens", well.0)
}
pub const ADMIN_FACTORIES: &str = "/0/admin/factories";
#[must_use]
pub fn admin_factory_tokens(factory: FactoryId) -> String {
    format!("/0/admin/factories/{}/tokens", factory.0)
}
pub const ADMIN_HOLD: &str = "/0/admin/hold";
pub const ADMIN_RESOURCES: &str = "/0/admin/resources";
#[must_use]
pub fn admin_resource_release(resource: ResourceId) -> String {
    format!("/0/admin/resources/{}/release", resource.0)
}

pub const WELL_LEASE: &str = "/0/well/lease";
#[must_use]
pub fn well_renew(lease: LeaseId) -> String {
    format!("/0/well/leases/{}/renew", lease.0)
}
#[must_use]
pub fn well_ready(resource: ResourceId) -> String {
    format!("/0/well/resources/{}/ready", resource.0)
}
#[must_use]
pub fn well_failed(resource: ResourceId) -> String {
    format!("/0/well/resources/{}/failed", resource.0)
}
pub const WELL_RESOURCES: &str = "/0/well/resources";
/// `DELETE`: the resource is gone.
#[must_use]
pub fn well_resource(resource: ResourceId) -> String {
    format!("/0/well/resources/{}", resource.0)
}
#[must_use]
pub fn well_destroy_failed(resource: ResourceId) -> String {
    format!("/0/well/resources/{}/destroy-failed", resource.0)
}

pub const FACTORY_LEASE: &str = "/0/factory/lease";
#[must_use]
pub fn factory_created(worker: WorkerId) -> String {
    format!("/0/factory/workers/{}/created", worker.0)
}
#[must_use]
pub fn factory_lost(worker: WorkerId) -> String {
    format!("/0/factory/workers/{}/lost", worker.0)
}
pub const FACTORY_WORKERS: &str = "/0/factory/workers";
/// `DELETE`: the worker is gone.
#[must_use]
pub fn factory_worker(worker: WorkerId) -> String {
    format!("/0/factory/workers/{}", worker.0)
}

pub const AGENT_BOOTSTRAP: &str = "/0/agent/bootstrap";
pub const AGENT_START: &str = "/0/agent/start";
pub const AGENT_OUTPUT: &str = "/0/agent/output";
#[must_use]
pub fn agent_control(wait_ms: u64) -> String {
    format!("/0/agent/control?wait_ms={wait_ms}")
}
pub const AGENT_FINISH: &str = "/0/agent/finish";

pub const JOB_RESOURCES: &str = "/0/job/resources";
/// One of the running job's resources by its name in the job file; the
/// name is one path segment however many `/` it holds (`db/0`).
#[must_use]
pub fn job_resource(name: &str) -> String {
    format!("/0/job/resources/{}", encode_segment(name))
}

/// `POST`: begin (or resume) sending an output.
pub const AGENT_OUTPUTS: &str = "/0/agent/outputs";
/// `POST`: begin (or resume) sending a file: the agent's job's output, or
/// (`GET`: list) a job's input.
#[must_use]
pub fn files(to: Sending) -> String {
    match to {
        Sending::Output => AGENT_OUTPUTS.to_string(),
        Sending::Input(job) => format!("/0/jobs/{}/inputs", job.0),
    }
}
/// `POST`: bytes of a file being sent, from `offset`.
#[must_use]
pub fn file_chunk(to: Sending, n: u32, offset: u64) -> String {
    format!("{}/{n}/chunk?offset={offset}", files(to))
}
/// `POST`: the file is whole.
#[must_use]
pub fn file_commit(to: Sending, n: u32) -> String {
    format!("{}/{n}/commit", files(to))
}
/// `GET`: what the agent places in the job's input directory before its
/// first task.
pub const AGENT_INPUTS: &str = "/0/agent/inputs";
/// `GET`: the bytes of one of them, by its number in that list.
#[must_use]
pub fn agent_input(n: u32) -> String {
    format!("/0/agent/inputs/{n}")
}
/// `GET`: a job's complete outputs.
#[must_use]
pub fn job_outputs(id: JobId) -> String {
    format!("/0/jobs/{}/outputs", id.0)
}
/// `GET`: one output's bytes (a `Range` header for part of them).
#[must_use]
pub fn job_output(id: JobId, output: u32) -> String {
    format!("/0/jobs/{}/outputs/{output}", id.0)
}

/// `GET`: the running job's store, keys only.
pub const JOB_STORE: &str = "/0/job/store";
/// `GET` or `POST` one value of the running job's store.
#[must_use]
pub fn job_store_key(key: &str) -> String {
    format!("/0/job/store/{}", encode_segment(key))
}

/// `path?k=v&...` with the pairs that have a value, each encoded.
fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = (pairs.iter())
        .filter_map(|(k, v)| Some(format!("{k}={}", encode_segment(v.as_deref()?))))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Percent-encodes a path segment (or a query value).
#[must_use]
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays.
#[must_use]
pub fn decode_segment(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_segment_and_decode_back() {
        assert_eq!(encode_segment("db/0"), "db%2F0");
        assert_eq!(encode_segment("plain-name_1.x~"), "plain-name_1.x~");
        assert_eq!(encode_segment("a b%"), "a%20b%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
        for s in ["db/0", "a b%", "é", "plain"] {
            assert_eq!(decode_segment(&encode_segment(s)), s);
        }
        assert_eq!(decode_segment("bad%zz"), "bad%zz");
        assert_eq!(job_resource("db/0"), "/0/job/resources/db%2F0");
    }

    #[test]
    fn queries_carry_what_is_set_encoded() {
        use crate::jobs::JobState;
        assert_eq!(jobs_listed(&ListQuery::default()), "/0/jobs");
        let q = ListQuery {
            state: Some(JobState::Ended),
            owner: Some("a b".into()),
            tag: Some("repo=oxide/aquifer".into()),
            before: Some(JobId(9)),
            limit: Some(5),
        };
        assert_eq!(
            jobs_listed(&q),
            "/0/jobs?state=ended&owner=a%20b&tag=repo%3Doxide%2Faquifer&before=9&limit=5"
        );
        let w = WatchQuery {
            after: 3,
            wait_ms: 25_000,
            limit: None,
        };
        assert_eq!(
            job_events(JobId(7), &w),
            "/0/jobs/7/events?after=3&wait_ms=25000"
        );
    }
}
