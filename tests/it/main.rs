//! The integration suite as one test binary (the crate is linked once, not once per
//! file). Each module is a group: translation and mapping files (`golden`, `spec_examples`, `fidelity`,
//! `roundtrip_prop`, `bad_input_prop`, `completeness`, `loader_errors`, `cli`), the hub
//! against a real server on port 0 with real clients (`hub_*`, `socketio_engine`), brokers
//! (`brokers`, `scale_out`, `redis_cluster`), fronted backends (`upstream*`, with
//! `backends/`; `fronted_exports`), webhooks (`hooks`: the receiver), identity providers' tokens
//! (`jwks`), the binary (`serve`, `bench_tool`), and the fault suite
//! (`faults`, `fuzz`, `outages`, `crashes`, `drain`; see RELIABILITY.md). Shared helpers:
//! `common` (mappings and fixtures), `live` (servers and clients), `support` (brokers of
//! the tests' own, raw frames), `process` (the binary as a process).

mod backends;
mod certs;
mod common;
mod hooks;
mod live;
mod process;
mod support;

mod architecture;
mod bad_input_prop;
#[cfg(feature = "bench")]
mod bench_tool;
mod brokers;
mod cli;
mod completeness;
mod console;
mod crashes;
mod drain;
mod faults;
mod fidelity;
mod fronted_exports;
mod fuzz;
mod golden;
mod hub_audiences;
mod hub_fleet;
mod hub_in_memory;
mod hub_limits;
mod hub_refusals;
mod hub_relays;
mod jwks;
mod loader_errors;
mod longpoll;
mod outages;
mod recovery;
mod redis_cluster;
mod relay_prop;
mod roundtrip_prop;
mod scale_out;
mod serve;
mod server_api;
mod socketio_engine;
mod spec_examples;
mod tls;
mod upstream;
mod upstream_lifecycle;
mod webhooks;

/// The tests that use the machine's RabbitMQ take turns (one restarts its application).
pub static RABBIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
