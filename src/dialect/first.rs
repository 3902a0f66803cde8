//! A wire value that stands for the first item of a canonical list: a dialect that
//! carries one file (Salala's `fileUrl`, NexusChat's `contentMeta`) and the canonical
//! `attachments` list (a field rule's `first`).

use serde_json::Value;
use std::borrow::Cow;

/// How a wire value stands for the first item of a canonical list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum First {
    /// The wire value is the item itself (NexusChat's `contentMeta` object).
    Whole,
    /// The wire value is one member of the item (Salala's `fileUrl` is its `url`).
    Member(Box<str>),
}

impl First {
    /// Decoding: the canonical list of one item made from a wire value (`null` stays).
    pub fn wrap(&self, v: Value) -> Value {
        if v.is_null() {
            return v;
        }
        match self {
            First::Whole => Value::Array(vec![v]),
            First::Member(m) => {
                let mut item = serde_json::Map::new();
                item.insert(m.to_string(), v);
                Value::Array(vec![Value::Object(item)])
            }
        }
    }

    /// Encoding: the wire value from a canonical list: its first item (or that item's
    /// member); `None` for an empty list or an item without the member, `null` for `null`.
    pub fn pick<'a>(&self, v: Cow<'a, Value>) -> Option<Cow<'a, Value>> {
        let take = |item: &Value| -> Option<Value> {
            match self {
                First::Whole => Some(item.clone()),
                First::Member(m) => item.get(&**m).cloned(),
            }
        };
        match v {
            Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null) => Some(v),
            Cow::Borrowed(Value::Array(items)) => {
                let item = items.first()?;
                match self {
                    First::Whole => Some(Cow::Borrowed(item)),
                    First::Member(m) => item.get(&**m).map(Cow::Borrowed),
                }
            }
            Cow::Owned(Value::Array(mut items)) => {
                if items.is_empty() {
                    return None;
                }
                let item = items.swap_remove(0);
                match (self, item) {
                    (First::Whole, item) => Some(Cow::Owned(item)),
                    (First::Member(m), Value::Object(mut o)) => o.remove(&**m).map(Cow::Owned),
                    _ => None,
                }
            }
            // Not a list: a single item written as is (a dialect that sent one object).
            Cow::Borrowed(other) => take(other).map(Cow::Owned),
            Cow::Owned(other) => take(&other).map(Cow::Owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_item_wraps_and_picks() {
        use serde_json::json;
        let url = First::Member("url".into());
        assert_eq!(url.wrap(json!("u")), json!([{"url": "u"}]));
        assert_eq!(url.wrap(Value::Null), Value::Null);
        assert_eq!(First::Whole.wrap(json!({"a": 1})), json!([{"a": 1}]));
        let list = json!([{"url": "u", "type": "image"}, {"url": "v"}]);
        assert_eq!(url.pick(Cow::Borrowed(&list)).as_deref(), Some(&json!("u")));
        assert_eq!(
            url.pick(Cow::Owned(list.clone())).as_deref(),
            Some(&json!("u"))
        );
        assert_eq!(
            First::Whole.pick(Cow::Owned(list)).as_deref(),
            Some(&json!({"url": "u", "type": "image"}))
        );
        assert!(url.pick(Cow::Owned(json!([]))).is_none());
        assert!(url.pick(Cow::Owned(json!([{"name": "x"}]))).is_none());
        assert_eq!(
            url.pick(Cow::Owned(Value::Null)).as_deref(),
            Some(&Value::Null)
        );
        // One item not in a list is taken as the list's first.
        assert_eq!(
            url.pick(Cow::Owned(json!({"url": "w"}))).as_deref(),
            Some(&json!("w"))
        );
    }
}
