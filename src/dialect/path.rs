//! Field paths (`message.user.id`), split once at load time, and their operations on JSON
//! objects: get, take (removing emptied parents), insert (creating parents).

use serde_json::{Map, Value};
use std::fmt;

/// A pre-split dotted path into nested JSON objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path(Box<[Box<str>]>);

/// Why a path string is not a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath(pub String);

impl Path {
    /// Parses `a.b.c`; every segment must be non-empty.
    ///
    /// # Errors
    /// An empty path or an empty segment (`a..b`, `.a`, `a.`).
    pub fn parse(s: &str) -> Result<Path, BadPath> {
        if s.is_empty() {
            return Err(BadPath("a field path cannot be empty".into()));
        }
        let segs: Vec<Box<str>> = s.split('.').map(Box::from).collect();
        if segs.iter().any(|seg| seg.is_empty()) {
            return Err(BadPath(format!(
                "field path `{s}` has an empty segment (`a..b`, a leading or a trailing dot)"
            )));
        }
        Ok(Path(segs.into_boxed_slice()))
    }

    /// The first segment: the top-level key this path lives under.
    pub fn head(&self) -> &str {
        &self.0[0]
    }

    /// Whether this path, written with dots, is `s` (no allocation).
    pub fn is(&self, s: &str) -> bool {
        let mut rest = s;
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                match rest.strip_prefix('.') {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            match rest.strip_prefix(&**seg) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }

    /// Number of segments.
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// Whether `self` is `other` or lies inside it (or the reverse): the two would collide.
    pub fn overlaps(&self, other: &Path) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a == b)
    }

    /// The value at this path, if every parent is an object and the leaf exists.
    pub fn get<'a>(&self, obj: &'a Map<String, Value>) -> Option<&'a Value> {
        let (last, parents) = self.0.split_last()?;
        let mut cur = obj;
        for seg in parents {
            cur = cur.get(&**seg)?.as_object()?;
        }
        cur.get(&**last)
    }

    /// Removes and returns the value at this path; parents emptied by the removal are
    /// removed too, so what is left of `obj` is exactly what was not taken.
    pub fn take(&self, obj: &mut Map<String, Value>) -> Option<Value> {
        take_in(obj, &self.0)
    }

    /// Inserts `value` at this path, creating parent objects; a non-object parent is
    /// replaced by an object.
    pub fn insert(&self, obj: &mut Map<String, Value>, value: Value) {
        insert_in(obj, &self.0, value);
    }

    /// Inserts only when nothing is at the path yet.
    pub fn insert_if_absent(&self, obj: &mut Map<String, Value>, value: impl FnOnce() -> Value) {
        if self.get(obj).is_none() {
            self.insert(obj, value());
        }
    }
}

fn insert_in(obj: &mut Map<String, Value>, segs: &[Box<str>], value: Value) {
    match segs {
        [] => {}
        [leaf] => {
            // Replace in place when present: no new key is allocated.
            match obj.get_mut(&**leaf) {
                Some(slot) => *slot = value,
                None => {
                    obj.insert(String::from(&**leaf), value);
                }
            }
        }
        [head, rest @ ..] => {
            if !obj.get(&**head).is_some_and(Value::is_object) {
                obj.insert(String::from(&**head), Value::Object(Map::new()));
            }
            if let Some(Value::Object(child)) = obj.get_mut(&**head) {
                insert_in(child, rest, value);
            }
        }
    }
}

fn take_in(obj: &mut Map<String, Value>, segs: &[Box<str>]) -> Option<Value> {
    match segs {
        [] => None,
        [leaf] => obj.remove(&**leaf),
        [head, rest @ ..] => {
            let child = obj.get_mut(&**head)?.as_object_mut()?;
            let taken = take_in(child, rest)?;
            if child.is_empty() {
                obj.remove(&**head);
            }
            Some(taken)
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(seg)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn parse_rejects_empty_segments() {
        assert!(Path::parse("").is_err());
        assert!(Path::parse("a..b").is_err());
        assert!(Path::parse(".a").is_err());
        assert!(Path::parse("a.").is_err());
        assert_eq!(Path::parse("a.b").map(|p| p.depth()), Ok(2));
    }

    #[test]
    fn take_prunes_emptied_parents_only() {
        let mut m = obj(json!({"message": {"id": 1, "user": {"id": 2}}, "keep": {}}));
        let p = Path::parse("message.user.id").unwrap();
        assert_eq!(p.take(&mut m), Some(json!(2)));
        assert_eq!(
            Value::Object(m.clone()),
            json!({"message": {"id": 1}, "keep": {}})
        );
        let p = Path::parse("message.id").unwrap();
        assert_eq!(p.take(&mut m), Some(json!(1)));
        assert_eq!(Value::Object(m), json!({"keep": {}}));
    }

    #[test]
    fn insert_creates_parents() {
        let mut m = Map::new();
        Path::parse("a.b.c").unwrap().insert(&mut m, json!(1));
        Path::parse("a.d").unwrap().insert(&mut m, json!(2));
        assert_eq!(Value::Object(m), json!({"a": {"b": {"c": 1}, "d": 2}}));
    }

    #[test]
    fn is_compares_dotted_text() {
        let p = Path::parse("message.status").unwrap();
        assert!(p.is("message.status"));
        assert!(!p.is("message.statu") && !p.is("message") && !p.is("message.status.x"));
    }

    #[test]
    fn overlap() {
        let a = Path::parse("message").unwrap();
        let b = Path::parse("message.id").unwrap();
        let c = Path::parse("messageId").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }
}
