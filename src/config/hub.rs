//! `[hub]` and `[privacy]`: rooms, messages, presence and calls, and what personal data
//! the hub keeps.

use super::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who may join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Membership {
    /// Any authenticated user.
    Open,
    /// Only the rooms in the token's `rooms` claim.
    Claims,
}

/// Rooms, messages, presence and calls.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct HubConfig {
    /// Who may join a room: "open" (any authenticated user) or "claims" (only the rooms
    /// in the token's `rooms` claim). (SWITCHBOARD_MEMBERSHIP)
    pub membership: Membership,
    /// A repeated clientRef/tempId from the same user within this window is not
    /// broadcast again; the sender gets the first confirmation again (or, in a dialect
    /// whose mapping says `duplicates = "refused"`, Clerk's, its `message:failed`).
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub dedup_window: Duration,
    /// In a dialect whose mapping says `dedupe_content = true` (Clerk's spec keys a send
    /// by `${clientId}:${tempId || content}`), a send without a tempId whose content the
    /// same user sent within this window is a duplicate too.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub content_dedup_window: Duration,
    /// How long a call offer marks the caller busy (the specs' user:call:{id} TTL).
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub call_busy_ttl: Duration,
    /// How long presence lives without activity (PRESENCE_TTL_SECONDS). A connection
    /// whose instance stops vouching for it (the instance died) expires after it, and
    /// its user goes offline to its rooms within this and a third of it.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub presence_ttl: Duration,
    /// Messages remembered for edits, deletes, reactions and read receipts (per
    /// instance; over it, the oldest are forgotten: acting on one is `not_found`).
    pub message_index: usize,
    /// How long a message is remembered for them.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub message_ttl: Duration,
    /// A fact a fronted backend sends to several sessions (a message to a room's
    /// members, on any instance) is exported once: the first session claims it, and the
    /// claim is remembered this long, so that the copies are recognised.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub export_window: Duration,
    /// The window for a fact with neither an id nor a time of its own (a presence
    /// change): the copies of one broadcast arrive within it, and the same fact after it
    /// is a new one (the user came online again).
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub export_echo_window: Duration,
    /// Export claims remembered at most, per instance with the local bus (Redis keeps
    /// them itself, each for `export_window`). Over it, the claims nearest their end are
    /// forgotten: a copy arriving after its claim was forgotten is exported again, with
    /// the same webhook id (receivers can tell).
    pub export_claims: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            membership: Membership::Open,
            dedup_window: Duration::from_secs(300),
            content_dedup_window: Duration::from_secs(5),
            call_busy_ttl: Duration::from_secs(300),
            presence_ttl: Duration::from_secs(60),
            message_index: 100_000,
            message_ttl: Duration::from_secs(24 * 3600),
            export_window: Duration::from_secs(600),
            export_echo_window: Duration::from_secs(5),
            export_claims: 100_000,
        }
    }
}

impl HubConfig {
    pub(super) fn check(&self, p: &mut Vec<String>) {
        if self.message_index == 0 || self.export_claims == 0 {
            p.push("hub.message_index and hub.export_claims must be at least 1".into());
        }
        for (key, d) in [
            ("hub.presence_ttl", self.presence_ttl),
            ("hub.call_busy_ttl", self.call_busy_ttl),
            ("hub.export_window", self.export_window),
            ("hub.export_echo_window", self.export_echo_window),
        ] {
            if d.is_zero() {
                p.push(format!("{key} must be longer than 0s"));
            }
        }
    }
}

/// What personal data leaves the gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct PrivacyConfig {
    /// Clients' IP addresses and User-Agents in presence snapshots (`sockets[]` of
    /// `presence:update`) and in `user.online`/`user.offline` webhooks. Off: they are not
    /// recorded at all, in memory or in Redis.
    pub client_info: bool,
}
