//! Session control for the server API, on every instance at once: a user's every
//! connection told (`system.disconnect` in its dialect) and closed, through the bus to
//! the user's own room; and revocations, a user or a token id (`jti`) refused at
//! connect until the revocation expires, kept in the shared store.

use super::{ErrorCode, Hub, Refusal, StoreError};
use crate::bus::{Audience, RoomKey, Then};
use crate::event::Event;
use serde_json::{Map, json};
use std::time::Duration;

/// What is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// Every token of a user.
    User,
    /// One token, by its `jti`.
    Token,
}

impl Revoked {
    /// The store key's kind.
    pub(super) fn kind(self) -> &'static str {
        match self {
            Revoked::User => "user",
            Revoked::Token => "jti",
        }
    }
}

impl Hub {
    /// Tells every connection of `user`, on every instance, that the server disconnects
    /// it (`reason`; whether it may `reconnect`), then closes them.
    ///
    /// # Errors
    /// The bus refused the delivery (it is down and its queue full).
    pub fn disconnect_user(
        &self,
        user: &str,
        reason: &str,
        reconnect: bool,
    ) -> Result<(), Refusal> {
        let mut body = Map::new();
        body.insert("userId".into(), json!(user));
        body.insert("reason".into(), json!(reason));
        body.insert("notice".into(), json!(reason));
        body.insert("reconnect".into(), json!(reconnect));
        let ev = Event::new("system.disconnect", body);
        let mut audience = Audience::room(RoomKey::user(user));
        audience.then = Some(Then::Disconnect { reconnect });
        self.state.publish_with(ev, audience, false).map(|_| ())
    }

    /// Removes `user` from conversation `room` on every instance: the user's connections
    /// are told (`conversation.removed`) and leave it, the room's members hear of it
    /// (`participant.removed`, exported like any fact), and the shared record of the
    /// room's members forgets the user.
    ///
    /// # Errors
    /// The bus refused a delivery, or the store is unreachable.
    pub async fn remove_from_room(&self, room: &str, user: &str) -> Result<(), Refusal> {
        let mut body = Map::new();
        body.insert("conversationId".into(), json!(room));
        let told = Event::new("conversation.removed", body);
        let mut audience = Audience::room(RoomKey::user(user));
        audience.then = Some(Then::Leave {
            room: room.into(),
            user: user.into(),
        });
        // Not exported (the fact for the master service is `participant.removed`).
        let _ = self.state.publish_with(told, audience, false)?;
        let mut body = Map::new();
        body.insert("conversationId".into(), json!(room));
        body.insert("userId".into(), json!(user));
        let fact = Event::new("participant.removed", body);
        self.state
            .commit(fact, Audience::room(RoomKey::conversation(room)))
            .await?;
        self.state.store.forget_user_in_room(room, user).await?;
        Ok(())
    }

    /// Refuses `id` (a user, or a token's `jti`) at connect for `ttl`.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn revoke(&self, what: Revoked, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.state.store.revoke(what.kind(), id, ttl).await
    }

    /// Refuses a connection whose user or token is revoked (`unauthorized`); a store that
    /// cannot answer does not refuse (presence and the bus would say it is down).
    pub(crate) async fn check_revoked(&self, user: &str, jti: Option<&str>) -> Result<(), Refusal> {
        match self.state.store.is_revoked(user, jti).await {
            Ok(false) => Ok(()),
            Ok(true) => Err(Refusal::new(
                ErrorCode::Unauthorized,
                "this user or token is revoked",
            )),
            Err(e) => {
                tracing::warn!(%user, "revocations not checked: {e}");
                Ok(())
            }
        }
    }
}
