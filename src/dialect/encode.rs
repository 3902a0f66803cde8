//! Encoding: a canonical event → a dialect's wire event, by the compiled plan. The event
//! is borrowed (the hub encodes one event for many dialects); fields carried from the
//! same dialect and wire event are restored.

use super::decode::{resolve_default, short};
use super::error::TranslateError;
use super::framing::WireEvent;
use super::plan::{Dialect, Direction, Rule, WireName};
use crate::event::Event;
use serde_json::Value;

impl Dialect {
    /// Encodes `ev` for sending in `dir` (`down` to a client, `up` to a backend).
    ///
    /// # Errors
    /// The dialect has no rule for the event (or for its selector values), a value is
    /// outside a value map, or a name parameter is missing.
    pub fn encode(&self, ev: &Event, dir: Direction) -> Result<WireEvent, TranslateError> {
        let rule = self.select_encoder(ev, dir)?;
        let carried = ev
            .meta
            .carried
            .as_deref()
            .filter(|c| c.dialect == self.name && *c.wire == *rule.wire.pattern());
        let mut payload = carried.map(|c| c.fields.clone()).unwrap_or_default();
        for (p, v) in &rule.consts {
            if carried.is_some_and(|c| c.omitted.iter().any(|o| *o == p.to_string())) {
                continue;
            }
            p.insert_if_absent(&mut payload, || v.clone());
        }
        for (p, v) in &rule.when {
            p.insert(&mut payload, v.clone());
        }
        for op in &rule.fields {
            let owned;
            let v = match op.canon.get(&ev.body) {
                Some(v) => v,
                None => {
                    let dv = rule.defaults.iter().find(|(p, _)| *p == op.canon);
                    match dv.and_then(|(_, dv)| resolve_default(dv, &ev.meta)) {
                        Some(v) => {
                            owned = v;
                            &owned
                        }
                        None => continue,
                    }
                }
            };
            let v = match &op.values {
                Some(map) => match map.to_wire(v) {
                    Some(w) => w.clone(),
                    None => {
                        return Err(TranslateError::BadValue {
                            event: ev.name.to_string(),
                            field: op.canon.to_string(),
                            value: short(v),
                            expected: map.canon_values(),
                        });
                    }
                },
                None => v.clone(),
            };
            let v = if op.split { Value::Array(vec![v]) } else { v };
            op.wire.insert(&mut payload, v);
        }
        if rule.passthrough {
            for (k, v) in &ev.body {
                if !rule.canon_heads.iter().any(|h| **h == **k) && !payload.contains_key(k) {
                    payload.insert(k.clone(), v.clone());
                }
            }
        }
        let name = match &rule.wire {
            WireName::Exact(n) => n.to_string(),
            WireName::Template(t) => {
                let mut values = Vec::with_capacity(t.params.len());
                for p in &t.params {
                    let v = match payload.remove(&**p) {
                        Some(Value::String(s)) if !s.is_empty() => s,
                        Some(Value::Number(n)) => n.to_string(),
                        _ => {
                            return Err(TranslateError::MissingField {
                                event: ev.name.to_string(),
                                field: p.to_string(),
                            });
                        }
                    };
                    values.push(v);
                }
                t.render(&values)
            }
        };
        let no_payload = payload.is_empty() && carried.is_some_and(|c| c.no_payload);
        Ok(WireEvent {
            name,
            payload: (!no_payload).then_some(Value::Object(payload)),
            trace_id: Some(ev.meta.trace_id.clone()),
            id: Some(ev.meta.id.clone()),
            at: Some(ev.meta.at),
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
