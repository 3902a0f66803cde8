//! The operator's endpoints on an API port: `/healthz` (the process lives), `/readyz`
//! (the brokers are reachable and the instance is not draining; the auth providers'
//! state), `/api/openapi.json` (the server API's document, no secret needed: it says only
//! what the routes are), `/metrics` (Prometheus
//! text) and the WebRTC settings clients ask for (`/api/config/webrtc`).

use super::Context;
use super::respond::{Body, json_response};
use crate::telemetry::BusLabels;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

/// The answer to `req`, or `None` when it is not one of these endpoints.
pub(super) fn answer(req: &Request<Incoming>, cx: &Context) -> Option<Response<Body>> {
    if req.method() != Method::GET {
        return None;
    }
    Some(match req.uri().path() {
        "/healthz" => json_response(StatusCode::OK, &json!({"status": "ok"})),
        "/metrics" => {
            let mut resp = Response::new(
                Full::new(Bytes::from(cx.hub.metrics().render()))
                    .map_err(|never| match never {})
                    .boxed(),
            );
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/readyz" => ready(cx),
        "/api/openapi.json" => {
            let mut resp = Response::new(
                Full::new(Bytes::from(super::openapi::document()))
                    .map_err(|never| match never {})
                    .boxed(),
            );
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        "/api/config/webrtc" => json_response(
            StatusCode::OK,
            &json!({"iceServers": cx.cfg.webrtc.ice_servers}),
        ),
        _ => return None,
    })
}

/// 200 while the bus (and RabbitMQ, when configured) can deliver and the instance is not
/// draining; 503 otherwise, from SIGTERM until the process exits. Each auth provider's
/// state is reported (keys had, the last JWKS fetch's error); a provider without keys
/// does not make the instance unready: its routes refuse with `unavailable` while the
/// others serve.
fn ready(cx: &Context) -> Response<Body> {
    let bus = cx.hub.bus();
    let bus_ready = cx.hub.bus_ready();
    let amqp = cx.attached.amqp.as_ref().map(|a| {
        let up = a.ready();
        cx.hub
            .metrics()
            .broker_up
            .get_or_create(&BusLabels { bus: "amqp" })
            .set(i64::from(up));
        up
    });
    let draining = cx.draining.is_cancelled();
    let ready = bus_ready && amqp.unwrap_or(true) && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({
            "status": if ready { "ready" } else { "unavailable" },
            "bus": {"kind": bus.kind(), "ready": bus_ready},
            "amqp": amqp.map(|up| json!({"ready": up})),
            "connections": cx.hub.connection_count(),
            "auth": cx.auth.states(),
            "shuttingDown": draining,
        }),
    )
}
