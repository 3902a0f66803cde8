//! A value as the relay holds it: a string the frame wrote without escapes (borrowed,
//! written back between quotes: serde_json escapes only quotes, backslashes and control
//! characters, and such a string has none of them), an integer, a boolean or null
//! (written as serde_json writes them), a value of the mapping plan, or an owned JSON
//! value (an array or object parsed by serde_json, a value a rule made). Nearly every
//! field of a chat event is one of the first kinds, neither copied nor allocated.

use super::super::encode::wire_value;
use super::super::escape::write_str;
use super::super::jsontype::JsonType;
use super::super::plan::FieldOp;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::LazyLock;

static A_STRING: Value = Value::String(String::new());
static A_NEGATIVE: LazyLock<Value> = LazyLock::new(|| Value::from(-1));
static A_NUMBER: LazyLock<Value> = LazyLock::new(|| Value::from(1));

/// One value on its way from the frame to the output.
#[derive(Debug, Clone)]
pub(in crate::dialect::relay) enum Val<'a> {
    /// A string without escapes, as the frame has it.
    Str(&'a str),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// `true` (two variants rather than a `bool` inside: no variant then has data in
    /// the bytes after the tag, so a move copies whole words).
    True,
    /// `false`.
    False,
    /// `null`.
    Null,
    /// A value of the plan (a constant, a value map's other side).
    Ref(&'a Value),
    /// Made or parsed here (boxed: rare, and the other cases are small).
    Owned(Box<Value>),
}

impl<'a> Val<'a> {
    /// An owned value.
    pub(super) fn owned(v: Value) -> Val<'a> {
        Val::Owned(Box::new(v))
    }

    /// Whether the value is `null`.
    pub(super) fn is_null(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Ref(v) => v.is_null(),
            Val::Owned(v) => v.is_null(),
            _ => false,
        }
    }

    /// Whether the value has type `ty`, without building it.
    pub(super) fn typed(&self, ty: JsonType) -> bool {
        match self {
            // Values of the kind, not made for the check (a made one is dropped after).
            Val::Str(_) => ty.accepts(&A_STRING),
            Val::Int(_) => ty.accepts(&A_NEGATIVE),
            Val::UInt(_) => ty.accepts(&A_NUMBER),
            Val::True | Val::False => ty.accepts(&Value::Bool(true)),
            Val::Null => ty.accepts(&Value::Null),
            Val::Ref(v) => ty.accepts(v),
            Val::Owned(v) => ty.accepts(v),
        }
    }

    /// The value as an owned JSON value.
    pub(super) fn into_value(self) -> Value {
        match self {
            Val::Str(s) => Value::String(s.to_owned()),
            Val::Int(n) => Value::from(n),
            Val::UInt(n) => Value::from(n),
            Val::True => Value::Bool(true),
            Val::False => Value::Bool(false),
            Val::Null => Value::Null,
            Val::Ref(v) => v.clone(),
            Val::Owned(v) => *v,
        }
    }

    /// Writes the value as serde_json writes it (compact).
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        // Serialising into a Vec cannot fail: every map key is a string.
        match self {
            Val::Str(s) => {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            }
            Val::Int(n) => drop(serde_json::to_writer(&mut *out, n)),
            Val::UInt(n) => drop(serde_json::to_writer(&mut *out, n)),
            Val::True => out.extend_from_slice(b"true"),
            Val::False => out.extend_from_slice(b"false"),
            Val::Null => out.extend_from_slice(b"null"),
            Val::Ref(Value::String(s)) => write_str(out, s),
            Val::Ref(v) => drop(serde_json::to_writer(&mut *out, v)),
            Val::Owned(v) => drop(serde_json::to_writer(&mut *out, &**v)),
        }
    }
}

/// A wire value decoded as the general decoder does (`map_value`); `None` declines.
pub(super) fn decode_val<'a>(op: &'a FieldOp, v: Val<'a>) -> Option<Val<'a>> {
    if let Some(map) = &op.values {
        let x = v.into_value();
        return match map.to_canon(&x) {
            Some(c) => Some(Val::Ref(c)),
            None if map.others_pass => Some(Val::owned(x)),
            None => None,
        };
    }
    if !v.typed(op.ty) {
        return None;
    }
    match &op.first {
        Some(first) => Some(Val::owned(first.wrap(v.into_value()))),
        None => Some(v),
    }
}

/// A canonical value encoded as the general encoder does; `Some(None)`: not written.
pub(super) fn encode_val<'a>(op: &'a FieldOp, v: Val<'a>) -> Option<Option<Val<'a>>> {
    match wire_value(op, Cow::Owned(v.into_value())) {
        Ok(Some(Cow::Borrowed(w))) => Some(Some(Val::Ref(w))),
        Ok(Some(Cow::Owned(x))) => Some(Some(Val::owned(x))),
        Ok(None) => Some(None),
        Err(_) => None,
    }
}
