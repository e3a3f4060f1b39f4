//! A fake Oxide API, for the oxide well's tests and benchmark (a
//! dev-dependency of `aquifer-well-oxide`; no production crate uses it):
//! a warp server on loopback that answers the calls the well makes with
//! the `oxide` crate's own types and Nexus's status codes, keeps state,
//! enforces Nexus's ordering and authorization rules, and fails or
//! dawdles on demand.
//!
//! It is not Nexus: it implements what the well uses, the way the well
//! expects a rack to behave. The shapes come from the `oxide` crate; the
//! rules (who may do what, what blocks a deletion, which status a refusal
//! gets) are the fake's reading of Nexus, and `docs/wells.md` lists those
//! not checked against a rack.

mod auth;
mod door;
mod http;
mod projects;
mod route;
mod state;
mod system;
mod views;

pub use door::{Faults, Held};

use chrono::Utc;
use door::{HoldRec, Injected, Shared, lock};
use oxide::types::{IdentityType, SiloQuotasCreate, SiloRole, SiloRoleRoleAssignment};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use state::{CredKind, SiloRec, State};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;
use warp::http::Method;

/// A running fake. Dropping it stops the server.
pub struct FakeOxide {
    url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    serving: JoinHandle<()>,
}

impl Drop for FakeOxide {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.serving.abort();
    }
}

/// The fleet's own silo, where the fleet admin lives.
const OPS_SILO: &str = "oxide-ops";
/// The IP pool every fake fleet has.
pub const DEFAULT_POOL: &str = "default";

impl FakeOxide {
    /// Starts a fake on a free loopback port, with an operators' silo and
    /// a `default` IP pool.
    pub async fn start() -> std::io::Result<FakeOxide> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut st = State {
            stop_polls: 2,
            page_size: 3,
            ..State::default()
        };
        st.ip_pools.insert(DEFAULT_POOL.into(), Uuid::new_v4());
        let shared = Arc::new(Shared {
            state: Mutex::new(st),
            faults: Mutex::new((Faults::default(), StdRng::seed_from_u64(0))),
            injected: Mutex::new(Vec::new()),
            holds: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let fake = FakeOxide {
            url,
            serving: tokio::spawn(door::serve(shared.clone(), listener, shutdown)),
            shared,
            stop: Some(stop),
        };
        fake.add_silo(OPS_SILO);
        Ok(fake)
    }

    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many calls the fake has answered.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// Adds a local-only silo (not one the well made); its id.
    pub fn add_silo(&self, name: &str) -> Uuid {
        let mut st = lock(&self.shared.state);
        if let Some(s) = st.silo_by(name) {
            return s.id;
        }
        let silo = SiloRec {
            id: Uuid::new_v4(),
            name: name.into(),
            description: "made by the fake's setup".into(),
            quotas: SiloQuotasCreate {
                cpus: 64,
                memory: oxide::types::ByteCount(1 << 40),
                storage: oxide::types::ByteCount(1 << 42),
            },
            policy: Vec::new(),
            token_max_ttl_s: None,
            created: Utc::now(),
        };
        let id = silo.id;
        st.silos.insert(id, silo);
        id
    }

    /// A new user of `silo` with `role` on it (or none), and a token for it
    /// that does not expire. A fleet admin lives in the operators' silo.
    pub fn user_token(&self, silo: &str, name: &str, role: Option<SiloRole>) -> String {
        self.add_silo(silo);
        let mut st = lock(&self.shared.state);
        let silo_id = st.silo_by(silo).map(|s| s.id).unwrap_or_default();
        let user = system::add_user(&mut st, silo_id, name, false);
        if let (Some(role), Some(s)) = (role, st.silos.get_mut(&silo_id)) {
            s.policy.push(SiloRoleRoleAssignment {
                identity_id: user,
                identity_type: IdentityType::SiloUser,
                role_name: role,
            });
        }
        let token = auth::secret("oxide-token-");
        let cred = state::Cred {
            id: Uuid::new_v4(),
            kind: CredKind::Token,
            user,
            user_name: name.into(),
            expires: None,
        };
        st.creds.insert(token.clone(), cred);
        token
    }

    /// A token of a fleet admin (who is also admin of the operators' silo).
    pub fn fleet_admin_token(&self) -> String {
        let token = self.user_token(OPS_SILO, "fleet-admin", Some(SiloRole::Admin));
        let mut st = lock(&self.shared.state);
        let user = st.creds.get(&token).map(|c| c.user);
        if let Some(u) = user.and_then(|u| st.users.get_mut(&u)) {
            u.fleet_admin = true;
        }
        token
    }

    /// A token of an admin of `silo` (made if it does not exist).
    pub fn silo_admin_token(&self, silo: &str) -> String {
        self.user_token(silo, "silo-admin", Some(SiloRole::Admin))
    }

    /// Sets `silo`'s longest token lifetime.
    pub fn set_token_max_ttl(&self, silo: &str, max_s: Option<u32>) {
        let mut st = lock(&self.shared.state);
        let id = st.silo_by(silo).map(|s| s.id);
        if let Some(s) = id.and_then(|id| st.silos.get_mut(&id)) {
            s.token_max_ttl_s = max_s;
        }
    }

    /// How many items a list call answers when it names no limit
    /// (default 3, so that tests cross page boundaries; Nexus's is 100).
    pub fn set_page_size(&self, n: usize) {
        lock(&self.shared.state).page_size = n.max(1);
    }

    /// How many looks an instance's stop takes (default 2).
    pub fn set_stop_polls(&self, n: u32) {
        lock(&self.shared.state).stop_polls = n;
    }

    /// Fills every project named `project` with one of everything a job
    /// might leave behind (see `projects::seed`); how many it filled.
    pub fn seed(&self, project: &str) -> usize {
        let mut st = lock(&self.shared.state);
        let ids: Vec<Uuid> = (st.projects.values())
            .filter(|p| p.name == project)
            .map(|p| p.id)
            .collect();
        for &id in &ids {
            projects::seed(&mut st, id, Utc::now());
        }
        ids.len()
    }

    pub fn set_faults(&self, faults: Faults) {
        let rng = StdRng::seed_from_u64(faults.seed);
        *lock(&self.shared.faults) = (faults, rng);
    }

    /// Answers the next `times` calls of `method` to a path starting with
    /// `path_prefix` with this error instead.
    pub fn fail(
        &self,
        method: &str,
        path_prefix: &str,
        times: u32,
        status: u16,
        code: &str,
        message: &str,
    ) {
        self.inject(method, path_prefix, times, false, (status, code, message));
    }

    /// Lets the next `times` calls of `method` to a path starting with
    /// `path_prefix` take effect, then answers 500: the answer is lost.
    pub fn lose_answers(&self, method: &str, path_prefix: &str, times: u32) {
        let error = (500, "Internal", "injected fault: the answer was lost");
        self.inject(method, path_prefix, times, true, error);
    }

    fn inject(
        &self,
        method: &str,
        path_prefix: &str,
        times: u32,
        after: bool,
        (status, code, message): (u16, &str, &str),
    ) {
        lock(&self.shared.injected).push(Injected {
            method: method.parse().unwrap_or(Method::GET),
            path_prefix: path_prefix.into(),
            times: times.max(1),
            after,
            status,
            code: code.into(),
            message: message.into(),
        });
    }

    /// Holds the next call of `method` to a path starting with
    /// `path_prefix` until the returned handle releases it.
    pub fn hold(&self, method: &str, path_prefix: &str) -> Held {
        let (arrived, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        lock(&self.shared.holds).push(HoldRec {
            method: method.parse().unwrap_or(Method::GET),
            path_prefix: path_prefix.into(),
            arrived: arrived.clone(),
            release: release.clone(),
        });
        Held { arrived, release }
    }

    /// Everything in the fake whose name starts with `prefix`, or that
    /// lives in such a silo or project, or is a credential of such a user
    /// (kept even after its user is gone): `kind name` lines, sorted. Empty
    /// when a well has cleaned up after itself.
    #[must_use]
    pub fn remains(&self, prefix: &str) -> Vec<String> {
        let st = lock(&self.shared.state);
        let mut out = Vec::new();
        let silos: Vec<Uuid> = (st.silos.values())
            .filter(|s| s.name.starts_with(prefix))
            .map(|s| s.id)
            .collect();
        for s in st.silos.values().filter(|s| silos.contains(&s.id)) {
            out.push(format!("silo {}", s.name));
        }
        for u in st.users.values() {
            if u.name.starts_with(prefix) || silos.contains(&u.silo) {
                out.push(format!("user {}", u.name));
            }
        }
        for c in st
            .creds
            .values()
            .filter(|c| c.user_name.starts_with(prefix))
        {
            let kind = match c.kind {
                CredKind::Session => "session",
                CredKind::Token => "token",
            };
            out.push(format!("{kind} of {}", c.user_name));
        }
        for p in st.projects.values() {
            if p.name.starts_with(prefix) || silos.contains(&p.silo) {
                out.push(format!("project {}", p.name));
                for t in st.things_in(p.id, None) {
                    out.push(format!("{} {}/{}", t.kind.noun(), p.name, t.name));
                }
            }
        }
        out.extend(
            (st.pool_links.keys())
                .filter(|(_, s)| silos.contains(s))
                .map(|(p, s)| format!("ip pool link {p} {s}")),
        );
        out.sort();
        out
    }

    /// The quotas and linked pools of the silo `name`, if it exists.
    #[must_use]
    pub fn silo_quotas(&self, name: &str) -> Option<(i64, u64, u64)> {
        let st = lock(&self.shared.state);
        let s = st.silo_by(name)?;
        Some((s.quotas.cpus, s.quotas.memory.0, s.quotas.storage.0))
    }

    /// The (pool name, is default) links of the silo `name`.
    #[must_use]
    pub fn silo_pools(&self, name: &str) -> BTreeMap<String, bool> {
        let st = lock(&self.shared.state);
        let Some(silo) = st.silo_by(name).map(|s| s.id) else {
            return BTreeMap::new();
        };
        let pool_name = |id: &Uuid| {
            (st.ip_pools.iter())
                .find(|(_, p)| *p == id)
                .map(|(n, _)| n.clone())
        };
        (st.pool_links.iter())
            .filter(|((_, s), _)| *s == silo)
            .filter_map(|((p, _), d)| Some((pool_name(p)?, *d)))
            .collect()
    }
}
