//! Property: for every dialect, any event its rules can decode (mapped fields of any
//! valid value, selector and constant fields, extra fields the vocabulary lacks) re-encodes
//! to exactly itself: dialect → canonical → same dialect is the identity.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchboard::dialect::path::Path;
use switchboard::dialect::plan::{Dialect, Framing, Rule, WireName};
use switchboard::dialect::translate::{Side, Translator};
use switchboard::dialect::{DecodeContext, Registry, parse_frame};

/// Random material the frame builder draws from.
#[derive(Debug, Clone)]
struct Material {
    rule: usize,
    strings: Vec<String>,
    ints: Vec<i64>,
    floats: Vec<f64>,
    bools: Vec<bool>,
    extras: Vec<(usize, u8)>,
}

fn material() -> impl Strategy<Value = Material> {
    (
        any::<usize>(),
        prop::collection::vec("\\PC{0,12}", 1..8),
        prop::collection::vec(any::<i64>(), 1..8),
        prop::collection::vec(-1.0e9f64..1.0e9, 1..4),
        prop::collection::vec(any::<bool>(), 1..24),
        prop::collection::vec((0usize..EXTRA_KEYS.len(), any::<u8>()), 0..4),
    )
        .prop_map(|(rule, strings, ints, floats, bools, extras)| Material {
            rule,
            strings,
            ints,
            floats,
            bools,
            extras,
        })
}

const EXTRA_KEYS: [&str; 6] = [
    "legacyFlag",
    "x-extra",
    "priority",
    "deviceInfo",
    "z",
    "tenant",
];

struct Draw<'a> {
    m: &'a Material,
    i: usize,
}

impl Draw<'_> {
    fn next(&mut self) -> usize {
        self.i += 1;
        self.i
    }
    fn string(&mut self) -> String {
        let i = self.next();
        self.m.strings[i % self.m.strings.len()].clone()
    }
    fn nonempty(&mut self) -> String {
        let s = self.string();
        if s.is_empty() {
            format!("s{}", self.i)
        } else {
            s
        }
    }
    fn int(&mut self) -> i64 {
        let i = self.next();
        self.m.ints[i % self.m.ints.len()]
    }
    fn bool(&mut self) -> bool {
        let i = self.next();
        self.m.bools[i % self.m.bools.len()]
    }
    fn value_of(&mut self, ty: &str) -> Value {
        match ty {
            "string" => Value::String(self.string()),
            "integer" => json!(self.int()),
            "number" => {
                let i = self.next();
                json!(self.m.floats[i % self.m.floats.len()])
            }
            "bool" => json!(self.bool()),
            "object" => json!({"k": self.string(), "n": self.int()}),
            "array" => json!([self.string(), self.int()]),
            "string[]" => json!([self.string(), self.string()]),
            "id" => {
                if self.bool() {
                    Value::String(self.nonempty())
                } else {
                    json!(self.int())
                }
            }
            _ => {
                if self.bool() {
                    Value::String(self.string())
                } else {
                    json!(self.int())
                }
            }
        }
    }
}

/// Builds a wire frame that `rule` decodes, or `None` when the rule cannot be hit this way.
fn build(d: &Dialect, rule: &Rule, m: &Material) -> Value {
    let mut draw = Draw { m, i: 0 };
    let mut payload = Map::new();
    let mut canon_values: Vec<(Path, Option<Value>)> = Vec::new();
    let params: Vec<String> = match &rule.wire {
        WireName::Template(t) => t.params.iter().map(|p| p.to_string()).collect(),
        WireName::Exact(_) => Vec::new(),
    };
    let mut param_values = Vec::new();
    for op in &rule.fields {
        let is_param = op.wire.depth() == 1 && params.iter().any(|p| p == op.wire.head());
        let known = canon_values
            .iter()
            .find(|(p, _)| *p == op.canon)
            .map(|(_, v)| v.clone());
        let canon = match known {
            Some(v) => v,
            None => {
                let has_default = rule.defaults.iter().any(|(p, _)| *p == op.canon);
                let required = op.required
                    || op.split
                    || is_param
                    || rule.required.iter().any(|(p, _)| *p == op.canon);
                let present = has_default || required || draw.bool();
                let v = present.then(|| match &op.values {
                    Some(map) => {
                        let i = draw.next() % map.pairs.len();
                        map.pairs[i].1.clone()
                    }
                    None if is_param => Value::String(draw.nonempty()),
                    None if op.ty.nullable() && !required && draw.bool() && draw.bool() => {
                        Value::Null
                    }
                    None => draw.value_of(op.ty.name()),
                });
                canon_values.push((op.canon.clone(), v.clone()));
                v
            }
        };
        let Some(canon) = canon else { continue };
        let wire = match &op.values {
            Some(map) => map.to_wire(&canon).cloned().unwrap_or(Value::Null),
            None => canon,
        };
        if is_param {
            param_values.push(wire.as_str().unwrap_or_default().to_string());
            continue;
        }
        let wire = if op.split {
            Value::Array(vec![wire])
        } else {
            wire
        };
        op.wire.insert(&mut payload, wire);
    }
    for (p, v) in &rule.when {
        p.insert(&mut payload, v.clone());
    }
    for (p, v) in &rule.consts {
        if draw.bool() || draw.bool() {
            p.insert(&mut payload, v.clone());
        }
    }
    let taken: Vec<&str> = rule
        .fields
        .iter()
        .map(|f| f.wire.head())
        .chain(rule.when.iter().map(|(p, _)| p.head()))
        .chain(rule.consts.iter().map(|(p, _)| p.head()))
        .chain(rule.canon_heads.iter().map(|h| &**h))
        .chain(params.iter().map(String::as_str))
        .collect();
    for (k, seed) in &m.extras {
        let key = EXTRA_KEYS[*k];
        if !taken.contains(&key) {
            let v = match seed % 4 {
                0 => Value::String(draw.string()),
                1 => json!(draw.int()),
                2 => json!({"nested": {"deep": draw.string()}}),
                _ => json!([draw.bool(), Value::Null]),
            };
            payload.insert(key.to_string(), v);
        }
    }
    let name = match &rule.wire {
        WireName::Exact(n) => n.to_string(),
        WireName::Template(t) => t.render(&param_values),
    };
    let bare = payload.is_empty() && draw.bool();
    match d.framing {
        Framing::Envelope => json!({"event": name, "traceId": draw.nonempty(), "data": payload}),
        Framing::SocketIo if bare => json!([name]),
        Framing::SocketIo => json!([name, payload]),
        Framing::Webhook => json!({
            "id": format!("evt_{}", draw.int().unsigned_abs()),
            "type": name,
            "timestamp": "2024-01-15T10:30:00.123Z",
            "data": payload,
        }),
    }
}

fn check_dialect(reg: &Registry, name: &str, m: &Material) -> Result<(), TestCaseError> {
    let d = reg.dialect(name).expect("dialect loads");
    let rules: Vec<&Rule> = d.rules.iter().filter(|r| r.decodes && r.encodes).collect();
    let rule = rules[m.rule % rules.len()];
    let frame = build(d, rule, m);
    let tr = Translator::new(reg, Side::Dialect(d), Side::Dialect(d), Some(rule.dir));
    let mut out = Vec::new();
    let n = tr
        .translate(frame.to_string().as_bytes(), &mut out)
        .map_err(|e| TestCaseError::fail(format!("{frame}: {e}")))?;
    prop_assert_eq!(n, 1, "{}", frame);
    let back: Value =
        serde_json::from_slice(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, &frame, "rule at line {}", rule.line);

    // The fast decoding path and the general one agree on body and carried fields.
    let text = frame.to_string();
    let ctx = DecodeContext::default();
    let fast = d
        .decode_frame(text.as_bytes(), Some(rule.dir), &ctx)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let wire =
        parse_frame(d.framing, text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let general = d
        .decode(wire, Some(rule.dir), &ctx)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(fast.len(), general.len());
    for (f, g) in fast.iter().zip(general.iter()) {
        prop_assert_eq!(&f.name, &g.name);
        prop_assert_eq!(&f.body, &g.body);
        prop_assert_eq!(&f.meta.carried, &g.meta.carried);
    }
    Ok(())
}

macro_rules! dialect_roundtrip {
    ($test:ident, $name:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            #[test]
            fn $test(m in material()) {
                let reg = crate::common::registry();
                check_dialect(reg, $name, &m)?;
            }
        }
    };
}

dialect_roundtrip!(nexus_identity, "nexus");
dialect_roundtrip!(clerk_identity, "clerk");
dialect_roundtrip!(phase10_identity, "phase10");
dialect_roundtrip!(salala_identity, "salala");
dialect_roundtrip!(chat_service_identity, "chat-service");
dialect_roundtrip!(webhook_identity, "webhook");
