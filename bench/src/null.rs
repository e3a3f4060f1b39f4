//! A null well, a null factory and a null agent: built on the same SDKs as
//! the real ones (the well runner, the factory runner, the agent's calls),
//! they answer at once and do no work, so that what is measured is
//! aquifer. Each keeps a log of what it did and when, which the scenarios
//! read their figures from.

use aquifer_factory::{AgentExit, AgentState, CreatedWorker, Factory, Lease};
use aquifer_protocol::Client;
use aquifer_protocol::agent::Finish;
use aquifer_well::{CreateError, CreateRequest, Created, Owned, Well};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// What a null service did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// A resource was created for a job (the lease was in the well's hands).
    Created { job: u32 },
    /// A resource's destruction finished (its confirmation goes next).
    Destroyed,
    /// A job's agent was told its job has started.
    Started { job: u32 },
}

/// A log of acts, shared by the null services and read by the scenario.
#[derive(Default)]
pub struct Log {
    acts: Mutex<Vec<(Instant, String, Act)>>,
    /// Every act, counted; a scenario that sees it stop moving has stalled.
    pub progress: AtomicU64,
    pub created: AtomicU64,
    pub destroyed: AtomicU64,
    pub started: AtomicU64,
    pub changed: Notify,
}

impl Log {
    fn note(&self, rtype: &str, act: Act) {
        let at = Instant::now();
        if let Ok(mut acts) = self.acts.lock() {
            acts.push((at, rtype.to_string(), act));
        }
        let counter = match act {
            Act::Created { .. } => &self.created,
            Act::Destroyed => &self.destroyed,
            Act::Started { .. } => &self.started,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        self.progress.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Every act so far, in order.
    pub fn acts(&self) -> Vec<(Instant, String, Act)> {
        self.acts.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

/// A well whose things are entries in a map.
pub struct NullWell {
    pub log: Arc<Log>,
    things: Mutex<BTreeMap<u32, String>>,
}

impl NullWell {
    pub fn new(log: Arc<Log>) -> NullWell {
        NullWell {
            log,
            things: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Well for NullWell {
    async fn create(&self, req: &CreateRequest) -> Result<Created, CreateError> {
        self.log.note(&req.rtype, Act::Created { job: req.job });
        (self.things.lock())
            .map_err(|_| CreateError::fatal("poisoned"))?
            .insert(req.resource, req.rtype.clone());
        Ok(Created::default())
    }

    async fn destroy(&self, resource: u32, rtype: &str) -> Result<(), String> {
        (self.things.lock())
            .map_err(|_| "poisoned".to_string())?
            .remove(&resource);
        self.log.note(rtype, Act::Destroyed);
        Ok(())
    }

    async fn list_owned(&self) -> Result<Vec<Owned>, String> {
        let things = self.things.lock().map_err(|_| "poisoned".to_string())?;
        Ok((things.iter())
            .map(|(&resource, rtype)| Owned {
                resource,
                rtype: rtype.clone(),
            })
            .collect())
    }
}

/// A factory whose workers are entries in a map and whose agents are
/// tasks of this process that start their job and report it succeeded.
#[derive(Clone)]
pub struct NullFactory {
    pub log: Arc<Log>,
    workers: Arc<Mutex<BTreeMap<u32, AgentState>>>,
    /// The agents' tasks, so that stopping the factory stops them too.
    agents: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl NullFactory {
    pub fn new(log: Arc<Log>) -> NullFactory {
        NullFactory {
            log,
            workers: Arc::default(),
            agents: Arc::default(),
        }
    }

    /// Stops every agent still running (as destroying its worker would).
    pub fn stop_agents(&self) {
        if let Ok(mut agents) = self.agents.lock() {
            for a in agents.drain(..) {
                a.abort();
            }
        }
    }

    fn set(&self, worker: u32, state: Option<AgentState>) {
        if let Ok(mut w) = self.workers.lock() {
            match state {
                Some(s) => w.insert(worker, s),
                None => w.remove(&worker),
            };
        }
    }
}

impl Factory for NullFactory {
    async fn create_worker(&self, lease: &Lease) -> Result<CreatedWorker, String> {
        self.set(lease.worker, Some(AgentState::NotStarted));
        Ok(CreatedWorker {
            worker: lease.worker,
            description: format!("null worker {}", lease.worker),
        })
    }

    async fn start_agent(&self, worker: u32, url: &str, key: &str) -> Result<AgentExit, String> {
        self.set(worker, Some(AgentState::Running));
        let api = Client::new(url, None).map_err(|e| e.to_string())?;
        let (key, this, log) = (key.to_string(), self.clone(), self.log.clone());
        let agent = tokio::spawn(async move {
            let outcome = null_agent(&api, &key, &log).await;
            this.set(worker, Some(AgentState::Exited));
            outcome
        });
        if let Ok(mut agents) = self.agents.lock() {
            agents.retain(|a| !a.is_finished());
            agents.push(agent.abort_handle());
        }
        Ok(Box::pin(async move {
            match agent.await {
                Ok(Ok(())) => "exited with 0".to_string(),
                Ok(Err(e)) => format!("failed: {e}"),
                Err(e) => format!("panicked: {e}"),
            }
        }))
    }

    async fn destroy_worker(&self, worker: u32) -> Result<(), String> {
        self.set(worker, None);
        Ok(())
    }

    async fn list_owned(&self) -> Result<Vec<aquifer_factory::Owned>, String> {
        let workers = self.workers.lock().map_err(|_| "poisoned".to_string())?;
        Ok((workers.iter())
            .map(|(&worker, &agent)| aquifer_factory::Owned { worker, agent })
            .collect())
    }
}

/// The agent's part with no tasks: trade the key for a token, start the
/// job, report it succeeded.
async fn null_agent(api: &Client, key: &str, log: &Log) -> Result<(), String> {
    let token = aquifer_factory::agent::worker_token().map_err(|e| e.to_string())?;
    let boot = (api.agent_bootstrap(key, &token).await).map_err(|e| e.to_string())?;
    let api = api.with_token(boot.token);
    let started = match api.agent_start().await {
        Ok(s) => s,
        // The job ended before it started (cancelled): nothing to do.
        Err(e) if e.status() == Some(409) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    log.note("", Act::Started { job: started.job.0 });
    let finish = Finish {
        succeeded: true,
        reason: None,
    };
    api.agent_finish(&finish).await.map_err(|e| e.to_string())
}
