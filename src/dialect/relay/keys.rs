//! The relay's key matcher: one object level of a source rule's keys, found by a linear
//! search on length and bytes (a rule has a handful of keys per level, where hashing
//! each key of the frame costs more than comparing it), each leading to a field rule's
//! slot, to a nested level, or (for a passthrough source) to the slot of a payload key
//! the output reads by name.

use super::super::plan::KeyTrie;

/// The keys of one object level, field rules first (as the general decoder looks them
/// up), then nested levels, then named keys.
#[derive(Debug, Clone, Default)]
pub(super) struct Keys<'a> {
    entries: Vec<(&'a str, Key<'a>)>,
}

/// What one key of a level leads to.
#[derive(Debug, Clone)]
pub(super) enum Key<'a> {
    /// The slot of field rule `n`: the value is decoded by its rule.
    Field(usize),
    /// A nested object.
    Level(Keys<'a>),
    /// Slot `n`, after the field rules' slots: a passthrough payload's key, kept as it
    /// is.
    Named(usize),
}

impl<'a> Keys<'a> {
    /// The levels of `trie`.
    pub(super) fn of(trie: &'a KeyTrie) -> Keys<'a> {
        let mut fields: Vec<(&'a str, Key<'a>)> = trie
            .fields
            .iter()
            .map(|(k, &i)| (&**k, Key::Field(usize::from(i))))
            .collect();
        // Hash order is arbitrary: a fixed order keeps the build reproducible.
        fields.sort_by(|a, b| a.0.cmp(b.0));
        let mut levels: Vec<(&'a str, Key<'a>)> = trie
            .children
            .iter()
            .map(|(k, child)| (&**k, Key::Level(Keys::of(child))))
            .collect();
        levels.sort_by(|a, b| a.0.cmp(b.0));
        fields.extend(levels);
        Keys { entries: fields }
    }

    /// Adds named key `key` at slot `slot`, unless the level already has it.
    pub(super) fn name(&mut self, key: &'a str, slot: usize) {
        if self.get(key).is_none() {
            self.entries.push((key, Key::Named(slot)));
        }
    }

    /// What `key` leads to.
    #[inline]
    pub(super) fn get(&self, key: &str) -> Option<&Key<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k.len() == key.len() && k.as_bytes() == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// The named key at `slot`, if it is one of this level's.
    pub(super) fn slot_of(&self, key: &str) -> Option<usize> {
        match self.get(key) {
            Some(Key::Named(n)) => Some(*n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::path::Path;

    #[test]
    fn fields_come_before_levels_and_names_only_fill_gaps() {
        let mut trie = KeyTrie::default();
        for (i, p) in ["a", "b.c", "d"].iter().enumerate() {
            trie.add(
                &Path::parse(p).expect("path"),
                u8::try_from(i).expect("small"),
            );
        }
        let mut keys = Keys::of(&trie);
        keys.name("a", 9);
        keys.name("e", 3);
        assert!(matches!(keys.get("a"), Some(Key::Field(0))));
        assert!(matches!(keys.get("d"), Some(Key::Field(2))));
        assert!(matches!(keys.get("e"), Some(Key::Named(3))));
        assert_eq!(keys.slot_of("e"), Some(3));
        assert_eq!(keys.slot_of("a"), None);
        let Some(Key::Level(b)) = keys.get("b") else {
            panic!("a level");
        };
        assert!(matches!(b.get("c"), Some(Key::Field(1))));
        assert!(keys.get("c").is_none());
        assert!(keys.get("").is_none());
    }
}
