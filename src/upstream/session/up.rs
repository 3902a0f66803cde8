//! A fronted client's intents going up: encoded in the backend's dialect and written to
//! its session (opened now if it is lazy), the client's ack kept until the backend's
//! answer (its Socket.IO ack, or the first event with the same trace id).

use super::Session;
use crate::config::Transport;
use crate::dialect::Direction;
use crate::event::Event;
use crate::hub::{ErrorCode, Refusal, Reply};
use crate::socketio::client::SendError;
use crate::upstream::OpenError;
use crate::upstream::acks::Key;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

impl Session {
    /// An intent to the backend, in its dialect; `reply` answers the client's ack when
    /// the backend does.
    pub async fn send_up(self: &Arc<Self>, ev: Event, reply: Option<Reply>) {
        let reg = self.hub.registry();
        let Some(d) = reg.dialect(&self.up.cfg.dialect) else {
            let r = Refusal::new(
                ErrorCode::Unavailable,
                "the backend's dialect is not loaded",
            );
            return self.refuse(&r, &ev, reply);
        };
        let mut buf = Vec::with_capacity(256);
        if let Err(e) = d.encode_frame(&ev, Direction::Up, &mut buf) {
            let why = d
                .lack_reason(&ev.name)
                .map_or_else(|| e.to_string(), str::to_owned);
            let r = Refusal::new(
                ErrorCode::Unsupported,
                format!("the backend ({}) cannot take `{}`: {why}", d.name, ev.name),
            );
            return self.refuse(&r, &ev, reply);
        }
        let framing_has_acks = self.up.cfg.transport == Transport::Socketio;
        drop(reg);
        let link = match self.open().await {
            Ok(link) => link,
            Err(e) => {
                // The ack first: the close that follows ends the client's transport.
                if let Some(r) = reply {
                    let error = e.as_ref().map_or_else(
                        || "the backend session is closed".to_string(),
                        ToString::to_string,
                    );
                    let code = match e {
                        Some(OpenError::Refused(_)) => "unauthorized",
                        _ => "unavailable",
                    };
                    r(json!({"success": false, "code": code, "error": error}));
                }
                if let Some(e) = e {
                    self.refused(&e);
                }
                return;
            }
        };
        // The waiting ack goes in before the frame goes out: a fast answer finds it.
        let mut ack_id = None;
        let mut key = None;
        if let Some(r) = reply {
            let k = if framing_has_acks {
                let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
                ack_id = Some(id);
                Key::Ack(id)
            } else {
                Key::Trace(ev.meta.trace_id.to_string())
            };
            let deadline = Instant::now() + self.up.cfg.ack_timeout;
            let added = self.pending.lock().unwrap_or_else(|p| p.into_inner()).add(
                k.clone(),
                ev.name.clone(),
                r,
                deadline,
            );
            match added {
                Ok(()) => {
                    key = Some(k);
                    self.wake.notify_one();
                }
                Err(r) => {
                    ack_id = None;
                    r(
                        json!({"success": false, "code": "unavailable", "error": "too many events waiting for the backend's answer"}),
                    );
                }
            }
        }
        // serde_json writes UTF-8 only.
        let text = String::from_utf8(buf).unwrap_or_default();
        match link.send(text, ack_id) {
            Ok(()) => {
                self.relayed(&ev, "up");
            }
            Err(e) => {
                let waiting = key.and_then(|k| {
                    self.pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take(&k)
                });
                let r = match e {
                    SendError::Full => Refusal::new(
                        ErrorCode::Unavailable,
                        "the backend is not keeping up: the event was not sent, send it again",
                    ),
                    SendError::Closed => {
                        Refusal::new(ErrorCode::Unavailable, "the backend session has closed")
                    }
                };
                self.refuse(&r, &ev, waiting.map(|w| w.reply));
            }
        }
    }
}
