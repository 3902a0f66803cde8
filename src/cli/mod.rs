//! The `switchboard` command line: argument parsing and dispatch to each command.

mod lines;
mod serve;
mod token;
mod translate;
mod webhooks;

pub use lines::{Line, LineReader};

use crate::config::Config;
use crate::dialect::{Direction, Registry, fidelity, report};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// switchboard: a stateless realtime protocol gateway for chat systems.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    /// Directory of mapping files; the set embedded in the binary when absent.
    #[arg(long, global = true, env = "SWITCHBOARD_MAPPINGS", value_name = "DIR")]
    pub mappings: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A direction on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DirArg {
    /// Sent by a client.
    Up,
    /// Sent by a server.
    Down,
}

impl From<DirArg> for Direction {
    fn from(d: DirArg) -> Direction {
        match d {
            DirArg::Up => Direction::Up,
            DirArg::Down => Direction::Down,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Translate one wire-JSON event per stdin line from dialect A to dialect B.
    Translate {
        /// Source dialect, or `canonical`.
        #[arg(long)]
        from: String,
        /// Target dialect, or `canonical`.
        #[arg(long)]
        to: String,
        /// Who sent the events (default: inferred per event: by the payload's shape when both
        /// directions have its name, else `up` first).
        #[arg(long, value_enum)]
        direction: Option<DirArg>,
        /// Lines longer than this are refused with an error (memory stays bounded).
        #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
        max_line_bytes: usize,
        /// Worker threads (default: one per core). Output order is input order.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Validate mapping files; exit status 1 with every error listed.
    Check {
        /// Directory to check (default: --mappings, or the embedded set).
        dir: Option<PathBuf>,
    },
    /// List dialects: framing, transport, events per direction.
    Dialects {
        /// Markdown table instead of text.
        #[arg(long)]
        markdown: bool,
    },
    /// For every pair of dialects: which canonical events translate, which fields are lost.
    Matrix {
        /// Markdown instead of text.
        #[arg(long)]
        markdown: bool,
        /// Example frames, one `<dialect>.jsonl` per dialect (default: the embedded
        /// `tests/examples/`).
        #[arg(long, value_name = "DIR")]
        examples: Option<PathBuf>,
    },
    /// Run the gateway: listeners, hub and bus, from the configuration.
    Serve {
        /// Configuration file (default: the embedded config/switchboard.toml).
        #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Load generator: N clients of a dialect, R rooms, S senders at a rate; reports
    /// connects/s, deliveries/s, latency percentiles, errors and the server's RSS. (Built
    /// with the `bench` feature: `cargo build --release --features bench`.)
    #[cfg(feature = "bench")]
    Bench(crate::bench::Options),
    /// Webhook dead letters and endpoints of a running gateway (internal API).
    Webhooks {
        /// The gateway's HTTP API.
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        api: String,
        /// The internal API secret.
        #[arg(
            long,
            env = "INTERNAL_API_SECRET",
            hide_env_values = true,
            default_value = ""
        )]
        secret: String,
        /// What to do.
        #[command(subcommand)]
        action: webhooks::WebhooksAction,
    },
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print a token: HS256 with the configured secret (auth.secret, AUTH_JWT_SECRET or
    /// JWT_SECRET), or signed with a private key (`--key FILE --alg RS256 --kid ID`).
    Token(token::TokenArgs),
    /// Check tokens against the configured auth providers.
    Auth {
        /// What to do.
        #[command(subcommand)]
        action: token::AuthAction,
    },
}

/// `switchboard config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Check a configuration (default: the embedded one) with the environment applied,
    /// and the TLS files it names (missing, unreadable, a key not its certificate's; a
    /// warning for a certificate expiring within 14 days), and print the effective
    /// configuration with secrets redacted.
    Check {
        /// The file.
        file: Option<PathBuf>,
    },
    /// Print the documented default configuration file.
    Default,
    /// Print the configuration reference (Markdown), generated from the configuration
    /// types' documentation.
    Reference,
}

fn registry(mappings: Option<&PathBuf>) -> Result<Registry> {
    let reg = match mappings {
        Some(dir) => Registry::load_dir(dir),
        None => Registry::embedded(),
    };
    reg.map_err(|e| anyhow::anyhow!("{e}"))
        .context("loading the mapping files")
}

/// Runs the command line; the exit code is the command's.
///
/// # Errors
/// Start-up failures (bad mapping files, I/O on stdin/stdout).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Translate {
            from,
            to,
            direction,
            max_line_bytes,
            threads,
        } => {
            let reg = registry(cli.mappings.as_ref())?;
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            let opts = translate::Options {
                from: &from,
                to: &to,
                dir: direction.map(Direction::from),
                max_line_bytes,
                threads: threads.max(1),
            };
            let stdin = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
            let stdout = std::io::stdout().lock();
            let stderr = std::io::stderr().lock();
            let failed = translate::run(&reg, &opts, stdin, stdout, stderr)?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Check { dir } => {
            let dir = dir.or(cli.mappings);
            let reg = match &dir {
                Some(d) => Registry::load_dir(d),
                None => Registry::embedded(),
            };
            match reg {
                Ok(reg) => {
                    let rules: usize = reg.dialects().iter().map(|d| d.rules.len()).sum();
                    println!(
                        "ok: {} dialects, {} rules, {} canonical events, {} canonical fields",
                        reg.dialects().len(),
                        rules,
                        reg.vocab.events.len(),
                        reg.vocab.fields.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    for e in &errors.0 {
                        eprintln!("{e}");
                    }
                    eprintln!("{} error(s)", errors.0.len());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Dialects { markdown } => {
            let reg = registry(cli.mappings.as_ref())?;
            emit(&report::dialects(&reg, markdown))?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "bench")]
        Command::Bench(opts) => {
            serve::init_logging();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            let report = rt.block_on(crate::bench::run(&opts))?;
            let json = serde_json::to_string_pretty(&report)?;
            if let Some(path) = &opts.json {
                std::fs::write(path, &json)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!("{json}");
            eprintln!(
                "{}\n{}",
                crate::bench::Report::markdown_header(),
                report.markdown_row()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Webhooks {
            api,
            secret,
            action,
        } => {
            println!("{}", webhooks::run(&api, &secret, &action)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { config } => {
            serve::run(config, cli.mappings)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { action } => match action {
            ConfigAction::Reference => {
                emit(&crate::config::reference::markdown())?;
                Ok(ExitCode::SUCCESS)
            }
            ConfigAction::Default => {
                emit(&crate::config::reference::default_file(&Config::seed()))?;
                Ok(ExitCode::SUCCESS)
            }
            ConfigAction::Check { file } => match Config::load(file.as_deref()) {
                Ok(cfg) => {
                    let tls = crate::tls::check::check(&cfg, std::time::SystemTime::now());
                    for w in &tls.warnings {
                        eprintln!("warning: {w}");
                    }
                    if !tls.errors.is_empty() {
                        eprintln!("{} problem(s) with TLS files:", tls.errors.len());
                        for e in &tls.errors {
                            eprintln!("  - {e}");
                        }
                        return Ok(ExitCode::FAILURE);
                    }
                    emit(&cfg.redacted_toml())?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            },
        },
        Command::Token(args) => token::mint(args),
        Command::Auth { action } => token::auth(action),
        Command::Matrix { markdown, examples } => {
            let reg = registry(cli.mappings.as_ref())?;
            let examples = match examples {
                Some(dir) => fidelity::load_examples(&dir)?,
                None => fidelity::embedded_examples(),
            };
            let m = fidelity::Matrix::compute(&reg, &examples);
            emit(&report::matrix(&reg, &m, markdown))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes a report to stdout; a reader that went away (`| head`) ends it quietly.
fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}
