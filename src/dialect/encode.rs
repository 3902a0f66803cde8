//! Encoding: a canonical event → a dialect's wire event, by the compiled plan. The hub
//! encodes one event for many dialects, so the event is normally borrowed and its values
//! cloned; a caller that owns the event (the `translate` command) can let the encoder move
//! values out of it instead. Fields carried from the same dialect and wire event are
//! restored.

use super::decode::{resolve_default, short};
use super::error::TranslateError;
use super::plan::{Dialect, Direction, Rule, WireName};
use crate::event::{Carried, Event, Meta};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// An encoded wire event: its name and payload (`None`: a frame without payload).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded<'a> {
    /// Wire name, borrowed from the plan unless it carries parameters.
    pub name: Cow<'a, str>,
    /// The payload.
    pub payload: Option<Value>,
}

/// The event body, shared (values are cloned) or owned (values are moved out).
enum Body<'b> {
    Shared(&'b Map<String, Value>),
    Owned(&'b mut Map<String, Value>),
}

impl Dialect {
    /// Encodes `ev` for sending in `dir` (`down` to a client, `up` to a backend).
    ///
    /// # Errors
    /// The dialect has no rule for the event (or for its selector values), a value is
    /// outside a value map, or a name parameter is missing.
    pub fn encode(&self, ev: &Event, dir: Direction) -> Result<Encoded<'_>, TranslateError> {
        let rule = self.select_encoder(ev, dir)?;
        let carried = self.carried_for(rule, ev.meta.carried.as_deref());
        let payload = carried.map(|c| c.fields.clone()).unwrap_or_default();
        self.build(
            rule,
            &ev.name,
            &ev.meta,
            carried,
            payload,
            Body::Shared(&ev.body),
        )
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
    ) -> Result<Encoded<'_>, TranslateError> {
        let rule = self.select_encoder(ev, dir)?;
        let Event { name, body, meta } = ev;
        let payload = match meta.carried.as_deref_mut() {
            Some(c) if self.carried_for(rule, Some(c)).is_some() => std::mem::take(&mut c.fields),
            _ => Map::new(),
        };
        let carried = self.carried_for(rule, meta.carried.as_deref());
        self.build(rule, name, meta, carried, payload, Body::Owned(body))
    }

    /// The carried fields, when they belong to this dialect and this rule's wire event.
    fn carried_for<'c>(&self, rule: &Rule, c: Option<&'c Carried>) -> Option<&'c Carried> {
        c.filter(|c| c.dialect == self.name && *c.wire == *rule.wire.pattern())
    }

    fn build<'a>(
        &'a self,
        rule: &'a Rule,
        canonical: &str,
        meta: &Meta,
        carried: Option<&Carried>,
        mut payload: Map<String, Value>,
        mut body: Body<'_>,
    ) -> Result<Encoded<'a>, TranslateError> {
        for (p, v) in &rule.consts {
            if carried.is_some_and(|c| c.omitted.iter().any(|o| o.as_str() == p.to_string())) {
                continue;
            }
            p.insert_if_absent(&mut payload, || v.clone());
        }
        for (p, v) in &rule.when {
            p.insert(&mut payload, v.clone());
        }
        for op in &rule.fields {
            let found = match &mut body {
                Body::Shared(b) => op.canon.get(b).cloned(),
                Body::Owned(b) if op.last_use => op.canon.take(b),
                Body::Owned(b) => op.canon.get(b).cloned(),
            };
            let v = match found {
                Some(v) => v,
                None => {
                    let dv = rule.defaults.iter().find(|(p, _)| *p == op.canon);
                    match dv.and_then(|(_, dv)| resolve_default(dv, meta)) {
                        Some(v) => v,
                        None => continue,
                    }
                }
            };
            let v = match &op.values {
                Some(map) => match map.to_wire(&v) {
                    Some(w) => w.clone(),
                    None => {
                        return Err(TranslateError::BadValue {
                            event: canonical.to_string(),
                            field: op.canon.to_string(),
                            value: short(&v),
                            expected: map.canon_values(),
                        });
                    }
                },
                None => v,
            };
            let v = if op.split { Value::Array(vec![v]) } else { v };
            op.wire.insert(&mut payload, v);
        }
        if rule.passthrough {
            let passes = |k: &str| !rule.canon_heads.iter().any(|h| **h == *k);
            match body {
                Body::Shared(b) => {
                    for (k, v) in b.iter().filter(|(k, _)| passes(k)) {
                        payload.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                Body::Owned(b) => {
                    for (k, v) in std::mem::take(b).into_iter().filter(|(k, _)| passes(k)) {
                        payload.entry(k).or_insert(v);
                    }
                }
            }
        }
        let name = match &rule.wire {
            WireName::Exact(n) => Cow::Borrowed(&**n),
            WireName::Template(t) => {
                let mut values = Vec::with_capacity(t.params.len());
                for p in &t.params {
                    let v = match payload.remove(&**p) {
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
        Ok(Encoded {
            name,
            payload: (!no_payload).then_some(Value::Object(payload)),
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
