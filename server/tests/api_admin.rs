//! The admin API over HTTP: wells and factories with their tokens,
//! privileges (including `admin.*` users), user tokens, the lease hold and
//! held resources.

mod common;
mod harness;

use aquifer_core::*;
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

impl Server {
    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }
}

#[tokio::test]
async fn wells_and_factories_are_registered_with_a_token_of_their_own() {
    let s = server().await;
    let (status, well) = s
        .post(
            "/0/admin/wells",
            BOOT,
            json!({"name": "pg-east", "pools": {"pg": 2}}),
        )
        .await;
    assert_eq!(status, 201, "{well}");
    let token = well["token"].as_str().expect("a token");
    let (status, me) = s.get("/0/whoami", token).await;
    assert_eq!((status, &me["kind"]), (200, &json!("well")), "{me}");
    assert_eq!(me["id"], well["id"]);
    // A well's token is not a user's.
    let (status, body) = s.submit(token, job()).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    // The name is taken; the core refuses a pool too small for a group.
    let (status, body) = s
        .post(
            "/0/admin/wells",
            BOOT,
            json!({"name": "pg-east", "pools": {"pg": 2}}),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "already_exists"), "{body}");
    let (status, body) = s
        .post(
            "/0/admin/wells",
            BOOT,
            json!({"name": "tiny", "pools": {"pg": 1}}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "bad_pool"), "{body}");
    // Fixed, the same name registers (its reserved id is reused).
    let (status, tiny) = s
        .post(
            "/0/admin/wells",
            BOOT,
            json!({"name": "tiny", "pools": {"pg": 3}}),
        )
        .await;
    assert_eq!(status, 201, "{tiny}");
    let (status, body) = s
        .post(
            "/0/admin/wells",
            BOOT,
            json!({"name": "x", "pools": {"nope": 1}}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "unknown_type"), "{body}");

    let (status, wells) = s.get("/0/admin/wells", BOOT).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = (wells.as_array().expect("a list").iter())
        .map(|w| w["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["well-1", "pg-east", "tiny"], "{wells}");
    assert_eq!(wells[1]["pools"]["pg"], json!([2, 2]));

    let (status, factory) = s
        .post(
            "/0/admin/factories",
            BOOT,
            json!({"name": "local", "targets": {"t": 4}}),
        )
        .await;
    assert_eq!(status, 201, "{factory}");
    let (status, body) = s
        .post(
            "/0/admin/factories",
            BOOT,
            json!({"name": "far", "targets": {"mars": 1}}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "unknown_target"), "{body}");
    let (_, factories) = s.get("/0/admin/factories", BOOT).await;
    assert_eq!(factories[0]["targets"]["t"], json!([4, 4]), "{factories}");
    // A second token for the factory; the first keeps working.
    let path = format!("/0/admin/factories/{}/tokens", factory["id"]);
    let (status, second) = s.call(Method::POST, &path, Some(BOOT), None).await;
    assert_eq!(status, 201, "{second}");
    for t in [&factory["token"], &second["token"]] {
        let (_, me) = s.get("/0/whoami", t.as_str().expect("a token")).await;
        assert_eq!(me["kind"], "factory");
    }
    let (status, body) = s
        .call(
            Method::POST,
            "/0/admin/factories/99/tokens",
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));

    // Revoking a well's or a factory's tokens ends every one of them at
    // once (the tokens checked above are cached: revocation reaches the
    // cache too), and a new one can be issued after.
    for (kind, made, extra) in [
        ("factories", &factory, Some(&second)),
        ("wells", &well, None),
    ] {
        let path = format!("/0/admin/{kind}/{}/tokens", made["id"]);
        let (status, revoked) = s.call(Method::DELETE, &path, Some(BOOT), None).await;
        let expected = 1 + u64::from(extra.is_some());
        assert_eq!((status, &revoked["revoked"]), (200, &json!(expected)));
        for t in std::iter::once(made).chain(extra) {
            let (status, _) = s
                .get("/0/whoami", t["token"].as_str().expect("a token"))
                .await;
            assert_eq!(status, 401, "{kind}: revoked");
        }
        let (status, fresh) = s.call(Method::POST, &path, Some(BOOT), None).await;
        assert_eq!(status, 201, "{fresh}");
        let (status, _) = s
            .get("/0/whoami", fresh["token"].as_str().expect("a token"))
            .await;
        assert_eq!(status, 200, "{kind}: a new token works");
        let missing = format!("/0/admin/{kind}/99/tokens");
        let (status, _) = s.call(Method::DELETE, &missing, Some(BOOT), None).await;
        assert_eq!(status, 404);
    }
}

/// `admin.users` is not root in disguise: its holder grants, revokes and
/// manages tokens only within the privileges it holds itself.
#[tokio::test]
async fn a_user_manager_cannot_give_what_it_does_not_hold() {
    let s = server().await;
    let user = |name: &'static str, privileges: Value| {
        let s = &s;
        async move {
            let (status, made) = s
                .post(
                    "/0/admin/users",
                    BOOT,
                    json!({"name": name, "privileges": privileges}),
                )
                .await;
            assert_eq!(status, 201, "{made}");
            (
                made["id"].as_u64().expect("an id"),
                made["token"].as_str().expect("a token").to_string(),
            )
        }
    };
    let (mallory, mallory_token) = user("mallory", json!(["admin.users", "lab"])).await;
    let (root, _) = user("root", json!(["admin.*"])).await;
    let (peer, _) = user("peer", json!(["lab"])).await;
    let as_mallory = |path: String, body: Value| {
        let (s, t) = (&s, &mallory_token);
        async move { s.post(&path, t, body).await }
    };
    let privileges = |id: u64| format!("/0/admin/users/{id}/privileges");
    let tokens = |id: u64| format!("/0/admin/users/{id}/tokens");

    // Granting herself, or a new user, what she does not hold.
    for grant in [json!(["admin.*"]), json!(["admin.jobs"]), json!(["gpu"])] {
        let (status, body) = as_mallory(privileges(mallory), json!({"grant": grant})).await;
        assert_eq!((status, code(&body)), (403, "forbidden"), "{grant}: {body}");
        let (status, body) = as_mallory(
            "/0/admin/users".into(),
            json!({"name": "sock", "privileges": grant}),
        )
        .await;
        assert_eq!((status, code(&body)), (403, "forbidden"), "{grant}: {body}");
    }
    // A token for, or a change to, a user who holds more than she does.
    let (status, body) = s
        .call(Method::POST, &tokens(root), Some(&mallory_token), None)
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = s
        .call(Method::DELETE, &tokens(root), Some(&mallory_token), None)
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = as_mallory(privileges(root), json!({"revoke": ["admin.*"]})).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    // Within what she holds, she manages users.
    let (status, body) = as_mallory(privileges(peer), json!({"revoke": ["lab"]})).await;
    assert_eq!((status, &body["privileges"]), (200, &json!([])), "{body}");
    let (status, body) = as_mallory(
        "/0/admin/users".into(),
        json!({"name": "intern", "privileges": ["lab"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s
        .call(Method::POST, &tokens(peer), Some(&mallory_token), None)
        .await;
    assert_eq!(status, 201, "{body}");
    // A privilege that could never be granted is not created either.
    let (status, body) = s
        .post(
            "/0/admin/users",
            BOOT,
            json!({"name": "odd", "privileges": ["bad priv!\u{0}"]}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "bad_name"), "{body}");
    // Nothing she was refused changed anything.
    let (_, users) = s.get("/0/admin/users", BOOT).await;
    let held: BTreeMap<&str, &Value> = (users.as_array().expect("users").iter())
        .map(|u| (u["name"].as_str().expect("a name"), &u["privileges"]))
        .collect();
    assert_eq!(held["mallory"], &json!(["admin.users", "lab"]));
    assert_eq!(held["root"], &json!(["admin.*"]));
    assert!(
        !held.contains_key("sock") && !held.contains_key("odd"),
        "{users}"
    );
}

#[tokio::test]
async fn privileges_are_granted_and_revoked_and_admin_star_opens_the_admin_api() {
    let s = server().await;
    let (_, carol) = s
        .post("/0/admin/users", BOOT, json!({"name": "carol"}))
        .await;
    let carol_token = carol["token"].as_str().expect("a token").to_string();
    let carol_id = carol["id"].as_u64().expect("an id");
    let (status, body) = s.get("/0/admin/users", &carol_token).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));

    let privileges = format!("/0/admin/users/{carol_id}/privileges");
    let (status, body) = s
        .post(&privileges, BOOT, json!({"grant": ["admin.*", "lab"]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["privileges"], json!(["admin.*", "lab"]));
    // Now carol administers: she lists users and makes one.
    let (status, users) = s.get("/0/admin/users", &carol_token).await;
    assert_eq!(status, 200, "{users}");
    let (status, dave) = s
        .post("/0/admin/users", &carol_token, json!({"name": "dave"}))
        .await;
    assert_eq!(status, 201, "{dave}");
    let (status, body) = s
        .post(&privileges, &carol_token, json!({"revoke": ["admin.*"]}))
        .await;
    assert_eq!((status, &body["privileges"]), (200, &json!(["lab"])));
    let (status, _) = s.get("/0/admin/users", &carol_token).await;
    assert_eq!(status, 403, "revoked at once");
    for bad in [
        json!({"grant": ["a b"]}),
        json!({"grant": ["x"], "revoke": ["x"]}),
        json!({"add": ["x"]}),
    ] {
        let (status, body) = s.post(&privileges, BOOT, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = s
        .post(
            "/0/admin/users/99/privileges",
            BOOT,
            json!({"grant": ["x"]}),
        )
        .await;
    assert_eq!(status, 404);

    // Tokens: a new one works, and revoking ends them all.
    let dave_id = dave["id"].as_u64().expect("an id");
    let tokens = format!("/0/admin/users/{dave_id}/tokens");
    let (status, fresh) = s.call(Method::POST, &tokens, Some(BOOT), None).await;
    assert_eq!(status, 201);
    let fresh = fresh["token"].as_str().expect("a token").to_string();
    let (_, me) = s.get("/0/whoami", &fresh).await;
    assert_eq!(
        (me["kind"].as_str(), me["id"].as_u64()),
        (Some("user"), Some(dave_id))
    );
    let (status, revoked) = s.call(Method::DELETE, &tokens, Some(BOOT), None).await;
    assert_eq!((status, &revoked["revoked"]), (200, &json!(2)));
    for t in [&fresh, dave["token"].as_str().expect("a token")] {
        let (status, _) = s.get("/0/whoami", t).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn the_lease_hold_stops_grants_and_held_resources_are_released_by_an_operator() {
    let s = server().await;
    let (status, body) = s.post("/0/admin/hold", BOOT, json!({"held": true})).await;
    assert_eq!((status, &body["held"]), (200, &json!(true)));
    let (_, submitted) = s.submit(BOOT, job()).await;
    let free = BTreeMap::from([(TypeId::new("pg"), 2)]);
    let request = Input::RequestLease {
        well: WellId(1),
        free: free.clone(),
    };
    let t = s.handle.send(request.clone()).await.expect("answered");
    assert!(t.events.is_empty(), "nothing is granted under the hold");
    let (_, explained) = s
        .get(&format!("/0/jobs/{}/explain", submitted["id"]), BOOT)
        .await;
    assert_eq!(explained["explanation"]["leases_held"], true);
    s.post("/0/admin/hold", BOOT, json!({"held": false})).await;
    let t = s.handle.send(request).await.expect("answered");
    let Some(Event::LeaseGranted { resources, .. }) = t.events.first() else {
        panic!("granted once the hold is lifted: {:?}", t.events);
    };
    let resource = resources[0];

    // The job ends; the well fails to destroy the resource until it is held.
    s.call(Method::POST, "/0/jobs/1/cancel", Some(BOOT), None)
        .await;
    let well = WellId(1);
    let limit = s
        .handle
        .read(|s| s.limits.destroy_failures_max)
        .await
        .expect("limits");
    for _ in 0..limit {
        s.handle
            .send(Input::ReportDestroyFailed { well, resource })
            .await
            .expect("recorded");
    }
    let (status, listed) = s.get("/0/admin/resources", BOOT).await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["state"], "held", "{listed}");
    let release = format!("/0/admin/resources/{}/release", resource.0);
    let (status, body) = s.call(Method::POST, &release, Some(BOOT), None).await;
    assert_eq!(status, 200, "{body}");
    let (_, listed) = s.get("/0/admin/resources", BOOT).await;
    assert_eq!(listed[0]["state"], "releasing", "{listed}");
    // Releasing what is not held is a conflict; an unknown one is missing.
    let (status, body) = s.call(Method::POST, &release, Some(BOOT), None).await;
    assert_eq!((status, code(&body)), (409, "wrong_state"), "{body}");
    let (status, _) = s
        .call(
            Method::POST,
            "/0/admin/resources/999/release",
            Some(BOOT),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = s.post("/0/admin/hold", BOOT, json!({"held": "yes"})).await;
    assert_eq!((status, code(&body)), (400, "bad_json"));
}
