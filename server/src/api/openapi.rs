//! `/openapi.json`: the API described from the code. The paths, methods and
//! ids come from `Route::EVERY` and `Route::template`; what each route reads
//! and answers comes from one exhaustive match over the routes, with the
//! protocol crate's types turned into JSON Schemas by schemars. A route
//! added to the router without a line here does not compile.

use super::route::Route;
use aquifer_protocol::{Empty, ErrorBody, admin, agent, factory, jobs, user, well};
use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What a route reads and answers.
struct Shape {
    summary: &'static str,
    /// Who may call it, in words.
    who: &'static str,
    body: Option<Schema>,
    query: Option<Schema>,
    status: u16,
    answer: Answer,
}

enum Answer {
    Json(Schema),
    /// Prometheus's text format.
    Text,
    /// Raw bytes.
    Bytes,
}

fn shape(route: Route, g: &mut SchemaGenerator) -> Shape {
    fn of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
        g.subschema_for::<T>()
    }
    let (users, admins, wells, factories, agents, jobs_) = (
        "users and admins",
        "admins, or users with the privilege it names",
        "wells",
        "factories",
        "agents (worker tokens)",
        "running jobs (job tokens, through bmat)",
    );
    let s = |summary, who, body, query, status, answer| Shape {
        summary,
        who,
        body,
        query,
        status,
        answer: Answer::Json(answer),
    };
    match route {
        Route::Whoami => s(
            "Who the token speaks for",
            "any token",
            None,
            None,
            200,
            of::<user::Whoami>(g),
        ),
        Route::Queue => s(
            "Every type's and target's queue and holdings",
            users,
            None,
            None,
            200,
            of::<user::Queue>(g),
        ),
        Route::OpenApi => Shape {
            summary: "This document",
            who: "anybody",
            body: None,
            query: None,
            status: 200,
            answer: Answer::Json(Schema::from(true)),
        },
        Route::Metrics => Shape {
            summary: "Metrics in Prometheus's text format 0.0.4",
            who: users,
            body: None,
            query: None,
            status: 200,
            answer: Answer::Text,
        },
        Route::ListJobs => s(
            "A page of the jobs the caller may see, newest first",
            users,
            None,
            Some(of::<jobs::ListQuery>(g)),
            200,
            of::<Vec<jobs::ListedJob>>(g),
        ),
        Route::SubmitJob => s(
            "Submit a job",
            users,
            Some(of::<jobs::JobFile>(g)),
            None,
            201,
            of::<jobs::Submitted>(g),
        ),
        Route::ShowJob(_) => s("One job", users, None, None, 200, of::<jobs::JobView>(g)),
        Route::CancelJob(_) => s(
            "Cancel a job",
            users,
            None,
            None,
            200,
            of::<jobs::JobView>(g),
        ),
        Route::WatchJob(_) => s(
            "A page of the job's stream, long-polled",
            users,
            None,
            Some(of::<jobs::WatchQuery>(g)),
            200,
            of::<jobs::Watched>(g),
        ),
        Route::ExplainJob(_) => s(
            "Why the job is where it is, with the whole wait-for chain",
            users,
            None,
            None,
            200,
            of::<user::Explained>(g),
        ),
        Route::ListTypes => s(
            "Resource types",
            admins,
            None,
            None,
            200,
            of::<Vec<admin::TypeView>>(g),
        ),
        Route::DefineType => s(
            "Define a resource type",
            admins,
            Some(of::<admin::NewType>(g)),
            None,
            201,
            of::<admin::Created<aquifer_protocol::TypeId>>(g),
        ),
        Route::ListTargets => s(
            "Worker targets",
            admins,
            None,
            None,
            200,
            of::<Vec<admin::TargetView>>(g),
        ),
        Route::DefineTarget => s(
            "Define a worker target",
            admins,
            Some(of::<admin::NewTarget>(g)),
            None,
            201,
            of::<admin::Created<aquifer_protocol::TargetId>>(g),
        ),
        Route::ListUsers => s(
            "Users and their privileges",
            admins,
            None,
            None,
            200,
            of::<Vec<admin::UserView>>(g),
        ),
        Route::CreateUser => s(
            "Make a user, with a first token",
            admins,
            Some(of::<admin::NewUser>(g)),
            None,
            201,
            of::<admin::NewUserToken>(g),
        ),
        Route::SetPrivileges(_) => s(
            "Grant or revoke a user's privileges",
            admins,
            Some(of::<admin::PrivilegeChange>(g)),
            None,
            200,
            of::<admin::UserView>(g),
        ),
        Route::IssueUserToken(_) => s(
            "A new token for a user",
            admins,
            None,
            None,
            201,
            of::<admin::IssuedToken>(g),
        ),
        Route::RevokeUserTokens(_) => s(
            "Revoke every token of a user",
            admins,
            None,
            None,
            200,
            of::<admin::Revoked>(g),
        ),
        Route::ListWells => s(
            "Wells, their pools and last contact",
            admins,
            None,
            None,
            200,
            of::<Vec<admin::WellView>>(g),
        ),
        Route::CreateWell => s(
            "Register a well",
            admins,
            Some(of::<admin::NewWell>(g)),
            None,
            201,
            of::<admin::Registered<aquifer_protocol::WellId>>(g),
        ),
        Route::IssueWellToken(_) => s(
            "A new token for a well",
            admins,
            None,
            None,
            201,
            of::<admin::IssuedToken>(g),
        ),
        Route::RevokeWellTokens(_) => s(
            "Revoke every token of a well",
            admins,
            None,
            None,
            200,
            of::<admin::Revoked>(g),
        ),
        Route::ListFactories => s(
            "Factories, their targets and last contact",
            admins,
            None,
            None,
            200,
            of::<Vec<admin::FactoryView>>(g),
        ),
        Route::CreateFactory => s(
            "Register a factory",
            admins,
            Some(of::<admin::NewFactory>(g)),
            None,
            201,
            of::<admin::Registered<aquifer_protocol::FactoryId>>(g),
        ),
        Route::IssueFactoryToken(_) => s(
            "A new token for a factory",
            admins,
            None,
            None,
            201,
            of::<admin::IssuedToken>(g),
        ),
        Route::RevokeFactoryTokens(_) => s(
            "Revoke every token of a factory",
            admins,
            None,
            None,
            200,
            of::<admin::Revoked>(g),
        ),
        Route::HoldLeases => s(
            "Hold, or lift the hold on, every new lease",
            admins,
            Some(of::<admin::Hold>(g)),
            None,
            200,
            of::<admin::HoldState>(g),
        ),
        Route::ListResources => s(
            "Every resource, with why a held one is held",
            admins,
            None,
            None,
            200,
            of::<Vec<admin::ResourceView>>(g),
        ),
        Route::ReleaseHeld(_) => s(
            "Send a held resource back to its well for destruction",
            admins,
            None,
            None,
            200,
            of::<admin::Released>(g),
        ),
        Route::WellLease => s(
            "Ask for work: a lease to create resources, and what to destroy",
            wells,
            Some(of::<well::WellLeaseRequest>(g)),
            None,
            200,
            of::<well::WellLeaseAnswer>(g),
        ),
        Route::WellRenew(_) => s(
            "Renew a lease",
            wells,
            None,
            None,
            200,
            of::<well::Renewed>(g),
        ),
        Route::WellReady(_) => s(
            "A resource is made",
            wells,
            Some(of::<well::Ready>(g)),
            None,
            200,
            of::<Empty>(g),
        ),
        Route::WellFailed(_) => s(
            "A resource could not be made",
            wells,
            Some(of::<well::Failed>(g)),
            None,
            200,
            of::<Empty>(g),
        ),
        Route::WellResources => s(
            "The well's resources the server knows of",
            wells,
            None,
            None,
            200,
            of::<well::Listing>(g),
        ),
        Route::WellDestroyed(_) => s("A resource is gone", wells, None, None, 200, of::<Empty>(g)),
        Route::WellDestroyFailed(_) => s(
            "A resource could not be destroyed",
            wells,
            Some(of::<well::DestroyFailed>(g)),
            None,
            200,
            of::<Empty>(g),
        ),
        Route::FactoryLease => s(
            "Ask for work: a lease to create workers, and what to destroy",
            factories,
            Some(of::<factory::FactoryLeaseRequest>(g)),
            None,
            200,
            of::<factory::FactoryLeaseAnswer>(g),
        ),
        Route::FactoryCreated(_) => s(
            "A worker is made: its agent's one-time key",
            factories,
            None,
            None,
            200,
            of::<factory::Bootstrap>(g),
        ),
        Route::FactoryLost(_) => s(
            "A worker was lost",
            factories,
            None,
            None,
            200,
            of::<Empty>(g),
        ),
        Route::FactoryWorkers => s(
            "The factory's workers the server knows of",
            factories,
            None,
            None,
            200,
            of::<factory::Listing>(g),
        ),
        Route::FactoryDestroyed(_) => s(
            "A worker is gone",
            factories,
            None,
            None,
            200,
            of::<Empty>(g),
        ),
        Route::AgentBootstrap => s(
            "An agent's first call: its one-time key for a worker token",
            "agents (the one-time key, in Authorization)",
            Some(of::<agent::BootstrapRequest>(g)),
            None,
            200,
            of::<agent::Bootstrapped>(g),
        ),
        Route::AgentStart => s(
            "The agent asks for its job",
            agents,
            None,
            None,
            200,
            of::<agent::Started>(g),
        ),
        Route::AgentOutput => s(
            "A piece of a task's output",
            agents,
            Some(of::<agent::Output>(g)),
            None,
            200,
            of::<Empty>(g),
        ),
        Route::AgentControl => s(
            "Whether the agent should stop, long-polled",
            agents,
            None,
            Some(of::<agent::ControlQuery>(g)),
            200,
            of::<agent::Control>(g),
        ),
        Route::AgentFinish => s(
            "The job's tasks are over",
            agents,
            Some(of::<agent::Finish>(g)),
            None,
            200,
            of::<Empty>(g),
        ),
        Route::JobResources => s(
            "The running job's resources",
            jobs_,
            None,
            None,
            200,
            of::<agent::JobResources>(g),
        ),
        Route::JobResource => s(
            "One of the running job's resources by its name",
            jobs_,
            None,
            None,
            200,
            of::<agent::JobResource>(g),
        ),
        Route::AgentOutputBegin => s(
            "Begin sending an output, or learn how much of it is held",
            agents,
            Some(of::<aquifer_protocol::outputs::OutputBegin>(g)),
            None,
            200,
            of::<aquifer_protocol::outputs::OutputUpload>(g),
        ),
        Route::AgentOutputChunk(_) => Shape {
            summary: "Bytes of an output from an offset (the body is application/octet-stream)",
            who: agents,
            body: None,
            query: Some(of::<aquifer_protocol::outputs::ChunkQuery>(g)),
            status: 200,
            answer: Answer::Json(of::<aquifer_protocol::outputs::Received>(g)),
        },
        Route::AgentOutputCommit(_) => s(
            "An output is whole: its size and SHA-256",
            agents,
            Some(of::<aquifer_protocol::outputs::OutputCommit>(g)),
            None,
            200,
            of::<Empty>(g),
        ),
        Route::ListOutputs(_) => s(
            "A job's outputs",
            users,
            None,
            None,
            200,
            of::<Vec<aquifer_protocol::outputs::OutputView>>(g),
        ),
        Route::GetOutput(_) => Shape {
            summary: "One output's bytes; a Range header for part of them (206)",
            who: users,
            body: None,
            query: None,
            status: 200,
            answer: Answer::Bytes,
        },
        Route::ListInputs(_) => s(
            "The inputs a job's file names, and how far each upload is",
            users,
            None,
            None,
            200,
            of::<Vec<aquifer_protocol::outputs::InputView>>(g),
        ),
        Route::InputBegin(_) => s(
            "Begin uploading one of a job's inputs (its name as `path`), or learn how much is held",
            users,
            Some(of::<aquifer_protocol::outputs::OutputBegin>(g)),
            None,
            200,
            of::<aquifer_protocol::outputs::OutputUpload>(g),
        ),
        Route::InputChunk(_) => Shape {
            summary: "Bytes of an input from an offset (the body is application/octet-stream)",
            who: users,
            body: None,
            query: Some(of::<aquifer_protocol::outputs::ChunkQuery>(g)),
            status: 200,
            answer: Answer::Json(of::<aquifer_protocol::outputs::Received>(g)),
        },
        Route::InputCommit(_) => s(
            "An input is whole: its size and SHA-256; once all are, the job may begin",
            users,
            Some(of::<aquifer_protocol::outputs::OutputCommit>(g)),
            None,
            200,
            of::<Empty>(g),
        ),
        Route::AgentInputs => s(
            "What the agent places in the job's input directory: its inputs, and its copied dependencies' outputs",
            agents,
            None,
            None,
            200,
            of::<Vec<aquifer_protocol::outputs::AgentInput>>(g),
        ),
        Route::AgentInput(_) => Shape {
            summary: "One of those files' bytes; a Range header for part of them (206)",
            who: agents,
            body: None,
            query: None,
            status: 200,
            answer: Answer::Bytes,
        },
        Route::JobStore => s(
            "The running job's store: its keys, and which are secret",
            jobs_,
            None,
            None,
            200,
            of::<jobs::StoreKeys>(g),
        ),
        Route::JobStoreGet => s(
            "One value of the running job's store",
            jobs_,
            None,
            None,
            200,
            of::<jobs::StoreValue>(g),
        ),
        Route::JobStorePut => s(
            "Set one value of the running job's store",
            jobs_,
            Some(of::<jobs::StoreValue>(g)),
            None,
            200,
            of::<Empty>(g),
        ),
    }
}

/// The names of the `{…}` segments of a path template.
fn path_ids(template: &str) -> Vec<&str> {
    (template.split('/'))
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// A query's fields as OpenAPI parameters, from its object schema.
fn query_parameters(query: &Schema, g: &SchemaGenerator) -> Vec<Value> {
    let resolved = resolve(query, g);
    let required: Vec<&str> = (resolved.get("required").and_then(Value::as_array))
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = resolved.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    (properties.iter())
        .map(|(name, schema)| {
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": schema,
            })
        })
        .collect()
}

/// A schema, or the definition its `$ref` names.
fn resolve(schema: &Schema, g: &SchemaGenerator) -> Value {
    let value = schema.as_value();
    let name = (value.get("$ref").and_then(Value::as_str))
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_string);
    match name.and_then(|n| g.definitions().get(&n).cloned()) {
        Some(definition) => definition,
        None => value.clone(),
    }
}

/// The whole document, OpenAPI 3.1.
#[must_use]
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .into_generator();
    let error = g.subschema_for::<ErrorBody>();
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for &route in Route::EVERY {
        let (method, template) = route.template();
        let shape = shape(route, &mut g);
        let mut parameters: Vec<Value> = (path_ids(template).into_iter())
            .map(|id| {
                let schema = if id == "name" || id == "key" {
                    json!({"type": "string"})
                } else {
                    json!({"type": "integer", "minimum": 0})
                };
                json!({"name": id, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        if let Some(q) = &shape.query {
            parameters.extend(query_parameters(q, &g));
        }
        let answer = match &shape.answer {
            Answer::Json(schema) => json!({"application/json": {"schema": schema}}),
            Answer::Text => json!({"text/plain; version=0.0.4": {"schema": {"type": "string"}}}),
            Answer::Bytes => {
                json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}})
            }
        };
        let mut operation = json!({
            "operationId": format!("{route:?}").split('(').next().unwrap_or_default(),
            "summary": shape.summary,
            "description": format!("Called by {}.", shape.who),
            "parameters": parameters,
            "responses": {
                shape.status.to_string(): {"description": "done", "content": answer},
                "default": {
                    "description": "refused, in the one error shape",
                    "content": {"application/json": {"schema": error}},
                },
            },
        });
        if let Some(body) = &shape.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": body}},
            });
        } else if route.takes_body() {
            operation["requestBody"] = json!({
                "required": true,
                "content": {route.media(): {"schema": {"type": "string", "format": "binary"}}},
            });
        }
        (paths.entry(template).or_default()).insert(method.as_str().to_lowercase(), operation);
    }
    let schemas: Map<String, Value> = g.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "aquifer",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "aquifer's HTTP API: jobs, the admin's registry, and the well, factory, agent and job protocols. Every call but the agent's bootstrap takes a bearer token.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    })
}

/// The document as an answer, made once.
#[must_use]
pub fn answer() -> warp::reply::Response {
    use warp::Reply as _;
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = TEXT.get_or_init(|| document().to_string());
    let mut r = text.clone().into_response();
    (r.headers_mut()).insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    r
}
