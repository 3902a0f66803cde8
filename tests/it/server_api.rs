//! The server API's queries (issue 23, first part): two instances on a Redis of the
//! test's own; a user's presence asked on the instance they are not connected to, a
//! batch of users, `/api/info` listing both instances and what each serves; the secret,
//! malformed and oversized requests refused with `{code, message}`.

use crate::live::{Client, Driver, Live, TokenAt, get_internal, post, unique};
use crate::support::{Redis, until};
use serde_json::Value;
use std::time::Duration;
use switchboard::config::BusKind;

const INTERNAL: &str = "server-api-secret";

async fn instance(redis: &Redis, name: &str) -> Live {
    let url = redis.url();
    let name = name.to_string();
    let live = Live::start_with(move |c| {
        c.bus.kind = BusKind::Redis;
        c.redis.url = url;
        c.instance = name;
        c.internal_api.secret = INTERNAL.into();
        // Each instance announces itself every third of this.
        c.hub.presence_ttl = Duration::from_secs(3);
    })
    .await;
    until("the bus", Duration::from_secs(20), || live.ready().0).await;
    live
}

fn body(answer: &str) -> Value {
    serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_instances_are_answered_for_the_whole_deployment() {
    let redis = Redis::start().await;
    let (ia, ib) = (unique("api-a"), unique("api-b"));
    let a = instance(&redis, &ia).await;
    let b = instance(&redis, &ib).await;
    let driver = Driver::start().await;
    let user = unique("on-b");
    let mut phase10 = Client::connect(&b, &driver, "phase10", "websocket", &user, None).await;
    let mut nexus = Client::connect(&b, &driver, "nexus", "websocket", &user, None).await;

    // Asked on A, the user connected on B: online, both sessions, each naming its
    // dialect, transport and instance.
    let path = format!("/api/users/{user}/presence");
    let mut presence = Value::Null;
    for _ in 0..100 {
        presence = get_internal(a.addrs()[0], &path, INTERNAL).await.1;
        if presence["sockets"].as_array().is_some_and(|s| s.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(presence["userId"], user.as_str(), "{presence}");
    assert_eq!(presence["isOnline"], true, "{presence}");
    assert!(presence["lastSeen"].is_i64(), "{presence}");
    let mut dialects: Vec<&str> = presence["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .map(|s| {
            assert_eq!(s["instance"], ib.as_str(), "{s}");
            s["dialect"].as_str().expect("dialect")
        })
        .collect();
    dialects.sort_unstable();
    assert_eq!(dialects, ["nexus", "phase10"]);
    let (status, unknown) =
        get_internal(a.addrs()[0], "/api/users/nobody-at-all/presence", INTERNAL).await;
    assert_eq!(status, 200);
    assert_eq!(unknown["isOnline"], false);
    assert_eq!(unknown["lastSeen"], Value::Null);

    // A batch, in the order asked.
    let batch = format!(r#"{{"userIds": ["nobody-at-all", "{user}"]}}"#);
    let (status, answer) = post(a.addrs()[0], "/api/presence/batch", INTERNAL, &batch).await;
    assert_eq!(status, 200, "{answer}");
    let p = body(&answer);
    assert_eq!(p["presence"][0]["isOnline"], false, "{p}");
    assert_eq!(p["presence"][1]["isOnline"], true, "{p}");

    // A room's online members, one on each instance, asked on A; a room nobody is in.
    let room = unique("api-room");
    let (ua, ub) = (unique("in-a"), unique("in-b"));
    let mut in_a = Client::connect(
        &a,
        &driver,
        "chat-service",
        "websocket",
        &ua,
        Some(&[room.as_str()]),
    )
    .await;
    let in_b = Client::connect(
        &b,
        &driver,
        "salala",
        "websocket",
        &ub,
        Some(&[room.as_str()]),
    )
    .await;
    let path = format!("/api/conversations/{room}/presence");
    let mut members = Value::Null;
    for _ in 0..100 {
        members = get_internal(a.addrs()[0], &path, INTERNAL).await.1;
        if members["count"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut who: Vec<&str> = members["online"]
        .as_array()
        .expect("online")
        .iter()
        .filter_map(|p| p["userId"].as_str())
        .collect();
    who.sort_unstable();
    let mut want = vec![ua.as_str(), ub.as_str()];
    want.sort_unstable();
    assert_eq!(who, want, "{members}");
    // A's member removed from the room through B: told in its dialect (Chat Service's
    // `conversation:removed`), and gone from the room's presence.
    let body = format!(r#"{{"userId": "{ua}"}}"#);
    let (status, answer) = post(
        b.addrs()[0],
        &format!("/api/rooms/{room}/leave"),
        INTERNAL,
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let told = in_a.wire("conversation:removed").await.expect("told");
    assert_eq!(told["conversationId"], room.as_str(), "{told}");
    for _ in 0..100 {
        members = get_internal(a.addrs()[0], &path, INTERNAL).await.1;
        if members["count"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(members["online"][0]["userId"], ub.as_str(), "{members}");
    // B's member leaves: none left.
    in_b.close().await;
    for _ in 0..100 {
        members = get_internal(a.addrs()[0], &path, INTERNAL).await.1;
        if members["count"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(members["count"], 0, "{members}");
    let (status, empty) = get_internal(
        a.addrs()[0],
        "/api/conversations/nobody-here/presence",
        INTERNAL,
    )
    .await;
    assert_eq!((status, &empty["count"]), (200, &Value::from(0)), "{empty}");

    // A room with a member on each instance: the deployment's largest.
    let big = unique("big-room");
    let _big_a = Client::connect(
        &a,
        &driver,
        "chat-service",
        "websocket",
        &unique("big-a"),
        Some(&[big.as_str()]),
    )
    .await;
    let _big_b = Client::connect(
        &b,
        &driver,
        "chat-service",
        "websocket",
        &unique("big-b"),
        Some(&[big.as_str()]),
    )
    .await;

    // Both instances, with what each serves (B as it last announced itself).
    let mut info = Value::Null;
    for _ in 0..100 {
        info = get_internal(a.addrs()[0], "/api/info", INTERNAL).await.1;
        if info["connections"] == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let instances = info["instances"].as_array().expect("instances");
    let ids: Vec<&str> = instances
        .iter()
        .filter_map(|i| i["instance"].as_str())
        .collect();
    let mut want = vec![ia.as_str(), ib.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "{info}");
    let on_b = instances
        .iter()
        .find(|i| i["instance"] == ib.as_str())
        .expect("b");
    assert_eq!(on_b["connections"], 3, "{info}");
    let on_a = instances
        .iter()
        .find(|i| i["instance"] == ia.as_str())
        .expect("a");
    assert_eq!(on_a["byRoute"][0]["dialect"], "chat-service", "{info}");
    assert_eq!(
        info["largestRooms"][0]["conversationId"],
        big.as_str(),
        "{info}"
    );
    assert_eq!(info["largestRooms"][0]["connections"], 2, "{info}");
    assert_eq!(on_b["bus"], "redis");

    // Refusals: the secret, malformed and oversized requests.
    let (status, _) = get_internal(a.addrs()[0], &path, "wrong").await;
    assert_eq!(status, 401);
    for (what, body, want) in [
        ("not JSON", "{".to_string(), 400),
        ("another shape", r#"{"ids": []}"#.to_string(), 400),
        (
            "too many ids",
            format!(r#"{{"userIds": [{}]}}"#, vec!["\"u\""; 1001].join(",")),
            413,
        ),
        (
            "an id of 10 KB",
            format!(r#"{{"userIds": ["{}"]}}"#, "x".repeat(10_000)),
            400,
        ),
        (
            "a body of 1 MB",
            format!(r#"{{"userIds": ["{}"]}}"#, "x".repeat(1 << 20)),
            413,
        ),
    ] {
        let (status, answer) = post(a.addrs()[0], "/api/presence/batch", INTERNAL, &body).await;
        assert_eq!(status, want, "{what}: {answer}");
        let e = self::body(&answer);
        assert!(
            e["code"].is_string() && e["message"].is_string(),
            "{what}: {answer}"
        );
    }
    let long = format!("/api/users/{}/presence", "x".repeat(300));
    assert_eq!(get_internal(a.addrs()[0], &long, INTERNAL).await.0, 400);

    // The seed's DELETE /api/users/:id, asked on A: the user's sessions on A and B are
    // told in their dialect (Phase 10: `system:disconnect`; NexusChat: the close frame)
    // and closed.
    let mut on_a = Client::connect(&a, &driver, "phase10", "polling", &user, None).await;
    until("registered on A", Duration::from_secs(5), || {
        a.hub().connections().iter().any(|c| c.user.id == user)
    })
    .await;
    let t0 = std::time::Instant::now();
    let (status, answer) = delete(a.addrs()[0], &format!("/api/users/{user}")).await;
    assert_eq!(status, 200, "{answer}");
    let notice = phase10
        .next(|r| r.name == "system:disconnect")
        .await
        .expect("told in its dialect");
    assert_eq!(
        notice.payload["reason"], "user deleted",
        "{:?}",
        notice.payload
    );
    phase10
        .next(|r| r.name == "__disconnect__")
        .await
        .expect("phase10 closed");
    let closed = nexus
        .next(|r| r.name == "__close__")
        .await
        .expect("nexus closed");
    assert_eq!(closed.payload["code"], 4000, "{:?}", closed.payload);
    on_a.next(|r| r.name == "system:disconnect")
        .await
        .expect("told on A too");
    on_a.next(|r| r.name == "__disconnect__")
        .await
        .expect("closed on A too");
    // Within a second on a quiet machine (the issue's bound); a loaded CI machine running
    // the whole suite at once is given twice that.
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // Offline now, and when that happened is remembered.
    let path = format!("/api/users/{user}/presence");
    let mut gone = Value::Null;
    for _ in 0..100 {
        gone = get_internal(b.addrs()[0], &path, INTERNAL).await.1;
        // The last seen is written just after the last connection is gone.
        if gone["isOnline"] == false && gone["lastSeen"].is_i64() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gone["isOnline"], false, "{gone}");
    assert!(gone["lastSeen"].is_i64(), "{gone}");

    // POST …/disconnect with reconnect allowed: the raw WebSocket close says try again.
    let mut nexus = Client::connect(&b, &driver, "nexus", "websocket", &user, None).await;
    // Registered (the WebSocket opens before the hub has it), and B listening to the
    // user's room (it subscribes in the background after): the control goes there.
    until("registered on B", Duration::from_secs(5), || {
        b.hub().connections().iter().any(|c| c.user.id == user)
    })
    .await;
    crate::support::listening(&redis.url(), &format!("switchboard:{{user:{user}}}"), 1).await;
    let body = r#"{"reason": "maintenance", "reconnect": true}"#;
    let (status, answer) = post(
        a.addrs()[0],
        &format!("/api/users/{user}/disconnect"),
        INTERNAL,
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let closed = nexus
        .next(|r| r.name == "__close__")
        .await
        .expect("nexus closed");
    assert_eq!(closed.payload["code"], 1013, "{:?}", closed.payload);

    // A revoked user is refused at connect on every instance until it expires.
    let body = format!(r#"{{"userId": "{user}", "ttl": 2}}"#);
    let (status, answer) = post(a.addrs()[0], "/api/revocations", INTERNAL, &body).await;
    assert_eq!(status, 201, "{answer}");
    let t = crate::live::token(&user, None, None);
    let mut refused = Client::open(
        &b,
        &driver,
        "phase10",
        "websocket",
        &user,
        Some(&t),
        TokenAt::Primary,
    )
    .await;
    let e = refused
        .canonical_where("session.error", crate::live::WAIT, |_| true)
        .await
        .expect("refused in its dialect");
    assert_eq!(e.str_field("code"), Some("unauthorized"), "{e:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let _back = Client::connect(&b, &driver, "phase10", "websocket", &user, None).await;

    // A token revoked by its jti; the user's other tokens still work.
    let auth = switchboard::auth::Authenticator::hs256(crate::live::SECRET, Duration::ZERO);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    let tok = auth
        .sign(&serde_json::json!({"sub": user, "exp": exp, "jti": "tok-1"}))
        .expect("sign");
    let body = r#"{"jti": "tok-1", "ttl": 60}"#;
    assert_eq!(
        post(a.addrs()[0], "/api/revocations", INTERNAL, body)
            .await
            .0,
        201
    );
    let mut refused = Client::open(
        &b,
        &driver,
        "phase10",
        "websocket",
        &user,
        Some(&tok),
        TokenAt::Primary,
    )
    .await;
    assert!(
        refused
            .canonical_where("session.error", crate::live::WAIT, |_| true)
            .await
            .is_some(),
        "the revoked token is refused"
    );
    for bad in [
        r#"{"userId": "u", "jti": "j", "ttl": 5}"#,
        r#"{"ttl": 5}"#,
        r#"{"userId": "u", "ttl": 0}"#,
        r#"{"userId": "u"}"#,
    ] {
        assert_eq!(
            post(a.addrs()[0], "/api/revocations", INTERNAL, bad)
                .await
                .0,
            400,
            "{bad}"
        );
    }
}

/// DELETE on the internal API; (status, whole answer).
async fn delete(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let req = format!(
        "DELETE {path} HTTP/1.1\r\nHost: x\r\nX-Internal-Secret: {INTERNAL}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    crate::live::raw_http(addr, &req).await
}

/// The OpenAPI document names every route of the server API with its method, and each
/// schema they use; no secret is needed to read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let live = Live::start().await;
    let (status, doc) = get_internal(live.addrs()[0], "/api/openapi.json", "").await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    for (path, method) in [
        ("/api/info", "get"),
        ("/api/users/{userId}/presence", "get"),
        ("/api/presence/batch", "post"),
        ("/api/conversations/{conversationId}/presence", "get"),
        ("/api/users/{userId}", "delete"),
        ("/api/users/{userId}/disconnect", "post"),
        ("/api/rooms/{conversationId}/leave", "post"),
        ("/api/revocations", "post"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(
            op["responses"]["200"].is_object() || op["responses"]["201"].is_object(),
            "{method} {path}"
        );
    }
    for schema in [
        "PresenceSnapshot",
        "RoomPresence",
        "Info",
        "InstanceInfo",
        "ErrorBody",
        "Revocation",
        "Batch",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["internal_secret"]["name"],
        "X-Internal-Secret"
    );
    // Those, and no others.
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 8, "{:?}", paths.keys().collect::<Vec<_>>());
}
