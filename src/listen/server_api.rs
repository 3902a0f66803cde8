//! The server API, behind the internal secret (the spec's frontend presence routes are
//! "proxied by Master", which holds it): a user's presence, a room's online members, a
//! batch of users' presence,
//! the gateway itself (`/api/info`: the instances alive and what each serves); a user's
//! sessions disconnected, or removed from a room, on every instance; and revocations
//! refused at connect. JSON in
//! and out; errors `{code, message}` with their status; bounded requests (ids, batch
//! size, body).

use super::Context;
use super::respond::{Body, json_response};
use crate::hub::{Refusal, Revoked, StoreError};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// The longest user id asked about, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// The most users one batch asks about.
pub const MAX_BATCH: usize = 1000;
/// The largest batch body, in bytes (1,000 ids of 256 bytes, quoted, fit).
const MAX_BODY: usize = 300 * 1024;

/// Whether `path` is one of these routes.
pub(super) fn is_ours(path: &str) -> bool {
    path == "/api/info"
        || path == "/api/presence/batch"
        || path == "/api/revocations"
        || path.starts_with("/api/users/")
        || (path.starts_with("/api/conversations/") && path.ends_with("/presence"))
        || (path.starts_with("/api/rooms/") && path.ends_with("/leave"))
}

/// A refused request: its status and `{code, message}`.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn response(&self) -> Response<Body> {
        json_response(
            self.status,
            &json!({"code": self.code, "message": self.message}),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, r.code.as_str(), r.message)
    }
}

/// The body of a request, bounded; empty, it is JSON `null`.
async fn json_body<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    shape: &str,
) -> Result<T, ApiError> {
    let body: Bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("a body is at most {MAX_BODY} bytes"),
            )
        })?
        .to_bytes();
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        &body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("expected {shape}: {e}")))
}

/// An id (a user's, a token's), bounded.
fn checked_id(id: String) -> Result<String, ApiError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(ApiError::bad(format!("an id is 1 to {MAX_ID_BYTES} bytes")));
    }
    Ok(id)
}

fn percent_decode(s: &str) -> String {
    // A path keeps `+` as it is (only a form turns it into a space).
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `POST /api/presence/batch`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Batch {
    user_ids: Vec<String>,
}

/// `POST /api/users/:id/disconnect` (an empty body: the defaults).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct Disconnect {
    reason: Option<String>,
    reconnect: Option<bool>,
}

/// `POST /api/revocations`: a user or a token, for `ttl` seconds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Revocation {
    user_id: Option<String>,
    jti: Option<String>,
    ttl: u64,
}

/// `POST /api/rooms/:id/leave`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Leave {
    user_id: String,
}

/// The longest a revocation lasts.
const MAX_REVOCATION: u64 = 30 * 24 * 3600;

/// Answers one of these routes (the caller checked the secret).
pub(super) async fn handle(req: Request<Incoming>, cx: &Context) -> Response<Body> {
    match route(req, cx).await {
        Ok(resp) => resp,
        Err(e) => e.response(),
    }
}

async fn route(req: Request<Incoming>, cx: &Context) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let hub = &cx.hub;
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/api/info") => {
            let instances = hub.instances().await?;
            let total: u64 = instances
                .iter()
                .filter_map(|i| i["connections"].as_u64())
                .sum();
            // The largest rooms of the deployment: each instance's largest, summed.
            let mut rooms: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
            for r in instances
                .iter()
                .filter_map(|i| i["largestRooms"].as_array())
                .flatten()
            {
                if let (Some(id), Some(n)) =
                    (r["conversationId"].as_str(), r["connections"].as_u64())
                {
                    *rooms.entry(id).or_default() += n;
                }
            }
            let mut rooms: Vec<(&str, u64)> = rooms.into_iter().collect();
            rooms.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            rooms.truncate(crate::hub::LARGEST_ROOMS);
            let rooms: Vec<_> = rooms
                .into_iter()
                .map(|(id, n)| json!({"conversationId": id, "connections": n}))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "instance": hub.instance(),
                    "version": env!("CARGO_PKG_VERSION"),
                    "connections": total,
                    "largestRooms": rooms,
                    "instances": instances,
                }),
            ))
        }
        (Method::POST, "/api/presence/batch") => {
            let batch: Batch = json_body(req, r#"{"userIds": ["…"]}"#).await?;
            if batch.user_ids.len() > MAX_BATCH {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_many_ids",
                    format!("at most {MAX_BATCH} user ids per batch"),
                ));
            }
            let ids = batch
                .user_ids
                .into_iter()
                .map(checked_id)
                .collect::<Result<Vec<_>, _>>()?;
            let presence = hub.presence_of_many(&ids).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"presence": presence}),
            ))
        }
        (Method::POST, "/api/revocations") => {
            let r: Revocation =
                json_body(req, r#"{"userId": "…" | "jti": "…", "ttl": seconds}"#).await?;
            if r.ttl == 0 || r.ttl > MAX_REVOCATION {
                return Err(ApiError::bad(format!(
                    "ttl is 1 to {MAX_REVOCATION} seconds"
                )));
            }
            let (what, id) = match (r.user_id, r.jti) {
                (Some(u), None) => (Revoked::User, checked_id(u)?),
                (None, Some(j)) => (Revoked::Token, checked_id(j)?),
                _ => return Err(ApiError::bad("name one of userId and jti")),
            };
            hub.revoke(what, &id, Duration::from_secs(r.ttl)).await?;
            // A revoked user's sessions end now too (a token's cannot be found: it is
            // refused at its next connect).
            if what == Revoked::User {
                hub.disconnect_user(&id, "revoked", false)?;
            }
            let key = if what == Revoked::User {
                "userId"
            } else {
                "jti"
            };
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"revoked": {key: id}, "ttl": r.ttl}),
            ))
        }
        (Method::GET, p) if p.starts_with("/api/conversations/") => {
            let segment = p
                .strip_prefix("/api/conversations/")
                .and_then(|r| r.strip_suffix("/presence"))
                .unwrap_or_default();
            let room = checked_id(percent_decode(segment))?;
            Ok(json_response(
                StatusCode::OK,
                &hub.room_presence(&room).await?,
            ))
        }
        (Method::POST, p) if p.starts_with("/api/rooms/") => {
            let segment = p
                .strip_prefix("/api/rooms/")
                .and_then(|r| r.strip_suffix("/leave"))
                .unwrap_or_default();
            let room = checked_id(percent_decode(segment))?;
            let l: Leave = json_body(req, r#"{"userId": "…"}"#).await?;
            let user = checked_id(l.user_id)?;
            hub.remove_from_room(&room, &user).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"conversationId": room, "userId": user, "removed": true}),
            ))
        }
        (method, p) if p.starts_with("/api/users/") => {
            let rest = p.strip_prefix("/api/users/").unwrap_or_default();
            let (segment, action) = match rest.rsplit_once('/') {
                Some((id, a @ ("presence" | "disconnect"))) => (id, a),
                _ => (rest, ""),
            };
            let id = checked_id(percent_decode(segment))?;
            let (reason, reconnect) = match (method, action) {
                (Method::GET, "presence") => {
                    return Ok(json_response(StatusCode::OK, &hub.presence_of(&id).await?));
                }
                // The seed's `DELETE /api/users/:externalUserId`: the user is gone, every
                // session ends for good.
                (Method::DELETE, "") => ("user deleted".to_string(), false),
                (Method::POST, "disconnect") => {
                    let d: Disconnect = json_body::<Option<Disconnect>>(
                        req,
                        r#"{"reason": "…", "reconnect": true}"#,
                    )
                    .await?
                    .unwrap_or_default();
                    let reason = d.reason.unwrap_or_else(|| "disconnected".into());
                    if reason.len() > MAX_ID_BYTES {
                        return Err(ApiError::bad(format!(
                            "a reason is at most {MAX_ID_BYTES} bytes"
                        )));
                    }
                    (reason, d.reconnect.unwrap_or(true))
                }
                _ => {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "no such route (GET …/presence, POST …/disconnect, DELETE /api/users/:id)",
                    ));
                }
            };
            hub.disconnect_user(&id, &reason, reconnect)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"userId": id, "disconnected": true, "reconnect": reconnect}),
            ))
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_decoded_and_bounded() {
        assert!(is_ours("/api/users/u%201/presence"));
        assert!(!is_ours("/api/events"));
        assert_eq!(percent_decode("u%201"), "u 1");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert!(checked_id(String::new()).is_err());
        assert!(checked_id("x".repeat(MAX_ID_BYTES + 1)).is_err());
        assert_eq!(checked_id("user_1".into()).ok().as_deref(), Some("user_1"));
    }
}
