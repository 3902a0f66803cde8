//! Framings: how one event is laid out as JSON on the wire, the `WireEvent` a frame
//! holds, writing frames in a fixed key order, and the framing error messages. Reading
//! frames is `read.rs`.

use super::error::TranslateError;
use super::plan::Framing;
use crate::event::{EventId, format_iso_millis};
use serde::Serialize;
use serde_json::Value;

/// One event as a dialect has it, before mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct WireEvent {
    /// Wire event name (`SEND_MSG`, `message:send`, `message.created`).
    pub name: String,
    /// The payload; `None` when the frame had none (`["presence:heartbeat"]`).
    pub payload: Option<Value>,
    /// The envelope's `traceId`.
    pub trace_id: Option<String>,
    /// The webhook body's `id`.
    pub id: Option<String>,
    /// The webhook body's `timestamp`, Unix milliseconds.
    pub at: Option<i64>,
}

impl WireEvent {
    /// A wire event with a name and payload only.
    pub fn new(name: impl Into<String>, payload: Option<Value>) -> Self {
        WireEvent {
            name: name.into(),
            payload,
            trace_id: None,
            id: None,
            at: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeOut<'a, P: Serialize + ?Sized> {
    event: &'a str,
    trace_id: &'a EventId,
    data: Data<'a, P>,
}

#[derive(Serialize)]
struct WebhookOut<'a, P: Serialize + ?Sized> {
    id: WebhookId<'a>,
    #[serde(rename = "type")]
    ty: &'a str,
    timestamp: &'a str,
    data: Data<'a, P>,
}

/// A payload, or `{}` when there is none.
struct Data<'a, P: ?Sized>(Option<&'a P>);

impl<P: Serialize + ?Sized> Serialize for Data<'_, P> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(p) => p.serialize(s),
            None => serde::ser::SerializeMap::end(s.serialize_map(Some(0))?),
        }
    }
}

/// A webhook id: the event id, prefixed `evt_` unless it already is.
struct WebhookId<'a>(&'a EventId);

impl Serialize for WebhookId<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.starts_with("evt_") {
            self.0.serialize(s)
        } else {
            s.collect_str(&format_args!("evt_{}", self.0))
        }
    }
}

fn framing_err(framing: Framing, reason: impl Into<String>) -> TranslateError {
    TranslateError::Framing {
        framing: framing.as_str(),
        reason: reason.into(),
    }
}

fn json_err(e: &serde_json::Error) -> TranslateError {
    TranslateError::NotJson(e.to_string())
}

fn data_err(framing: Framing, shape: &str, e: &serde_json::Error) -> TranslateError {
    if e.is_data() {
        framing_err(framing, format!("expected {shape}: {e}"))
    } else {
        json_err(e)
    }
}

/// An envelope's or webhook body's parse error: a framing error when the JSON was fine.
pub(crate) fn object_err(framing: Framing, e: &serde_json::Error) -> TranslateError {
    match framing {
        Framing::Webhook => data_err(framing, "{\"id\", \"type\", \"timestamp\", \"data\"}", e),
        _ => data_err(framing, "{\"event\", \"traceId\", \"data\"}", e),
    }
}

/// A Socket.IO frame's parse error: a framing error when the JSON was fine.
pub(crate) fn socketio_err(e: &serde_json::Error) -> TranslateError {
    if e.is_data() {
        framing_err(Framing::SocketIo, e.to_string())
    } else {
        json_err(e)
    }
}

/// Writes one frame of `framing` as JSON text to `out`. `trace_id`, `id` and `at` come
/// from the canonical event's metadata.
pub fn write_frame<P: Serialize + ?Sized>(
    framing: Framing,
    name: &str,
    payload: Option<&P>,
    meta: &crate::event::Meta,
    out: &mut Vec<u8>,
) {
    // Serialising these shapes into a Vec cannot fail: every key is a string.
    let _ = match framing {
        Framing::Envelope => serde_json::to_writer(
            &mut *out,
            &EnvelopeOut {
                event: name,
                trace_id: &meta.trace_id,
                data: Data(payload),
            },
        ),
        Framing::SocketIo => match payload {
            Some(p) => serde_json::to_writer(&mut *out, &(name, p)),
            None => serde_json::to_writer(&mut *out, &[name]),
        },
        Framing::Webhook => serde_json::to_writer(
            &mut *out,
            &WebhookOut {
                id: WebhookId(&meta.id),
                ty: name,
                timestamp: &format_iso_millis(meta.at),
                data: Data(payload),
            },
        ),
    };
}
