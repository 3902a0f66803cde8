//! The relay: one frame of dialect A written straight as a frame of dialect B, without
//! building the canonical event. For each pair of rules (A's decoder, B's encoder) the
//! mapping files compile into a program: where each of B's fields comes from in A's
//! payload, through which value map, default or constant, and the order B's keys are
//! written in. The frame is read once, mapped values keep the frame's own text (see
//! `val.rs`), and the output is written once. The general path (`decode → Event →
//! encode`) stays the definition: the relay takes only rule pairs whose every step it
//! does the same way, declines every frame it is not sure of (the general path then
//! translates it, or words its error), and `tests/it/relay_prop.rs` checks both give the
//! same bytes on random frames of every dialect.

mod read;
mod scan;
mod val;
mod write;

use super::Registry;
use super::decode::{DecodeContext, resolve_default};
use super::framing::{write_frame_with, write_str};
use super::path::Path;
use super::plan::{
    DefaultValue, Dialect, Direction, FastMap, FieldOp, Framing, MetaRef, Rule, WireName,
};
use crate::event::{EventId, Meta, now_millis};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::borrow::Cow;
use val::Val;
use write::Layout;

/// Every relay from one dialect to another, by the source's wire name.
#[derive(Debug, Clone)]
pub(crate) struct Relays<'a> {
    from: &'a Dialect,
    to: &'a Dialect,
    by_name: FastMap<Box<str>, Relay<'a>>,
}

/// One compiled pair of rules.
#[derive(Debug, Clone)]
pub(crate) struct Relay<'a> {
    src: &'a Rule,
    dst: &'a Rule,
    /// The target's wire name.
    name: &'a str,
    /// The keys no field rule takes are kept (a passthrough rule on either side).
    keep_rest: bool,
    /// What is written, in the general encoder's order: fields, constants, selectors.
    writes: Vec<Write<'a>>,
    layout: Layout<'a>,
    /// The source rule's required canonical fields.
    required: Vec<Source<'a>>,
    /// For a passthrough target: the body's keys the source rule makes.
    body: Vec<(&'a str, Source<'a>)>,
    /// The metadata the output reads.
    reads: Reads,
}

/// The metadata a relay's output reads beyond the ids.
#[derive(Debug, Clone, Copy)]
struct Reads {
    /// The time (a webhook's timestamp, a default of `@meta.at`).
    clock: bool,
    /// The user (a default of `@meta.user.…`).
    user: bool,
}

impl Reads {
    fn of(src: &Rule, dst: &Rule, to: &Dialect) -> Reads {
        let metas = || {
            src.defaults
                .iter()
                .chain(&dst.defaults)
                .filter_map(|(_, dv)| match dv {
                    DefaultValue::Meta(m) => Some(*m),
                    _ => None,
                })
        };
        Reads {
            clock: to.framing == Framing::Webhook
                || metas().any(|m| matches!(m, MetaRef::At | MetaRef::AtMillis)),
            user: metas()
                .any(|m| matches!(m, MetaRef::UserId | MetaRef::UserName | MetaRef::UserImage)),
        }
    }
}

#[derive(Debug, Clone)]
enum Write<'a> {
    Field {
        op: &'a FieldOp,
        from: Source<'a>,
        default: Option<&'a DefaultValue>,
    },
    Const(&'a Value),
}

/// Where one canonical field's value comes from, in the general decoder's order: a
/// selector value (`sets`) wins; else the field rule's value; else (passthrough) the
/// payload key of the same name; else the source rule's default.
#[derive(Debug, Clone, Default)]
struct Source<'a> {
    set: Option<&'a Value>,
    op: Option<usize>,
    rest: Option<&'a str>,
    default: Option<&'a DefaultValue>,
}

impl<'a> Relays<'a> {
    /// The relays from `from` to `to` for events read in `dir` (or their default
    /// direction); empty from a dialect to itself (carried fields are restored there).
    pub(crate) fn new(
        reg: &'a Registry,
        from: &'a Dialect,
        to: &'a Dialect,
        dir: Option<Direction>,
    ) -> Relays<'a> {
        let mut by_name = FastMap::default();
        if from.name != to.name {
            for table in &from.decode_exact {
                for name in table.keys() {
                    let relay = from
                        .fast_rule(name, dir)
                        .and_then(|src| Relay::compile(reg, src, to, dir));
                    if let Some(relay) = relay {
                        by_name.insert(Box::from(&**name), relay);
                    }
                }
            }
        }
        Relays { from, to, by_name }
    }

    /// Writes the translation of `frame` to `out` (no newline); `None`, with `out` as it
    /// was, when the relay declines the frame.
    pub(crate) fn translate(
        &self,
        frame: &[u8],
        ctx: &DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Option<()> {
        let mut input = read::Input::default();
        read::read(self, frame, &mut input)?;
        let relay = input.relay?;
        let slots = &input.slots;
        let absent = |(slot, op): (&Option<Val<'_>>, &FieldOp)| slot.is_none() && op.required;
        if slots.iter().zip(&relay.src.fields).any(absent) {
            return None;
        }
        let rest = relay.keep_rest.then(|| last_of_each(input.rest));
        let rest = rest.as_deref().unwrap_or_default();
        // The general decoder's metadata (ids drawn in the same order), without what the
        // output never reads: the origin, and the clock or the user when nothing asks.
        let meta = Meta {
            id: input.id.map_or_else(EventId::random, EventId::from),
            trace_id: input.trace_id.map_or_else(EventId::random, EventId::from),
            at: match input.at {
                Some(at) => at,
                None if relay.reads.clock => now_millis(),
                None => 0,
            },
            origin: None,
            user: ctx.user.filter(|_| relay.reads.user).cloned(),
            target: None,
            carried: None,
        };
        let at = At {
            slots,
            rest,
            meta: &meta,
        };
        for s in &relay.required {
            if at.get(s).is_none_or(|v| v.is_null()) {
                return None;
            }
        }
        // Each value is made as its key is written; a value the general path would
        // refuse declines the frame (the caller drops what was written).
        let mut value = |n: usize| -> Option<Option<Val<'_>>> {
            match relay.writes.get(n)? {
                Write::Const(v) => Some(Some(Val::Ref(v))),
                Write::Field { op, from, default } => {
                    match at.get(from).or_else(|| default_val((*default)?, &meta)) {
                        Some(v) => encode_val(op, v),
                        None => Some(None),
                    }
                }
            }
        };
        let mut ok = Some(());
        write_frame_with(self.to.framing, relay.name, &meta, out, true, |out| {
            out.push(b'{');
            let mut first = true;
            let mut top: SmallVec<[&str; 8]> = SmallVec::new();
            let tops = relay.dst.passthrough.then_some(&mut top);
            ok = relay.layout.write(out, &mut first, &mut value, tops);
            if ok.is_some() && relay.dst.passthrough {
                for (k, v) in relay.passthrough(&at, &top) {
                    if !std::mem::take(&mut first) {
                        out.push(b',');
                    }
                    write_str(out, &k);
                    out.push(b':');
                    v.write(out);
                }
            }
            out.push(b'}');
        });
        ok?;
        Some(())
    }
}

impl<'a> Relay<'a> {
    /// The relay for `src` into `to`, when every step of the pair is one it does as the
    /// general path does.
    fn compile(
        reg: &Registry,
        src: &'a Rule,
        to: &'a Dialect,
        dir: Option<Direction>,
    ) -> Option<Relay<'a>> {
        let plain_source = src.fields.len() <= 64
            && src.when.is_empty()
            && src.consts.is_empty()
            && src.lifts.is_empty()
            && !src.fields.iter().any(|op| op.split)
            && src.fields.iter().enumerate().all(|(i, a)| {
                src.fields[i + 1..]
                    .iter()
                    .all(|b| !a.canon.overlaps(&b.canon))
            });
        if !plain_source {
            return None;
        }
        let dir = dir.unwrap_or_else(|| reg.default_direction(&src.canonical));
        let dst = encoder(src, to, dir)?;
        let WireName::Exact(name) = &dst.wire else {
            return None;
        };
        let keep_rest = src.passthrough || dst.passthrough;
        if keep_rest && !src.trie.children.is_empty() {
            return None;
        }
        let mut writes = Vec::new();
        let mut layout = Layout::default();
        for op in &dst.fields {
            let default = match dst.defaults.iter().find(|(p, _)| *p == op.canon) {
                Some((_, DefaultValue::Field(_))) => return None,
                Some((_, dv)) => Some(dv),
                None => None,
            };
            layout = layout.add(&op.wire, writes.len())?;
            writes.push(Write::Field {
                op,
                from: source(src, &op.canon)?,
                default,
            });
        }
        for (p, v) in dst.consts.iter().chain(&dst.when) {
            layout = layout.add(p, writes.len())?;
            writes.push(Write::Const(v));
        }
        let required = src
            .required
            .iter()
            .map(|(p, _)| source(src, p))
            .collect::<Option<Vec<_>>>()?;
        let mut body: Vec<(&'a str, Source<'a>)> = Vec::new();
        if dst.passthrough {
            let sets = src.sets.iter().map(|(p, _)| p);
            let defaults = src.defaults.iter().map(|(p, _)| p);
            for p in src
                .fields
                .iter()
                .map(|op| &op.canon)
                .chain(sets)
                .chain(defaults)
            {
                if p.depth() != 1 {
                    return None;
                }
                if !body.iter().any(|(k, _)| *k == p.head()) {
                    body.push((p.head(), source(src, p)?));
                }
            }
        }
        Some(Relay {
            src,
            dst,
            name,
            keep_rest,
            writes,
            layout,
            required,
            body,
            reads: Reads::of(src, dst, to),
        })
    }

    /// A passthrough target's own keys: the body's keys its fields do not take (in the
    /// canonical body's order, sorted), then the source's unmapped keys (sorted).
    fn passthrough(&self, at: &At<'_, 'a>, written: &[&str]) -> Vec<(Cow<'a, str>, Val<'a>)> {
        let mut body: Vec<(Cow<'a, str>, Val<'a>)> = self
            .body
            .iter()
            .filter_map(|(k, s)| at.get(s).map(|v| (Cow::Borrowed(*k), v)))
            .collect();
        let carried: &[(Cow<'a, str>, Val<'a>)] = if self.src.passthrough {
            for (k, v) in at.rest {
                if !body.iter().any(|(b, _)| b == k) {
                    body.push((k.clone(), v.clone()));
                }
            }
            &[]
        } else {
            at.rest
        };
        body.sort_by(|a, b| a.0.cmp(&b.0));
        let passes =
            |k: &str| !self.dst.canon_heads.iter().any(|h| **h == *k) && !written.contains(&k);
        let mut extra: Vec<(Cow<'a, str>, Val<'a>)> =
            body.iter().filter(|(k, _)| passes(k)).cloned().collect();
        for (k, v) in carried {
            let in_body = body.binary_search_by(|(b, _)| b.cmp(k)).is_ok();
            if !in_body && passes(k) {
                extra.push((k.clone(), v.clone()));
            }
        }
        extra
    }
}

/// The target rule the general encoder picks for `src`'s events: the first encoder of
/// the canonical event whose selectors the source's own selectors decide; `None` when
/// the choice depends on the event's values.
fn encoder<'a>(src: &Rule, to: &'a Dialect, dir: Direction) -> Option<&'a Rule> {
    for r in to.encoders(&src.canonical, dir) {
        let mut matches = true;
        for (p, v) in &r.sets {
            match source(src, p)? {
                Source { set: Some(x), .. } => matches &= x == v,
                _ => return None,
            }
        }
        if matches {
            return Some(r);
        }
    }
    None
}

/// Where `src`'s decoding puts canonical path `c`; `None` when it is not one place (a
/// field rule writes inside it or around it, or a default copies another field).
fn source<'a>(src: &'a Rule, c: &'a Path) -> Option<Source<'a>> {
    let mut s = Source::default();
    for (p, v) in &src.sets {
        if p == c {
            s.set = Some(v);
        } else if p.overlaps(c) {
            return None;
        }
    }
    for (i, op) in src.fields.iter().enumerate() {
        if op.canon == *c {
            s.op = Some(i);
        } else if op.canon.overlaps(c) {
            return None;
        }
    }
    for (p, dv) in &src.defaults {
        if p == c && !matches!(dv, DefaultValue::Field(_)) {
            s.default = Some(dv);
        } else if p.overlaps(c) {
            return None;
        }
    }
    if src.passthrough {
        if c.depth() != 1 {
            return None;
        }
        s.rest = Some(c.head());
    }
    Some(s)
}

/// The values a frame gave, for looking canonical fields up.
struct At<'v, 'a> {
    slots: &'v [Option<Val<'a>>],
    /// Sorted by key, one per key.
    rest: &'v [(Cow<'a, str>, Val<'a>)],
    meta: &'v Meta,
}

impl<'a> At<'_, 'a> {
    fn get(&self, s: &Source<'a>) -> Option<Val<'a>> {
        if let Some(v) = s.set {
            return Some(Val::Ref(v));
        }
        if let Some(Some(v)) = s.op.and_then(|i| self.slots.get(i)) {
            return Some(v.clone());
        }
        if let Some(k) = s.rest
            && let Ok(i) = self.rest.binary_search_by(|(x, _)| (**x).cmp(k))
        {
            return Some(self.rest[i].1.clone());
        }
        default_val(s.default?, self.meta)
    }
}

fn default_val<'a>(dv: &'a DefaultValue, meta: &Meta) -> Option<Val<'a>> {
    match dv {
        DefaultValue::Const(v) => Some(Val::Ref(v)),
        _ => resolve_default(dv, meta, &Map::new()).map(Val::owned),
    }
}

/// The keys no field took, sorted, the last of each repeated key kept (as a JSON object
/// keeps it).
fn last_of_each<'a>(mut rest: Vec<(Cow<'a, str>, Val<'a>)>) -> Vec<(Cow<'a, str>, Val<'a>)> {
    rest.reverse();
    // Stable: of equal keys the last in the frame comes first and is kept.
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    rest.dedup_by(|later, earlier| later.0 == earlier.0);
    rest
}

/// A wire value decoded as the general decoder does (`map_value`); `None` declines.
pub(in crate::dialect::relay) fn decode_val<'a>(op: &'a FieldOp, v: Val<'a>) -> Option<Val<'a>> {
    if let Some(map) = &op.values {
        let x = v.into_value();
        return match map.to_canon(&x) {
            Some(c) => Some(Val::Ref(c)),
            None if map.others_pass => Some(Val::owned(x)),
            None => None,
        };
    }
    if !v.typed(op.ty) {
        return None;
    }
    match &op.first {
        Some(first) => Some(Val::owned(first.wrap(v.into_value()))),
        None => Some(v),
    }
}

/// A canonical value encoded as the general encoder does; `Some(None)`: not written.
fn encode_val<'a>(op: &'a FieldOp, v: Val<'a>) -> Option<Option<Val<'a>>> {
    let v = match &op.values {
        Some(map) => {
            let x = v.into_value();
            match map.to_wire(&x) {
                Some(w) => Val::Ref(w),
                None if map.others_pass => Val::owned(x),
                None => return None,
            }
        }
        None => v,
    };
    let v = match &op.first {
        Some(first) => match first.pick(Cow::Owned(v.into_value())) {
            Some(x) => Val::owned(x.into_owned()),
            None => return Some(None),
        },
        None => v,
    };
    Some(Some(if op.split {
        Val::owned(Value::Array(vec![v.into_value()]))
    } else {
        v
    }))
}
