//! The console's API (`/console/api/…`, behind its login): the live stream (overview and
//! traffic, one event a second), a traffic sample in every dialect, the translate view
//! (what `switchboard translate` prints, and the fields lost), the matrix, the webhooks
//! (queues, recent attempts, dead letters, replay) and the sessions of a user
//! (disconnect). Message content is shown only with `console.show_content`.

use super::super::Context;
use super::super::respond::{Body, json_response, read_body};
use crate::dialect::{Direction, fidelity, report};
use crate::event::Event;
use crate::hub::tap::Sample;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The biggest translate request read.
const MAX_TRANSLATE: usize = 256 * 1024;

pub(super) async fn api(req: Request<Incoming>, cx: &Arc<Context>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let param = |k: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
    };
    let Some(rest) = path.strip_prefix("/console/api/") else {
        return not_found();
    };
    match (req.method().clone(), rest) {
        (Method::GET, "stream") => stream(cx.clone()),
        (Method::GET, "overview") => {
            let text = cx.hub.metrics().render();
            let series = json!({});
            json_response(
                StatusCode::OK,
                &super::sampler::overview(cx, &text, series).await,
            )
        }
        (Method::GET, "dialects") => {
            let reg = cx.hub.registry();
            let names: Vec<&str> = reg.dialects().iter().map(|d| &*d.name).collect();
            json_response(StatusCode::OK, &json!({"dialects": names}))
        }
        (Method::GET, "matrix") => {
            let reg = cx.hub.registry();
            let m = fidelity::Matrix::compute(&reg, &fidelity::embedded_examples());
            json_response(
                StatusCode::OK,
                &json!({"text": report::matrix(&reg, &m, false)}),
            )
        }
        (Method::POST, "translate") => translate(req, cx).await,
        (Method::GET, p) if p.starts_with("traffic/") => {
            match p["traffic/".len()..].parse::<u64>() {
                Ok(seq) => sample(cx, seq),
                Err(_) => not_found(),
            }
        }
        (Method::GET, "webhooks") => webhooks(cx).await,
        (Method::POST, "webhooks/dead/replay") => match cx.attached.webhooks.as_ref() {
            None => json_response(StatusCode::OK, &json!({"replayed": 0})),
            Some(w) => match w.replay(param("id").as_deref()).await {
                Ok(n) => json_response(StatusCode::OK, &json!({"replayed": n})),
                Err(e) => json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": e})),
            },
        },
        (Method::GET, "sessions") => match param("user").filter(|u| !u.is_empty()) {
            None => json_response(StatusCode::BAD_REQUEST, &json!({"error": "name a user"})),
            Some(user) => sessions(cx, &user).await,
        },
        (Method::POST, p) if p.starts_with("users/") && p.ends_with("/disconnect") => {
            // Decoded and bounded as the server API's own paths.
            let user = match super::super::server_api::path_id(p, "users/", "/disconnect") {
                Ok(u) => u,
                Err(e) => return e.response(),
            };
            match cx
                .hub
                .disconnect_user(&user, "disconnected from the console", true)
            {
                Ok(()) => json_response(
                    StatusCode::OK,
                    &json!({"userId": user, "disconnected": true}),
                ),
                Err(r) => json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"error": r.message, "code": r.code.as_str()}),
                ),
            }
        }
        _ => not_found(),
    }
}

fn not_found() -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "no such console API"}),
    )
}

/// The event as the console may show it: content replaced by `…` and what the origin
/// dialect carried dropped, unless `console.show_content`.
fn shown(cx: &Context, ev: &Event) -> Event {
    let mut ev = ev.clone();
    if !cx.cfg.console.show_content {
        for k in ["content", "notification"] {
            if let Some(v) = ev.body.get_mut(k)
                && !v.is_null()
            {
                *v = json!("…");
            }
        }
        ev.meta.carried = None;
    }
    ev
}

fn summary(s: &Sample) -> Value {
    let room = match &s.event.meta.target {
        Some(crate::event::Target::Room(r)) => json!(r),
        Some(crate::event::Target::User(u)) => json!(format!("user:{u}")),
        _ => s
            .event
            .body
            .get("conversationId")
            .cloned()
            .unwrap_or(Value::Null),
    };
    json!({
        "seq": s.seq,
        "at": s.at,
        "name": &*s.event.name,
        "from": s.event.meta.origin.as_ref().map(|o| &*o.dialect),
        "to": s.to.iter().map(|(d, n)| json!({"dialect": &**d, "connections": n})).collect::<Vec<_>>(),
        "room": room,
        "size": s.size,
    })
}

/// Holds a console's interest in the overview and the traffic while it streams.
struct Watching(Arc<Context>);

impl Watching {
    fn new(cx: Arc<Context>) -> Watching {
        cx.hub.tap().watch();
        cx.console.sampler.watchers.fetch_add(1, Ordering::Relaxed);
        Watching(cx)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.hub.tap().unwatch();
        self.0
            .console
            .sampler
            .watchers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Server-sent events: `{overview, traffic, skipped}` once a second until the console
/// goes (or the server stops).
fn stream(cx: Arc<Context>) -> Response<Body> {
    struct State {
        watching: Watching,
        last: Option<u64>,
        first: bool,
    }
    let state = State {
        watching: Watching::new(cx),
        last: None,
        first: true,
    };
    let s = futures_util::stream::unfold(state, |mut st| async move {
        let cx = st.watching.0.clone();
        if !st.first {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = cx.shutdown.cancelled() => return None,
            }
        }
        st.first = false;
        let (samples, skipped) = cx.hub.tap().since(st.last);
        if let Some(s) = samples.last() {
            st.last = Some(s.seq);
        }
        #[derive(serde::Serialize)]
        struct Update<'a> {
            overview: &'a Value,
            traffic: Vec<Value>,
            skipped: u64,
        }
        let overview = cx.console.sampler.snapshot();
        let update = Update {
            overview: &overview,
            traffic: samples.iter().map(summary).collect(),
            skipped,
        };
        // Written straight into the frame: no copy of the overview per console.
        let mut text = b"data: ".to_vec();
        let _ = serde_json::to_writer(&mut text, &update);
        text.extend_from_slice(b"\n\n");
        let frame = Frame::data(Bytes::from(text));
        Some((Ok::<_, std::convert::Infallible>(frame), st))
    });
    let body = StreamBody::new(s).map_err(|never| match never {}).boxed();
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A traffic sample in its origin dialect, canonical, and every other dialect.
fn sample(cx: &Context, seq: u64) -> Response<Body> {
    let (all, _) = cx.hub.tap().since(None);
    let Some(s) = all.into_iter().find(|s| s.seq == seq) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "that sample is gone (the console keeps the last 200)"}),
        );
    };
    let ev = shown(cx, &s.event);
    let reg = cx.hub.registry();
    let dir = reg.default_direction(&ev.name);
    let origin = ev.meta.origin.as_ref().map(|o| o.dialect.to_string());
    let mut dialects = Vec::new();
    let mut names: Vec<&str> = reg.dialects().iter().map(|d| &*d.name).collect();
    if let Some(o) = &origin {
        names.sort_by_key(|n| *n != o.as_str());
    }
    for name in names {
        let Some(d) = reg.dialect(name) else { continue };
        let mut out = Vec::new();
        let (frame, error) = match d.encode_frame(&ev, dir, &mut out) {
            Ok(()) => (Some(String::from_utf8_lossy(&out).into_owned()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        dialects.push(json!({"dialect": name, "frame": frame, "error": error}));
    }
    json_response(
        StatusCode::OK,
        &json!({
            "summary": summary(&s),
            "origin": origin,
            "canonical": ev,
            "dialects": dialects,
        }),
    )
}

#[derive(serde::Deserialize)]
struct TranslateAsk {
    from: String,
    to: String,
    #[serde(default)]
    direction: Option<String>,
    frame: String,
}

async fn translate(req: Request<Incoming>, cx: &Context) -> Response<Body> {
    let body = match read_body(req.into_body(), MAX_TRANSLATE).await {
        Ok(b) => b,
        Err(too_large) => return too_large,
    };
    let ask: TranslateAsk = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("expected {{from, to, direction?, frame}}: {e}")}),
            );
        }
    };
    let dir = match ask.direction.as_deref() {
        None | Some("" | "auto") => None,
        Some(d) => match Direction::parse(d) {
            Some(d) => Some(d),
            None => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "direction is up, down or auto"}),
                );
            }
        },
    };
    let reg = cx.hub.registry();
    let e = fidelity::explain(&reg, &ask.from, &ask.to, dir, ask.frame.trim().as_bytes());
    json_response(StatusCode::OK, &e)
}

async fn webhooks(cx: &Context) -> Response<Body> {
    let Some(w) = cx.attached.webhooks.as_ref() else {
        return json_response(StatusCode::OK, &json!({"endpoints": [], "dead": []}));
    };
    let endpoints: Vec<Value> = w
        .status()
        .into_iter()
        .map(|e| {
            let recent = cx.hub.metrics().webhook_recent.of(&e.name);
            let mut v = serde_json::to_value(&e).unwrap_or(Value::Null);
            v["recent"] = serde_json::to_value(recent).unwrap_or(Value::Null);
            v
        })
        .collect();
    let dead = match w.dead_letters().await {
        Ok(d) => serde_json::to_value(d).unwrap_or(Value::Null),
        Err(e) => json!({"error": e}),
    };
    json_response(
        StatusCode::OK,
        &json!({"endpoints": endpoints, "dead": dead}),
    )
}

async fn sessions(cx: &Context, user: &str) -> Response<Body> {
    match cx.hub.presence_of(user).await {
        Ok(p) => {
            let sockets: Vec<Value> = p
                .sockets
                .iter()
                .map(|s| {
                    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
                    v["rooms"] = json!(cx.hub.rooms_of_socket(&s.socket_id));
                    v
                })
                .collect();
            json_response(
                StatusCode::OK,
                &json!({
                    "userId": p.user_id,
                    "isOnline": p.is_online,
                    "lastSeen": p.last_seen,
                    "sockets": sockets,
                }),
            )
        }
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": e.to_string()}),
        ),
    }
}
