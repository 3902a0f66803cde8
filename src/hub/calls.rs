//! WebRTC signaling: signals relayed to the target user's sessions, the busy state
//! (`user:call:{id}`, 300 s by default) and the busy rejection.

use super::{Ack, Conn, ErrorCode, HubState, Refusal, id_text};
use crate::bus::{Audience, RoomKey};
use crate::event::Event;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Any `call.*` intent or signal from a client.
pub(super) async fn signal(inner: &HubState, conn: &Arc<Conn>, ev: &Event) -> Result<Ack, Refusal> {
    let target = id_text(ev.field("targetId"))
        .ok_or_else(|| Refusal::new(ErrorCode::BadEvent, "targetId is missing"))?;
    if target == conn.user.id {
        return Err(Refusal::new(
            ErrorCode::BadEvent,
            "a call needs another user",
        ));
    }
    let me = conn.user.id.as_str();
    let store = &inner.store;
    let (relay_as, extra): (&str, Option<(&str, Value)>) = match &*ev.name {
        "call.offer" | "call.initiate" => {
            if store.is_busy(&target).await? {
                return Ok(reject_busy(inner, conn, ev, &target));
            }
            store.set_busy(me, inner.settings.call_busy_ttl).await?;
            let as_name = if &*ev.name == "call.initiate" {
                "call.incoming"
            } else {
                "call.offer"
            };
            (as_name, None)
        }
        "call.answer" => {
            store.set_busy(me, inner.settings.call_busy_ttl).await?;
            ("call.answer", None)
        }
        "call.end" | "call.reject" | "call.cancel" => {
            store.clear_busy(me).await?;
            store.clear_busy(&target).await?;
            let reason = match &*ev.name {
                "call.reject" => "rejected",
                "call.cancel" => "cancelled",
                _ => "ended",
            };
            ("call.end", Some(("reason", json!(reason))))
        }
        "call.ice_candidate" | "call.rollback" => (&*ev.name, None),
        other => {
            return Err(Refusal::new(
                ErrorCode::UnknownEvent,
                format!("`{other}` is not a call signal a client sends"),
            ));
        }
    };
    let mut body: Map<String, Value> = ev.body.clone();
    body.insert("callerId".into(), json!(me));
    if let Some(n) = &conn.user.name {
        body.insert("userName".into(), json!(n));
    }
    if let Some((k, v)) = extra {
        body.entry(k).or_insert(v);
    }
    let relayed = inner.fact(relay_as, body, Some(ev), conn);
    inner
        .commit(relayed, Audience::room(RoomKey::user(&target)))
        .await?;
    Ok(json!({"success": true, "targetId": target}))
}

/// `call.rejected {callerId, targetId, status: busy, reason}` to the caller.
fn reject_busy(inner: &HubState, conn: &Arc<Conn>, ev: &Event, target: &str) -> Ack {
    let mut body = Map::new();
    body.insert("callerId".into(), json!(conn.user.id));
    body.insert("targetId".into(), json!(target));
    body.insert("status".into(), json!("busy"));
    let reason = format!("user {target} is busy in another call");
    body.insert("reason".into(), json!(reason));
    let rejected = inner.fact("call.rejected", body, Some(ev), conn);
    inner.send_event(conn, &rejected);
    json!({"success": false, "status": "busy", "code": "busy", "message": reason})
}
