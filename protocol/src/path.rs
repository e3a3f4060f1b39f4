//! The paths of every endpoint, so that no client spells one by hand. The
//! server's router (`aquifer-server`, `api/route.rs`) resolves exactly
//! these; a test there walks this list.

use crate::{JobId, LeaseId, ResourceId, WorkerId};

pub const WHOAMI: &str = "/0/whoami";

pub const JOBS: &str = "/0/jobs";
#[must_use]
pub fn job(id: JobId) -> String {
    format!("/0/jobs/{}", id.0)
}
#[must_use]
pub fn job_cancel(id: JobId) -> String {
    format!("/0/jobs/{}/cancel", id.0)
}
#[must_use]
pub fn job_watch(id: JobId) -> String {
    format!("/0/jobs/{}/watch", id.0)
}
#[must_use]
pub fn job_explain(id: JobId) -> String {
    format!("/0/jobs/{}/explain", id.0)
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

/// Percent-encodes a path segment.
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
}
