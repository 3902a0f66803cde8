//! The integration suite as one test binary (one link of the crate, not one per file):
//! each module is a group of tests against a real server, real clients and real brokers.

#[path = "../common/mod.rs"]
mod common;
#[path = "../live/mod.rs"]
mod live;

mod faults;
mod outages;
mod support;
