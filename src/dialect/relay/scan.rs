//! The relay's reader of JSON text: a recogniser of a strict subset of JSON, so that
//! what it accepts serde_json accepts too, with the same meaning. It takes strings
//! without escapes (borrowed as they are), integers of at most 18 digits, `true`,
//! `false`, `null`, and arrays and objects of those, nested at most 64 deep; it declines
//! (`None`) everything else: an escape anywhere, a fraction or exponent, a control
//! character in a string, anything serde_json would refuse. A declined frame goes to the
//! general path, which parses it with serde_json. The text has been checked as UTF-8
//! before, and every cut is at an ASCII byte, so every slice is a `str`.

use super::super::escape::first_special;
use super::val::Val;
use serde_json::Value;

/// Nesting the scanner follows; deeper frames go to the general path (serde_json's
/// own limit is 128).
const MAX_DEPTH: u32 = 64;

static EMPTY_ARRAY: Value = Value::Array(Vec::new());

/// A position in one JSON text.
pub(super) struct Scan<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scan<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Scan { text, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte after whitespace, not consumed.
    pub(super) fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(c) = b.get(self.pos) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(*c);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes `c` (after whitespace).
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.pos += 1)
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// A string without escapes: its content.
    pub(super) fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let rest = self.bytes().get(start..)?;
        let len = first_special(rest)?;
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.pos = start + len + 1;
        self.text.get(start..start + len)
    }

    /// `null` (consumed) or not.
    pub(super) fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.literal("null").is_some() {
            return true;
        }
        false
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.pos + word.len();
        (self.bytes().get(self.pos..end)? == word.as_bytes()).then(|| self.pos = end)
    }

    /// An integer of at most 18 digits, without a leading zero, not `-0`.
    fn integer(&mut self) -> Option<Val<'a>> {
        let b = self.bytes();
        let start = self.pos;
        let neg = b.get(start) == Some(&b'-');
        let digits = start + usize::from(neg);
        let len = b
            .get(digits..)?
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(b.len() - digits);
        let leading_zero = len > 1 && b.get(digits) == Some(&b'0');
        let next = b.get(digits + len);
        if len == 0
            || len > 18
            || leading_zero
            || matches!(next, Some(b'.' | b'e' | b'E'))
            || (neg && len == 1 && b.get(digits) == Some(&b'0'))
        {
            return None;
        }
        self.pos = digits + len;
        let text = self.text.get(start..self.pos)?;
        if neg {
            text.parse().ok().map(Val::Int)
        } else {
            text.parse().ok().map(Val::UInt)
        }
    }

    /// One value: kept as it is when it is a string, integer or literal; an array or
    /// object is parsed by serde_json.
    pub(super) fn value(&mut self) -> Option<Val<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Val::Str),
            b't' => self.literal("true").map(|()| Val::True),
            b'f' => self.literal("false").map(|()| Val::False),
            b'n' => self.literal("null").map(|()| Val::Null),
            b'[' | b'{' => {
                let start = self.pos;
                self.skip_container(0)?;
                let text = self.text.get(start..self.pos)?;
                match text {
                    // Common (no attachments): nothing to parse or allocate.
                    "[]" => Some(Val::Ref(&EMPTY_ARRAY)),
                    _ => serde_json::from_str::<Value>(text).ok().map(Val::owned),
                }
            }
            _ => self.integer(),
        }
    }

    /// Skips one value, checking it.
    pub(super) fn skip(&mut self) -> Option<()> {
        self.skip_at(0)
    }

    /// Skips one value and gives its text.
    pub(super) fn span(&mut self) -> Option<&'a str> {
        self.peek()?;
        let start = self.pos;
        self.skip()?;
        self.text.get(start..self.pos)
    }

    fn skip_at(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'[' | b'{' => self.skip_container(depth),
            _ => self.value().map(drop),
        }
    }

    fn skip_container(&mut self, depth: u32) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        if self.eat(b'[').is_some() {
            if self.eat(b']').is_some() {
                return Some(());
            }
            loop {
                self.skip_at(depth + 1)?;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                self.eat(b',')?;
            }
        }
        self.object(|s, _| s.skip_at(depth + 1))
    }

    /// An object: `each(self, key)` reads each key's value.
    pub(super) fn object(
        &mut self,
        mut each: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            each(self, key)?;
            if self.eat(b'}').is_some() {
                return Some(());
            }
            self.eat(b',')?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The scanner's reading of a whole text, written back.
    fn through(text: &str) -> Option<String> {
        let mut s = Scan::new(text);
        let v = s.value()?;
        if !s.at_end() {
            return None;
        }
        let mut out = Vec::new();
        v.write(&mut out);
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn general(text: &str) -> Option<String> {
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| serde_json::to_string(&v).ok())
    }

    #[test]
    fn takes_the_plain_subset_and_declines_the_rest() {
        for t in [
            r#""abc""#,
            r#""é😀""#,
            "0",
            "-1",
            "42",
            "true",
            "null",
            "[ ]",
            r#"{"b":1,"a":[1, "x"]}"#,
            r#"{"a":1,"a":2}"#,
            " 7 ",
        ] {
            assert_eq!(through(t), general(t), "{t}");
            assert!(through(t).is_some(), "{t}");
        }
        for t in [
            r#""a\"b""#,
            r#""\u00e9""#,
            "-0",
            "01",
            "1.0",
            "1e3",
            "1234567890123456789",
            "[1.5]",
            "tru",
            "nul",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "\"a\u{1}\"",
            "",
            "-",
        ] {
            assert_eq!(through(t), None, "{t}");
        }
        let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
        assert_eq!(through(&deep), None);
    }

    proptest! {
        /// What the relay rests on: what the scanner accepts, serde_json accepts, and
        /// the value written back is what serde_json writes.
        #[test]
        fn what_it_accepts_serde_json_reads_alike(s in r#"[\[\]{}":,a-z0-9 .\-\\eE+]{0,40}"#) {
            if let Some(mine) = through(&s) {
                prop_assert_eq!(Some(mine), general(&s));
            }
        }

        #[test]
        fn plain_values_are_taken(v in any_json()) {
            let text = serde_json::to_string(&v).unwrap_or_default();
            if let Some(mine) = through(&text) {
                prop_assert_eq!(Some(mine), general(&text));
            }
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
