//! One delivery attempt: sign, POST (http or https) with the endpoint's timeout through
//! a client whose resolver only returns permitted addresses, read at most
//! `max_response_bytes` of the answer, and classify the outcome. Redirects are not
//! followed (a 3xx is a failed attempt).

use super::guard::{Guard, GuardedResolver, REFUSED};
use super::sign;
use crate::config::WebhookEndpoint;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// An endpoint's HTTP(S) client.
pub type HttpClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// A client with pooled keep-alive connections, TLS as `tls` says (the system's roots
/// when unset), and the guard as its resolver.
fn client(guard: Arc<Guard>, tls: rustls::ClientConfig) -> HttpClient {
    let mut c = HttpConnector::new_with_resolver(GuardedResolver(guard));
    c.set_nodelay(true);
    c.enforce_http(false);
    c.set_connect_timeout(Some(Duration::from_secs(5)));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(c);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}

/// Each endpoint's client: the endpoints without a `tls` table share one.
#[derive(Clone)]
pub struct Clients {
    shared: HttpClient,
    own: std::collections::HashMap<String, HttpClient>,
}

impl Clients {
    /// The clients of `endpoints`.
    ///
    /// # Errors
    /// An endpoint's `tls` files do not load.
    pub fn build(
        guard: &Arc<Guard>,
        endpoints: &[WebhookEndpoint],
    ) -> Result<Clients, crate::tls::TlsError> {
        let mut own = std::collections::HashMap::new();
        for e in endpoints {
            if let Some(tls) = &e.tls {
                let what = format!("webhook {}", e.name);
                let config = crate::tls::client::config(Some(tls), &what)?;
                own.insert(e.name.clone(), client(guard.clone(), (*config).clone()));
            }
        }
        Ok(Clients {
            shared: client(guard.clone(), (*crate::tls::client::system()).clone()),
            own,
        })
    }

    /// The client of the endpoint named `name`.
    pub fn of(&self, name: &str) -> HttpClient {
        self.own.get(name).unwrap_or(&self.shared).clone()
    }
}

/// What one event sends: the same on every attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payload {
    /// `evt_…`: the body's `id` and `X-Webhook-Id`.
    pub id: String,
    /// The event type (`message.created`).
    pub kind: String,
    /// The JSON body.
    pub body: String,
    /// The event's trace id, for logs (not sent).
    #[serde(default)]
    pub trace: String,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Delivered(u16),
    /// 410: the endpoint is disabled until re-enabled.
    Gone,
    /// Anything else: retried on the schedule (a `Retry-After` is honoured).
    Failed {
        /// The status, when there was an answer.
        status: Option<u16>,
        /// What happened.
        reason: String,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// The target is not allowed (a private address): no retry can help.
    Forbidden(String),
}

impl Outcome {
    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Delivered(s) => Some(*s),
            Outcome::Gone => Some(410),
            Outcome::Failed { status, .. } => *status,
            Outcome::Forbidden(_) => None,
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered(_) => "delivered",
            Outcome::Gone => "gone",
            Outcome::Failed {
                status: Some(_), ..
            } => "http_error",
            Outcome::Failed { status: None, .. } => "unreachable",
            Outcome::Forbidden(_) => "forbidden",
        }
    }
}

fn retry_after(v: &HeaderValue) -> Option<Duration> {
    let s = v.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(s).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// An error and its causes, one line (the resolver's refusal is inside hyper's error).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Makes one attempt.
pub async fn attempt(
    http: &HttpClient,
    guard: &Guard,
    ep: &WebhookEndpoint,
    p: &Payload,
    max_bytes: usize,
) -> Outcome {
    let uri: Uri = match ep.url.parse() {
        Ok(u) => u,
        Err(e) => return Outcome::Forbidden(format!("bad url: {e}")),
    };
    let Some(host) = uri.host() else {
        return Outcome::Forbidden("the url has no host".into());
    };
    // IP literals skip the resolver: check them here.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        if !guard.permits(&std::net::SocketAddr::new(ip, port)) {
            return Outcome::Forbidden(format!("{ip}: {REFUSED}"));
        }
    }
    let ts = now_secs();
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(uri.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("switchboard/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-webhook-event", p.kind.as_str())
        .header("x-webhook-id", p.id.as_str())
        .header("x-webhook-timestamp", ts.to_string())
        .header(
            "x-webhook-signature",
            sign::github_style(&ep.secrets, p.body.as_bytes()),
        );
    if ep.standard {
        req = req
            .header("webhook-id", p.id.as_str())
            .header("webhook-timestamp", ts.to_string())
            .header(
                "webhook-signature",
                sign::standard(&ep.secrets, &p.id, ts, p.body.as_bytes()),
            );
    }
    for (k, v) in &ep.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            req = req.header(k, v);
        }
    }
    let req = match req.body(Full::new(Bytes::from(p.body.clone()))) {
        Ok(r) => r,
        Err(e) => return Outcome::Forbidden(format!("cannot build the request: {e}")),
    };
    let sent = async {
        let resp = http.request(req).await.map_err(|e| error_chain(&e))?;
        let status = resp.status();
        let ra = resp.headers().get(RETRY_AFTER).and_then(retry_after);
        // Read at most `max_bytes` of the answer; the rest is not read.
        let mut body = resp.into_body();
        let mut read = 0usize;
        while read < max_bytes {
            match body.frame().await {
                Some(Ok(f)) => read += f.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
        Ok::<_, String>((status, ra))
    };
    match tokio::time::timeout(ep.timeout, sent).await {
        Err(_) => Outcome::Failed {
            status: None,
            reason: format!("no answer within {:?}", ep.timeout),
            retry_after: None,
        },
        Ok(Err(e)) if e.contains(REFUSED) => Outcome::Forbidden(e),
        Ok(Err(e)) => Outcome::Failed {
            status: None,
            reason: e,
            retry_after: None,
        },
        Ok(Ok((status, ra))) => match status.as_u16() {
            s if status.is_success() => Outcome::Delivered(s),
            410 => Outcome::Gone,
            s => Outcome::Failed {
                status: Some(s),
                reason: format!("HTTP {status}"),
                retry_after: ra,
            },
        },
    }
}
