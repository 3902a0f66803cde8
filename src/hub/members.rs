//! Rooms on this instance: a connection joining or leaving one (the bus told when the
//! first member comes and the last goes), and the local members of each, as the fan-out
//! reads them: the connections
//! themselves, in a small vector. Most rooms are a user's personal room with one
//! connection, held without a heap allocation (a `HashSet` of ids took 48 bytes inline
//! plus a 64-byte table, and every delivery then looked each id up in the connection
//! map). Removal scans the room: a leave from a room of 10,000 compares 10,000 pointers.

use super::conn::{Conn, ConnId};
use super::{HubState, write};
use crate::bus::RoomKey;
use smallvec::SmallVec;
use std::sync::Arc;

/// The connections in one room on this instance.
#[derive(Default)]
pub struct Members(SmallVec<[Arc<Conn>; 1]>);

impl Members {
    /// Adds `conn`; the caller knows it was not a member (its own room set said so).
    pub fn add(&mut self, conn: Arc<Conn>) {
        self.0.push(conn);
    }

    /// Removes the connection `id`; `false` if it was not a member.
    pub fn remove(&mut self, id: ConnId) -> bool {
        match self.0.iter().position(|c| c.id == id) {
            Some(at) => {
                self.0.swap_remove(at);
                true
            }
            None => false,
        }
    }

    /// The members, in no particular order.
    pub fn iter(&self) -> std::slice::Iter<'_, Arc<Conn>> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the room is empty here.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl HubState {
    pub(super) fn join(&self, conn: &Arc<Conn>, room: RoomKey) -> bool {
        if !conn.rooms().insert(room.clone()) {
            return false;
        }
        let first = {
            let mut rooms = write(&self.rooms);
            let members = rooms.entry(room.clone()).or_default();
            members.add(conn.clone());
            members.len() == 1
        };
        if first {
            self.bus.interest(&room, true);
        }
        true
    }

    pub(super) fn leave(&self, conn: &Arc<Conn>, room: &RoomKey) -> bool {
        conn.rooms().remove(room);
        let last = {
            let mut rooms = write(&self.rooms);
            match rooms.get_mut(room) {
                Some(members) => {
                    let was = members.remove(conn.id);
                    if members.is_empty() {
                        rooms.remove(room);
                        was
                    } else {
                        return was;
                    }
                }
                None => return false,
            }
        };
        if last {
            self.bus.interest(room, false);
        }
        last
    }
}
