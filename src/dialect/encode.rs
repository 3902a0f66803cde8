//! Encoding: a canonical event → a dialect's wire event, by the compiled plan. The payload
//! is assembled as a `Tree` that borrows the event's values (the hub encodes one event for
//! many dialects) or, for a caller that is done with the event, moves them out of it; it
//! is written as JSON directly. Fields carried from the same dialect and wire event are
//! restored.

use super::decode::{resolve_default, short};
use super::error::TranslateError;
use super::plan::{Dialect, Direction, FieldOp, Rule, WireName};
use super::tree::Tree;
use crate::event::{Event, Meta, UnmappedFields};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A wire event as encoding makes it: its name and payload (`None`: a frame without
/// payload), borrowing from the plan and the event (a [`WireEvent`](super::WireEvent)
/// that owns nothing).
#[derive(Debug, Clone)]
pub struct WireEventRef<'a> {
    /// Wire name, borrowed from the plan unless it carries parameters.
    pub name: Cow<'a, str>,
    /// The payload, borrowing from the plan and the event.
    pub payload: Option<Tree<'a>>,
}

impl WireEventRef<'_> {
    /// The payload as an owned JSON value.
    pub fn payload_value(self) -> Option<Value> {
        self.payload.map(Tree::into_value)
    }
}

/// The event body, shared (values are borrowed) or owned (values are moved out).
enum Body<'a, 'b> {
    Shared(&'a Map<String, Value>),
    Owned(&'b mut Map<String, Value>),
}

impl Dialect {
    /// Encodes `ev` for sending in `dir` (`down` to a client, `up` to a backend).
    ///
    /// # Errors
    /// The dialect has no rule for the event (or for its selector values), a value is
    /// outside a value map, or a name parameter is missing.
    pub fn encode<'a>(
        &'a self,
        ev: &'a Event,
        dir: Direction,
    ) -> Result<WireEventRef<'a>, TranslateError> {
        let rule = self.select_encoder(ev, dir)?;
        let carried = self.carried_for(rule, ev.meta.carried.as_deref());
        let payload = carried
            .map(|c| Tree::borrowing(&c.fields))
            .unwrap_or_default();
        self.build(
            rule,
            &ev.name,
            &ev.meta,
            carried,
            payload,
            Body::Shared(&ev.body),
        )
    }

    /// Encodes `ev` for `dir` and writes it as one frame of this dialect's framing (JSON
    /// text) to `out`.
    ///
    /// # Errors
    /// As [`Dialect::encode`]; `out` is then left as it was.
    pub fn encode_frame(
        &self,
        ev: &Event,
        dir: Direction,
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        self.encode_frame_named(ev, dir, out).map(drop)
    }

    /// [`Dialect::encode_frame`], giving the wire name written: through the rule
    /// compiled for writing when it has one (see `emit.rs`), else the payload tree.
    ///
    /// # Errors
    /// As [`Dialect::encode`]; `out` is then left as it was.
    pub fn encode_frame_named<'a>(
        &'a self,
        ev: &'a Event,
        dir: Direction,
        out: &mut Vec<u8>,
    ) -> Result<Cow<'a, str>, TranslateError> {
        let rule = self.select_encoder(ev, dir)?;
        if let Some(emit) = &rule.emit
            && self.carried_for(rule, ev.meta.carried.as_deref()).is_none()
        {
            let start = out.len();
            if emit.write(rule, self.framing, ev, out).is_some() {
                return Ok(Cow::Borrowed(rule.wire.pattern()));
            }
            out.truncate(start);
        }
        let w = self.encode(ev, dir)?;
        super::framing::write_frame(self.framing, &w.name, w.payload.as_ref(), &ev.meta, out);
        Ok(w.name)
    }

    /// [`Dialect::encode_frame`] always through the payload tree: the definition the
    /// compiled rules are checked against.
    ///
    /// # Errors
    /// As [`Dialect::encode`]; `out` is then left as it was.
    pub fn encode_frame_tree(
        &self,
        ev: &Event,
        dir: Direction,
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        let w = self.encode(ev, dir)?;
        super::framing::write_frame(self.framing, &w.name, w.payload.as_ref(), &ev.meta, out);
        Ok(())
    }

    /// Like [`Dialect::encode`], but moves values out of `ev.body` (and its carried
    /// fields) instead of cloning them: for callers that are done with the event.
    ///
    /// # Errors
    /// As [`Dialect::encode`].
    pub fn encode_consuming(
        &self,
        ev: &mut Event,
        dir: Direction,
    ) -> Result<WireEventRef<'_>, TranslateError> {
        let rule = self.select_encoder(ev, dir)?;
        let Event { name, body, meta } = ev;
        let payload = match meta.carried.as_deref_mut() {
            Some(c) if self.carried_for(rule, Some(c)).is_some() => {
                Tree::owning(std::mem::take(&mut c.fields))
            }
            _ => Tree::default(),
        };
        let carried = self.carried_for(rule, meta.carried.as_deref());
        self.build(rule, name, meta, carried, payload, Body::Owned(body))
    }

    /// The carried fields, when they belong to this dialect and this rule's wire event.
    fn carried_for<'c>(
        &self,
        rule: &Rule,
        c: Option<&'c UnmappedFields>,
    ) -> Option<&'c UnmappedFields> {
        c.filter(|c| c.dialect == self.name && *c.wire == *rule.wire.pattern())
    }

    fn build<'a>(
        &'a self,
        rule: &'a Rule,
        canonical: &str,
        meta: &Meta,
        carried: Option<&UnmappedFields>,
        mut payload: Tree<'a>,
        mut body: Body<'a, '_>,
    ) -> Result<WireEventRef<'a>, TranslateError> {
        for op in &rule.fields {
            let found: Option<Cow<'a, Value>> = match &mut body {
                Body::Shared(b) => op.canon.get(b).map(Cow::Borrowed),
                Body::Owned(b) if op.last_use => op.canon.take(b).map(Cow::Owned),
                Body::Owned(b) => op.canon.get(b).cloned().map(Cow::Owned),
            };
            let v = match found {
                Some(v) => v,
                None => {
                    let dv = rule.defaults.iter().find(|(p, _)| *p == op.canon);
                    let view: &Map<String, Value> = match &body {
                        Body::Shared(b) => b,
                        Body::Owned(b) => b,
                    };
                    match dv.and_then(|(_, dv)| resolve_default(dv, meta, view)) {
                        Some(v) => Cow::Owned(v),
                        None => continue,
                    }
                }
            };
            let v = match wire_value(op, v) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(v) => {
                    return Err(TranslateError::BadValue {
                        event: canonical.to_string(),
                        field: op.canon.to_string(),
                        value: short(&v),
                        expected: op
                            .values
                            .as_ref()
                            .map(|m| m.canon_values())
                            .unwrap_or_default(),
                    });
                }
            };
            payload.insert(&op.wire, v);
        }
        // Selectors and constants after the fields: the wire order of the specs.
        for (p, v) in &rule.consts {
            if carried.is_some_and(|c| c.omitted.iter().any(|o| p.is(o))) {
                continue;
            }
            if !payload.has(p) {
                payload.insert(p, Cow::Borrowed(v));
            }
        }
        for (p, v) in &rule.when {
            payload.insert(p, Cow::Borrowed(v));
        }
        if rule.passthrough {
            let passes = |k: &str| !rule.canon_heads.iter().any(|h| **h == *k);
            match body {
                Body::Shared(b) => {
                    for (k, v) in b.iter().filter(|(k, _)| passes(k)) {
                        payload.insert_key_if_absent(Cow::Borrowed(k.as_str()), Cow::Borrowed(v));
                    }
                }
                Body::Owned(b) => {
                    for (k, v) in std::mem::take(b).into_iter().filter(|(k, _)| passes(k)) {
                        payload.insert_key_if_absent(Cow::Owned(k), Cow::Owned(v));
                    }
                }
            }
            // What the origin dialect sent that the vocabulary has no field for
            // (Chat Service's `participants` of `conversation:new`) reaches a passthrough
            // dialect (the webhooks) under its own name too.
            if carried.is_none()
                && let Some(c) = meta.carried.as_deref()
            {
                for (k, v) in c.fields.iter().filter(|(k, _)| passes(k)) {
                    payload.insert_key_if_absent(Cow::Owned(k.clone()), Cow::Owned(v.clone()));
                }
            }
        }
        let name = match &rule.wire {
            WireName::Exact(n) => Cow::Borrowed(&**n),
            WireName::Template(t) => {
                let mut values = Vec::with_capacity(t.params.len());
                for p in &t.params {
                    let v = match payload.remove(p) {
                        Some(Value::String(s)) if !s.is_empty() => s,
                        Some(Value::Number(n)) => n.to_string(),
                        _ => {
                            return Err(TranslateError::MissingField {
                                event: canonical.to_string(),
                                field: p.to_string(),
                            });
                        }
                    };
                    values.push(v);
                }
                Cow::Owned(t.render(&values))
            }
        };
        let no_payload = payload.is_empty() && carried.is_some_and(|c| c.no_payload);
        Ok(WireEventRef {
            name,
            payload: (!no_payload).then_some(payload),
        })
    }

    fn select_encoder(&self, ev: &Event, dir: Direction) -> Result<&Rule, TranslateError> {
        let mut any = false;
        for r in self.encoders(&ev.name, dir) {
            any = true;
            if r.sets.iter().all(|(p, v)| p.get(&ev.body) == Some(v)) {
                return Ok(r);
            }
        }
        let because = if any {
            let sets: Vec<String> = self
                .encoders(&ev.name, dir)
                .map(|r| {
                    let s: Vec<String> = r.sets.iter().map(|(p, v)| format!("{p}: {v}")).collect();
                    format!("{{{}}}", s.join(", "))
                })
                .collect();
            format!(": only for {}", sets.join(" | "))
        } else {
            match self.lack_reason(&ev.name) {
                Some(r) => format!(": {r}"),
                None => String::new(),
            }
        };
        Err(TranslateError::Inexpressible {
            dialect: self.name.to_string(),
            canonical: ev.name.to_string(),
            dir: dir.as_str(),
            because,
        })
    }
}

/// A canonical value as field rule `op` writes it on the wire: through its value map,
/// its `first` (`Ok(None)`: an empty list, nothing written) and its `split`; `Err` with
/// the value when the map neither lists it nor lets others pass.
#[inline]
pub(crate) fn wire_value<'a>(
    op: &'a FieldOp,
    v: Cow<'a, Value>,
) -> Result<Option<Cow<'a, Value>>, Cow<'a, Value>> {
    let v = match &op.values {
        Some(map) => match map.to_wire(&v) {
            Some(w) => Cow::Borrowed(w),
            None if map.others_pass => v,
            None => return Err(v),
        },
        None => v,
    };
    let v = match &op.first {
        Some(first) => match first.pick(v) {
            Some(v) => v,
            None => return Ok(None),
        },
        None => v,
    };
    Ok(Some(if op.split {
        Cow::Owned(Value::Array(vec![v.into_owned()]))
    } else {
        v
    }))
}
