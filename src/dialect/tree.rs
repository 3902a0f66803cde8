//! A wire payload under construction for encoding: keys borrowed from the plan, values
//! borrowed from the event (or moved out of it), in the mapping file's order. It is
//! written as JSON directly, so encoding a frame allocates neither keys nor copies of
//! values; `into_value` gives an owned JSON value for callers that need one.

use super::path::Path;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// One node: a value, or an object being assembled.
#[derive(Debug, Clone)]
pub enum Node<'a> {
    /// A finished value.
    Leaf(Cow<'a, Value>),
    /// An object, entries in insertion order.
    Obj(Tree<'a>),
}

/// An object being assembled: entries in insertion order, keys unique.
#[derive(Debug, Clone, Default)]
pub struct Tree<'a>(Vec<(Cow<'a, str>, Node<'a>)>);

impl<'a> Tree<'a> {
    /// An object whose entries borrow `map`'s.
    pub fn borrowing(map: &'a Map<String, Value>) -> Self {
        Tree(
            map.iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Node::Leaf(Cow::Borrowed(v))))
                .collect(),
        )
    }

    /// An object owning `map`'s entries.
    pub fn owning(map: Map<String, Value>) -> Self {
        Tree(
            map.into_iter()
                .map(|(k, v)| (Cow::Owned(k), Node::Leaf(Cow::Owned(v))))
                .collect(),
        )
    }

    /// Whether the object has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a top-level key is present.
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Adds a top-level entry unless the key is present.
    pub fn insert_key_if_absent(&mut self, key: Cow<'a, str>, value: Cow<'a, Value>) {
        if !self.contains(&key) {
            self.0.push((key, Node::Leaf(value)));
        }
    }

    /// Sets the value at `path`, creating objects on the way (a non-object on the way is
    /// replaced by an object, as `Path::insert` does).
    pub fn insert(&mut self, path: &'a Path, value: Cow<'a, Value>) {
        let mut segs = path.segments().peekable();
        let mut node = self;
        while let Some(seg) = segs.next() {
            let last = segs.peek().is_none();
            let i = match node.0.iter().position(|(k, _)| k == seg) {
                Some(i) => i,
                None => {
                    node.0
                        .push((Cow::Borrowed(seg), Node::Obj(Tree::default())));
                    node.0.len() - 1
                }
            };
            let slot = &mut node.0[i].1;
            if last {
                *slot = Node::Leaf(value);
                return;
            }
            let obj = std::mem::replace(slot, Node::Obj(Tree::default()));
            *slot = Node::Obj(match obj {
                Node::Obj(t) => t,
                Node::Leaf(Cow::Borrowed(Value::Object(m))) => Tree::borrowing(m),
                Node::Leaf(Cow::Owned(Value::Object(m))) => Tree::owning(m),
                Node::Leaf(_) => Tree::default(),
            });
            let Node::Obj(t) = slot else { return };
            node = t;
        }
    }

    /// Whether something is at `path`.
    pub fn has(&self, path: &Path) -> bool {
        let mut node = self;
        let mut segs = path.segments().peekable();
        while let Some(seg) = segs.next() {
            let Some((_, n)) = node.0.iter().find(|(k, _)| k == seg) else {
                return false;
            };
            match (segs.peek().is_none(), n) {
                (true, _) => return true,
                (false, Node::Obj(t)) => node = t,
                (false, Node::Leaf(v)) => {
                    let rest: Vec<&str> = segs.collect();
                    let mut cur = v.as_ref();
                    for s in rest {
                        match cur.get(s) {
                            Some(next) => cur = next,
                            None => return false,
                        }
                    }
                    return true;
                }
            }
        }
        false
    }

    /// Removes a top-level entry and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1.into_value())
    }

    /// The object as an owned JSON value.
    pub fn into_value(self) -> Value {
        Value::Object(
            self.0
                .into_iter()
                .map(|(k, n)| (k.into_owned(), n.into_value()))
                .collect(),
        )
    }
}

impl Node<'_> {
    fn into_value(self) -> Value {
        match self {
            Node::Leaf(v) => v.into_owned(),
            Node::Obj(t) => t.into_value(),
        }
    }
}

impl Serialize for Tree<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Leaf(v) => v.serialize(s),
            Node::Obj(t) => t.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Path {
        Path::parse(s).expect("path")
    }

    #[test]
    fn builds_in_order_and_merges_objects() {
        let carried = json!({"message": {"status": "sent"}, "x": 1});
        let Value::Object(carried) = carried else {
            return;
        };
        let mut t = Tree::borrowing(&carried);
        let (a, b, c) = (p("message.id"), p("tempId"), p("x.y"));
        t.insert(&a, Cow::Owned(json!("m1")));
        t.insert(&b, Cow::Owned(json!("t")));
        t.insert(&c, Cow::Owned(json!(2)));
        assert!(t.has(&a) && t.has(&p("message.status")) && !t.has(&p("nope")));
        assert_eq!(
            serde_json::to_string(&t).ok(),
            Some(r#"{"message":{"status":"sent","id":"m1"},"x":{"y":2},"tempId":"t"}"#.into())
        );
        assert_eq!(t.remove("tempId"), Some(json!("t")));
        assert_eq!(
            t.into_value(),
            json!({"message": {"status": "sent", "id": "m1"}, "x": {"y": 2}})
        );
    }
}
