//! Socket.IO routes: one path, several namespaces, each bound to a dialect (and maybe a
//! fronted backend). Clients that open a WebSocket from the start are served by our own
//! Engine.IO path (`websocket.rs`); long polling, and upgrades from it, by socketioxide
//! (`polling.rs`), except on paths that recover sessions, whose long polling and
//! upgrades our own engine serves too (`longpoll.rs`: socketioxide's CONNECT answer has
//! no `pid`). All hand every event to the inbound path (`route`).

pub(crate) mod longpoll;
pub(crate) mod polling;
pub(crate) mod websocket;

use crate::auth::Provider;
use crate::upstream::Upstream;
use std::sync::Arc;

/// One namespace of a path: its dialect, its auth provider, and the backend it fronts
/// if it does.
pub(crate) struct Namespace {
    /// `/` or `/ws/app`.
    pub ns: String,
    /// The clients' dialect.
    pub dialect: Arc<str>,
    /// The fronted backend.
    pub upstream: Option<Arc<Upstream>>,
    /// Verifies its clients' tokens.
    pub auth: Arc<Provider>,
    /// Connection state recovery (on the WebSocket engine: `websocket.rs`).
    pub recovery: bool,
}
