//! HTTP passthrough: requests under an upstream's `http` prefixes are reverse-proxied
//! to the backend's REST API with hyper, method, path, query, headers, body and status
//! intact (hop-by-hop headers dropped, `X-Forwarded-*` added), so that one address
//! serves both the socket and the REST API of the spec.

use super::Upstream;
use crate::telemetry::UpstreamOutcome;
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::Arc;
use thiserror::Error;

/// Why a request could not be passed through.
#[derive(Debug, Error)]
pub enum PassError {
    /// The backend did not answer (refused, reset, bad answer).
    #[error("the backend is unreachable: {0}")]
    Unreachable(String),
    /// No answer within `http_timeout`.
    #[error("the backend did not answer in time")]
    Timeout,
    /// The request's path cannot be joined to the backend's URL.
    #[error("bad request path: {0}")]
    BadPath(String),
}

/// A backend's HTTP client (`http://` and `https://`, its connections pooled), TLS
/// as its `tls` table says.
pub type PassClient = Client<HttpsConnector<HttpConnector>, Incoming>;

/// The client of a backend whose TLS is `tls`.
pub fn client(tls: Arc<rustls::ClientConfig>) -> PassClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

/// Passing requests through, each with its backend's client.
#[derive(Clone)]
pub struct Passthrough;

impl Default for Passthrough {
    fn default() -> Self {
        Passthrough::new()
    }
}

/// Headers that belong to one hop, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    let listed: Vec<HeaderName> = h
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in listed {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(*n);
    }
}

impl Passthrough {
    /// Passthrough.
    pub fn new() -> Passthrough {
        Passthrough
    }

    /// Whether `path` is under one of `up`'s prefixes.
    pub fn serves(up: &Upstream, path: &str) -> bool {
        up.cfg.http.iter().any(|p| path.starts_with(p.as_str()))
    }

    /// Passes `req` to `up`'s REST API and returns its answer as it is.
    ///
    /// # Errors
    /// Unreachable, too slow, or a path that makes no URL.
    pub async fn forward(
        &self,
        up: &Upstream,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        metrics: &crate::telemetry::Metrics,
    ) -> Result<Response<Incoming>, PassError> {
        let pq = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let uri: Uri = format!("{}{pq}", up.cfg.http_base())
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| PassError::BadPath(e.to_string()))?;
        let host = req.headers().get(HOST).cloned();
        let h = req.headers_mut();
        strip_hop_by_hop(h);
        h.remove(HOST);
        let ip = peer.ip().to_string();
        let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            h.insert("x-forwarded-for", v);
        }
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        if let Some(host) = host {
            h.insert("x-forwarded-host", host);
        }
        *req.uri_mut() = uri;
        let outcome = |o: &'static str| {
            metrics
                .upstream_http
                .get_or_create(&UpstreamOutcome {
                    upstream: up.label.clone(),
                    outcome: o,
                })
                .inc();
        };
        let resp = match tokio::time::timeout(up.cfg.http_timeout, up.http.request(req)).await {
            Err(_) => {
                outcome("timeout");
                return Err(PassError::Timeout);
            }
            Ok(Err(e)) => {
                outcome("unreachable");
                return Err(PassError::Unreachable(e.to_string()));
            }
            Ok(Ok(resp)) => resp,
        };
        outcome(match resp.status().as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        });
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("authorization", HeaderValue::from_static("Bearer t"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("authorization"));
    }
}
