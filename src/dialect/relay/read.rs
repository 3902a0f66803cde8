//! Reading a frame for the relay, with the scanner: the name first, then the payload
//! walked by the relay's keys, each mapped field decoded into its slot as it is read, a
//! passthrough payload's keys the output reads kept in theirs, the keys no field takes
//! kept (when the output writes them) or skipped after checking (a payload before the
//! name is kept as text until the name is known).
//! Anything the scanner declines, and anything unusual (a repeated name, a nested field
//! that is not an object), ends the reading: the general path then reads the frame
//! again and translates it, or says exactly what is wrong.

use super::super::plan::{FieldOp, Framing};
use super::keys::{Key, Keys};
use super::scan::Scan;
use super::val::{Val, decode_val};
use super::{Relay, Relays};
use crate::event::parse_iso_millis;
use smallvec::SmallVec;

/// What a frame gave the relay.
#[derive(Default)]
pub(super) struct Input<'a> {
    /// The relay the frame's name selects.
    pub relay: Option<&'a Relay<'a>>,
    /// The envelope's `traceId`.
    pub trace_id: Option<String>,
    /// The webhook body's `id`.
    pub id: Option<String>,
    /// The webhook body's `timestamp`, Unix milliseconds.
    pub at: Option<i64>,
    /// Per source field rule its decoded value, then per named key its value, when
    /// the frame had it.
    pub slots: SmallVec<[Option<Val<'a>>; 8]>,
    /// Top-level keys no field rule took, in frame order (kept only when written).
    pub rest: Vec<(&'a str, Val<'a>)>,
}

/// Reads one frame of `relays`' source framing into `input`; `None` when the relay
/// declines it.
pub(super) fn read<'a>(
    relays: &'a Relays<'a>,
    text: &'a [u8],
    input: &mut Input<'a>,
) -> Option<()> {
    let text = std::str::from_utf8(text).ok()?;
    let mut s = Scan::new(text);
    match relays.from.framing {
        Framing::SocketIo => socketio(&mut s, relays, input)?,
        framing => object(&mut s, relays, input, framing == Framing::Webhook)?,
    }
    s.at_end().then_some(())
}

/// Selects the relay for `name` (`None`: no relay covers it).
fn select<'a>(relays: &'a Relays<'a>, input: &mut Input<'a>, name: &str) -> Option<()> {
    let relay = relays.get(name)?;
    input.relay = Some(relay);
    input.slots.clear();
    input.slots.resize(relay.slots, None);
    Some(())
}

/// `["name"]` or `["name", payload]`.
fn socketio<'a>(s: &mut Scan<'a>, relays: &'a Relays<'a>, input: &mut Input<'a>) -> Option<()> {
    s.eat(b'[')?;
    let name = s.string()?;
    select(relays, input, name)?;
    if s.eat(b',').is_some() {
        payload(s, input)?;
    }
    s.eat(b']')
}

/// `{"event", "traceId", "data"}` or `{"id", "type", "timestamp", "data"}`, in any order.
fn object<'a>(
    s: &mut Scan<'a>,
    relays: &'a Relays<'a>,
    input: &mut Input<'a>,
    webhook: bool,
) -> Option<()> {
    let name_key = if webhook { "type" } else { "event" };
    let (mut named, mut data) = (false, false);
    let mut timestamp = None;
    // A payload before the name: kept as text, walked once the name is known.
    let mut early: Option<&'a str> = None;
    s.object(|s, key| {
        match key {
            k if k == name_key && !named => {
                named = true;
                let name = s.string()?;
                select(relays, input, name)?;
            }
            "traceId" if !webhook => input.trace_id = optional_string(s)?,
            "id" if webhook => input.id = optional_string(s)?,
            "timestamp" if webhook => timestamp = optional_string(s)?,
            "data" if !data => {
                data = true;
                if named {
                    payload(s, input)?;
                } else {
                    early = Some(s.span()?);
                }
            }
            k if k == name_key || k == "data" => return None,
            _ => s.skip()?,
        }
        Some(())
    })?;
    if !named {
        return None;
    }
    if let Some(text) = early {
        let mut inner = Scan::new(text);
        payload(&mut inner, input)?;
        if !inner.at_end() {
            return None;
        }
    }
    input.at = match timestamp {
        Some(t) => Some(parse_iso_millis(&t)?),
        None => None,
    };
    Some(())
}

/// A string or `null`.
fn optional_string(s: &mut Scan<'_>) -> Option<Option<String>> {
    if s.null() {
        return Some(None);
    }
    s.string().map(|t| Some(t.to_owned()))
}

/// The payload: an object walked by the relay's keys, or `null` (none).
fn payload<'a>(s: &mut Scan<'a>, input: &mut Input<'a>) -> Option<()> {
    if s.null() {
        return Some(());
    }
    let relay = input.relay?;
    let rest = relay.keep_rest.then_some(&mut input.rest);
    walk(s, (&relay.keys, &relay.src.fields), &mut input.slots, rest)
}

/// One object level: mapped keys to their slots, each value decoded as it is read (as
/// the general path does, so that a repeated key's bad value fails the same way),
/// nested ones walked, named ones kept in their slots (and in `rest` when kept), the
/// rest kept in `rest` (top level only, when kept) or skipped. Of a repeated key, the
/// last value is the one kept, as a JSON object keeps it.
fn walk<'a>(
    s: &mut Scan<'a>,
    (keys, fields): (&Keys<'_>, &'a [FieldOp]),
    slots: &mut [Option<Val<'a>>],
    mut rest: Option<&mut Vec<(&'a str, Val<'a>)>>,
) -> Option<()> {
    s.object(|s, key| {
        match keys.get(key) {
            Some(Key::Field(i)) => {
                let v = s.value()?;
                let op = fields.get(*i)?;
                *slots.get_mut(*i)? = Some(decode_val(op, v)?);
            }
            Some(Key::Level(child)) => walk(s, (child, fields), slots, None)?,
            Some(Key::Named(i)) => {
                let v = s.value()?;
                if let Some(rest) = rest.as_deref_mut() {
                    rest.push((key, v.clone()));
                }
                *slots.get_mut(*i)? = Some(v);
            }
            None => match rest.as_deref_mut() {
                Some(rest) => {
                    let v = s.value()?;
                    rest.push((key, v));
                }
                None => s.skip()?,
            },
        }
        Some(())
    })
}
