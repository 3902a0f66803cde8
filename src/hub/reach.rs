//! Audiences as each dialect's own server draws them: a mapping rule's `reach` widens a
//! delivery for that dialect's connections (NexusChat's `TYPING` to the typist too,
//! Salala's `userStatusChanged` to every client, Phase 10's `messages:new` to every
//! participant's personal room), and the hub names the participants it reaches
//! (`recipients`) where such a rule asks for them. Only the dialects this instance serves
//! are considered (the instances of one fleet serve the same dialects), and of those
//! reaching beyond rooms only the ones with a connection somewhere in the fleet (here, or
//! listening on the dialect's Redis channel, counted every [`FLEET_CHECK`]): a fleet
//! with no Phase 10 client pays nothing for Phase 10's audiences.

use super::HubState;
use crate::bus::{Delivery, RoomKey, Wider};
use crate::dialect::Registry;
use crate::dialect::plan::Reach;
use crate::event::Event;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

impl HubState {
    /// Adds to `d`'s audience what the served dialects' rules for its event reach.
    /// `everyone` widens news only (facts the hub exports): a presence snapshot that is
    /// no transition (a heartbeat, a second device) stays with the user's own sessions.
    pub(super) fn widen(&self, d: &mut Delivery, news: bool) {
        if d.audience.everyone {
            return;
        }
        let reg = self.registry();
        for (dialect, reach) in self.served_reach(&reg, &d.event.name) {
            let beyond = (reach.everyone || reach.users.is_some()) && self.active(dialect);
            let everyone = reach.everyone && news && beyond;
            let users = match reach.users.as_deref().filter(|_| beyond) {
                Some(f) => d.event.body.get(f).map(user_ids).unwrap_or_default(),
                None => Default::default(),
            };
            if !reach.sender && !everyone && users.is_empty() {
                continue;
            }
            d.audience.wider.push(Wider {
                dialect: dialect.clone(),
                sender: reach.sender,
                everyone,
                users,
            });
        }
    }

    /// Names the users a fact about a message in `room` reaches, in the field a served
    /// dialect's rule reaches users by (Phase 10's `recipients`: every participant,
    /// the sender included), unless the fact names them already.
    pub(super) async fn name_recipients(&self, ev: &mut Event, room: &str, sender: &str) {
        let Some(field) = self.reach_field(&ev.name) else {
            return;
        };
        if ev.body.contains_key(&*field) {
            return;
        }
        let users = self.room_users(room, sender).await;
        ev.body.insert(field.to_string(), json!(users));
    }

    /// The canonical field a served dialect's rule for `event` reaches users by
    /// (Phase 10's `recipients`), when one does.
    fn reach_field(&self, event: &str) -> Option<Arc<str>> {
        let reg = self.registry();
        self.served_reach(&reg, event)
            .filter(|(d, _)| self.active(d))
            .find_map(|(_, r)| r.users.clone())
    }

    /// The `reach` of `event`'s rules in the dialects this instance serves.
    fn served_reach<'r>(
        &'r self,
        reg: &'r Registry,
        event: &str,
    ) -> impl Iterator<Item = &'r (Arc<str>, Reach)> {
        reg.reach(event)
            .iter()
            .filter(|(d, _)| self.served.iter().any(|s| s == d))
    }

    /// Whether `dialect` has a connection in the fleet: here, or (over Redis pub/sub)
    /// on an instance listening on its channel when last counted; over another shared
    /// bus, assumed.
    pub(super) fn active(&self, dialect: &Arc<str>) -> bool {
        if super::read(&self.rooms).contains_key(&RoomKey::Dialect(dialect.clone())) {
            return true;
        }
        match self.bus.kind() {
            "local" => false,
            "redis" => self.fleet_dialects.has(dialect) || !self.store.is_shared(),
            _ => true,
        }
    }

    /// The users of conversation `room`: its members here and, with the shared store,
    /// on every instance, with `sender`; sorted.
    async fn room_users(&self, room: &str, sender: &str) -> Vec<String> {
        let mut users: BTreeSet<String> = super::read(&self.rooms)
            .get(&RoomKey::conversation(room))
            .map(|m| m.iter().map(|c| c.user.id.clone()).collect())
            .unwrap_or_default();
        if self.store.is_shared() {
            let remote = self.remote_members.of(room, &self.store).await;
            users.extend(remote.iter().cloned());
        }
        users.insert(sender.to_string());
        users.into_iter().collect()
    }
}

/// How long the members other instances recorded in a room are taken as they were read.
pub(super) const MEMBERS_FRESH: Duration = Duration::from_secs(1);

/// The most rooms whose members are remembered; past it the older half is forgotten.
const MEMBERS_ROOMS: usize = 10_000;

/// The users each room's members on every instance are, as last read from the shared
/// store: one read per room per [`MEMBERS_FRESH`], however many messages the room has.
#[derive(Default)]
pub(super) struct RemoteMembers(Mutex<Members>);

type Members = HashMap<String, (Instant, Arc<[String]>)>;

impl RemoteMembers {
    async fn of(&self, room: &str, store: &super::Store) -> Arc<[String]> {
        let now = Instant::now();
        if let Some((at, users)) = self.lock().get(room)
            && now.duration_since(*at) < MEMBERS_FRESH
        {
            return users.clone();
        }
        let users: Arc<[String]> = match store.room_members_of(room).await {
            Ok(recorded) => recorded.into_iter().map(|(_, u)| u).collect(),
            Err(e) => {
                tracing::warn!(%room, "room members not read (recipients are this instance's): {e}");
                return Arc::from(Vec::new());
            }
        };
        let mut map = self.lock();
        if map.len() >= MEMBERS_ROOMS {
            let mut ats: Vec<Instant> = map.values().map(|(at, _)| *at).collect();
            ats.sort();
            let cut = ats[ats.len() / 2];
            map.retain(|_, (at, _)| *at > cut);
        }
        map.insert(room.to_string(), (now, users.clone()));
        users
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Members> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How often the dialects' channels are counted (a Phase 10 client's first connection
/// in the fleet is reached beyond its rooms from the next count on).
pub(super) const FLEET_CHECK: Duration = Duration::from_secs(1);

/// The dialects some instance listens for on their Redis channel, as last counted.
#[derive(Default)]
pub(super) struct FleetDialects(std::sync::RwLock<Vec<Arc<str>>>);

impl FleetDialects {
    fn has(&self, dialect: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|d| **d == *dialect)
    }

    fn set(&self, active: Vec<Arc<str>>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = active;
    }
}

/// Counts, every [`FLEET_CHECK`], the listeners of the served dialects' channels that
/// reach beyond rooms (`PUBSUB NUMSUB`), until the hub is gone.
pub(super) async fn watch_fleet(
    inner: std::sync::Weak<HubState>,
    mut redis: redis::aio::ConnectionManager,
) {
    let mut tick = tokio::time::interval(FLEET_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = inner.upgrade() else { return };
        let reg = state.registry();
        let dialects: Vec<Arc<str>> = state
            .served
            .iter()
            .filter(|d| reg.reaches_beyond_rooms(d))
            .cloned()
            .collect();
        drop(state);
        if dialects.is_empty() {
            continue;
        }
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB");
        for d in &dialects {
            cmd.arg(crate::bus::wire::channel(&RoomKey::Dialect(d.clone())));
        }
        let counts: Result<Vec<(String, usize)>, _> = cmd.query_async(&mut redis).await;
        let Some(state) = inner.upgrade() else { return };
        match counts {
            Ok(counts) => state.fleet_dialects.set(
                dialects
                    .into_iter()
                    .zip(counts)
                    .filter(|(_, (_, n))| *n > 0)
                    .map(|(d, _)| d)
                    .collect(),
            ),
            // Unknown: assume every dialect is there rather than miss a client.
            Err(e) => {
                tracing::debug!("dialect channels not counted: {e}");
                state.fleet_dialects.set(dialects);
            }
        }
    }
}

/// User ids in a field: a list of ids, or one id.
fn user_ids(v: &Value) -> smallvec::SmallVec<[Arc<str>; 2]> {
    let one = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(Arc::from(s.as_str())),
        Value::Number(n) => Some(Arc::from(n.to_string())),
        _ => None,
    };
    match v {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}
