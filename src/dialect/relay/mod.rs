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

mod at;
mod keys;
mod pass;
mod read;
mod scan;
mod val;

use super::Registry;
use super::decode::DecodeContext;
use super::escape::write_str;
use super::framing::{Name, write_frame_with};
use super::layout::{Layout, key_text};
use super::path::Path;
use super::plan::{DefaultValue, Dialect, Direction, FieldOp, Framing, MetaRef, Rule, WireName};
use crate::event::{EventId, Meta, now_millis};
use at::{At, default_val};
use keys::Keys;
use serde_json::Value;
use smallvec::SmallVec;
use val::{Val, encode_val};

/// Every relay from one dialect to another, by the source's wire name.
#[derive(Debug, Clone)]
pub(crate) struct Relays<'a> {
    from: &'a Dialect,
    to: &'a Dialect,
    /// By the length of the source's wire name, then `(name, relay)`: a name is found
    /// by comparing it with the few of its length (cheaper than hashing it).
    by_len: Vec<Vec<(&'a str, Relay<'a>)>>,
}

/// One compiled pair of rules.
#[derive(Debug, Clone)]
pub(crate) struct Relay<'a> {
    src: &'a Rule,
    dst: &'a Rule,
    /// The target's wire name, as a JSON string.
    name: Box<[u8]>,
    /// The source's keys: field rules' slots, nested levels, named keys' slots.
    keys: Keys<'a>,
    /// Slots: one per source field rule, then one per named key.
    slots: usize,
    /// The keys no field rule takes are kept, in frame order (a passthrough target).
    keep_rest: bool,
    /// What is written, in the general encoder's order: fields, constants, selectors.
    writes: Vec<Write<'a>>,
    layout: Layout,
    /// The source rule's required canonical fields.
    required: Vec<Source<'a>>,
    /// For a passthrough target: the body's keys the source rule makes, sorted.
    body: Vec<BodyKey<'a>>,
    /// The metadata the output reads.
    reads: Reads,
}

/// One key of the canonical body a passthrough target may write.
#[derive(Debug, Clone)]
struct BodyKey<'a> {
    key: &'a str,
    /// `"key":`, as JSON text.
    text: Box<[u8]>,
    from: Source<'a>,
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
        /// The value is written as it is: no value map, `first` or `split`.
        plain: bool,
    },
    /// A constant, as JSON text.
    Const(Box<[u8]>),
}

/// Where one canonical field's value comes from, in the general decoder's order: a
/// selector value (`sets`) wins; else the field rule's value; else (passthrough) the
/// payload key of the same name; else the source rule's default.
#[derive(Debug, Clone, Default)]
struct Source<'a> {
    set: Option<&'a Value>,
    /// The field rule's slot.
    op: Option<usize>,
    /// The named payload key's slot.
    named: Option<usize>,
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
        let mut by_len: Vec<Vec<(&'a str, Relay<'a>)>> = Vec::new();
        if from.name != to.name {
            for table in &from.decode_exact {
                for name in table.keys() {
                    let relay = from
                        .fast_rule(name, dir)
                        .and_then(|src| Relay::compile(reg, src, to, dir));
                    if let Some(relay) = relay {
                        if by_len.len() <= name.len() {
                            by_len.resize_with(name.len() + 1, Vec::new);
                        }
                        let same = &mut by_len[name.len()];
                        if !same.iter().any(|(n, _)| *n == &**name) {
                            same.push((&**name, relay));
                        }
                    }
                }
            }
        }
        Relays { from, to, by_len }
    }

    /// The relay for source wire name `name`.
    fn get(&self, name: &str) -> Option<&Relay<'a>> {
        let same = self.by_len.get(name.len())?;
        same.iter().find(|(n, _)| *n == name).map(|(_, r)| r)
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
        let fields = slots.iter().zip(&relay.src.fields);
        if fields.into_iter().any(|(v, op)| v.is_none() && op.required) {
            return None;
        }
        let rest = if relay.keep_rest {
            last_of_each(input.rest)
        } else {
            Vec::new()
        };
        // The general decoder's metadata (ids drawn in the same order), without what the
        // output never reads: the origin, and the clock or the user when nothing asks.
        let meta = Meta {
            id: match input.id {
                Some(id) => EventId::from(id),
                None => EventId::random(),
            },
            trace_id: match input.trace_id {
                Some(id) => EventId::from(id),
                None => EventId::random(),
            },
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
        let at = At { slots, meta: &meta };
        if !relay.required.iter().all(|s| at.present(s)) {
            return None;
        }
        // Each value is written as its key is; a value the general path would refuse
        // declines the frame (the caller drops what was written).
        let mut value = |n: usize, out: &mut Vec<u8>| -> Option<bool> {
            match relay.writes.get(n)? {
                Write::Const(text) => out.extend_from_slice(text),
                Write::Field {
                    op,
                    from,
                    default,
                    plain,
                } => {
                    let got = match at.get(from) {
                        Some(got) => got,
                        None => match default.and_then(|d| default_val(d, &meta)) {
                            Some(v) => at::Got::Made(v),
                            None => return Some(false),
                        },
                    };
                    if *plain {
                        got.val().write(out);
                    } else {
                        match encode_val(op, got.into_val())? {
                            Some(v) => v.write(out),
                            None => return Some(false),
                        }
                    }
                }
            }
            Some(true)
        };
        let mut ok = Some(());
        let name = Name::Json(&relay.name);
        write_frame_with(self.to.framing, name, &meta, out, true, |out| {
            out.push(b'{');
            let mut first = true;
            let mut top: SmallVec<[&str; 8]> = SmallVec::new();
            let tops = relay.dst.passthrough.then_some(&mut top);
            ok = relay.layout.write(out, &mut first, &mut value, tops);
            if ok.is_some() && relay.dst.passthrough {
                relay.passthrough(&at, &rest, &top, out, first);
            }
            out.push(b'}');
        });
        ok
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
        let keep_rest = dst.passthrough;
        if (src.passthrough || dst.passthrough) && !src.trie.children.is_empty() {
            return None;
        }
        // A passthrough source's payload keys the output reads get slots of their own,
        // after the field rules' (a key a field rule takes never reaches the body).
        let mut keys = Keys::of(&src.trie);
        let mut slots = src.fields.len();
        let mut slot_of = |key: &'a str| -> Option<usize> {
            if keys.get(key).is_none() {
                keys.name(key, slots);
                slots += 1;
            }
            keys.slot_of(key)
        };
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
                from: source(src, &op.canon, &mut slot_of)?,
                default,
                plain: op.values.is_none() && op.first.is_none() && !op.split,
            });
        }
        for (p, v) in dst.consts.iter().chain(&dst.when) {
            layout = layout.add(p, writes.len())?;
            writes.push(Write::Const(serde_json::to_vec(v).ok()?.into_boxed_slice()));
        }
        let required = src
            .required
            .iter()
            .map(|(p, _)| source(src, p, &mut slot_of))
            .collect::<Option<Vec<_>>>()?;
        let mut body: Vec<BodyKey<'a>> = Vec::new();
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
                if !body.iter().any(|b| b.key == p.head()) {
                    body.push(BodyKey {
                        key: p.head(),
                        text: key_text(p.head()),
                        from: source(src, p, &mut slot_of)?,
                    });
                }
            }
            // The canonical body is a JSON object: its keys come out sorted.
            body.sort_by(|a, b| a.key.cmp(b.key));
        }
        let mut name_text = Vec::with_capacity(name.len() + 2);
        write_str(&mut name_text, name);
        Some(Relay {
            src,
            dst,
            name: name_text.into_boxed_slice(),
            keys,
            slots,
            keep_rest,
            writes,
            layout,
            required,
            body,
            reads: Reads::of(src, dst, to),
        })
    }
}

/// The target rule the general encoder picks for `src`'s events: the first encoder of
/// the canonical event whose selectors the source's own selectors decide; `None` when
/// the choice depends on the event's values.
fn encoder<'a>(src: &'a Rule, to: &'a Dialect, dir: Direction) -> Option<&'a Rule> {
    for r in to.encoders(&src.canonical, dir) {
        let mut matches = true;
        for (p, v) in &r.sets {
            match source(src, p, &mut |_| None)? {
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
/// `name` gives the slot of a passthrough payload key (`None`: a key no value reaches).
fn source<'a>(
    src: &'a Rule,
    c: &'a Path,
    name: &mut dyn FnMut(&'a str) -> Option<usize>,
) -> Option<Source<'a>> {
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
        s.named = name(c.head());
    }
    Some(s)
}

/// The keys no field took, sorted, the last of each repeated key kept (as a JSON object
/// keeps it).
fn last_of_each<'a>(mut rest: Vec<(&'a str, Val<'a>)>) -> Vec<(&'a str, Val<'a>)> {
    rest.reverse();
    // Stable: of equal keys the last in the frame comes first and is kept.
    rest.sort_by(|a, b| a.0.cmp(b.0));
    rest.dedup_by(|later, earlier| later.0 == earlier.0);
    rest
}
