//! Sessions saved for recovery: when a connection goes without a goodbye, and, with the
//! Redis bus, while it is open too (at registration, at each join and leave, and every
//! presence period with what was last queued to it, for `recovery.max_disconnection` and
//! a period), so that an instance that crashes (SIGKILL, a lost machine) loses no
//! session: its clients come back to another instance and recover. A goodbye deletes it.

use super::{ConnRecovery, Saved};
use crate::bus::{Offset, RoomKey};
use crate::hub::{Conn, HubState};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl HubState {
    /// The session of a recovering connection as it stands (`None`: not one that is
    /// saved).
    pub(super) fn snapshot(
        &self,
        conn: &Conn,
        rooms: &[RoomKey],
        head: Option<Offset>,
    ) -> Option<Saved> {
        let rec: &ConnRecovery = conn.recovery.as_deref()?;
        // Raw WebSocket has no sessions to recover (its clients replay with `?since=`).
        if rec.pid.is_empty() || !self.history.is_on() {
            return None;
        }
        Some(Saved {
            pid: rec.pid.to_string(),
            sid: conn.socket_id.to_string(),
            user: conn.user.id.clone(),
            dialect: conn.dialect.to_string(),
            rooms: rooms
                .iter()
                .filter(|r| matches!(r, RoomKey::Conversation(_)))
                .cloned()
                .collect(),
            delivered: rec.delivered(),
            head,
            instance: self.instance.to_string(),
            conn: conn.id,
        })
    }

    /// Saves a connection's session as it goes; a goodbye deletes it instead.
    pub(in crate::hub) async fn save_session(&self, conn: &Conn, rooms: &[RoomKey]) {
        let Some(rec) = conn.recovery.as_deref() else {
            return;
        };
        if rec.taken.load(Ordering::Relaxed) {
            return;
        }
        if rec.forget.load(Ordering::Relaxed) {
            if !rec.pid.is_empty()
                && let Err(e) = self.sessions.remove(&rec.pid).await
            {
                tracing::warn!(
                    conn = conn.id,
                    "a session left for good is still saved: {e}"
                );
            }
            return;
        }
        let head = self.history.head().await.ok();
        let Some(saved) = self.snapshot(conn, rooms, head) else {
            return;
        };
        if let Err(e) = self.sessions.save(&saved, self.recovery_window).await {
            tracing::warn!(conn = conn.id, "session not saved for recovery: {e}");
        }
    }

    /// Saves an open connection's session (with the Redis bus), so that a crash of
    /// this instance does not lose it.
    pub(in crate::hub) async fn save_live(&self, conn: &Conn) {
        if !self.store.is_shared() || conn.recovery.is_none() {
            return;
        }
        let rooms: Vec<RoomKey> = conn.rooms().iter().cloned().collect();
        let head = self.history.head().await.ok();
        let Some(saved) = self.snapshot(conn, &rooms, head) else {
            return;
        };
        if let Err(e) = self.sessions.save(&saved, self.live_session_ttl).await {
            tracing::warn!(conn = conn.id, "open session not saved for recovery: {e}");
        }
    }

    /// Saves every open recovering connection's session at once (the presence keeper,
    /// each period, with the Redis bus).
    pub(in crate::hub) async fn save_all_live(&self, conns: &[Arc<Conn>]) {
        if !self.store.is_shared() {
            return;
        }
        let head = self.history.head().await.ok();
        let all: Vec<Saved> = conns
            .iter()
            .filter(|c| !c.is_closed())
            .filter_map(|c| {
                let rooms: Vec<RoomKey> = c.rooms().iter().cloned().collect();
                self.snapshot(c, &rooms, head.clone())
            })
            .collect();
        if all.is_empty() {
            return;
        }
        if let Err(e) = self.sessions.save_many(&all, self.live_session_ttl).await {
            tracing::warn!("open sessions not saved for recovery: {e}");
        }
    }
}
