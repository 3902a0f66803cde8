//! Field types declared in the vocabulary (`string`, `integer?`, `string[]`, …), parsed at
//! load time and checked per event without allocation.

use serde_json::Value;
use std::fmt;

/// A JSON type a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonType {
    kind: Kind,
    nullable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Any,
    String,
    Number,
    Integer,
    Bool,
    Object,
    Array,
    StringArray,
    /// A string or a number: ids some systems send as numbers.
    Id,
}

impl JsonType {
    /// Any value.
    pub const ANY: JsonType = JsonType {
        kind: Kind::Any,
        nullable: true,
    };

    /// Parses a type name; `None` when it names no type.
    pub fn parse(s: &str) -> Option<JsonType> {
        let (base, nullable) = match s.strip_suffix('?') {
            Some(b) => (b, true),
            None => (s, false),
        };
        let kind = match base {
            "any" => Kind::Any,
            "string" => Kind::String,
            "number" => Kind::Number,
            "integer" => Kind::Integer,
            "bool" => Kind::Bool,
            "object" => Kind::Object,
            "array" => Kind::Array,
            "string[]" => Kind::StringArray,
            "id" => Kind::Id,
            _ => return None,
        };
        Some(JsonType { kind, nullable })
    }

    /// The type's name as written in the vocabulary, without `?`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Any => "any",
            Kind::String => "string",
            Kind::Number => "number",
            Kind::Integer => "integer",
            Kind::Bool => "bool",
            Kind::Object => "object",
            Kind::Array => "array",
            Kind::StringArray => "string[]",
            Kind::Id => "id",
        }
    }

    /// Whether null is allowed.
    pub fn nullable(&self) -> bool {
        self.nullable
    }

    /// Whether `v` has this type.
    pub fn accepts(&self, v: &Value) -> bool {
        match (self.kind, v) {
            (Kind::Any, _) => true,
            (_, Value::Null) => self.nullable,
            (Kind::String, Value::String(_)) => true,
            (Kind::Number, Value::Number(_)) => true,
            (Kind::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Kind::Bool, Value::Bool(_)) => true,
            (Kind::Object, Value::Object(_)) => true,
            (Kind::Array, Value::Array(_)) => true,
            (Kind::StringArray, Value::Array(a)) => a.iter().all(Value::is_string),
            (Kind::Id, Value::String(_) | Value::Number(_)) => true,
            _ => false,
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.kind {
            Kind::Any => "any value",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Integer => "an integer",
            Kind::Bool => "a boolean",
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::StringArray => "an array of strings",
            Kind::Id => "a string or number id",
        };
        f.write_str(s)?;
        if self.nullable && self.kind != Kind::Any {
            f.write_str(" or null")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types() {
        let t = JsonType::parse("string?").unwrap();
        assert!(t.accepts(&json!("x")) && t.accepts(&Value::Null) && !t.accepts(&json!(1)));
        let t = JsonType::parse("integer").unwrap();
        assert!(t.accepts(&json!(3)) && !t.accepts(&json!(3.5)) && !t.accepts(&Value::Null));
        let t = JsonType::parse("string[]").unwrap();
        assert!(t.accepts(&json!(["a"])) && !t.accepts(&json!([1])));
        assert!(JsonType::parse("strin").is_none());
    }
}
