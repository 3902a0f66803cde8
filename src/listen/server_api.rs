//! The server API, behind the internal secret (the spec's frontend presence routes are
//! "proxied by Master", which holds it): a user's presence, a room's online members, a
//! batch of users' presence, the gateway itself (`/api/info`); a user's sessions
//! disconnected, or removed from a room, on every instance; revocations refused at
//! connect. JSON in and out, typed (the OpenAPI document at `/api/openapi.json` is
//! generated from these handlers and their types, `openapi.rs`); errors `{code, message}`
//! with their status; bounded requests (ids, batch size, body).

use super::Context;
use super::respond::{Body, json_response};
use crate::hub::{
    Hub, InstanceInfo, PresenceSnapshot, Refusal, Revoked, RoomPresence, RoomSize, StoreError,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use utoipa::ToSchema;

/// The longest id (a user's, a room's, a token's), in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// The most users one batch asks about.
pub const MAX_BATCH: usize = 1000;
/// The largest body, in bytes (1,000 ids of 256 bytes, quoted, fit).
const MAX_BODY: usize = 300 * 1024;
/// The longest a revocation lasts.
const MAX_REVOCATION: u64 = 30 * 24 * 3600;

/// Whether `path` is one of these routes.
pub(super) fn is_ours(path: &str) -> bool {
    path == "/api/info"
        || path == "/api/presence/batch"
        || path == "/api/revocations"
        || path.starts_with("/api/users/")
        || (path.starts_with("/api/conversations/") && path.ends_with("/presence"))
        || (path.starts_with("/api/rooms/") && path.ends_with("/leave"))
}

/// A refused request's body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `bad_request`, `not_found`, `payload_too_large`, `too_many_ids`,
    /// `method_not_allowed`, `unavailable`, `unauthorized`.
    pub code: String,
    /// What was wrong, for a person.
    pub message: String,
}

/// A refused request: its status and `{code, message}`.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub(super) struct ApiError {
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

    pub(super) fn response(&self) -> Response<Body> {
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message.clone(),
        };
        json_response(self.status, &body)
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

type Answer = Result<Response<Body>, ApiError>;

fn ok<T: Serialize>(status: StatusCode, body: &T) -> Answer {
    Ok(json_response(status, body))
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

/// An id (a user's, a room's, a token's), bounded.
fn checked_id(id: String) -> Result<String, ApiError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(ApiError::bad(format!("an id is 1 to {MAX_ID_BYTES} bytes")));
    }
    Ok(id)
}

/// The id between `prefix` and `suffix` of a path, percent-decoded and bounded.
pub(super) fn path_id(path: &str, prefix: &str, suffix: &str) -> Result<String, ApiError> {
    let segment = path
        .strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(suffix))
        .unwrap_or_default();
    // A path keeps `+` as it is (only a form turns it into a space).
    let decoded = form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    checked_id(decoded)
}

/// `POST /api/presence/batch`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Batch {
    /// The users, at most 1,000, each 1 to 256 bytes.
    pub user_ids: Vec<String>,
}

/// The presence of a batch of users, in the order asked.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    /// One per id asked.
    pub presence: Vec<PresenceSnapshot>,
}

/// `POST /api/users/:id/disconnect` (an empty body: the defaults).
#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Disconnect {
    /// Said to the client where its dialect has a notice (default `disconnected`).
    pub reason: Option<String>,
    /// Whether the client may come back (default true).
    pub reconnect: Option<bool>,
}

/// A user's sessions are being told and closed on every instance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disconnected {
    /// The user.
    pub user_id: String,
    /// Always true: the notice is on the bus.
    pub disconnected: bool,
    /// Whether the client may come back.
    pub reconnect: bool,
}

/// `POST /api/rooms/:id/leave`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Leave {
    /// The user to remove.
    pub user_id: String,
}

/// A user removed from a conversation on every instance.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    /// The conversation.
    pub conversation_id: String,
    /// The user.
    pub user_id: String,
    /// Always true.
    pub removed: bool,
}

/// `POST /api/revocations`: a user or a token, for `ttl` seconds.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revocation {
    /// Every token of this user (exclusive with `jti`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The token with this `jti` claim (exclusive with `userId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Seconds, 1 to 30 days.
    pub ttl: u64,
}

/// What `GET /api/info` answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    /// The instance that answered.
    pub instance: String,
    /// switchboard's version.
    pub version: String,
    /// Connections on every instance alive.
    pub connections: u64,
    /// The deployment's largest conversations (each instance's largest, summed).
    pub largest_rooms: Vec<RoomSize>,
    /// Every instance alive, as it last announced itself (this one as it is now).
    pub instances: Vec<InstanceInfo>,
}

/// The gateway: its instances, their connections, the largest rooms.
#[utoipa::path(get, path = "/api/info", tag = "gateway",
    responses((status = 200, body = Info), (status = 503, body = ErrorBody)))]
pub(super) async fn info(hub: &Hub) -> Answer {
    let instances = hub.instances().await?;
    let mut rooms: HashMap<&str, u64> = HashMap::new();
    for r in instances.iter().flat_map(|i| &i.largest_rooms) {
        *rooms.entry(&r.conversation_id).or_default() += r.connections;
    }
    let mut rooms: Vec<(&str, u64)> = rooms.into_iter().collect();
    rooms.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    rooms.truncate(crate::hub::LARGEST_ROOMS);
    let largest_rooms = rooms
        .into_iter()
        .map(|(id, n)| RoomSize {
            conversation_id: id.to_string(),
            connections: n,
        })
        .collect();
    ok(
        StatusCode::OK,
        &Info {
            instance: hub.instance().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            connections: instances.iter().map(|i| i.connections).sum(),
            largest_rooms,
            instances,
        },
    )
}

/// A user's presence, whichever instance their connections are on.
#[utoipa::path(get, path = "/api/users/{userId}/presence", tag = "presence",
    params(("userId" = String, Path, description = "the user")),
    responses((status = 200, body = PresenceSnapshot), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(super) async fn user_presence(hub: &Hub, user: &str) -> Answer {
    ok(StatusCode::OK, &hub.presence_of(user).await?)
}

/// The presence of up to 1,000 users, in the order asked.
#[utoipa::path(post, path = "/api/presence/batch", tag = "presence", request_body = Batch,
    responses((status = 200, body = BatchAnswer), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn batch_presence(hub: &Hub, req: Request<Incoming>) -> Answer {
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
    ok(StatusCode::OK, &BatchAnswer { presence })
}

/// A conversation's online members, on every instance.
#[utoipa::path(get, path = "/api/conversations/{conversationId}/presence", tag = "presence",
    params(("conversationId" = String, Path, description = "the conversation")),
    responses((status = 200, body = RoomPresence), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(super) async fn room_presence(hub: &Hub, room: &str) -> Answer {
    ok(StatusCode::OK, &hub.room_presence(room).await?)
}

/// The seed's `DELETE /api/users/:externalUserId`: the user's every session, on every
/// instance, told in its dialect and closed for good.
#[utoipa::path(delete, path = "/api/users/{userId}", tag = "sessions",
    params(("userId" = String, Path, description = "the user")),
    responses((status = 200, body = Disconnected), (status = 503, body = ErrorBody)))]
pub(super) async fn delete_user(hub: &Hub, user: &str) -> Answer {
    hub.disconnect_user(user, "user deleted", false)?;
    ok(
        StatusCode::OK,
        &Disconnected {
            user_id: user.to_string(),
            disconnected: true,
            reconnect: false,
        },
    )
}

/// The user's every session, on every instance, told in its dialect and closed.
#[utoipa::path(post, path = "/api/users/{userId}/disconnect", tag = "sessions",
    params(("userId" = String, Path, description = "the user")),
    request_body(content = Option<Disconnect>, description = "may be empty"),
    responses((status = 200, body = Disconnected), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(super) async fn disconnect_user(hub: &Hub, user: &str, req: Request<Incoming>) -> Answer {
    let d: Disconnect =
        json_body::<Option<Disconnect>>(req, r#"{"reason": "…", "reconnect": true}"#)
            .await?
            .unwrap_or_default();
    let reason = d.reason.unwrap_or_else(|| "disconnected".into());
    if reason.len() > MAX_ID_BYTES {
        return Err(ApiError::bad(format!(
            "a reason is at most {MAX_ID_BYTES} bytes"
        )));
    }
    let reconnect = d.reconnect.unwrap_or(true);
    hub.disconnect_user(user, &reason, reconnect)?;
    ok(
        StatusCode::OK,
        &Disconnected {
            user_id: user.to_string(),
            disconnected: true,
            reconnect,
        },
    )
}

/// Removes a user from a conversation on every instance.
#[utoipa::path(post, path = "/api/rooms/{conversationId}/leave", tag = "sessions",
    params(("conversationId" = String, Path, description = "the conversation")),
    request_body = Leave,
    responses((status = 200, body = Removed), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(super) async fn leave_room(hub: &Hub, room: &str, req: Request<Incoming>) -> Answer {
    let l: Leave = json_body(req, r#"{"userId": "…"}"#).await?;
    let user = checked_id(l.user_id)?;
    hub.remove_from_room(room, &user).await?;
    ok(
        StatusCode::OK,
        &Removed {
            conversation_id: room.to_string(),
            user_id: user,
            removed: true,
        },
    )
}

/// Refuses a user (every token) or one token (its `jti`) at connect on every instance
/// until `ttl` has passed; a revoked user's open sessions end at once.
#[utoipa::path(post, path = "/api/revocations", tag = "sessions", request_body = Revocation,
    responses((status = 201, body = Revocation), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(super) async fn revoke(hub: &Hub, req: Request<Incoming>) -> Answer {
    let r: Revocation = json_body(req, r#"{"userId": "…" | "jti": "…", "ttl": seconds}"#).await?;
    if r.ttl == 0 || r.ttl > MAX_REVOCATION {
        return Err(ApiError::bad(format!(
            "ttl is 1 to {MAX_REVOCATION} seconds"
        )));
    }
    let (what, id) = match (&r.user_id, &r.jti) {
        (Some(u), None) => (Revoked::User, checked_id(u.clone())?),
        (None, Some(j)) => (Revoked::Token, checked_id(j.clone())?),
        _ => return Err(ApiError::bad("name one of userId and jti")),
    };
    hub.revoke(what, &id, Duration::from_secs(r.ttl)).await?;
    // A revoked user's sessions end now too (a token's cannot be found: it is refused
    // at its next connect).
    if what == Revoked::User {
        hub.disconnect_user(&id, "revoked", false)?;
    }
    ok(StatusCode::CREATED, &r)
}

/// Answers one of these routes (the caller checked the secret).
pub(super) async fn handle(req: Request<Incoming>, cx: &Context) -> Response<Body> {
    match route(req, &cx.hub).await {
        Ok(resp) => resp,
        Err(e) => e.response(),
    }
}

async fn route(req: Request<Incoming>, hub: &Hub) -> Answer {
    let path = req.uri().path().to_string();
    let p = path.as_str();
    match req.method().clone() {
        Method::GET if p == "/api/info" => info(hub).await,
        Method::POST if p == "/api/presence/batch" => batch_presence(hub, req).await,
        Method::POST if p == "/api/revocations" => revoke(hub, req).await,
        Method::GET if p.starts_with("/api/conversations/") => {
            room_presence(hub, &path_id(p, "/api/conversations/", "/presence")?).await
        }
        Method::POST if p.starts_with("/api/rooms/") => {
            leave_room(hub, &path_id(p, "/api/rooms/", "/leave")?, req).await
        }
        Method::GET if p.ends_with("/presence") => {
            user_presence(hub, &path_id(p, "/api/users/", "/presence")?).await
        }
        Method::POST if p.ends_with("/disconnect") => {
            disconnect_user(hub, &path_id(p, "/api/users/", "/disconnect")?, req).await
        }
        Method::DELETE
            if p.strip_prefix("/api/users/")
                .is_some_and(|id| !id.contains('/')) =>
        {
            delete_user(hub, &path_id(p, "/api/users/", "")?).await
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route: see /api/openapi.json",
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
        assert_eq!(
            path_id("/api/users/u%201/presence", "/api/users/", "/presence").ok(),
            Some("u 1".into())
        );
        assert_eq!(
            path_id("/api/users/a+b", "/api/users/", "").ok(),
            Some("a+b".into())
        );
        assert!(path_id("/api/users//presence", "/api/users/", "/presence").is_err());
        assert!(checked_id("x".repeat(MAX_ID_BYTES + 1)).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any path gives an id or a refusal: no panic.
        #[test]
        fn any_path_gives_an_id_or_a_refusal(rest in any::<String>()) {
            let path = format!("/api/users/{rest}");
            let _ = is_ours(&path);
            let _ = path_id(&path, "/api/users/", "/presence");
            let _ = path_id(&path, "/api/users/", "");
        }
    }
}
