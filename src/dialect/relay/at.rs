//! Looking canonical fields up in what a frame gave the relay: a selector value, a
//! field rule's slot, a passthrough payload key's slot, or the source rule's default,
//! in the general decoder's order. A slot's value is lent, not copied.

use super::super::decode::resolve_default;
use super::super::plan::DefaultValue;
use super::Source;
use super::val::Val;
use crate::event::Meta;
use serde_json::Map;

/// The values a frame gave, for looking canonical fields up.
pub(super) struct At<'v, 'a> {
    /// Per source field rule, then per named key: the value the frame had.
    pub slots: &'v [Option<Val<'a>>],
    pub meta: &'v Meta,
}

/// A value found: lent from a slot, or made (a constant, a default).
pub(super) enum Got<'v, 'a> {
    Slot(&'v Val<'a>),
    Made(Val<'a>),
}

impl<'a> Got<'_, 'a> {
    pub(super) fn val(&self) -> &Val<'a> {
        match self {
            Got::Slot(v) => v,
            Got::Made(v) => v,
        }
    }

    pub(super) fn into_val(self) -> Val<'a> {
        match self {
            Got::Slot(v) => v.clone(),
            Got::Made(v) => v,
        }
    }
}

impl<'v, 'a> At<'v, 'a> {
    /// Canonical field `s`'s value, when the event has one.
    pub(super) fn get(&self, s: &Source<'a>) -> Option<Got<'v, 'a>> {
        if let Some(v) = s.set {
            return Some(Got::Made(Val::Ref(v)));
        }
        let slot = |i: Option<usize>| match i.and_then(|i| self.slots.get(i)) {
            Some(Some(v)) => Some(v),
            _ => None,
        };
        if let Some(v) = slot(s.op).or_else(|| slot(s.named)) {
            return Some(Got::Slot(v));
        }
        default_val(s.default?, self.meta).map(Got::Made)
    }

    /// Whether canonical field `s` has a value other than `null`.
    pub(super) fn present(&self, s: &Source<'a>) -> bool {
        self.get(s).is_some_and(|v| !v.val().is_null())
    }
}

/// A default's value, as the general decoder resolves it.
pub(super) fn default_val<'a>(dv: &'a DefaultValue, meta: &Meta) -> Option<Val<'a>> {
    match dv {
        DefaultValue::Const(v) => Some(Val::Ref(v)),
        _ => resolve_default(dv, meta, &Map::new()).map(Val::owned),
    }
}
