//! A connection's registration with the hub, owned by the task that serves it: however
//! that task ends (it returns, fails, is cancelled or panics), dropping the registration
//! unregisters the connection: the gauge, the per-user count, its rooms and the bus
//! interest at once, its presence (which needs the store) on a task of its own.

use super::{Conn, Hub};
use std::ops::Deref;
use std::sync::Arc;

/// WebSocket close code for a connection whose task failed (RFC 6455: internal error).
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;

/// A registered connection. [`Registration::end`] unregisters it in order (presence
/// announced before it returns); dropping it without `end` does the same from `Drop`.
pub struct Registration {
    hub: Hub,
    conn: Arc<Conn>,
    ended: bool,
}

impl Registration {
    pub(super) fn new(hub: Hub, conn: Arc<Conn>) -> Registration {
        Registration {
            hub,
            conn,
            ended: false,
        }
    }

    /// The connection.
    pub fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }

    /// Unregisters the connection (the client left, or the server cut it), waiting for
    /// its presence to be updated.
    pub async fn end(mut self) {
        self.ended = true;
        self.hub.disconnect(&self.conn).await;
    }
}

impl Deref for Registration {
    type Target = Arc<Conn>;

    fn deref(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // The task ended without saying goodbye: a panic, a cancelled future. The client
        // is told (where its transport still can be), the hub forgets the connection now,
        // and the presence change follows on a task of its own.
        tracing::warn!(conn = self.conn.id, user = %self.conn.user.id, "connection task ended abnormally; unregistering it");
        self.conn
            .close(CLOSE_INTERNAL_ERROR, "internal error: reconnect");
        let Some(rooms) = self.hub.detach(&self.conn) else {
            return;
        };
        let (hub, conn) = (self.hub.clone(), self.conn.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { hub.announce_gone(&conn, rooms).await });
        }
    }
}
