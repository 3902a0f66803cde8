//! Decoding: a dialect's wire event → canonical events, by the compiled plan. The payload
//! is consumed: mapped fields are moved (not copied) into the body, and what no rule maps
//! is carried in the event's metadata.

use super::error::{TranslateError, json_type_name};
use super::framing::WireEvent;
use super::plan::{DefaultValue, Dialect, Direction, FieldOp, MetaRef, Rule, WireName};
use super::vocabulary::Route;
use crate::event::{
    Event, EventId, Meta, Origin, Target, UnmappedFields, UserRef, format_iso_millis, now_millis,
};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::sync::Arc;

/// Who and where an event is decoded for: filled by listeners, empty in the CLI.
/// Borrowed from the connection at each decode, so that an idle connection keeps no
/// second copy of its user, instance and id.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeContext<'a> {
    /// The authenticated user, when known.
    pub user: Option<&'a UserRef>,
    /// This instance's id.
    pub instance: &'a str,
    /// The connection the event arrived on.
    pub connection: &'a str,
}

/// Decoded events: almost always one.
pub type Decoded = SmallVec<[Event; 1]>;

impl Dialect {
    /// Decodes a wire event sent in `dir`. When `None`: in the direction that knows its
    /// name; when both do (a server broadcast named like a client event: Chat Service's
    /// `message:read`, NexusChat's `TYPING`), by the payload's shape: the reading that
    /// succeeds, else the one that leaves fewer fields unmapped, else `up`.
    ///
    /// # Errors
    /// Unknown name, unmatched selectors, a non-object payload, missing or mistyped fields,
    /// values outside a value map.
    pub fn decode(
        &self,
        wire: WireEvent,
        dir: Option<Direction>,
        ctx: &DecodeContext<'_>,
    ) -> Result<Decoded, TranslateError> {
        let no_payload = wire.payload.is_none();
        let mut payload = match wire.payload {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(TranslateError::PayloadNotObject {
                    name: wire.name,
                    found: json_type_name(&other),
                });
            }
        };
        if dir.is_none()
            && let Some(best) = self.decode_by_shape(
                (&wire.name, &wire.trace_id, &wire.id, wire.at),
                &payload,
                no_payload,
                ctx,
            )
        {
            return best;
        }
        let dirs: &[Direction] = match dir {
            Some(Direction::Up) => &[Direction::Up],
            Some(Direction::Down) => &[Direction::Down],
            None => &Direction::ALL,
        };
        for &d in dirs {
            let (found, rule) = self.select_decoder(&wire.name, d, &mut payload);
            if let Some(rule) = rule {
                let meta = self.meta_for(wire.trace_id, wire.id, wire.at, ctx);
                return self.apply(rule, &wire.name, payload, Map::new(), 0, no_payload, meta);
            }
            if found {
                return Err(TranslateError::NoVariant {
                    dialect: self.name.to_string(),
                    reason: self.selector_hint(&wire.name, d),
                    name: wire.name,
                });
            }
        }
        Err(TranslateError::UnknownEvent {
            dialect: self.name.to_string(),
            name: wire.name,
            dir: dir.map_or("up or down", Direction::as_str),
        })
    }

    /// Both readings of a name both directions know, the better by the payload's shape
    /// (see [`Dialect::decode`]); `None` when at most one direction has a rule for it.
    fn decode_by_shape(
        &self,
        (name, trace_id, id, at): (&str, &Option<String>, &Option<String>, Option<i64>),
        payload: &Map<String, Value>,
        no_payload: bool,
        ctx: &DecodeContext<'_>,
    ) -> Option<Result<Decoded, TranslateError>> {
        let mut readings = Vec::with_capacity(2);
        for d in Direction::ALL {
            let mut p = payload.clone();
            if let (_, Some(rule)) = self.select_decoder(name, d, &mut p) {
                readings.push((rule, p));
            }
        }
        if readings.len() < 2 {
            return None;
        }
        let mut best: Option<(usize, Result<Decoded, TranslateError>)> = None;
        for (rule, p) in readings {
            let meta = self.meta_for(trace_id.clone(), id.clone(), at, ctx);
            let r = self.apply(rule, name, p, Map::new(), 0, no_payload, meta);
            let score = match &r {
                Ok(d) => d
                    .iter()
                    .map(|e| e.meta.carried.as_ref().map_or(0, |c| c.fields.len()))
                    .sum(),
                Err(_) => usize::MAX,
            };
            // Up first: a later reading wins only when strictly better.
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                best = Some((score, r));
            }
        }
        best.map(|(_, r)| r)
    }

    /// Decodes `payload` as this dialect's wire form of `canonical` in `dir` (a backend's
    /// Socket.IO ack that carries, say, the created message): `None` when no rule of an
    /// exact wire name maps `canonical` that way.
    ///
    /// # Errors
    /// As [`Dialect::decode`].
    pub fn decode_as(
        &self,
        canonical: &str,
        dir: Direction,
        payload: Value,
        ctx: &DecodeContext<'_>,
    ) -> Option<Result<Decoded, TranslateError>> {
        let wire = self.rules.iter().find_map(|r| match &r.wire {
            WireName::Exact(n) if r.decodes && r.dir == dir && &*r.canonical == canonical => {
                Some(n.to_string())
            }
            _ => None,
        })?;
        Some(self.decode(WireEvent::new(wire, Some(payload)), Some(dir), ctx))
    }

    /// Finds the rule for `name` in `dir`: `(name known in dir, matching rule)`. Template
    /// parameters of the chosen rule are inserted into `payload`.
    fn select_decoder(
        &self,
        name: &str,
        dir: Direction,
        payload: &mut Map<String, Value>,
    ) -> (bool, Option<&Rule>) {
        let mut known = false;
        if let Some(idx) = self.decode_exact[dir.index()].get(name) {
            known = true;
            for &i in idx {
                let r = &self.rules[i];
                if selectors_match(r, payload) {
                    return (true, Some(r));
                }
            }
        }
        for &i in &self.decode_templates[dir.index()] {
            let r = &self.rules[i];
            let WireName::Template(t) = &r.wire else {
                continue;
            };
            let Some(values) = t.matches(name) else {
                continue;
            };
            known = true;
            if selectors_match(r, payload) {
                for (p, v) in t.params.iter().zip(values) {
                    payload.insert(p.to_string(), Value::String(v.to_string()));
                }
                return (true, Some(r));
            }
        }
        (known, None)
    }

    fn selector_hint(&self, name: &str, dir: Direction) -> String {
        let mut hints = Vec::new();
        for r in self.rules.iter().filter(|r| r.decodes && r.dir == dir) {
            let named = match &r.wire {
                WireName::Exact(n) => &**n == name,
                WireName::Template(t) => t.matches(name).is_some(),
            };
            if named && !r.when.is_empty() {
                let w: Vec<String> = r.when.iter().map(|(p, v)| format!("{p}: {v}")).collect();
                hints.push(format!("{{{}}}", w.join(", ")));
            }
        }
        format!("expected fields matching one of {}", hints.join(" | "))
    }

    /// The metadata of an event decoded here now.
    pub(crate) fn meta_for(
        &self,
        trace_id: Option<String>,
        id: Option<String>,
        at: Option<i64>,
        ctx: &DecodeContext<'_>,
    ) -> Meta {
        Meta {
            id: id.map_or_else(EventId::random, EventId::from),
            trace_id: trace_id.map_or_else(EventId::random, EventId::from),
            at: at.unwrap_or_else(now_millis),
            origin: Some(Origin {
                dialect: self.name.clone(),
                instance: ctx.instance.to_string(),
                connection: ctx.connection.to_string(),
            }),
            user: ctx.user.cloned(),
            target: None,
            carried: None,
        }
    }

    /// Runs `rule` on `payload`. `body` already holds the fields of the rule whose bits are
    /// set in `done` (the fast path's top-level fields).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &self,
        rule: &Rule,
        wire_name: &str,
        mut payload: Map<String, Value>,
        mut body: Map<String, Value>,
        done: u64,
        no_payload: bool,
        mut meta: Meta,
    ) -> Result<Decoded, TranslateError> {
        for (p, _) in &rule.when {
            p.take(&mut payload);
        }
        let mut omitted = Vec::new();
        for (p, v) in &rule.consts {
            match p.get(&payload) {
                Some(x) if x == v => {
                    p.take(&mut payload);
                }
                Some(_) => {}
                None => omitted.push(p.to_string()),
            }
        }
        let mut split: Option<(&FieldOp, Vec<Value>)> = None;
        for (i, op) in rule.fields.iter().enumerate() {
            if i < 64 && done & (1 << i) != 0 {
                continue;
            }
            // Same top-level name on both sides: move the key too, no new allocation.
            if op.same_key && !op.split {
                if let Some((k, v)) = payload.remove_entry(op.wire.head()) {
                    let v = map_value(wire_name, op, v)?;
                    body.insert(k, v);
                    continue;
                }
                if op.required {
                    return Err(missing(wire_name, op.wire.head()));
                }
                continue;
            }
            let Some(v) = op.wire.take(&mut payload) else {
                if op.required {
                    return Err(missing(wire_name, &op.wire.to_string()));
                }
                continue;
            };
            if op.split {
                match v {
                    Value::Array(items) => split = Some((op, items)),
                    other => return Err(field_type(wire_name, op, "an array", &other)),
                }
                continue;
            }
            let v = map_value(wire_name, op, v)?;
            op.canon.insert(&mut body, v);
        }
        if rule.passthrough {
            for (k, v) in std::mem::take(&mut payload) {
                body.entry(k).or_insert(v);
            }
        }
        for (p, v) in &rule.sets {
            p.insert(&mut body, v.clone());
        }
        for (p, dv) in &rule.defaults {
            if p.get(&body).is_none()
                && let Some(v) = resolve_default(dv, &meta, &body)
            {
                p.insert(&mut body, v);
            }
        }
        for (field, members) in &rule.lifts {
            lift(&mut body, field, members);
        }
        if !payload.is_empty() || no_payload || !omitted.is_empty() {
            meta.carried = Some(Box::new(UnmappedFields {
                dialect: self.name.clone(),
                wire: match &rule.wire {
                    WireName::Exact(n) => n.clone(),
                    WireName::Template(t) => t.source.clone(),
                },
                fields: payload,
                omitted,
                no_payload,
            }));
        }
        let mut out = Decoded::new();
        match split {
            None => {
                check_required(rule, wire_name, &body)?;
                out.push(finish(rule, body, meta));
            }
            Some((op, items)) => {
                let n = items.len();
                for (i, item) in items.into_iter().enumerate() {
                    let v = map_value(wire_name, op, item)?;
                    let mut b = if i + 1 == n {
                        std::mem::take(&mut body)
                    } else {
                        body.clone()
                    };
                    op.canon.insert(&mut b, v);
                    check_required(rule, wire_name, &b)?;
                    let mut m = meta.clone();
                    if i > 0 {
                        m.id = EventId::random();
                    }
                    out.push(finish(rule, b, m));
                }
            }
        }
        Ok(out)
    }
}

fn selectors_match(rule: &Rule, payload: &Map<String, Value>) -> bool {
    rule.when.iter().all(|(p, v)| p.get(payload) == Some(v))
}

pub(crate) fn map_value(event: &str, op: &FieldOp, v: Value) -> Result<Value, TranslateError> {
    if let Some(map) = &op.values {
        return match map.to_canon(&v) {
            Some(c) => Ok(c.clone()),
            None if map.others_pass => Ok(v),
            None => Err(TranslateError::BadValue {
                event: event.to_string(),
                field: op.wire.to_string(),
                value: short(&v),
                expected: map.wire_values(),
            }),
        };
    }
    if op.ty.accepts(&v) {
        Ok(match &op.first {
            Some(first) => first.wrap(v),
            None => v,
        })
    } else {
        Err(field_type(event, op, &op.ty.to_string(), &v))
    }
}

fn field_type(event: &str, op: &FieldOp, expected: &str, found: &Value) -> TranslateError {
    TranslateError::FieldType {
        event: event.to_string(),
        field: op.wire.to_string(),
        expected: expected.to_string(),
        found: json_type_name(found),
    }
}

fn missing(event: &str, field: &str) -> TranslateError {
    TranslateError::MissingField {
        event: event.to_string(),
        field: field.to_string(),
    }
}

fn check_required(
    rule: &Rule,
    wire_name: &str,
    body: &Map<String, Value>,
) -> Result<(), TranslateError> {
    for (p, wire_field) in &rule.required {
        match p.get(body) {
            None | Some(Value::Null) => return Err(missing(wire_name, wire_field)),
            Some(_) => {}
        }
    }
    Ok(())
}

/// An object value of `field` gives the field its member of the same name, and the
/// event its `members` where it has none of its own (a browser's ICE candidate object
/// becomes `candidate`, `sdpMid`, `sdpMLineIndex`); other values stay.
fn lift(body: &mut Map<String, Value>, field: &str, members: &[Arc<str>]) {
    let Some(Value::Object(obj)) = body.get_mut(field) else {
        return;
    };
    let mut obj = std::mem::take(obj);
    for m in members {
        if let Some(v) = obj.remove(&**m) {
            body.entry(m.to_string()).or_insert(v);
        }
    }
    body.insert(field.to_string(), obj.remove(field).unwrap_or(Value::Null));
}

fn finish(rule: &Rule, body: Map<String, Value>, mut meta: Meta) -> Event {
    meta.target = match &rule.route {
        Some(Route::Room(f)) => body.get(&**f).and_then(id_string).map(Target::Room),
        Some(Route::User(f)) => body.get(&**f).and_then(id_string).map(Target::User),
        None => None,
    };
    Event {
        name: rule.canonical.clone(),
        body,
        meta,
    }
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The value of a default, given the event's metadata (`None` when it names absent metadata).
pub(crate) fn resolve_default(
    dv: &DefaultValue,
    meta: &Meta,
    body: &Map<String, Value>,
) -> Option<Value> {
    match dv {
        DefaultValue::Const(v) => Some(v.clone()),
        DefaultValue::Field(p) => p.get(body).cloned(),
        DefaultValue::Meta(m) => match m {
            MetaRef::Id => Some(Value::String(meta.id.to_string())),
            MetaRef::TraceId => Some(Value::String(meta.trace_id.to_string())),
            MetaRef::At => Some(Value::String(format_iso_millis(meta.at))),
            MetaRef::AtMillis => Some(Value::from(meta.at)),
            MetaRef::UserId => meta.user.as_ref().map(|u| Value::String(u.id.clone())),
            MetaRef::UserName => meta
                .user
                .as_ref()
                .and_then(|u| u.name.clone())
                .map(Value::String),
            MetaRef::UserImage => meta
                .user
                .as_ref()
                .and_then(|u| u.image.clone())
                .map(Value::String),
        },
    }
}

/// A value as JSON text, cut to 40 characters, for error messages.
pub(crate) fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= 40 {
        return s;
    }
    let mut end = 40;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
