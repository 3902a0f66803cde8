//! `switchboard webhooks …`: the dead letters and endpoints of a running gateway, through
//! its internal API (`X-Internal-Secret` = `INTERNAL_API_SECRET`).

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum WebhooksAction {
    /// The dead letters.
    Dead {
        /// list or replay.
        #[command(subcommand)]
        what: DeadAction,
    },
    /// Endpoints, their queues, and whether they are disabled.
    Status,
    /// Re-enables an endpoint disabled by a 410.
    Enable {
        /// The endpoint's name.
        name: String,
    },
}

/// `webhooks dead …`.
#[derive(Debug, clap::Subcommand)]
pub enum DeadAction {
    /// Prints the dead letters (JSON).
    List,
    /// Sends dead letters again, on a fresh schedule: all, or one event id.
    Replay {
        /// Only this event id (`evt_…`).
        #[arg(long)]
        id: Option<String>,
    },
}

/// Runs a webhooks command against the gateway at `api`.
///
/// # Errors
/// No secret, the gateway unreachable, or an error answer.
pub fn run(api: &str, secret: &str, action: &WebhooksAction) -> Result<String> {
    anyhow::ensure!(
        !secret.is_empty(),
        "set INTERNAL_API_SECRET (the gateway's internal_api.secret)"
    );
    let (method, path) = match action {
        WebhooksAction::Dead {
            what: DeadAction::List,
        } => (Method::GET, "/api/webhooks/dead".to_string()),
        WebhooksAction::Dead {
            what: DeadAction::Replay { id },
        } => (
            Method::POST,
            match id {
                Some(id) => format!(
                    "/api/webhooks/dead/replay?id={}",
                    form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
                ),
                None => "/api/webhooks/dead/replay".into(),
            },
        ),
        WebhooksAction::Status => (Method::GET, "/api/webhooks".into()),
        WebhooksAction::Enable { name } => (Method::POST, format!("/api/webhooks/{name}/enable")),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", api.trim_end_matches('/')))
            .header("x-internal-secret", secret)
            .body(Full::new(Bytes::new()))?;
        let resp = client
            .request(req)
            .await
            .with_context(|| format!("reaching {api}"))?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        anyhow::ensure!(status.is_success(), "{status}: {text}");
        Ok(text)
    })
}
