//! What every part of the HTTP server answers with: the response body type, a JSON
//! response, a request body read within a bound (413 over it), and the peer address a
//! request came from.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Response, StatusCode};
use std::net::SocketAddr;

/// Response bodies, whichever part of the server made them.
pub(crate) type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// The peer address of a request, for the socket's `ip`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

/// A JSON response (our types serialise without fail: their map keys are strings).
pub(crate) fn json_response<T: serde::Serialize + ?Sized>(
    status: StatusCode,
    body: &T,
) -> Response<Body> {
    let json = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(
        Full::new(Bytes::from(json))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// An empty response.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp
}

/// A request body read whole, at most `limit` bytes; over it (or cut), the 413 to answer.
pub(crate) async fn read_body(
    body: hyper::body::Incoming,
    limit: usize,
) -> Result<Bytes, Response<Body>> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => Err(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &serde_json::json!({"error": e.to_string()}),
        )),
    }
}
