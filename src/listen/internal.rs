//! The internal API (the spec's path 3 authentication: `X-Internal-Secret` =
//! `INTERNAL_API_SECRET`, compared in constant time), for the master service and
//! operators:
//!
//! - `POST /api/events[?dialect=NAME][&target=room:ID|user:ID|everyone]`: an event in
//!   canonical form (or in a dialect's wire form), delivered to clients through the bus,
//!   and to webhooks.
//! - `GET /api/webhooks`: endpoints and their queues; `GET /api/webhooks/dead`: dead
//!   letters; `POST /api/webhooks/dead/replay[?id=evt_…]`; `POST /api/webhooks/NAME/enable`.
//! - the server API's queries (`server_api.rs`): `GET /api/users/:id/presence`,
//!   `POST /api/presence/batch`, `GET /api/info`.

use super::Context;
use super::respond::{Body, json_response, read_body};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use subtle::ConstantTimeEq;

fn query(req: &Request<Incoming>, key: &str) -> Option<String> {
    form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Answers an internal API request, or `None` when the path is not one of its.
pub(super) async fn handle(req: Request<Incoming>, sh: &Context) -> Option<Response<Body>> {
    let path = req.uri().path().to_string();
    let ours = path == "/api/events"
        || path == "/api/webhooks"
        || path.starts_with("/api/webhooks/")
        || super::server_api::is_ours(&path);
    if !ours {
        return None;
    }
    let secret = &sh.cfg.internal_api.secret;
    if secret.is_empty() {
        return Some(json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "the internal API is off (INTERNAL_API_SECRET)"}),
        ));
    }
    let given = req
        .headers()
        .get("x-internal-secret")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(given.ct_eq(secret.as_bytes())) {
        return Some(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "wrong or missing X-Internal-Secret"}),
        ));
    }
    if super::server_api::is_ours(&path) {
        return Some(super::server_api::handle(req, sh).await);
    }
    let hub = &sh.hub;
    let webhooks = sh.attached.webhooks.as_ref();
    Some(match (req.method().clone(), path.as_str()) {
        (Method::POST, "/api/events") => {
            let dialect = query(&req, "dialect");
            let target = query(&req, "target");
            let body: Bytes = match read_body(req.into_body(), sh.cfg.limits.max_frame).await {
                Ok(b) => b,
                Err(too_large) => return Some(too_large),
            };
            match crate::dialect::external::read(
                &body,
                dialect.as_deref(),
                target.as_deref(),
                "api",
                &hub.registry(),
            ) {
                Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e})),
                Ok(events) => {
                    let mut accepted = Vec::new();
                    for ev in events {
                        let name = ev.name.to_string();
                        let stored = match hub.inject(ev).await {
                            Ok(stored) => stored.wait().await.map_err(|e| {
                                (
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    format!("delivered, but its webhook could not be stored: {e}"),
                                    "unavailable",
                                )
                            }),
                            Err(r) => Err((
                                if r.code == crate::hub::ErrorCode::Unavailable {
                                    StatusCode::SERVICE_UNAVAILABLE
                                } else {
                                    StatusCode::BAD_REQUEST
                                },
                                r.message,
                                r.code.as_str(),
                            )),
                        };
                        if let Err((status, message, code)) = stored {
                            return Some(json_response(
                                status,
                                &json!({"error": message, "code": code, "accepted": accepted}),
                            ));
                        }
                        accepted.push(name);
                    }
                    json_response(StatusCode::ACCEPTED, &json!({"accepted": accepted}))
                }
            }
        }
        (Method::GET, "/api/webhooks") => json_response(
            StatusCode::OK,
            &json!({"endpoints": webhooks.map(|w| w.status()).unwrap_or_default()}),
        ),
        (Method::GET, "/api/webhooks/dead") => match webhooks {
            None => json_response(StatusCode::OK, &json!({"dead": []})),
            Some(w) => match w.dead_letters().await {
                Ok(d) => json_response(StatusCode::OK, &json!({"dead": d})),
                Err(e) => json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": e})),
            },
        },
        (Method::POST, "/api/webhooks/dead/replay") => {
            let id = query(&req, "id");
            match webhooks {
                None => json_response(StatusCode::OK, &json!({"replayed": 0})),
                Some(w) => match w.replay(id.as_deref()).await {
                    Ok(n) => json_response(StatusCode::OK, &json!({"replayed": n})),
                    Err(e) => json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": e})),
                },
            }
        }
        (Method::POST, p) if p.starts_with("/api/webhooks/") && p.ends_with("/enable") => {
            let name = p
                .trim_start_matches("/api/webhooks/")
                .trim_end_matches("/enable");
            if webhooks.is_some_and(|w| w.enable(name)) {
                json_response(StatusCode::OK, &json!({"enabled": name}))
            } else {
                json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"error": format!("no webhook endpoint `{name}`")}),
                )
            }
        }
        _ => json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "method not allowed"}),
        ),
    })
}
