//! Reading frames. The name is read first; when it selects exactly one rule without
//! selector fields, the payload is parsed straight into the canonical body (the fast
//! path), following the rule's key trie, so mapped fields land at their canonical place
//! without an intermediate payload map; what no field rule takes (constants, unmapped
//! fields) goes to the remainder the general decoder finishes. Otherwise the payload is
//! parsed as a JSON value and decoded by the general path. Socket.IO arrays, envelopes and
//! webhook bodies are each read in one pass (an envelope whose `data` comes before its
//! `event` keeps the payload as raw text until the name is known).
//! One idea over 500 lines: the frame reader, both paths and the framings they share.

use super::decode::{DecodeContext, Decoded, map_value};
use super::error::{TranslateError, json_type_name};
use super::framing::{WireEvent, object_err, socketio_err};
use super::plan::{Dialect, Direction, Framing, KeyTrie, Rule, WireName};
use crate::event::parse_iso_millis;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Parses one frame of `framing` from JSON text, payload included, without mapping it.
///
/// # Errors
/// Not JSON (or nested too deep), or JSON that is not the framing's shape.
pub fn parse_frame(framing: Framing, text: &[u8]) -> Result<WireEvent, TranslateError> {
    match read_frame(framing, None, None, text)? {
        Read::General(w) => Ok(w),
        // Without a dialect there is no rule, so the fast path never starts.
        Read::Fast { fields, .. } => Err(TranslateError::Framing {
            framing: framing.as_str(),
            reason: format!("`{}` needs a dialect to be read", fields.wire_name),
        }),
    }
}

impl Dialect {
    /// Decodes one frame of this dialect's framing (JSON text).
    ///
    /// # Errors
    /// As [`Dialect::decode`], plus framing errors.
    pub fn decode_frame(
        &self,
        text: &[u8],
        dir: Option<Direction>,
        ctx: &DecodeContext<'_>,
    ) -> Result<Decoded, TranslateError> {
        match read_frame(self.framing, Some(self), dir, text)? {
            Read::Fast {
                fields,
                parsed,
                trace_id,
                id,
                at,
            } => fields.finish(self, parsed, self.meta_for(trace_id, id, at, ctx)),
            Read::General(wire) => self.decode(wire, dir, ctx),
        }
    }

    /// The one rule `name` selects without looking at the payload, if there is one
    /// (without a direction, a name both directions know is read by the payload's shape,
    /// on the general path).
    pub(super) fn fast_rule(&self, name: &str, dir: Option<Direction>) -> Option<&Rule> {
        let dirs: &[Direction] = match dir {
            Some(Direction::Up) => &[Direction::Up],
            Some(Direction::Down) => &[Direction::Down],
            None => &Direction::ALL,
        };
        for &d in dirs {
            if let Some(idx) = self.decode_exact[d.index()].get(name) {
                let rule = &self.rules[*idx.first()?];
                let both = dir.is_none() && d == Direction::Up && self.knows(name, Direction::Down);
                return (idx.len() == 1 && rule.when.is_empty() && !both).then_some(rule);
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

impl Dialect {
    /// Whether `name` has a decoding rule in `dir`.
    fn knows(&self, name: &str, dir: Direction) -> bool {
        self.decode_exact[dir.index()].contains_key(name)
            || self.decode_templates[dir.index()].iter().any(|&i| {
                matches!(&self.rules[i].wire, WireName::Template(t) if t.matches(name).is_some())
            })
    }
}

fn json_err(e: &serde_json::Error) -> TranslateError {
    TranslateError::NotJson(e.to_string())
}

/// A frame as read: handed to the fast path, or a wire event for the general one.
enum Read<'d, 'n> {
    Fast {
        fields: Fields<'d, 'n>,
        parsed: Option<Parsed>,
        trace_id: Option<String>,
        id: Option<String>,
        at: Option<i64>,
    },
    General(WireEvent),
}

fn read_frame<'d, 'n>(
    framing: Framing,
    dialect: Option<&'d Dialect>,
    dir: Option<Direction>,
    text: &'n [u8],
) -> Result<Read<'d, 'n>, TranslateError> {
    let text = std::str::from_utf8(text).map_err(|e| TranslateError::NotJson(e.to_string()))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let mut failed = None;
    if framing == Framing::SocketIo {
        let seed = SocketIoFrame {
            dialect,
            dir,
            failed: &mut failed,
        };
        let out = match seed.deserialize(&mut de).and_then(|o| de.end().map(|()| o)) {
            Ok(o) => o,
            Err(e) => return Err(failed.unwrap_or_else(|| socketio_err(&e))),
        };
        return Ok(match out {
            SocketIoOut::Fast { fields, parsed } => Read::Fast {
                fields,
                parsed,
                trace_id: None,
                id: None,
                at: None,
            },
            SocketIoOut::General { name, payload } => Read::General(WireEvent::new(name, payload)),
        });
    }
    let seed = ObjectFrame {
        framing,
        dialect,
        dir,
        failed: &mut failed,
    };
    let frame = match seed.deserialize(&mut de).and_then(|f| de.end().map(|()| f)) {
        Ok(f) => f,
        Err(e) => return Err(failed.unwrap_or_else(|| object_err(framing, &e))),
    };
    let Some(name) = frame.name else {
        let key = if framing == Framing::Webhook {
            "type"
        } else {
            "event"
        };
        return Err(TranslateError::Framing {
            framing: framing.as_str(),
            reason: format!("missing field `{key}`"),
        });
    };
    let at = match &frame.timestamp {
        Some(t) => Some(parse_iso_millis(t).ok_or_else(|| TranslateError::Framing {
            framing: framing.as_str(),
            reason: format!("timestamp `{t}` is not ISO-8601"),
        })?),
        None => None,
    };
    let payload = match frame.data {
        Data::Fast { fields, parsed } => {
            return Ok(Read::Fast {
                fields,
                parsed,
                trace_id: frame.trace_id,
                id: frame.id,
                at,
            });
        }
        Data::Absent => None,
        Data::Parsed(v) => Some(v),
        Data::Raw(raw) => {
            if let Some(rule) = dialect.and_then(|d| d.fast_rule(&name, dir)) {
                let mut fields = Fields::new(rule, &name);
                let mut de = serde_json::Deserializer::from_str(raw.get());
                let parsed = match fields.seed().deserialize(&mut de) {
                    Ok(p) => data_payload(p),
                    Err(e) => return Err(fields.failed.unwrap_or_else(|| json_err(&e))),
                };
                return Ok(Read::Fast {
                    fields,
                    parsed,
                    trace_id: frame.trace_id,
                    id: frame.id,
                    at,
                });
            }
            Some(serde_json::from_str::<Value>(raw.get()).map_err(|e| json_err(&e))?)
        }
    };
    Ok(Read::General(WireEvent {
        name: name.into_owned(),
        payload: payload.filter(|p| !p.is_null()),
        trace_id: frame.trace_id,
        id: frame.id,
        at,
    }))
}

/// An envelope's or webhook body's `data`: `null` counts as no payload.
fn data_payload(p: Parsed) -> Option<Parsed> {
    match p {
        Parsed::Other(Value::Null) => None,
        p => Some(p),
    }
}

/// What the fast path has gathered for one event.
struct Fields<'r, 'n> {
    rule: &'r Rule,
    wire_name: Cow<'n, str>,
    body: Map<String, Value>,
    rest: Map<String, Value>,
    done: u64,
    failed: Option<TranslateError>,
}

impl<'r, 'n> Fields<'r, 'n> {
    fn new(rule: &'r Rule, wire_name: &Cow<'n, str>) -> Self {
        Fields {
            rule,
            wire_name: wire_name.clone(),
            body: Map::new(),
            rest: Map::new(),
            done: 0,
            failed: None,
        }
    }

    fn seed(&mut self) -> ValueSeed<'_, 'r> {
        ValueSeed {
            rule: self.rule,
            trie: &self.rule.trie,
            wire_name: &self.wire_name,
            body: &mut self.body,
            rest: &mut self.rest,
            done: &mut self.done,
            failed: &mut self.failed,
        }
    }

    /// Hands over to the general decoder for what the fast path left.
    fn finish(
        self,
        d: &Dialect,
        parsed: Option<Parsed>,
        meta: crate::event::Meta,
    ) -> Result<Decoded, TranslateError> {
        match parsed {
            None | Some(Parsed::Object(_)) | Some(Parsed::Other(Value::Null)) => {}
            Some(Parsed::Other(v)) => {
                return Err(TranslateError::PayloadNotObject {
                    name: self.wire_name.into_owned(),
                    found: json_type_name(&v),
                });
            }
        }
        d.apply(
            self.rule,
            &self.wire_name,
            self.rest,
            self.body,
            self.done,
            parsed.is_none(),
            meta,
        )
    }
}

/// A parsed value: an object walked by the trie (with its key count), or anything else.
enum Parsed {
    Object(usize),
    Other(Value),
}

/// Parses one value; an object is walked with `trie`: mapped fields go to the body, keys
/// the trie does not know to `rest` (this level's remainder).
struct ValueSeed<'s, 'r> {
    rule: &'r Rule,
    trie: &'r KeyTrie,
    wire_name: &'s str,
    body: &'s mut Map<String, Value>,
    rest: &'s mut Map<String, Value>,
    done: &'s mut u64,
    failed: &'s mut Option<TranslateError>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Parsed;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parsed, D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! other {
    ($name:ident, $t:ty) => {
        fn $name<E: de::Error>(self, v: $t) -> Result<Parsed, E> {
            Ok(Parsed::Other(Value::from(v)))
        }
    };
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    other!(visit_bool, bool);
    other!(visit_i64, i64);
    other!(visit_u64, u64);
    other!(visit_f64, f64);
    other!(visit_str, &str);
    other!(visit_string, String);

    fn visit_unit<E: de::Error>(self) -> Result<Parsed, E> {
        Ok(Parsed::Other(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Parsed, A::Error> {
        let v = de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Parsed::Other(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let mut keys = 0;
        while let Some(Key(key)) = map.next_key()? {
            keys += 1;
            if let Some(&i) = self.trie.fields.get(&*key) {
                let value: Value = map.next_value()?;
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
            } else if let Some(child) = self.trie.children.get(&*key) {
                let mut sub = Map::new();
                let seed = ValueSeed {
                    rule: self.rule,
                    trie: child,
                    wire_name: self.wire_name,
                    body: &mut *self.body,
                    rest: &mut sub,
                    done: &mut *self.done,
                    failed: &mut *self.failed,
                };
                match map.next_value_seed(seed)? {
                    // Keep what no rule took; an object that was empty to begin with stays.
                    Parsed::Object(n) if n == 0 || !sub.is_empty() => {
                        self.rest.insert(key.into_owned(), Value::Object(sub));
                    }
                    Parsed::Object(_) => {}
                    Parsed::Other(v) => {
                        self.rest.insert(key.into_owned(), v);
                    }
                }
            } else {
                let value: Value = map.next_value()?;
                self.rest.insert(key.into_owned(), value);
            }
        }
        Ok(Parsed::Object(keys))
    }
}

/// A Socket.IO event array read in one pass: the name, then the payload, parsed by the
/// fast path when the name selects one rule.
struct SocketIoFrame<'d, 'f> {
    dialect: Option<&'d Dialect>,
    dir: Option<Direction>,
    failed: &'f mut Option<TranslateError>,
}

enum SocketIoOut<'d, 'n> {
    Fast {
        fields: Fields<'d, 'n>,
        parsed: Option<Parsed>,
    },
    General {
        name: String,
        payload: Option<Value>,
    },
}

impl<'de, 'd> DeserializeSeed<'de> for SocketIoFrame<'d, '_> {
    type Value = SocketIoOut<'d, 'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, 'd> Visitor<'de> for SocketIoFrame<'d, '_> {
    type Value = SocketIoOut<'d, 'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array [\"event\", payload]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        use de::Error;
        let EventName(name) = seq
            .next_element()?
            .ok_or_else(|| A::Error::custom("empty array: the event name is missing"))?;
        let out = match self.dialect.and_then(|d| d.fast_rule(&name, self.dir)) {
            Some(rule) => {
                let mut fields = Fields::new(rule, &name);
                let parsed = match seq.next_element_seed(fields.seed()) {
                    Ok(p) => p,
                    Err(e) => {
                        *self.failed = fields.failed.take();
                        return Err(e);
                    }
                };
                SocketIoOut::Fast { fields, parsed }
            }
            None => SocketIoOut::General {
                name: name.into_owned(),
                payload: seq.next_element()?,
            },
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(A::Error::custom(
                "expected [\"event\"] or [\"event\", payload]: found more items",
            ));
        }
        Ok(out)
    }
}

/// An envelope `{event, traceId, data}` or a webhook body `{id, type, timestamp, data}`.
struct ObjectFrame<'d, 'f> {
    framing: Framing,
    dialect: Option<&'d Dialect>,
    dir: Option<Direction>,
    failed: &'f mut Option<TranslateError>,
}

/// What an object frame held.
struct ObjectOut<'d, 'de> {
    name: Option<Cow<'de, str>>,
    trace_id: Option<String>,
    id: Option<String>,
    timestamp: Option<String>,
    data: Data<'d, 'de>,
}

/// An object frame's payload, as far as it could be taken.
enum Data<'d, 'de> {
    Absent,
    /// Parsed by the fast path.
    Fast {
        fields: Fields<'d, 'de>,
        parsed: Option<Parsed>,
    },
    /// Parsed as a value (no single rule for the name).
    Parsed(Value),
    /// Came before the name: kept as text.
    Raw(&'de RawValue),
}

impl<'de, 'd> DeserializeSeed<'de> for ObjectFrame<'d, '_> {
    type Value = ObjectOut<'d, 'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'd> Visitor<'de> for ObjectFrame<'d, '_> {
    type Value = ObjectOut<'d, 'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.framing {
            Framing::Webhook => {
                f.write_str("an object {\"id\", \"type\", \"timestamp\", \"data\"}")
            }
            _ => f.write_str("an object {\"event\", \"traceId\", \"data\"}"),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let webhook = self.framing == Framing::Webhook;
        let name_key = if webhook { "type" } else { "event" };
        let mut out = ObjectOut {
            name: None,
            trace_id: None,
            id: None,
            timestamp: None,
            data: Data::Absent,
        };
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                k if k == name_key => {
                    out.name = Some(map.next_value::<EventName<'de>>()?.0);
                }
                "traceId" if !webhook => out.trace_id = map.next_value()?,
                "id" if webhook => out.id = map.next_value()?,
                "timestamp" if webhook => out.timestamp = map.next_value()?,
                "data" => {
                    let rule = out
                        .name
                        .as_ref()
                        .map(|n| self.dialect.and_then(|d| d.fast_rule(n, self.dir)));
                    out.data = match (rule, &out.name) {
                        (Some(Some(rule)), Some(name)) => {
                            let mut fields = Fields::new(rule, name);
                            let parsed = match map.next_value_seed(fields.seed()) {
                                Ok(p) => data_payload(p),
                                Err(e) => {
                                    *self.failed = fields.failed.take();
                                    return Err(e);
                                }
                            };
                            Data::Fast { fields, parsed }
                        }
                        (Some(None), _) => Data::Parsed(map.next_value()?),
                        _ => Data::Raw(map.next_value()?),
                    };
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

/// A Socket.IO event name (the array's first item), borrowed when it has no escapes.
struct EventName<'de>(Cow<'de, str>);

/// Reads a string, borrowed when possible; `expecting` words the error for anything else.
struct StrVisitor(&'static str);

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor("a string key")).map(Key)
    }
}

impl<'de> de::Deserialize<'de> for EventName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor("the event name, a string, as the first item"))
            .map(EventName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::plan::Framing;
    use serde_json::json;

    #[test]
    fn socketio_shapes() {
        let w = parse_frame(Framing::SocketIo, br#"["typing",{"conversationId":"c"}]"#).unwrap();
        assert_eq!(w.name, "typing");
        assert_eq!(w.payload, Some(json!({"conversationId": "c"})));
        let w = parse_frame(Framing::SocketIo, br#"["presence:heartbeat"]"#).unwrap();
        assert_eq!(w.payload, None);
        for bad in [&b"{}"[..], b"[]", b"[1]", b"[\"a\",1,2]"] {
            assert!(matches!(
                parse_frame(Framing::SocketIo, bad),
                Err(TranslateError::Framing { .. })
            ));
        }
        assert!(matches!(
            parse_frame(Framing::SocketIo, b"nope"),
            Err(TranslateError::NotJson(_))
        ));
    }

    #[test]
    fn envelope_and_webhook_shapes() {
        let w = parse_frame(
            Framing::Envelope,
            br#"{"event":"ACK","traceId":"t","data":{"messageId":"m"}}"#,
        )
        .unwrap();
        assert_eq!((w.name.as_str(), w.trace_id.as_deref()), ("ACK", Some("t")));
        assert!(parse_frame(Framing::Envelope, br#"{"data":{}}"#).is_err());
        let w = parse_frame(
            Framing::Webhook,
            br#"{"id":"evt_1","type":"user.online","timestamp":"2024-01-15T10:30:00.000Z","data":{}}"#,
        )
        .unwrap();
        assert_eq!(w.at, Some(1_705_314_600_000));
        assert!(parse_frame(Framing::Webhook, br#"{"type":"x","timestamp":"soon"}"#).is_err());
    }
}
