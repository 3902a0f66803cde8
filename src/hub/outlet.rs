//! How the hub reaches a connection without knowing its transport: an event encoded once
//! for a dialect ([`OutFrame`]), and the connection's [`Outlet`], which the listener that
//! accepted it implements (a WebSocket's bounded queue, a namespace of a Socket.IO
//! connection, a long-polling socket; an in-memory one in tests).

use crate::bus::Offset;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;

/// An event encoded for one dialect: what every connection of that dialect is sent.
#[derive(Debug, Clone)]
pub struct OutFrame {
    /// The wire event name (a Socket.IO emit names it).
    pub name: Arc<str>,
    /// The wire payload (`None`: an event without one).
    pub payload: Option<Arc<Value>>,
    /// The whole text a connection of the dialect receives: the envelope (raw
    /// WebSocket), or the Socket.IO event packet of the root namespace
    /// (`42["name",payload]`; another namespace is the transport's to insert).
    pub text: Bytes,
    /// Its place in the room history, when it is kept there and the frame carries it
    /// (Socket.IO recovery: the offset is the packet's last argument).
    pub seq: Option<u64>,
}

impl OutFrame {
    /// A Socket.IO event: its name and payload, and the root namespace's event packet.
    pub fn socketio(name: &str, payload: Option<Value>) -> OutFrame {
        OutFrame::socketio_at(name, payload, None)
    }

    /// A Socket.IO event carrying its history offset as its last argument (`None`: a
    /// plain one).
    pub fn socketio_at(name: &str, payload: Option<Value>, offset: Option<&Offset>) -> OutFrame {
        let o = offset.map(ToString::to_string);
        let text = crate::socketio::packet::event_at(name, payload.as_ref(), o.as_deref());
        OutFrame {
            name: Arc::from(name),
            payload: payload.map(Arc::new),
            text: Bytes::from(text),
            seq: offset.map(|o| o.seq),
        }
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
            payload: None,
            text: Bytes::from(text),
            seq: None,
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
