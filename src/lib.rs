//! switchboard: a stateless realtime protocol gateway for chat systems.
//!
//! The architecture follows the data path: a dialect's wire event is decoded
//! ([`dialect`]) into a canonical [`event::Event`], routed, and encoded into every
//! recipient's dialect. Dialects are data (`mappings/*.toml`), compiled once at start-up.

#![forbid(unsafe_code)]

pub mod auth;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod config;
pub mod dialect;
pub mod engineio;
pub mod event;
pub mod hub;
pub mod listen;
pub mod server;
pub mod sioclient;
pub mod telemetry;
pub mod upstream;
pub mod webhook;
pub mod wsclient;
