//! Connection state recovery (Socket.IO's, for its official clients unchanged): a
//! connection on a recovering route has a private session id (`pid`); each kept fact it
//! is sent carries its history offset, and the last offsets queued to it are
//! remembered. When it goes without saying goodbye, its session (socket id, user,
//! rooms, those offsets) is saved for `recovery.max_disconnection` (`sessions.rs`). A
//! client back with `auth: {pid, offset}` on any instance gets the same socket id, its
//! rooms, and every kept fact of them after what it received, in order, each once,
//! before anything new; when the history no longer holds all of it, it starts afresh
//! instead (`recovered === false`), never with a silent gap.

mod conn;
mod keep;
mod sessions;

pub use conn::ConnRecovery;
pub use sessions::{Saved, Sessions, SessionsError};

use super::{Conn, ErrorCode, HubState, Refusal, presence};
use crate::bus::{Offset, RoomKey};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a listener asks for a connection on a recovering route.
pub struct Recover {
    /// The connection's pid (the recovered one, or a new one; empty on raw WebSocket,
    /// which has no sessions to recover).
    pub pid: Arc<str>,
    /// The session it takes up again, when the client recovers.
    pub resume: Option<Box<Resume>>,
    /// Raw WebSocket's `?since=`: replay what its rooms had after this offset.
    pub since: Option<Offset>,
}

/// A session taken up again.
pub struct Resume {
    /// The saved session.
    pub saved: Saved,
    /// Replay what came after this.
    pub floor: Offset,
    /// Offsets after `floor` the client received already.
    pub seen: HashSet<u64>,
    /// The session's connection still open on this instance, taken over once the new
    /// one is authenticated as the same user.
    pub old: Option<super::ConnId>,
}

/// A new private session id: 22 URL-safe characters (128 random bits).
pub fn new_pid() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = fastrand::u128(..);
    (0..22)
        .map(|i| {
            if i == 21 {
                bits = fastrand::u128(..);
            }
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect()
}

/// Where the replay starts: after the client's offset, or, when some offsets queued
/// to it before the one it names never arrived, before those; and which after it the
/// client has.
fn floor_of(saved: &Saved, offset: Option<&Offset>) -> Option<(Offset, HashSet<u64>)> {
    let head = saved.head.clone()?;
    let Some(o) = offset else {
        // It received nothing: everything queued to it, or since it left.
        let seq = saved
            .delivered
            .first()
            .map_or(head.seq, |f| f.saturating_sub(1));
        return Some((Offset { seq, ..head }, HashSet::new()));
    };
    if o.epoch != head.epoch {
        return None;
    }
    let Some(pos) = saved.delivered.iter().position(|s| *s == o.seq) else {
        return Some((o.clone(), HashSet::new()));
    };
    let (got, lost) = saved.delivered.split_at(pos + 1);
    let floor = lost
        .iter()
        .map(|s| s.saturating_sub(1))
        .chain(std::iter::once(o.seq))
        .min()
        .unwrap_or(o.seq);
    let seen = got.iter().copied().filter(|s| *s > floor).collect();
    Some((
        Offset {
            epoch: o.epoch.clone(),
            seq: floor,
        },
        seen,
    ))
}

impl super::Hub {
    /// Whether room history is kept (recovery needs it).
    pub fn history_on(&self) -> bool {
        self.state.history.is_on()
    }

    /// The session `pid` a client came back for, when it can be recovered whole (see
    /// [`Resume`]); taken.
    pub async fn resumable(
        &self,
        pid: &str,
        offset: Option<&str>,
        dialect: &str,
    ) -> Option<Resume> {
        self.state.resumable(pid, offset, dialect).await
    }
}

impl HubState {
    /// The session `pid` a client came back for, when it can be recovered whole: its
    /// own, on the same route's dialect, and the history still holds what it missed.
    /// Taken: a second client with the same pid starts afresh.
    pub(super) async fn resumable(
        &self,
        pid: &str,
        offset: Option<&str>,
        dialect: &str,
    ) -> Option<Resume> {
        // The session's connection may still be open here: its client is back before
        // the server noticed it gone (a dead network, not a closed socket). It is taken
        // over: closed, and its state is the session (fresher than a saved one).
        let open = self.open_session(pid).await;
        let old = open.as_ref().map(|(_, id)| *id);
        let open = open.map(|(s, _)| s);
        let saved = match self.sessions.take(pid).await {
            Ok(s) => open.or(s),
            Err(e) => {
                tracing::warn!("a saved session could not be read: {e}");
                open
            }
        }?;
        if saved.dialect != dialect {
            return None;
        }
        let offset = match offset {
            Some(text) => Some(Offset::parse(text)?),
            None => None,
        };
        let (floor, seen) = floor_of(&saved, offset.as_ref())?;
        let rooms = replay_rooms(&saved);
        match self.history.since(&rooms, &floor, &seen).await {
            Ok(r) if r.complete => Some(Resume {
                saved,
                floor,
                seen,
                old,
            }),
            Ok(_) => {
                tracing::debug!(
                    pid,
                    "not recovered: the history no longer holds what it missed"
                );
                None
            }
            Err(e) => {
                tracing::warn!("a session could not be recovered: {e}");
                None
            }
        }
    }

    /// The session `pid` of a connection still open on this instance, and its id
    /// (`None`: none is open here).
    async fn open_session(&self, pid: &str) -> Option<(Saved, super::ConnId)> {
        let conn = super::read(&self.conns)
            .values()
            .find(|c| c.recovery.as_deref().is_some_and(|r| &*r.pid == pid))
            .cloned()?;
        let rooms = kept_rooms(&conn);
        let head = self.history.head().await.ok();
        self.snapshot(&conn, &rooms, head).map(|s| (s, conn.id))
    }

    /// Closes the old connection of a session a new one took over; its end neither
    /// saves nor deletes the session (the new connection has it).
    fn take_over(&self, old: super::ConnId) {
        let Some(conn) = super::read(&self.conns).get(&old).cloned() else {
            return;
        };
        if let Some(r) = &conn.recovery {
            r.taken.store(true, Ordering::Relaxed);
        }
        tracing::debug!(
            conn = conn.id,
            "a recovering client is back before its old connection ended: taken over"
        );
        conn.close(
            super::CLOSE_TRY_LATER,
            "the session was taken up by a new connection",
        );
    }

    /// A resumed connection (registered, its catch-up hold on) takes its rooms back and
    /// is sent what it missed, then what came meanwhile.
    pub(super) async fn resume(&self, conn: &Arc<Conn>, resume: Resume) {
        // A pid is a secret, but only its own user takes a session up again.
        if resume.saved.user != conn.user.id {
            tracing::warn!(conn = conn.id, user = %conn.user.id, "a recovery for another user's session: refused");
            let r = Refusal::new(
                ErrorCode::Unauthorized,
                "this session belongs to another user",
            );
            self.refuse(conn, &r, None);
            if let Some(rec) = conn.recovery.as_deref() {
                let _ = rec.release(conn.outlet(), &[]);
                // Its end leaves the session alone, which goes back where it was.
                rec.taken.store(true, Ordering::Relaxed);
            }
            if resume.old.is_none()
                && let Err(e) = self
                    .sessions
                    .save(&resume.saved, self.recovery_window)
                    .await
            {
                tracing::warn!("a session could not be put back: {e}");
            }
            conn.close(super::CLOSE_SLOW_CONSUMER, "unauthorized");
            return;
        }
        if let Some(old) = resume.old {
            self.take_over(old);
        }
        let mut rooms = Vec::new();
        for room in resume.saved.rooms.iter().take(self.settings.max_rooms) {
            if let RoomKey::Conversation(id) = room
                && super::rooms::may_join(self.settings.membership, conn, id)
                && self.join(conn, room.clone())
            {
                rooms.push(id.to_string());
            }
        }
        presence::record_rooms(self, conn, &rooms, true).await;
        let own = (resume.saved.instance.as_str(), resume.saved.conn);
        let rooms = replay_rooms(&resume.saved);
        self.catch_up(conn, &rooms, &resume.floor, &resume.seen, Some(own), None)
            .await;
    }

    /// A raw WebSocket client back with `?since=` (registered, its rooms joined from its
    /// token, its hold on) is sent what its rooms had after the offset, then what came
    /// meanwhile; told first in its dialect (`history_incomplete`) when the history no
    /// longer reaches back that far.
    pub(super) async fn replay_since(&self, conn: &Arc<Conn>, since: Offset) {
        let rooms = kept_rooms(conn);
        let notice = Refusal::new(
            ErrorCode::HistoryIncomplete,
            format!(
                "the room history no longer holds everything after {since}: what it holds follows; resynchronise the rest over REST"
            ),
        );
        self.catch_up(conn, &rooms, &since, &HashSet::new(), None, Some(&notice))
            .await;
    }

    /// Writes a catching-up connection its replay (the kept facts of `rooms` after
    /// `floor`, without `seen`, without its own sends as connection `own`), then releases
    /// what was held; `incomplete` is said first when the history falls short.
    async fn catch_up(
        &self,
        conn: &Arc<Conn>,
        rooms: &[RoomKey],
        floor: &Offset,
        seen: &HashSet<u64>,
        own: Option<(&str, u64)>,
        incomplete: Option<&Refusal>,
    ) {
        let Some(rec) = conn.recovery.as_deref() else {
            return;
        };
        let mut replay = Vec::new();
        match self.history.since(rooms, floor, seen).await {
            Ok(r) => {
                if let Some(notice) = incomplete.filter(|_| !r.complete) {
                    let ev = HubState::error_event(notice, None);
                    if let Ok(f) = self.encode(&conn.dialect, conn.transport, &ev) {
                        replay.push(f);
                    }
                }
                for k in &r.kept {
                    let a = &k.delivery.audience;
                    let mine = own.is_some_and(|(i, c)| {
                        a.except_connection
                            .as_ref()
                            .is_some_and(|(ai, ac)| **ai == *i && *ac == c)
                    });
                    let excluded = mine
                        || a.except_user.as_deref() == Some(conn.user.id.as_str())
                        || a.except_upstream
                            .as_ref()
                            .is_some_and(|u| conn.upstream.as_ref() == Some(u));
                    if excluded {
                        continue;
                    }
                    let ev = &k.delivery.event;
                    if let Ok(f) = self.encode_at(
                        &conn.dialect,
                        conn.transport,
                        ev,
                        k.delivery.offset.as_ref(),
                    ) {
                        replay.push(f);
                    }
                }
                tracing::debug!(conn = conn.id, user = %conn.user.id, missed = replay.len(), complete = r.complete, "caught up");
            }
            Err(e) => {
                tracing::warn!(conn = conn.id, "a replay could not be read: {e}");
            }
        }
        if rec.release(conn.outlet(), &replay).is_err() {
            conn.close(
                super::CLOSE_SLOW_CONSUMER,
                "slow consumer: outbound queue full",
            );
        }
    }
}

/// The rooms a replay reads: the saved conversation rooms and the personal room.
fn replay_rooms(saved: &Saved) -> Vec<RoomKey> {
    let mut rooms = saved.rooms.clone();
    rooms.push(RoomKey::user(&saved.user));
    rooms
}

/// The rooms of `conn` a history keeps (a dialect's room carries only what reaches
/// beyond rooms, and keeps nothing).
fn kept_rooms(conn: &Conn) -> Vec<RoomKey> {
    conn.rooms()
        .iter()
        .filter(|r| !matches!(r, RoomKey::Dialect(_)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(delivered: Vec<u64>) -> Saved {
        Saved {
            pid: "p".into(),
            sid: "s".into(),
            user: "u".into(),
            dialect: "salala".into(),
            rooms: vec![],
            delivered,
            head: Offset::parse("0a-20"),
            instance: "i".into(),
            conn: 1,
        }
    }

    fn at(seq: u64) -> Offset {
        Offset {
            epoch: Arc::from("0a"),
            seq,
        }
    }

    #[test]
    fn the_replay_starts_after_what_the_client_received() {
        // In order: replay after its offset.
        let (f, seen) = floor_of(&saved(vec![5, 6, 7]), Some(&at(6))).expect("resumable");
        assert_eq!((f.seq, seen.len()), (6, 0));
        // Out of order (7 queued before 6): 7 was received, 6 was not.
        let (f, seen) = floor_of(&saved(vec![5, 7, 6, 9]), Some(&at(7))).expect("resumable");
        assert_eq!(f.seq, 5);
        assert_eq!(seen, [7].into_iter().collect());
        // Nothing received: from the first queued, or the head when none was.
        assert_eq!(
            floor_of(&saved(vec![5, 6]), None).expect("resumable").0.seq,
            4
        );
        assert_eq!(floor_of(&saved(vec![]), None).expect("resumable").0.seq, 20);
        // Another epoch's offset.
        let other = Offset {
            epoch: Arc::from("0b"),
            seq: 6,
        };
        assert!(floor_of(&saved(vec![5, 6]), Some(&other)).is_none());
    }

    #[test]
    fn pids_are_long_and_distinct() {
        let a = new_pid();
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_pid());
    }
}
