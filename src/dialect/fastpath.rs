//! The decoding fast path: when a frame's name selects exactly one rule without selector
//! fields, its payload is parsed straight into the canonical body, top-level mapped fields
//! landing at their canonical place without passing through an intermediate payload map.
//! Everything else (nested paths, constants, unmapped fields) goes to the remainder that
//! the general decoder finishes. Frames it does not fit take the general path unchanged.

use super::decode::{DecodeContext, Decoded, map_value};
use super::error::TranslateError;
use super::framing::{WireEvent, parse_raw_frame};
use super::plan::{Dialect, Direction, Rule, WireName};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

impl Dialect {
    /// Decodes one frame of this dialect's framing (JSON text).
    ///
    /// # Errors
    /// As [`Dialect::decode`], plus framing errors.
    pub fn decode_frame(
        &self,
        text: &[u8],
        dir: Option<Direction>,
        ctx: &DecodeContext,
    ) -> Result<Decoded, TranslateError> {
        let raw = parse_raw_frame(self.framing, text)?;
        if let Some(rule) = self.fast_rule(&raw.name, dir) {
            let mut body = Map::new();
            let mut rest = Map::new();
            let mut done = 0u64;
            let mut failed = None;
            let parsed = match raw.payload {
                None => Ok(()),
                Some(p) => {
                    let seed = PayloadSeed {
                        rule,
                        wire_name: &raw.name,
                        body: &mut body,
                        rest: &mut rest,
                        done: &mut done,
                        failed: &mut failed,
                    };
                    seed.deserialize(&mut serde_json::Deserializer::from_str(p.get()))
                }
            };
            if let Some(e) = failed {
                return Err(e);
            }
            if parsed.is_ok() {
                let no_payload = raw.payload.is_none();
                let meta = self.meta_for(raw.trace_id, raw.id, raw.at, ctx);
                return self.apply(rule, &raw.name, rest, body, done, no_payload, meta);
            }
            // Not an object: the general path reports it in the usual words.
        }
        let payload = match raw.payload {
            None => None,
            Some(p) => Some(
                serde_json::from_str::<Value>(p.get())
                    .map_err(|e| TranslateError::NotJson(e.to_string()))?,
            ),
        };
        let wire = WireEvent {
            name: raw.name.into_owned(),
            payload,
            trace_id: raw.trace_id,
            id: raw.id,
            at: raw.at,
        };
        self.decode(wire, dir, ctx)
    }

    /// The one rule `name` selects without looking at the payload, if there is one.
    fn fast_rule(&self, name: &str, dir: Option<Direction>) -> Option<&Rule> {
        let dirs: &[Direction] = match dir {
            Some(Direction::Up) => &[Direction::Up],
            Some(Direction::Down) => &[Direction::Down],
            None => &Direction::ALL,
        };
        for &d in dirs {
            if let Some(idx) = self.decode_exact[d.index()].get(name) {
                let rule = &self.rules[*idx.first()?];
                return (idx.len() == 1 && rule.when.is_empty()).then_some(rule);
            }
            let templated = self.decode_templates[d.index()].iter().any(|&i| {
                matches!(&self.rules[i].wire, WireName::Template(t) if t.matches(name).is_some())
            });
            if templated {
                return None;
            }
        }
        None
    }
}

/// Parses a payload object into the body (top-level mapped fields) and the remainder.
struct PayloadSeed<'a> {
    rule: &'a Rule,
    wire_name: &'a str,
    body: &'a mut Map<String, Value>,
    rest: &'a mut Map<String, Value>,
    done: &'a mut u64,
    failed: &'a mut Option<TranslateError>,
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            let value: Value = map.next_value()?;
            match self.rule.top_index.get(&*key) {
                Some(&i) => {
                    let op = &self.rule.fields[usize::from(i)];
                    match map_value(self.wire_name, op, value) {
                        Ok(v) => {
                            op.canon.insert(self.body, v);
                            *self.done |= 1 << i;
                        }
                        Err(e) => {
                            *self.failed = Some(e);
                            return Err(de::Error::custom("field"));
                        }
                    }
                }
                None => {
                    self.rest.insert(key.into_owned(), value);
                }
            }
        }
        Ok(())
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}
