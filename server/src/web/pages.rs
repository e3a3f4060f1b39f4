//! The dashboard's pages, rendered from the API's own answers. Every value
//! goes through maud, which escapes it: nothing a job or a well wrote can
//! become markup.

use crate::api::{Api, ApiError, Caller, admin, jobs};
use crate::auth::Principal;
use aquifer_protocol::admin::{FactoryView, ResourceView, WellView};
use aquifer_protocol::jobs::{JobState, JobView, ListQuery, ListedJob, WatchQuery};
use aquifer_protocol::story::{Story, span, tagged};
use aquifer_protocol::user::{Explained, Queue};
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;
use warp::http::StatusCode;

/// How many of the newest jobs the overview lists.
const RECENT_JOBS: u32 = 10;

fn layout(title: &str, who: Option<&Caller>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · aquifer" }
                link rel="stylesheet" href="/dashboard.css";
                script src="/dashboard.js" defer {}
            }
            body {
                header {
                    strong { "aquifer" }
                    @if let Some(who) = who {
                        nav {
                            a href="/" { "overview" }
                            a href="/jobs" { "jobs" }
                        }
                        span.who { "signed in as " (describe(who)) }
                        form method="post" action="/logout" {
                            button type="submit" { "sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn describe(caller: &Caller) -> String {
    match caller.principal {
        Principal::Admin => "the admin".into(),
        Principal::User(id) => format!("user {id}"),
        other => format!("{other:?}"),
    }
}

/// The login form, with why it is shown.
pub fn login(problem: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(p) = problem {
                p.problem { (p) }
            }
            form method="post" action="/login" {
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "sign in" }
            }
            p.hint {
                "A user's token (" code { "aquifer admin user create NAME" } " prints one) or the admin's. "
                "It is kept in a cookie that scripts cannot read."
            }
        },
    )
}

/// A page that could not be shown, and why.
pub fn trouble(message: &str) -> Markup {
    layout("Not shown", None, html! { p.problem { (message) } })
}

/// "12 s ago", from a wall-clock time in ms.
fn ago(ms: u64) -> String {
    format!("{} ago", span(crate::api::now().ms().saturating_sub(ms)))
}

/// An answer of the API, or a line saying why this caller cannot see it.
fn or_refusal<T>(answer: Result<(StatusCode, T), ApiError>) -> Result<Result<T, String>, ApiError> {
    match answer {
        Ok((_, t)) => Ok(Ok(t)),
        Err(e) if e.status == StatusCode::FORBIDDEN => Ok(Err(e.message)),
        Err(e) => Err(e),
    }
}

/// Queues per type and target, resources, wells, factories, recent jobs.
pub async fn home(api: &Api, caller: &Caller) -> Result<Markup, ApiError> {
    let queue = or_refusal(jobs::queue(api, caller).await)?;
    let resources = or_refusal(admin::list_resources(api, caller).await)?;
    let wells = or_refusal(admin::list_wells(api, caller).await)?;
    let factories = or_refusal(admin::list_factories(api, caller).await)?;
    let recent = ListQuery {
        limit: Some(RECENT_JOBS),
        ..ListQuery::default()
    };
    let (_, recent) = jobs::list(api, caller, recent).await?;
    let names = well_names(wells.as_ref().ok());
    Ok(layout(
        "Overview",
        Some(caller),
        html! {
            section #queues {
                h2 { "Queues" }
                @match &queue {
                    Ok(q) => (queues(q)),
                    Err(why) => p.refused { (why) },
                }
            }
            section #recent {
                h2 { "Newest jobs" }
                (job_table(&recent))
                p { a href="/jobs" { "all jobs" } }
            }
            section #resources {
                h2 { "Resources" }
                @match &resources {
                    Ok(r) => (resource_table(r, &names)),
                    Err(why) => p.refused { (why) },
                }
            }
            section #wells {
                h2 { "Wells" }
                @match &wells {
                    Ok(w) => (well_table(w)),
                    Err(why) => p.refused { (why) },
                }
            }
            section #factories {
                h2 { "Factories" }
                @match &factories {
                    Ok(f) => (factory_table(f)),
                    Err(why) => p.refused { (why) },
                }
            }
        },
    ))
}

fn well_names(wells: Option<&Vec<WellView>>) -> std::collections::BTreeMap<u32, String> {
    (wells.into_iter().flatten())
        .map(|w| (w.id.0, w.name.clone()))
        .collect()
}

fn queues(q: &Queue) -> Markup {
    html! {
        @if q.leases_held {
            p.problem { "An operator holds all new leases: nothing is granted until the hold is lifted." }
        }
        p {
            "Jobs: "
            @for (i, (phase, n)) in q.jobs.iter().enumerate() {
                @if i > 0 { ", " }
                (n) " " (phase)
            }
            "; " (q.leases) " leases out to wells."
        }
        table.types {
            thead { tr { th { "type" } th { "queued" } th { "creating" } th { "ready" } th { "releasing" } th { "held" } th { "capacity" } } }
            tbody {
                @for (t, l) in &q.types {
                    tr { td { (t) } td { (l.queued) } td { (l.creating) } td { (l.ready) } td { (l.releasing) } td { (l.held) } td { (l.capacity) } }
                }
            }
        }
        table.targets {
            thead { tr { th { "target" } th { "waiting for a worker" } th { "workers" } th { "running" } th { "capacity" } } }
            tbody {
                @for (t, l) in &q.targets {
                    tr { td { (t) } td { (l.queued) } td { (l.workers) } td { (l.running) } td { (l.capacity) } }
                }
            }
        }
    }
}

fn resource_table(
    resources: &[ResourceView],
    wells: &std::collections::BTreeMap<u32, String>,
) -> Markup {
    html! {
        @if resources.is_empty() {
            p { "No resources exist." }
        } @else {
            table.resources {
                thead { tr { th { "resource" } th { "type" } th { "job" } th { "well" } th { "state" } th { "why" } } }
                tbody {
                    @for r in resources {
                        tr {
                            td { "#" (r.id.0) }
                            td { (r.rtype) }
                            td { a href={ "/jobs/" (r.job.0) } { (r.job.0) } }
                            td { (wells.get(&r.well.0).cloned().unwrap_or_else(|| r.well.0.to_string())) }
                            td { (tagged(&r.state)) }
                            td { (r.reason.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

fn contact(ms: Option<u64>) -> String {
    ms.map_or_else(|| "not since the server started".into(), ago)
}

fn well_table(wells: &[WellView]) -> Markup {
    html! {
        table.wells {
            thead { tr { th { "well" } th { "serves (free of capacity)" } th { "last contact" } } }
            tbody {
                @for w in wells {
                    tr {
                        td { (w.name) }
                        td {
                            @for (i, (t, s)) in w.pools.iter().enumerate() {
                                @if i > 0 { ", " }
                                (t) " " (s.free) "/" (s.capacity)
                            }
                        }
                        td { (contact(w.last_contact_ms)) }
                    }
                }
            }
        }
    }
}

fn factory_table(factories: &[FactoryView]) -> Markup {
    html! {
        table.factories {
            thead { tr { th { "factory" } th { "targets (free of capacity)" } th { "last contact" } } }
            tbody {
                @for f in factories {
                    tr {
                        td { (f.name) }
                        td {
                            @for (i, (t, s)) in f.targets.iter().enumerate() {
                                @if i > 0 { ", " }
                                (t) " " (s.free) "/" (s.capacity)
                            }
                        }
                        td { (contact(f.last_contact_ms)) }
                    }
                }
            }
        }
    }
}

fn job_table(list: &[ListedJob]) -> Markup {
    html! {
        @if list.is_empty() {
            p { "No jobs." }
        } @else {
            table.jobs {
                thead { tr { th { "job" } th { "name" } th { "owner" } th { "state" } th { "outcome" } th { "submitted" } } }
                tbody {
                    @for j in list {
                        tr {
                            td { a href={ "/jobs/" (j.id.0) } { (j.id.0) } }
                            td { (j.name) }
                            td { (j.owner_name) }
                            td { (j.state.words()) }
                            td { (j.outcome.map(|o| o.to_string()).unwrap_or_default()) }
                            td { (ago(j.submitted_ms)) }
                        }
                    }
                }
            }
        }
    }
}

/// Jobs, filtered by state and owner.
pub async fn jobs(api: &Api, caller: &Caller, q: ListQuery) -> Result<Markup, ApiError> {
    let (_, list) = jobs::list(api, caller, q.clone()).await?;
    Ok(layout(
        "Jobs",
        Some(caller),
        html! {
            form.filter method="get" action="/jobs" {
                label for="state" { "state" }
                select #state name="state" {
                    option value="" { "any" }
                    @for s in JobState::ALL {
                        option value=(s) selected[q.state == Some(s)] { (s.words()) }
                    }
                }
                label for="owner" { "owner" }
                input #owner name="owner" value=(q.owner.clone().unwrap_or_default());
                label for="tag" { "tag" }
                input #tag name="tag" placeholder="KEY=VALUE" value=(q.tag.clone().unwrap_or_default());
                button type="submit" { "filter" }
            }
            (job_table(&list))
        },
    ))
}

/// A job: its state and explanation (which the script refreshes), and its
/// stream so far (which the script follows).
pub async fn job(api: &Api, caller: Caller, id: u32) -> Result<Markup, ApiError> {
    let live = live(api, caller.clone(), id, 0, 0).await?;
    Ok(layout(
        &format!("Job {id}"),
        Some(&caller),
        html! {
            div #status { (maud::PreEscaped(&live.status)) }
            h2 { "Stream" }
            pre #stream data-job=(id) data-after=(live.next) data-ended=(live.ended) {
                @for line in &live.lines { (line) "\n" }
            }
            p #following { @if live.ended { "The job has ended." } @else { "Following the job…" } }
        },
    ))
}

/// A job's news after entry `after`, for the job page.
#[derive(Serialize)]
pub struct Live {
    /// The stream's entries as sentences.
    pub lines: Vec<String>,
    pub next: u64,
    pub ended: bool,
    /// The job's state and explanation, as HTML.
    pub status: String,
}

/// The stream after `after` (waiting up to `wait_ms` for news), and the
/// job as it stands then.
pub async fn live(
    api: &Api,
    caller: Caller,
    id: u32,
    after: u64,
    wait_ms: u64,
) -> Result<Live, ApiError> {
    let mut story = Story::default();
    if after > 0 {
        // The submission, which names the groups' types.
        let first = WatchQuery {
            after: 0,
            wait_ms: 0,
            limit: Some(1),
        };
        let (_, page) = jobs::watch(api, &caller, id, first).await?;
        for e in &page.events {
            story.tell(e);
        }
    }
    let q = WatchQuery {
        after,
        wait_ms,
        limit: None,
    };
    let (_, page) = jobs::watch(api, &caller, id, q).await?;
    story.learn(&page.names);
    let lines = (page.events.iter()).map(|e| story.tell(e)).collect();
    let (_, view) = jobs::show(api, caller.clone(), id).await?;
    let (_, explained) = jobs::explain(api, &caller, id).await?;
    Ok(Live {
        lines,
        next: page.next,
        ended: page.ended,
        status: status(&view, &explained).into_string(),
    })
}

fn status(view: &JobView, explained: &Explained) -> Markup {
    html! {
        dl.job {
            dt { "name" } dd { (view.name) }
            dt { "owner" } dd { (view.owner_name) }
            dt { "state" } dd.state { (view.state.words()) }
            @if let Some(o) = view.outcome {
                dt { "outcome" } dd.outcome { (o) }
            }
            @if let Some(r) = &view.reason {
                dt { "why" } dd { (r) }
            }
            @if !view.tags.is_empty() {
                dt { "tags" }
                dd.tags {
                    @for (i, (k, v)) in view.tags.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/jobs?" (serde_urlencoded::to_string([("tag", format!("{k}={v}"))]).unwrap_or_default()) } { (k) "=" (v) }
                    }
                }
            }
        }
        @if let Some(x) = &explained.explanation {
            h2 { "Why it is where it is" }
            p.waiting { "Waiting for: " (x.waiting_for) }
            @if x.leases_held {
                p.problem { "An operator holds all new leases." }
            }
            @if !x.groups.is_empty() {
                table.groups {
                    thead { tr { th { "type" } th { "count" } th { "state" } th { "place" } th { "held by others" } th { "wells (free of capacity)" } } }
                    tbody {
                        @for g in &x.groups {
                            tr {
                                td { (g.rtype) }
                                td { (g.count) }
                                td { (tagged(&g.state).replace('_', " ")) }
                                td { (g.position.map(|p| p.to_string()).unwrap_or_default()) }
                                td {
                                    @for (i, (job, n)) in g.holders.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        a href={ "/jobs/" (job.0) } { "job " (job.0) } " ×" (n)
                                    }
                                }
                                td {
                                    @for (i, w) in g.wells.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        (explained.names.wells.get(&w.well).cloned().unwrap_or_else(|| w.well.0.to_string()))
                                        " " (w.room) "/" (w.capacity)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if explained.chain.len() > 1 {
            h2 { "The whole chain" }
            ul.chain {
                @for l in &explained.chain {
                    li class={ "depth-" (l.depth.min(8)) } {
                        a href={ "/jobs/" (l.job.0) } { (l.sentence()) }
                    }
                }
            }
        }
    }
}
