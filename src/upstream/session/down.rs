//! The backend's side of a session: its frames read until it or the client goes, its
//! facts decoded in its dialect and sent to the client in the client's, its answers
//! matched to the client's waiting acks (or timed out), and its own ack requests
//! answered; a backend that closes reaches the client as `unavailable` and a close.

use super::{CLOSE_BACKEND_GONE, Session};
use crate::config::Transport;
use crate::dialect::Direction;
use crate::hub::{ErrorCode, Refusal};
use crate::socketio::client::Incoming;
use crate::telemetry::{UpstreamLabels, UpstreamOutcome};
use crate::upstream::acks::Key;
use crate::upstream::answer;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

impl Session {
    /// Reads the backend until it or the client goes.
    pub(super) async fn drive(self: Arc<Self>, mut rx: mpsc::Receiver<Incoming>) {
        let up = &self.up;
        let gauge = self
            .hub
            .metrics()
            .upstream_sessions
            .get_or_create(&UpstreamLabels {
                upstream: up.label.clone(),
            })
            .clone();
        gauge.inc();
        self.count("opened");
        tracing::debug!(upstream = %up.cfg.name, conn = self.conn.id, "upstream session open");
        if up.cfg.connect == crate::config::ConnectMode::Eager {
            self.ready();
        }
        let why = loop {
            let deadline = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_deadline();
            let m = tokio::select! {
                () = self.ended.cancelled() => break None,
                () = self.conn.cancel.cancelled() => break None,
                () = self.wake.notified() => continue,
                () = sleep_until(deadline) => {
                    self.expire();
                    continue;
                }
                m = rx.recv() => m,
            };
            match m {
                Some(Incoming::Event { text, ack }) => self.backend_frame(&text, ack).await,
                Some(Incoming::Ack { id, text }) => self.backend_ack(id, &text),
                Some(Incoming::Closed(why)) => break Some(why),
                None => break Some("connection ended".to_string()),
            }
        };
        gauge.dec();
        if let Some(link) = self.link.get() {
            link.close();
        }
        let left: Vec<_> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain();
        for w in left {
            (w.reply)(
                json!({"success": false, "code": "unavailable", "error": "the backend session ended before answering"}),
            );
        }
        match why {
            Some(why) if !self.ended.is_cancelled() && !self.conn.is_closed() => {
                tracing::info!(upstream = %up.cfg.name, conn = self.conn.id, %why, "the backend closed the session");
                self.count("closed_by_backend");
                let r = Refusal::new(
                    ErrorCode::Unavailable,
                    format!("the backend closed the session ({why}): reconnect"),
                );
                self.tell_and_close(&r, CLOSE_BACKEND_GONE);
            }
            _ => self.count("closed_by_client"),
        }
    }

    fn expire(&self) {
        let gone = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .expired(Instant::now());
        for w in gone {
            (w.reply)(json!({
                "success": false,
                "code": "timeout",
                "error": format!("the backend did not answer `{}` within {:?}", w.intent, self.up.cfg.ack_timeout),
            }));
        }
    }

    fn answered(&self, key: &Key, ack: impl FnOnce(&str) -> Value) {
        let w = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(key);
        if let Some(w) = w {
            self.hub
                .metrics()
                .upstream_ack_seconds
                .get_or_create(&UpstreamLabels {
                    upstream: self.up.label.clone(),
                })
                .observe(w.since.elapsed().as_secs_f64());
            (w.reply)(ack(&w.intent));
        }
    }

    /// The backend's Socket.IO ack to one of our events.
    fn backend_ack(&self, id: u64, args: &str) {
        let reg = self.hub.registry();
        let Some(d) = reg.dialect(&self.up.cfg.dialect) else {
            return;
        };
        self.answered(&Key::Ack(id), |intent| {
            answer::from_ack(d, intent, &self.up.answers, args, &self.decode_context())
        });
    }

    /// A frame from the backend: its facts to the client, in the client's dialect, and
    /// those the upstream exports to the hub's exports (once, whichever session's copy
    /// claims them first).
    async fn backend_frame(&self, text: &str, ack: Option<u64>) {
        let reg = self.hub.registry();
        let Some(d) = reg.dialect(&self.up.cfg.dialect) else {
            return;
        };
        let events = match d.decode_frame(
            text.as_bytes(),
            Some(Direction::Down),
            &self.decode_context(),
        ) {
            Ok(evs) => evs,
            Err(e) => {
                tracing::debug!(upstream = %self.up.cfg.name, error = %e, "backend frame not understood");
                self.hub
                    .metrics()
                    .upstream_failures
                    .get_or_create(&UpstreamOutcome {
                        upstream: self.up.label.clone(),
                        outcome: e.code(),
                    })
                    .inc();
                if let (Some(id), Some(link)) = (ack, self.link.get()) {
                    link.ack(id, &json!({"success": false, "error": e.to_string()}));
                }
                return;
            }
        };
        drop(reg);
        for mut ev in events {
            if &*ev.name == "session.error" && !ev.body.contains_key("reason") {
                // Dialects that carry only a reason (Clerk) still hear why.
                if let Some(code) = ev.body.get("code").cloned() {
                    ev.body.insert("reason".into(), code);
                }
            }
            // Only a raw WebSocket backend answers by trace id; most frames find no ack
            // waiting, and then cost no key.
            let waiting = self.up.cfg.transport == Transport::Websocket
                && self
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .next_deadline()
                    .is_some();
            if waiting {
                let key = Key::Trace(ev.meta.trace_id.to_string());
                self.answered(&key, |_| answer::from_event(&ev));
            }
            if !self.up.routing.from_backend(&ev.name) {
                continue;
            }
            self.relayed(&ev, "down");
            self.hub.send_event(&self.conn, &ev);
            if self.up.exports.matches(&ev.name) {
                self.hub.export_fronted(&self.up.fronted, &ev).await;
            }
        }
        // The backend asked for an ack: the event is on its way to the client.
        if let (Some(id), Some(link)) = (ack, self.link.get()) {
            link.ack(id, &json!({"success": true}));
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
