//! Framings: how one event is laid out as JSON on the wire, the `WireEvent` a frame
//! holds, writing frames in a fixed key order, and the framing error messages. Reading
//! frames is `read.rs`.

use super::error::TranslateError;
use super::escape::write_str;
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
    write_frame_with(
        framing,
        Name::Text(name),
        meta,
        out,
        payload.is_some(),
        |out| {
            if let Some(p) = payload {
                // Serialising into a Vec cannot fail: every map key is a string.
                let _ = serde_json::to_writer(&mut *out, p);
            }
        },
    );
}

/// Writes one frame whose payload `write` writes (when `has_payload`; else `{}` or, in
/// a Socket.IO array, nothing), compact, as serde_json writes it:
/// `{"event":…,"traceId":…,"data":…}`, `["name",…]` or
/// `{"id":"evt_…","type":…,"timestamp":…,"data":…}`.
pub(crate) fn write_frame_with(
    framing: Framing,
    name: Name<'_>,
    meta: &crate::event::Meta,
    out: &mut Vec<u8>,
    has_payload: bool,
    write: impl FnOnce(&mut Vec<u8>),
) {
    if framing == Framing::SocketIo {
        out.push(b'[');
        name.write(out);
        if has_payload {
            out.push(b',');
            write(out);
        }
        out.push(b']');
        return;
    }
    let data = |out: &mut Vec<u8>| {
        out.extend_from_slice(b",\"data\":");
        if has_payload {
            write(out);
        } else {
            out.extend_from_slice(b"{}");
        }
        out.push(b'}');
    };
    match framing {
        Framing::Envelope => {
            out.extend_from_slice(b"{\"event\":");
            name.write(out);
            out.extend_from_slice(b",\"traceId\":");
            write_id(out, &meta.trace_id);
            data(out);
        }
        Framing::SocketIo => {}
        Framing::Webhook => {
            out.extend_from_slice(b"{\"id\":");
            match &meta.id {
                EventId::Text(id) if id.starts_with("evt_") => write_str(out, id),
                EventId::Text(id) => write_str(out, &format!("evt_{id}")),
                EventId::Uuid(u) => write_uuid(out, "evt_", &u.0),
            }
            out.extend_from_slice(b",\"type\":");
            name.write(out);
            out.extend_from_slice(b",\"timestamp\":");
            write_str(out, &format_iso_millis(meta.at));
            data(out);
        }
    }
}

/// A frame's event name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Name<'a> {
    /// The name.
    Text(&'a str),
    /// The name as a JSON string, quoted and escaped.
    Json(&'a [u8]),
}

impl Name<'_> {
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Name::Text(t) => write_str(out, t),
            Name::Json(j) => out.extend_from_slice(j),
        }
    }
}

/// An id as a JSON string: a UUID's text needs no escaping.
fn write_id(out: &mut Vec<u8>, id: &EventId) {
    match id {
        EventId::Uuid(u) => write_uuid(out, "", &u.0),
        EventId::Text(t) => write_str(out, t),
    }
}

/// `"<prefix><uuid>"`: a plain prefix and a UUID's text need no escaping.
fn write_uuid(out: &mut Vec<u8>, prefix: &str, u: &uuid::Uuid) {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push(b'"');
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(u.hyphenated().encode_lower(&mut buf).as_bytes());
    out.push(b'"');
}
