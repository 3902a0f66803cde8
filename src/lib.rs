//! switchboard: a stateless realtime protocol gateway for chat systems.
//!
//! The tree follows the data path: a client's frame arrives on a transport ([`listen`]),
//! is admitted and decoded in its dialect ([`dialect`]) into a canonical [`event::Event`]
//! and routed ([`route`]) to the hub ([`hub`]: rooms, messages, presence, calls) and/or a
//! fronted backend ([`upstream`]); the hub's facts cross instances on the [`bus`] and go
//! out as signed [`webhook`]s; each recipient gets them encoded once per dialect, through
//! its transport. Dialects are data (`mappings/*.toml`), compiled once at start-up.

#![forbid(unsafe_code)]

pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod bus;
pub mod cli;
pub mod config;
pub mod dialect;
pub mod event;
pub mod hub;
pub mod listen;
pub mod route;
pub mod server;
pub mod socketio;
pub mod telemetry;
pub mod tls;
pub mod upstream;
pub mod webhook;
pub mod wsclient;
