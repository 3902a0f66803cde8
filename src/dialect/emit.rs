//! An encoding rule compiled for writing: the rule's payload layout fixed once (keys as
//! JSON text, in the general encoder's order, see `layout.rs`), so that the hub writes
//! an event straight from its body to a frame's bytes, without assembling a payload
//! tree. Rules with name templates and events carrying fields to restore keep the tree
//! of `encode.rs`, which stays the definition; so does any value the general encoder
//! refuses, which it then words. `tests/it/relay_prop.rs` checks both write the same bytes.

use super::decode::resolve_default;
use super::encode::wire_value;
use super::escape::write_str;
use super::framing::{Name, write_frame_with};
use super::layout::Layout;
use super::plan::{Emit, Framing, Rule, Step, WireName};
use crate::event::Event;
use serde_json::Value;
use smallvec::SmallVec;
use std::borrow::Cow;

impl Emit {
    /// `rule` compiled, when every step of it is one this does as the general encoder
    /// does.
    pub(crate) fn compile(rule: &Rule) -> Option<Emit> {
        let WireName::Exact(name) = &rule.wire else {
            return None;
        };
        if !rule.encodes {
            return None;
        }
        let mut layout = Layout::default();
        let mut steps = Vec::new();
        for (i, op) in rule.fields.iter().enumerate() {
            layout = layout.add(&op.wire, steps.len())?;
            let default = rule.defaults.iter().position(|(p, _)| *p == op.canon);
            steps.push(Step::Field { op: i, default });
        }
        // A constant where a field may be (written or not by the event) makes the
        // layout refuse: the general encoder decides that by what is present.
        for (p, v) in rule.consts.iter().chain(&rule.when) {
            layout = layout.add(p, steps.len())?;
            steps.push(Step::Const(serde_json::to_vec(v).ok()?.into_boxed_slice()));
        }
        let mut text = Vec::with_capacity(name.len() + 2);
        write_str(&mut text, name);
        Some(Emit {
            name: text.into_boxed_slice(),
            layout,
            steps,
        })
    }

    /// Writes `ev` as a frame of `rule` (this program's rule) in `framing`; `None` when
    /// a value is one the general encoder refuses (the caller drops what was written
    /// and lets the general encoder word the error).
    pub(crate) fn write(
        &self,
        rule: &Rule,
        framing: Framing,
        ev: &Event,
        out: &mut Vec<u8>,
    ) -> Option<()> {
        let mut value = |n: usize, out: &mut Vec<u8>| -> Option<bool> {
            let (op, default) = match self.steps.get(n)? {
                Step::Const(text) => {
                    out.extend_from_slice(text);
                    return Some(true);
                }
                Step::Field { op, default } => (rule.fields.get(*op)?, default),
            };
            let v: Cow<'_, Value> = match op.canon.get(&ev.body) {
                Some(v) => Cow::Borrowed(v),
                None => {
                    let dv = default.and_then(|d| rule.defaults.get(d));
                    match dv.and_then(|(_, dv)| resolve_default(dv, &ev.meta, &ev.body)) {
                        Some(v) => Cow::Owned(v),
                        None => return Some(false),
                    }
                }
            };
            if op.values.is_none() && op.first.is_none() && !op.split {
                // Most fields: written as they are, nothing to map.
                write_value(out, &v);
                return Some(true);
            }
            match wire_value(op, v) {
                Ok(Some(v)) => write_value(out, &v),
                Ok(None) => return Some(false),
                Err(_) => return None,
            }
            Some(true)
        };
        let mut ok = Some(());
        let name = Name::Json(&self.name);
        write_frame_with(framing, name, &ev.meta, out, true, |out| {
            out.push(b'{');
            let mut first = true;
            let mut top: SmallVec<[&str; 8]> = SmallVec::new();
            let tops = rule.passthrough.then_some(&mut top);
            ok = self.layout.write(out, &mut first, &mut value, tops);
            if ok.is_some() && rule.passthrough {
                passthrough(rule, ev, &mut top, out, first);
            }
            out.push(b'}');
        });
        ok
    }
}

/// A passthrough rule's own keys, after its fields: the body's keys no field of the
/// rule maps (in the body's order), then the fields another dialect's rule carried
/// (Chat Service's `participants`), each unless a key of that name was written.
fn passthrough<'e>(
    rule: &Rule,
    ev: &'e Event,
    written: &mut SmallVec<[&'e str; 8]>,
    out: &mut Vec<u8>,
    mut first: bool,
) {
    let passes = |k: &str| !rule.canon_heads.iter().any(|h| **h == *k);
    let carried = ev.meta.carried.as_deref().map(|c| &c.fields);
    for (k, v) in ev.body.iter().chain(carried.into_iter().flatten()) {
        if passes(k) && !written.contains(&k.as_str()) {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            write_value(out, v);
            written.push(k);
        }
    }
}

/// A value as serde_json writes it (compact), its strings checked a word at a time.
fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => write_str(out, s),
        // Serialising into a Vec cannot fail: every map key is a string.
        v => drop(serde_json::to_writer(&mut *out, v)),
    }
}

#[cfg(test)]
mod tests {
    use crate::dialect::Registry;

    #[test]
    fn most_encoding_rules_compile() {
        let reg = Registry::embedded().expect("mappings");
        let (mut compiled, mut total) = (0, 0);
        for d in reg.dialects() {
            for r in d.rules.iter().filter(|r| r.encodes) {
                total += 1;
                compiled += usize::from(r.emit.is_some());
            }
        }
        eprintln!("{compiled} of {total} encoding rules compiled");
        assert!(compiled * 3 >= total * 2, "{compiled} of {total}");
    }
}
