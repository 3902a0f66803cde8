//! How the hub reaches a connection without knowing its transport: an event encoded once
//! for a dialect ([`OutFrame`]), and the connection's [`Outlet`], which the listener that
//! accepted it implements (a WebSocket's bounded queue, a namespace of a Socket.IO
//! connection, a long-polling socket; an in-memory one in tests).

use crate::bus::Offset;
use crate::dialect::{json_len, write_str};
use bytes::Bytes;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// An event encoded for one dialect: what every connection of that dialect is sent.
#[derive(Debug, Clone)]
pub struct OutFrame {
    /// The wire event name (a Socket.IO emit names it).
    pub name: Arc<str>,
    /// The whole text a connection of the dialect receives: the envelope (raw
    /// WebSocket), or the Socket.IO event packet of the root namespace
    /// (`42["name",payload]`; another namespace is the transport's to insert).
    pub text: Bytes,
    /// Its place in the room history, when it is kept there and the frame carries it
    /// (Socket.IO recovery: the offset is the packet's last argument).
    pub seq: Option<u64>,
    /// A Socket.IO event's payload as a JSON value, read from `text` the first time an
    /// outlet that emits values asks (the long-polling one), shared by the frame's clones;
    /// `None` for an envelope.
    value: Option<Arc<OnceLock<Option<Arc<Value>>>>>,
}

impl OutFrame {
    /// A Socket.IO event from its frame (`["name"]` or `["name",payload]`, as written
    /// for the Socket.IO framing), carrying its history offset as its last argument
    /// (for recovering connections; `None`: a plain one).
    pub fn socketio_at(name: &str, frame: Vec<u8>, offset: Option<&Offset>) -> OutFrame {
        let mut text = Vec::with_capacity(frame.len() + 40);
        text.extend_from_slice(b"42");
        text.extend_from_slice(&frame);
        // `["name"]` alone: a frame with a payload is longer than the name's text.
        let no_payload = frame.len() == json_len(name) + 2;
        if let Some(o) = offset
            && text.last() == Some(&b']')
        {
            text.pop();
            if no_payload {
                // The offset must be the last argument, and the payload the first.
                text.extend_from_slice(b",null");
            }
            text.push(b',');
            write_str(&mut text, &o.to_string());
            text.push(b']');
        }
        OutFrame {
            name: Arc::from(name),
            text: Bytes::from(text),
            seq: offset.map(|o| o.seq),
            value: Some(Arc::new(if no_payload {
                OnceLock::from(None)
            } else {
                OnceLock::new()
            })),
        }
    }

    /// A Socket.IO event's payload as a JSON value (`None`: the event has none, or the
    /// frame is an envelope).
    pub fn payload(&self) -> Option<Arc<Value>> {
        let cell = self.value.as_ref()?;
        cell.get_or_init(|| {
            let args: Vec<Value> = serde_json::from_slice(self.text.get(2..)?).ok()?;
            args.into_iter().nth(1).map(Arc::new)
        })
        .clone()
    }

    /// A whole text frame (a JSON envelope) for the event `name`, carrying its history
    /// offset as a top-level `"offset"` (the raw WebSocket recovery extension).
    pub fn text_at(name: &str, mut text: Vec<u8>, offset: &Offset) -> OutFrame {
        if text.last() == Some(&b'}') && text.len() > 2 {
            text.pop();
            text.extend_from_slice(format!(",\"offset\":\"{offset}\"}}").as_bytes());
        }
        OutFrame {
            seq: Some(offset.seq),
            ..OutFrame::text(name, text)
        }
    }

    /// A whole text frame (an envelope) for the event `name`.
    pub fn text(name: &str, text: Vec<u8>) -> OutFrame {
        OutFrame {
            name: Arc::from(name),
            text: Bytes::from(text),
            seq: None,
            value: None,
        }
    }
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// The connection's queue is full: it is a slow consumer.
    Full,
    /// The connection is gone.
    Closed,
}

/// Where a connection's frames go: implemented by each transport.
pub trait Outlet: Send + Sync {
    /// Queues a frame without waiting.
    ///
    /// # Errors
    /// The queue is full (the hub then cuts the connection as a slow consumer) or the
    /// connection is gone.
    fn send(&self, frame: &OutFrame) -> Result<(), SendFailure>;

    /// Ends the connection from the server's side, with a WebSocket close code and a
    /// reason (each transport says it its own way). Called once.
    fn close(&self, code: u16, reason: &str);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socketio_packets_carry_the_offset_last_and_give_the_payload_back() {
        let o = Offset {
            epoch: Arc::from("e1"),
            seq: 7,
        };
        let f = OutFrame::socketio_at("a,b", br#"["a,b",{"x":1}]"#.to_vec(), Some(&o));
        assert_eq!(&f.text[..], br#"42["a,b",{"x":1},"e1-7"]"#);
        assert_eq!(f.seq, Some(7));
        assert_eq!(f.payload().as_deref(), Some(&serde_json::json!({"x": 1})));
        let bare = OutFrame::socketio_at("a,b", br#"["a,b"]"#.to_vec(), Some(&o));
        assert_eq!(&bare.text[..], br#"42["a,b",null,"e1-7"]"#);
        assert_eq!(bare.payload(), None);
        let plain = OutFrame::socketio_at("n", br#"["n"]"#.to_vec(), None);
        assert_eq!(&plain.text[..], br#"42["n"]"#);
        assert_eq!(plain.payload(), None);
        assert_eq!(OutFrame::text("n", b"{}".to_vec()).payload(), None);
    }
}
