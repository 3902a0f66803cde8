//! Framings: how one event is laid out as JSON on the wire. Parsing a frame yields a
//! `WireEvent` (name, payload, and what the framing itself carries); writing does the
//! reverse in a fixed key order.

use super::error::TranslateError;
use super::plan::Framing;
use crate::event::{EventId, format_iso_millis, parse_iso_millis};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;

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

/// A frame with its payload still unparsed JSON text.
#[derive(Debug)]
struct RawFrame<'a> {
    /// Wire event name (borrowed from the input when it has no escapes).
    pub name: Cow<'a, str>,
    /// The payload's JSON text; `None` when the frame has none (or it is `null` in an
    /// envelope or webhook body).
    pub payload: Option<&'a RawValue>,
    /// The envelope's `traceId`.
    pub trace_id: Option<String>,
    /// The webhook body's `id`.
    pub id: Option<String>,
    /// The webhook body's `timestamp`, Unix milliseconds.
    pub at: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeIn<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeOut<'a> {
    event: &'a str,
    trace_id: &'a EventId,
    data: &'a Value,
}

/// `["name"]` or `["name", payload]`, read without building an array.
struct SocketIoIn<'a> {
    name: Cow<'a, str>,
    payload: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for SocketIoIn<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SocketIoIn<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array [\"event\", payload]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SocketIoIn<'de>, A::Error> {
                use serde::de::Error;
                let first: &'de RawValue = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::custom("empty array: the event name is missing"))?;
                let name: Cow<'de, str> = match first.get().as_bytes().first() {
                    Some(b'"') => serde_json::from_str(first.get()).map_err(A::Error::custom)?,
                    _ => {
                        return Err(A::Error::custom(
                            "the first item must be the event name, a string",
                        ));
                    }
                };
                let payload: Option<&'de RawValue> = seq.next_element()?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom(
                        "expected [\"event\"] or [\"event\", payload]: found more items",
                    ));
                }
                Ok(SocketIoIn { name, payload })
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
struct WebhookIn<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct WebhookOut<'a> {
    id: WebhookId<'a>,
    #[serde(rename = "type")]
    ty: &'a str,
    timestamp: &'a str,
    data: &'a Value,
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

/// Reads one frame of `framing` from JSON text, leaving the payload unparsed.
///
/// # Errors
/// Not JSON (or nested too deep), or JSON that is not the framing's shape.
fn parse_raw_frame(framing: Framing, text: &[u8]) -> Result<RawFrame<'_>, TranslateError> {
    let text = std::str::from_utf8(text).map_err(|e| TranslateError::NotJson(e.to_string()))?;
    match framing {
        Framing::Envelope => {
            let env: EnvelopeIn<'_> = serde_json::from_str(text)
                .map_err(|e| data_err(framing, "{\"event\", \"traceId\", \"data\"}", &e))?;
            Ok(RawFrame {
                name: env.event,
                payload: env.data.filter(|d| d.get() != "null"),
                trace_id: env.trace_id,
                id: None,
                at: None,
            })
        }
        Framing::SocketIo => {
            let f: SocketIoIn<'_> = serde_json::from_str(text).map_err(|e| socketio_err(&e))?;
            Ok(RawFrame {
                name: f.name,
                payload: f.payload,
                trace_id: None,
                id: None,
                at: None,
            })
        }
        Framing::Webhook => {
            let w: WebhookIn<'_> = serde_json::from_str(text).map_err(|e| {
                data_err(framing, "{\"id\", \"type\", \"timestamp\", \"data\"}", &e)
            })?;
            let at = match &w.timestamp {
                Some(t) => Some(parse_iso_millis(t).ok_or_else(|| {
                    framing_err(framing, format!("timestamp `{t}` is not ISO-8601"))
                })?),
                None => None,
            };
            Ok(RawFrame {
                name: w.ty,
                payload: w.data.filter(|d| d.get() != "null"),
                trace_id: None,
                id: w.id,
                at,
            })
        }
    }
}

/// Parses one frame of `framing` from JSON text, payload included.
///
/// # Errors
/// Not JSON, or JSON that is not the framing's shape.
pub fn parse_frame(framing: Framing, text: &[u8]) -> Result<WireEvent, TranslateError> {
    let raw = parse_raw_frame(framing, text)?;
    let payload = match raw.payload {
        None => None,
        Some(p) => Some(serde_json::from_str(p.get()).map_err(|e| json_err(&e))?),
    };
    Ok(WireEvent {
        name: raw.name.into_owned(),
        payload,
        trace_id: raw.trace_id,
        id: raw.id,
        at: raw.at,
    })
}

/// Writes one frame of `framing` as JSON text to `out`. `trace_id`, `id` and `at` come
/// from the canonical event's metadata.
pub fn write_frame(
    framing: Framing,
    name: &str,
    payload: Option<&Value>,
    meta: &crate::event::Meta,
    out: &mut Vec<u8>,
) {
    let empty_obj = Value::Object(serde_json::Map::new());
    let data = payload.unwrap_or(&empty_obj);
    // Serialising these shapes into a Vec cannot fail: every key is a string.
    let _ = match framing {
        Framing::Envelope => serde_json::to_writer(
            &mut *out,
            &EnvelopeOut {
                event: name,
                trace_id: &meta.trace_id,
                data,
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
                data,
            },
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn socketio_shapes() {
        let w = parse_frame(Framing::SocketIo, br#"["typing",{"conversationId":"c"}]"#).unwrap();
        assert_eq!(w.name, "typing");
        assert_eq!(w.payload, Some(json!({"conversationId": "c"})));
        let w = parse_frame(Framing::SocketIo, br#"["presence:heartbeat"]"#).unwrap();
        assert_eq!(w.payload, None);
        for bad in [&b"{}"[..], b"[]", b"[1]", b"[\"a\",1,2]"] {
            assert!(matches!(
                parse_frame(Framing::SocketIo, bad),
                Err(TranslateError::Framing { .. })
            ));
        }
        assert!(matches!(
            parse_frame(Framing::SocketIo, b"nope"),
            Err(TranslateError::NotJson(_))
        ));
    }

    #[test]
    fn envelope_and_webhook_shapes() {
        let w = parse_frame(
            Framing::Envelope,
            br#"{"event":"ACK","traceId":"t","data":{"messageId":"m"}}"#,
        )
        .unwrap();
        assert_eq!((w.name.as_str(), w.trace_id.as_deref()), ("ACK", Some("t")));
        assert!(parse_frame(Framing::Envelope, br#"{"data":{}}"#).is_err());
        let w = parse_frame(
            Framing::Webhook,
            br#"{"id":"evt_1","type":"user.online","timestamp":"2024-01-15T10:30:00.000Z","data":{}}"#,
        )
        .unwrap();
        assert_eq!(w.at, Some(1_705_314_600_000));
        assert!(parse_frame(Framing::Webhook, br#"{"type":"x","timestamp":"soon"}"#).is_err());
    }
}
