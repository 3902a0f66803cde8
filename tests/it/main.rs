//! The integration suite as one test binary (one link of the crate, not one per file):
//! each module is a group of tests against a real server, real clients and real brokers.

#[path = "../common/mod.rs"]
mod common;
#[path = "../live/mod.rs"]
mod live;

mod crashes;
mod drain;
mod faults;
mod fuzz;
mod outages;
mod process;
mod support;

/// The tests that use the machine's RabbitMQ take turns (one restarts its application).
pub static RABBIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
