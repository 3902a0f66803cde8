//! The server API's OpenAPI document, generated (utoipa) from its handlers and their
//! types in `server_api.rs`, served at `GET /api/openapi.json`.

use super::server_api::{
    self, Batch, BatchAnswer, Disconnect, Disconnected, ErrorBody, Info, Leave, Removed, Revocation,
};
use crate::hub::{
    InstanceInfo, PresenceSnapshot, RoomPresence, RoomSize, RouteCount, SocketSnapshot,
};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "switchboard server API", description = "Presence, session control and the gateway's state, on every instance at once. Every route takes the internal secret in `X-Internal-Secret`."),
    paths(
        server_api::info,
        server_api::user_presence,
        server_api::batch_presence,
        server_api::room_presence,
        server_api::delete_user,
        server_api::disconnect_user,
        server_api::leave_room,
        server_api::revoke,
    ),
    components(schemas(
        Batch, BatchAnswer, Disconnect, Disconnected, ErrorBody, Info, Leave, Removed,
        Revocation, InstanceInfo, PresenceSnapshot, RoomPresence, RoomSize, RouteCount,
        SocketSnapshot
    )),
    modifiers(&InternalSecret),
    security(("internal_secret" = []))
)]
pub(super) struct ApiDoc;

/// `X-Internal-Secret`, the scheme every route requires.
struct InternalSecret;

impl utoipa::Modify for InternalSecret {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "internal_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Internal-Secret"))),
        );
    }
}

/// The document as JSON.
pub(super) fn document() -> String {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
