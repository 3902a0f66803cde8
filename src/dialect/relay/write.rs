//! The output payload's layout, fixed when the relay is compiled: every key the target
//! rule writes (its fields, constants and selectors) in the order the general encoder
//! inserts them, nested objects included, each key kept as its JSON text; at run time
//! each key is written when its value is there, followed by the passthrough keys, as
//! serde_json writes an object (compact).

use super::super::framing::write_str;
use super::val::Val;
use crate::dialect::path::Path;
use std::borrow::Cow;

/// An object of the output: keys in insertion order.
#[derive(Debug, Clone, Default)]
pub(super) struct Layout<'a> {
    entries: Vec<(&'a str, Box<[u8]>, Slot<'a>)>,
    /// The child index the last write inserted under: writes must not come back to an
    /// earlier child, or the order of keys would depend on which values are present.
    last: usize,
}

#[derive(Debug, Clone)]
enum Slot<'a> {
    /// The value of write `n`.
    Leaf(usize),
    Obj(Layout<'a>),
}

impl<'a> Layout<'a> {
    /// Adds write `n` at `path`; `None` when the path collides with an earlier one or
    /// would make the key order depend on which values are present.
    pub(super) fn add(mut self, path: &'a Path, n: usize) -> Option<Self> {
        let segs: Vec<&'a str> = path.segments().collect();
        self.add_in(&segs, n)?;
        Some(self)
    }

    fn add_in(&mut self, segs: &[&'a str], n: usize) -> Option<()> {
        let (first, rest) = segs.split_first()?;
        let i = match self.entries.iter().position(|(k, ..)| k == first) {
            Some(i) => i,
            None => {
                let slot = if rest.is_empty() {
                    Slot::Leaf(n)
                } else {
                    Slot::Obj(Layout::default())
                };
                let mut text = Vec::with_capacity(first.len() + 3);
                write_str(&mut text, first);
                text.push(b':');
                self.entries.push((first, text.into_boxed_slice(), slot));
                self.entries.len() - 1
            }
        };
        if i < self.last {
            return None;
        }
        self.last = i;
        match (&mut self.entries[i].2, rest.is_empty()) {
            (Slot::Leaf(m), true) if *m == n => Some(()),
            (Slot::Obj(child), false) => child.add_in(rest, n),
            _ => None,
        }
    }

    /// Whether a top-level key is written, given the values.
    pub(super) fn writes(&self, key: &str, vals: &[Option<Val<'_>>]) -> bool {
        self.entries
            .iter()
            .any(|(k, _, s)| *k == key && s.present(vals))
    }

    /// Writes the object: the keys whose values are there, then `extra`.
    pub(super) fn write(
        &self,
        out: &mut Vec<u8>,
        vals: &[Option<Val<'_>>],
        extra: &[(Cow<'_, str>, Val<'_>)],
    ) {
        out.push(b'{');
        let mut first = true;
        let mut comma = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
        };
        for (_, key, slot) in &self.entries {
            match slot {
                Slot::Leaf(n) => {
                    if let Some(Some(v)) = vals.get(*n) {
                        comma(out);
                        out.extend_from_slice(key);
                        v.write(out);
                    }
                }
                Slot::Obj(l) => {
                    if slot.present(vals) {
                        comma(out);
                        out.extend_from_slice(key);
                        l.write(out, vals, &[]);
                    }
                }
            }
        }
        for (k, v) in extra {
            comma(out);
            write_str(out, k);
            out.push(b':');
            v.write(out);
        }
        out.push(b'}');
    }
}

impl Slot<'_> {
    fn present(&self, vals: &[Option<Val<'_>>]) -> bool {
        match self {
            Slot::Leaf(n) => vals.get(*n).is_some_and(Option::is_some),
            Slot::Obj(l) => l.entries.iter().any(|(.., s)| s.present(vals)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn p(s: &str) -> Path {
        Path::parse(s).expect("path")
    }

    #[test]
    fn layout_keeps_insertion_order_and_refuses_what_would_depend_on_presence() {
        let (a, b, c, d) = (p("message.id"), p("message.text"), p("to"), p("x"));
        let l = Layout::default()
            .add(&a, 0)
            .and_then(|l| l.add(&b, 1))
            .and_then(|l| l.add(&c, 2))
            .expect("layout");
        let one = Value::from(1);
        let vals = [None, Some(Val::Ref(&one)), Some(Val::Ref(&one))];
        let mut out = Vec::new();
        l.write(&mut out, &vals, &[(Cow::Borrowed("z\""), Val::Ref(&one))]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"message":{"text":1},"to":1,"z\"":1}"#
        );
        assert!(l.writes("message", &vals) && !l.writes("x", &vals));
        // `message.x` after `to`: `message` would come first or second by what is present.
        let (e, f) = (p("message.x"), p("message"));
        assert!(l.clone().add(&e, 3).is_none());
        assert!(l.clone().add(&f, 3).is_none());
        assert!(l.clone().add(&c, 3).is_none());
        assert!(l.add(&d, 3).is_some());
    }
}
