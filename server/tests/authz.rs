//! The authorisation matrix: every endpoint of the router (`Route::EVERY`,
//! so a new endpoint is in this test from the moment it exists, and the
//! table below does not compile until it says what each caller gets)
//! against every kind of caller, each cell on a fresh server with the
//! same world in it. A cell's status is exact: a 404 where a 403 was
//! expected is a leak of what exists, a 200 where a 403 was expected is
//! a hole.

mod common;
mod harness;

use aquifer_server::api::route::Route;
use harness::world::*;
use reqwest::Method;
use serde_json::{Value, json};

/// What each kind of caller gets from each endpoint, in `WHO`'s order:
/// nobody, malformed, revoked, owner, other user, admin, well, other well,
/// factory, one-time key, worker, other job, ended job.
///
/// The rules the rows follow: no credential, a malformed or revoked one,
/// a spent job's token and an unused worker key are 401 everywhere but
/// the agent's bootstrap; a job is 404 to all but its owner and admins,
/// so that its existence leaks to nobody; the admin API is 403 without
/// the privilege; each service's API is 403 to every other kind of
/// caller. A body of `{}` is 400 where the caller gets that far.
fn expected(route: Route) -> [u16; 13] {
    const USERS: [u16; 13] = [
        401, 401, 401, 200, 200, 200, 403, 403, 403, 401, 403, 403, 401,
    ];
    const JOB: [u16; 13] = [
        401, 401, 401, 200, 404, 200, 404, 404, 404, 401, 404, 404, 401,
    ];
    // A job's output the job does not have: 404 to whoever may see the
    // job, as to whoever may not.
    const JOB_404: [u16; 13] = [
        401, 401, 401, 404, 404, 404, 404, 404, 404, 401, 404, 404, 401,
    ];
    const NONE: [u16; 13] = [
        401, 401, 401, 403, 403, 403, 403, 403, 403, 401, 403, 403, 401,
    ];
    let only = |who: Who, status: u16| {
        let mut row = NONE;
        row[WHO.iter().position(|w| *w == who).expect("a column")] = status;
        row
    };
    match route {
        Route::Whoami => [
            401, 401, 401, 200, 200, 200, 200, 200, 200, 401, 200, 200, 401,
        ],
        Route::ListJobs | Route::Queue | Route::Metrics => USERS,
        // The API's description is no secret.
        Route::OpenApi => [200; 13],
        Route::SubmitJob => [
            401, 401, 401, 400, 400, 400, 403, 403, 403, 401, 403, 403, 401,
        ],
        Route::ShowJob(_) | Route::CancelJob(_) | Route::WatchJob(_) | Route::ExplainJob(_) => JOB,
        Route::ListTypes
        | Route::ListTargets
        | Route::ListUsers
        | Route::ListWells
        | Route::ListFactories
        | Route::ListResources
        | Route::SetPrivileges(_)
        | Route::RevokeUserTokens(_)
        | Route::RevokeWellTokens(_)
        | Route::RevokeFactoryTokens(_) => only(Who::Admin, 200),
        Route::DefineType
        | Route::DefineTarget
        | Route::CreateUser
        | Route::CreateWell
        | Route::CreateFactory
        | Route::HoldLeases => only(Who::Admin, 400),
        Route::IssueUserToken(_) | Route::IssueWellToken(_) | Route::IssueFactoryToken(_) => {
            only(Who::Admin, 201)
        }
        // The resource is ready, not held.
        Route::ReleaseHeld(_) => only(Who::Admin, 409),
        // The other well serves another type: it may not ask for `pg`.
        Route::WellLease => {
            let mut row = only(Who::Well, 200);
            row[7] = 400;
            row
        }
        // Each well lists its own resources.
        Route::WellResources => {
            let mut row = only(Who::Well, 200);
            row[7] = 200;
            row
        }
        Route::WellRenew(_) | Route::WellReady(_) | Route::WellFailed(_) => only(Who::Well, 200),
        // The resource is ready, not being destroyed.
        Route::WellDestroyed(_) | Route::WellDestroyFailed(_) => only(Who::Well, 409),
        Route::FactoryLease
        | Route::FactoryCreated(_)
        | Route::FactoryLost(_)
        | Route::FactoryWorkers => only(Who::Factory, 200),
        // The worker's job has not ended.
        Route::FactoryDestroyed(_) => only(Who::Factory, 409),
        // An unused worker key is a credential here; so is a worker's own
        // token, which gets the answer its bootstrap had (its worker id
        // and that very token) for an agent that lost it.
        Route::AgentBootstrap => [
            401, 401, 401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 401,
        ],
        Route::AgentStart | Route::AgentOutput | Route::AgentControl | Route::AgentFinish => {
            only(Who::Worker, 200)
        }
        Route::JobResources => only(Who::OtherJob, 200),
        // Bob's job has no resource named `db`.
        Route::JobResource => only(Who::OtherJob, 404),
        // Outputs: the agent's own job has none yet (number 7 is unknown);
        // `{}` begins nothing.
        Route::AgentOutputBegin => only(Who::Worker, 400),
        Route::AgentOutputChunk(_) | Route::AgentOutputCommit(_) => only(Who::Worker, 404),
        Route::ListOutputs(_) => JOB,
        Route::GetOutput(_) => JOB_404,
        // Inputs: only the job's submitter (or an admin) uploads them,
        // though users who may see every job list them.
        Route::ListInputs(_) => JOB,
        Route::InputBegin(_) => [
            401, 401, 401, 400, 404, 400, 404, 404, 404, 401, 404, 404, 401,
        ],
        Route::InputChunk(_) | Route::InputCommit(_) => JOB_404,
        Route::AgentInputs => only(Who::Worker, 200),
        Route::AgentInput(_) => only(Who::Worker, 404),
        Route::JobStore => only(Who::OtherJob, 200),
        // Bob's job has no key `db` in its store; `{}` is no value.
        Route::JobStoreGet => only(Who::OtherJob, 404),
        Route::JobStorePut => only(Who::OtherJob, 400),
    }
}

impl World {
    /// The request made of `route`: its method, path and body (`status`
    /// adds the caller's header).
    fn request(&self, route: Route) -> (Method, String, Option<Value>) {
        let (method, template) = route.template();
        let mut path = template
            .replace("{job}", &self.job.to_string())
            .replace("{user}", &self.user.to_string())
            .replace("{well}", &self.well.to_string())
            .replace("{factory}", &self.factory.to_string())
            .replace("{lease}", &self.lease.to_string())
            .replace("{worker}", &self.worker.to_string())
            .replace("{name}", "db")
            .replace("{key}", "db")
            .replace("{output}", "7")
            .replace("{input}", "7");
        let resource = match route {
            Route::WellReady(_) | Route::WellFailed(_) => self.creating,
            _ => self.ready,
        };
        path = path.replace("{resource}", &resource.to_string());
        let body = match route {
            Route::WatchJob(_) | Route::AgentControl => {
                path.push_str("?wait_ms=0");
                None
            }
            Route::AgentOutputChunk(_) | Route::InputChunk(_) => {
                path.push_str("?offset=0");
                Some(json!("bytes"))
            }
            Route::AgentOutputCommit(_) | Route::InputCommit(_) => {
                Some(json!({"size": 5, "sha256": "00"}))
            }
            Route::WellLease => Some(json!({"free": {"pg": 1}, "wait_ms": 0})),
            Route::FactoryLease => Some(json!({"free": {"t": 1}, "wait_ms": 0})),
            Route::AgentOutput => Some(json!({"task": "test", "stream": "stdout", "text": "x"})),
            Route::AgentFinish => Some(json!({"succeeded": true})),
            Route::WellFailed(_) => Some(json!({"reason": "r", "retryable": true})),
            Route::WellReady(_) => Some(json!({"metadata": {}, "secrets": {}})),
            Route::SetPrivileges(_) => Some(json!({"grant": []})),
            Route::HoldLeases => Some(json!({})),
            r if r.takes_body() => Some(json!({})),
            _ => None,
        };
        (method, path, body)
    }

    async fn status(&self, route: Route, who: Who) -> (u16, String) {
        let (method, path, body) = self.request(route);
        let mut request = self
            .s
            .http
            .request(method, format!("{}{path}", self.s.base));
        if let Some(h) = self.header(who) {
            request = request.header("authorization", h);
        }
        match body {
            // A chunk is bytes.
            Some(_) if route.media() != "application/json" => {
                request = request
                    .header("content-type", route.media())
                    .body(b"hello".to_vec());
            }
            Some(body) => request = request.json(&body),
            None => {}
        }
        let answer = request.send().await.expect("an answer");
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        (status, text)
    }
}

#[tokio::test]
async fn every_endpoint_answers_every_kind_of_caller_as_the_table_says() {
    let mut wrong = Vec::new();
    let mut cells = 0;
    for &route in Route::EVERY {
        let row = expected(route);
        // Each cell on a world of its own: one caller's success (a
        // revocation, a cancellation) must not decide the next cell. The
        // cells of a row run side by side.
        let answers = futures_util::future::join_all(WHO.iter().map(|&who| async move {
            let w = world().await;
            let answer = w.status(route, who).await;
            w.s.stop().await;
            answer
        }))
        .await;
        let mut got = [0; 13];
        for (i, (status, text)) in answers.into_iter().enumerate() {
            got[i] = status;
            cells += 1;
            if status != row[i] {
                let who = WHO[i];
                wrong.push(format!(
                    "{route:?} as {who:?}: {status}, not {} ({text})",
                    row[i]
                ));
            }
        }
        eprintln!("{route:?} => {got:?}");
    }
    assert_eq!(cells, Route::EVERY.len() * WHO.len());
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
