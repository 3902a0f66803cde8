//! The client's ack payload made from the backend's answer, in the shape the hub's acks
//! have (`{success: true, …canonical fields}` or `{success: false, code, error}`): from
//! a Socket.IO ack (its first argument read as the fact the intent produces, by the
//! backend's mapping), or from the backend event that carries the request's trace id.

use crate::dialect::{DecodeContext, Dialect, Direction};
use crate::event::Event;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Facts that answer an intent with a refusal.
const FAILURES: &[&str] = &["session.error", "message.failed", "call.rejected"];

/// The fact a backend's ack carries, per intent, unless configured otherwise.
pub fn default_answers() -> BTreeMap<String, String> {
    [
        ("message.send", "message.created"),
        ("message.edit", "message.updated"),
        ("message.delete", "message.deleted"),
        ("room.join", "room.joined"),
        ("reaction.add", "reaction.added"),
        ("reaction.remove", "reaction.removed"),
        ("message.mark_read", "message.read"),
        ("conversation.mark_read", "conversation.read"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

/// The ack for a backend event answering the client's request.
pub fn from_event(ev: &Event) -> Value {
    if FAILURES.contains(&&*ev.name) {
        let code = ev
            .str_field("code")
            .or_else(|| ev.str_field("status"))
            .unwrap_or(&ev.name);
        let error = ev
            .str_field("error")
            .or_else(|| ev.str_field("reason"))
            .unwrap_or("refused by the backend");
        return json!({"success": false, "code": code, "error": error});
    }
    let mut out = Map::new();
    out.insert("success".into(), json!(true));
    out.extend(ev.body.clone());
    Value::Object(out)
}

/// The ack for the backend's Socket.IO ack `args` (a JSON array) to `intent`.
pub fn from_ack(
    backend: &Dialect,
    intent: &str,
    answers: &BTreeMap<String, String>,
    args: &str,
    ctx: &DecodeContext<'_>,
) -> Value {
    let first = match serde_json::from_str::<Value>(args) {
        Ok(Value::Array(mut a)) if !a.is_empty() => a.swap_remove(0),
        Ok(Value::Array(_)) => return json!({"success": true}),
        _ => {
            return json!({"success": false, "code": "bad_event", "error": "the backend's ack is not a JSON array"});
        }
    };
    let Value::Object(obj) = first else {
        return json!({"success": true, "result": first});
    };
    if let Some(error) = failure(&obj) {
        return json!({
            "success": false,
            "code": "upstream_error",
            "error": error,
            "upstream": Value::Object(obj),
        });
    }
    if let Some(fact) = answers.get(intent)
        && let Some(Ok(evs)) =
            backend.decode_as(fact, Direction::Down, Value::Object(obj.clone()), ctx)
        && let Some(ev) = evs.first()
    {
        return from_event(ev);
    }
    let mut out = Map::new();
    out.insert("success".into(), json!(true));
    out.extend(obj);
    Value::Object(out)
}

/// The error an ack object reports, if it reports one (`success: false`,
/// `status: "error"`, `ok: false`, or an `error` with no `success: true`).
fn failure(obj: &Map<String, Value>) -> Option<String> {
    let said_no = obj.get("success") == Some(&json!(false))
        || obj.get("ok") == Some(&json!(false))
        || obj.get("status").and_then(Value::as_str) == Some("error");
    let has_error =
        obj.get("error").is_some_and(|e| !e.is_null()) && obj.get("success") != Some(&json!(true));
    if !(said_no || has_error) {
        return None;
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| v.to_string(), str::to_owned),
        other => other.to_string(),
    };
    Some(
        obj.get("error")
            .or_else(|| obj.get("message"))
            .map_or_else(|| "refused by the backend".to_string(), text),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Registry;

    #[test]
    fn a_salala_ack_carrying_the_message_reads_as_the_created_message() {
        let reg = Registry::embedded().expect("mappings");
        let salala = reg.dialect("salala").expect("salala");
        let args = r#"[{"id":"m1","conversationId":"c1","senderId":"u1","content":"hi","createdAt":"2026-01-01T00:00:00.000Z"}]"#;
        let ack = from_ack(
            salala,
            "message.send",
            &default_answers(),
            args,
            &DecodeContext::default(),
        );
        assert_eq!(ack["success"], true);
        assert_eq!(ack["messageId"], "m1", "{ack}");
        assert_eq!(ack["conversationId"], "c1");
    }

    #[test]
    fn refusals_and_other_shapes() {
        let reg = Registry::embedded().expect("mappings");
        let d = reg.dialect("salala").expect("salala");
        let ctx = DecodeContext::default();
        let a = |args: &str| from_ack(d, "room.join", &BTreeMap::new(), args, &ctx);
        let no = a(r#"[{"status":"error","message":"not a participant"}]"#);
        assert_eq!(no["success"], false);
        assert_eq!(no["error"], "not a participant");
        assert_eq!(a(r#"[{"error":{"message":"x"}}]"#)["error"], "x");
        assert_eq!(a(r#"[true]"#), json!({"success": true, "result": true}));
        assert_eq!(a("[]"), json!({"success": true}));
        assert_eq!(
            a(r#"[{"joined":true}]"#),
            json!({"success": true, "joined": true})
        );
        let mut ev = Event::new("message.failed", Map::new());
        ev.body.insert("error".into(), json!("too long"));
        assert_eq!(from_event(&ev)["success"], false);
        assert_eq!(from_event(&ev)["error"], "too long");
    }
}
