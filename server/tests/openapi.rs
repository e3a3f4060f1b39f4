//! `/openapi.json` against the routes the server serves: every route is
//! in the document with its method, every path of the document resolves to
//! the route it describes, and every schema it names is in it.

mod common;
mod harness;

use aquifer_server::api::route::{Route, resolve};
use harness::*;
use serde_json::Value;
use std::collections::BTreeSet;
use warp::http::Method;

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_exactly_the_routes_the_server_serves() {
    let s = server().await;
    // Served to anybody, as JSON.
    let res = (s.http.get(format!("{}/openapi.json", s.base)).send())
        .await
        .expect("an answer");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");

    // Every route, under its template and method, with its path ids.
    let mut described = BTreeSet::new();
    for &route in Route::EVERY {
        let (method, template) = route.template();
        let op = &paths[template][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{route:?} is not in the document");
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{route:?}"
        );
        let ids: Vec<&str> = (template.split('/'))
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let params: Vec<&str> = (op["parameters"].as_array().expect("parameters").iter())
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(params, ids, "{route:?}");
        assert_eq!(
            op.get("requestBody").is_some(),
            route.takes_body(),
            "{route:?}: a request body exactly where the route reads one"
        );
        described.insert((method.to_string(), template.to_string()));
    }
    // Nothing else, and each path resolves to the route it describes.
    let mut in_document = BTreeSet::new();
    for (template, ops) in paths {
        for method in ops.as_object().expect("operations").keys() {
            let method: Method = method.to_uppercase().parse().expect("a method");
            let concrete = template
                .split('/')
                .map(|seg| match seg {
                    "{name}" => "db",
                    s if s.starts_with('{') => "7",
                    s => s,
                })
                .collect::<Vec<_>>()
                .join("/");
            let route = resolve(&method, &concrete)
                .unwrap_or_else(|e| panic!("{method} {concrete} does not resolve: {}", e.message));
            assert_eq!(route.template(), (method.clone(), template.as_str()));
            in_document.insert((method.to_string(), template.clone()));
        }
    }
    assert_eq!(in_document, described);
    assert_eq!(described.len(), Route::EVERY.len());

    // Every schema named is defined, and the shapes are the wire's.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut named = Vec::new();
    refs(&doc, &mut named);
    assert!(named.len() > 100, "{}", named.len());
    for r in named {
        let name = r
            .strip_prefix("#/components/schemas/")
            .expect("a component");
        assert!(schemas.contains_key(name), "{r} is not defined");
    }
    let job = &schemas["JobView"];
    for field in ["id", "name", "owner", "state", "outcome"] {
        assert!(job["properties"].get(field).is_some(), "JobView.{field}");
    }
    // A pair on the wire, not the struct it is in Rust.
    assert_eq!(schemas["Slots"]["type"], "array");
    // Requests refuse unknown fields, as the server does.
    assert_eq!(schemas["JobFile"]["additionalProperties"], false);
    let submit = &paths["/0/jobs"]["post"];
    assert_eq!(
        submit["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/JobFile"
    );
    assert!(submit["responses"].get("201").is_some(), "{submit}");
}
