//! A passthrough target's own keys, after its fields: the canonical body's keys its
//! fields do not take and the source's keys no field took, in the order the general
//! encoder writes them (the canonical body is a JSON object, so its keys come sorted;
//! a non-passthrough source's unmapped keys follow them, sorted too), each written
//! straight to the output.

use super::Relay;
use super::at::At;
use super::val::Val;

impl<'a> Relay<'a> {
    /// Writes the passthrough keys into the open object (`first`: nothing written in it
    /// yet); `rest` is the source's unmapped keys, sorted, one per key; `written` the
    /// top-level keys the fields wrote.
    pub(super) fn passthrough(
        &self,
        at: &At<'_, 'a>,
        rest: &[(&'a str, Val<'a>)],
        written: &[&str],
        out: &mut Vec<u8>,
        mut first: bool,
    ) {
        let passes =
            |k: &str| !self.dst.canon_heads.iter().any(|h| **h == *k) && !written.contains(&k);
        let mut put = |out: &mut Vec<u8>, key: Key<'_>, v: &Val<'_>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            match key {
                Key::Text(t) => out.extend_from_slice(t),
                Key::Plain(k) => {
                    // A key the scanner read: no escapes, no control characters.
                    out.push(b'"');
                    out.extend_from_slice(k.as_bytes());
                    out.extend_from_slice(b"\":");
                }
            }
            v.write(out);
        };
        if self.src.passthrough {
            // The body's keys and the payload's are one canonical body: merged in key
            // order, the body's value where it has one.
            let (mut i, mut j) = (0, 0);
            loop {
                let (b, r) = (self.body.get(i), rest.get(j));
                let body_first = match (b, r) {
                    (None, None) => break,
                    (Some(b), Some(r)) => b.key <= r.0,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                };
                if let (true, Some(b)) = (body_first, b) {
                    i += 1;
                    let same = r.filter(|r| r.0 == b.key);
                    j += usize::from(same.is_some());
                    if !passes(b.key) {
                        continue;
                    }
                    if let Some(v) = at.get(&b.from) {
                        put(out, Key::Text(&b.text), v.val());
                    } else if let Some((k, v)) = same {
                        put(out, Key::Plain(k), v);
                    }
                } else if let Some((k, v)) = r {
                    j += 1;
                    if passes(k) {
                        put(out, Key::Plain(k), v);
                    }
                }
            }
            return;
        }
        for b in &self.body {
            if passes(b.key)
                && let Some(v) = at.get(&b.from)
            {
                put(out, Key::Text(&b.text), v.val());
            }
        }
        for (k, v) in rest {
            let in_body = match self.body.binary_search_by(|b| b.key.cmp(k)) {
                Ok(i) => at.get(&self.body[i].from).is_some(),
                Err(_) => false,
            };
            if !in_body && passes(k) {
                put(out, Key::Plain(k), v);
            }
        }
    }
}

/// A key to write: precomputed JSON text, or a key as the frame had it.
enum Key<'k> {
    Text(&'k [u8]),
    Plain(&'k str),
}
