//! A payload's layout, fixed when a rule is compiled (for the relay and for writing an
//! event straight to a frame): every key an encoding rule writes (its fields, constants
//! and selectors) in the order the general encoder inserts them, nested objects
//! included, each key kept as its JSON text; at run time each key is written with its
//! value when the value is there, as serde_json writes an object (compact).

use super::escape::write_str;
use super::path::Path;
use smallvec::SmallVec;

/// An object of the output: keys in insertion order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    /// Each key as it is and as `,"key":`.
    entries: Vec<(Box<str>, Box<[u8]>, Slot)>,
    /// The child index the last write inserted under: writes must not come back to an
    /// earlier child, or the order of keys would depend on which values are present.
    last: usize,
}

#[derive(Debug, Clone)]
enum Slot {
    /// The value of write `n`.
    Leaf(usize),
    Obj(Layout),
}

impl Layout {
    /// Adds write `n` at `path`; `None` when the path collides with an earlier one or
    /// would make the key order depend on which values are present.
    pub(crate) fn add(mut self, path: &Path, n: usize) -> Option<Self> {
        let segs: Vec<&str> = path.segments().collect();
        self.add_in(&segs, n)?;
        Some(self)
    }

    fn add_in(&mut self, segs: &[&str], n: usize) -> Option<()> {
        let (first, rest) = segs.split_first()?;
        let i = match self.entries.iter().position(|(k, ..)| **k == **first) {
            Some(i) => i,
            None => {
                let slot = if rest.is_empty() {
                    Slot::Leaf(n)
                } else {
                    Slot::Obj(Layout::default())
                };
                let mut text = b",".to_vec();
                text.extend_from_slice(&key_text(first));
                self.entries
                    .push((Box::from(*first), text.into_boxed_slice(), slot));
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

    /// Writes the keys whose values are there into an object already opened (`first`:
    /// nothing written in it yet), each value written by `value` after its key
    /// (`Some(false)`: it has none, and the key is taken back); the top-level keys
    /// written are noted in `top` when asked. `None` when `value` declines.
    pub(crate) fn write<'l>(
        &'l self,
        out: &mut Vec<u8>,
        first: &mut bool,
        value: &mut dyn FnMut(usize, &mut Vec<u8>) -> Option<bool>,
        mut top: Option<&mut SmallVec<[&'l str; 8]>>,
    ) -> Option<()> {
        for (name, key, slot) in &self.entries {
            let start = out.len();
            // The key's text has its comma: one copy.
            out.extend_from_slice(if *first { key.get(1..)? } else { key });
            match slot {
                Slot::Leaf(n) => {
                    if !value(*n, out)? {
                        out.truncate(start);
                        continue;
                    }
                }
                Slot::Obj(l) => {
                    out.push(b'{');
                    let mut inner_first = true;
                    l.write(out, &mut inner_first, value, None)?;
                    if inner_first {
                        // Nothing inside: the general encoder makes no such object.
                        out.truncate(start);
                        continue;
                    }
                    out.push(b'}');
                }
            }
            *first = false;
            if let Some(top) = top.as_deref_mut() {
                top.push(name);
            }
        }
        Some(())
    }
}

/// `"key":` as JSON text.
pub(crate) fn key_text(key: &str) -> Box<[u8]> {
    let mut text = Vec::with_capacity(key.len() + 3);
    write_str(&mut text, key);
    text.push(b':');
    text.into_boxed_slice()
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
        let vals = [None, Some(one.clone()), Some(one)];
        let mut out = b"{".to_vec();
        let (mut first, mut top) = (true, SmallVec::new());
        let mut value = |n: usize, out: &mut Vec<u8>| {
            let v: Option<&Value> = vals.get(n)?.as_ref();
            Some(v.map(|v| serde_json::to_writer(&mut *out, v)).is_some())
        };
        assert!(
            l.write(&mut out, &mut first, &mut value, Some(&mut top))
                .is_some()
        );
        out.push(b'}');
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"message":{"text":1},"to":1}"#
        );
        assert_eq!(top.as_slice(), ["message", "to"]);
        drop(top);
        let none: [Option<u8>; 3] = [None, None, None];
        let mut out = b"{".to_vec();
        let mut first = true;
        let mut value = |n: usize, _: &mut Vec<u8>| none.get(n).map(Option::is_some);
        assert!(l.write(&mut out, &mut first, &mut value, None).is_some());
        assert_eq!(String::from_utf8_lossy(&out), "{");
        // `message.x` after `to`: `message` would come first or second by what is present.
        let (e, f) = (p("message.x"), p("message"));
        assert!(l.clone().add(&e, 3).is_none());
        assert!(l.clone().add(&f, 3).is_none());
        assert!(l.clone().add(&c, 3).is_none());
        assert!(l.add(&d, 3).is_some());
    }
}
