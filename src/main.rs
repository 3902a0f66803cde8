//! The `switchboard` binary: parses the command line and runs it.

use clap::Parser;
use std::process::ExitCode;

/// mimalloc: the gateway allocates many small, short-lived JSON nodes per event. Built
/// with `no_thp`: transparent huge pages (often `always` on Linux hosts) would back its
/// eagerly committed arenas with 2 MiB pages, which costs idle connections ~20 % more RSS.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = switchboard::cli::Cli::parse();
    match switchboard::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::from(2)
        }
    }
}
