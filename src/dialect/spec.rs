//! The mapping files as written: serde models of `mappings/*.toml`, with spans kept so
//! that every later error can name its line. Nothing here is used per event; `compile`
//! turns these into plans.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// A table whose keys keep their position in the file.
pub type SpannedTable<V> = IndexMap<Spanned<String>, V>;

/// A dialect's mapping file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialectFile {
    /// What the dialect is and how it is framed.
    pub dialect: DialectHeader,
    /// The event rules, in file order.
    #[serde(default, rename = "event")]
    pub events: Vec<RawRule>,
}

/// The `[dialect]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialectHeader {
    /// The dialect's name (must equal the file's stem).
    pub name: Spanned<String>,
    /// The system that speaks it, for people.
    pub system: String,
    /// The spec it follows (file in `shared/dialects/`).
    #[serde(default)]
    pub spec: Option<String>,
    /// `envelope`, `socketio` or `webhook`.
    pub framing: Spanned<String>,
    /// `websocket`, `socketio` or `http`.
    #[serde(default)]
    pub transport: Option<String>,
    /// Canonical events (or `event.field`) this dialect cannot express, with the reason.
    #[serde(default)]
    pub lacks: SpannedTable<String>,
    /// Whether its clients are known to cope with an extra last argument on events
    /// (Socket.IO connection state recovery's offset): recovery is then on by default
    /// on its Socket.IO routes.
    #[serde(default)]
    pub recovery: bool,
    /// How a send the hub already took (the same clientRef, or content, within the
    /// window) is answered: `confirmed` (the first confirmation again, nothing
    /// broadcast; the default) or `refused` (`message.failed`, code `duplicate`).
    #[serde(default)]
    pub duplicates: Option<Spanned<String>>,
    /// Whether a send without a clientRef is de-duplicated by its content
    /// (`hub.content_dedup_window`).
    #[serde(default)]
    pub dedupe_content: bool,
}

/// One `[[event]]` rule: a wire event in one direction ⇄ a canonical event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Wire event name; `{field}` segments carry a parameter (`user:{userId}:newGroup`).
    pub wire: Spanned<String>,
    /// `up` (sent by clients), `down` (sent by servers) or `both`.
    pub dir: Spanned<String>,
    /// Canonical event name.
    pub canonical: Spanned<String>,
    /// Wire fields whose constant values select this rule, and are written on encode.
    #[serde(default)]
    pub when: SpannedTable<toml::Value>,
    /// Canonical fields this rule implies: set on decode, selecting on encode.
    #[serde(default)]
    pub sets: SpannedTable<toml::Value>,
    /// Wire constants: written on encode, dropped on decode when equal.
    #[serde(default, rename = "const")]
    pub consts: SpannedTable<toml::Value>,
    /// Canonical defaults for absent fields (both directions). `@meta.*` names metadata.
    #[serde(default)]
    pub defaults: SpannedTable<toml::Value>,
    /// Wire path → canonical path, or a table `{ to, type, required, values }`.
    #[serde(default)]
    pub fields: SpannedTable<Spanned<toml::Value>>,
    /// A wire array field: one canonical event per element.
    #[serde(default)]
    pub split: Option<Spanned<String>>,
    /// Unmapped wire fields become canonical fields of the same name, and back.
    #[serde(default)]
    pub passthrough: bool,
    /// `decode` or `encode`: the rule is used one way only (aliases).
    #[serde(default)]
    pub only: Option<Spanned<String>>,
    /// Whom the hub delivers this (down) event to beyond its audience, for this
    /// dialect's connections: `{ sender, everyone, users }`.
    #[serde(default)]
    pub reach: Option<Spanned<RawReach>>,
    /// A note for people.
    #[serde(default)]
    pub note: Option<String>,
}

/// `reach = { … }` of a rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReach {
    /// The sender's own connections too (an audience that leaves them out).
    #[serde(default)]
    pub sender: bool,
    /// Every connection of the dialect, on every instance.
    #[serde(default)]
    pub everyone: bool,
    /// The personal rooms of the users this canonical field lists.
    #[serde(default)]
    pub users: Option<String>,
}

/// The table form of a field rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldFull {
    /// Canonical path.
    pub to: String,
    /// Overrides the vocabulary's type for this wire field.
    #[serde(default, rename = "type")]
    pub ty: Option<String>,
    /// Decoding fails when absent.
    #[serde(default)]
    pub required: bool,
    /// `[[wire, canonical], …]`: an enum value map.
    #[serde(default)]
    pub values: Option<Vec<(toml::Value, toml::Value)>>,
    /// Values the map does not list pass through unchanged (`true`) or are refused.
    #[serde(default)]
    pub others_pass: bool,
    /// The wire value is the first item of the canonical list: `true` (the item itself)
    /// or a member name (`"url"`: the item's member).
    #[serde(default)]
    pub first: Option<toml::Value>,
}

/// `mappings/canonical.toml`: the canonical vocabulary.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocabularyFile {
    /// Canonical fields, by name.
    #[serde(default)]
    pub fields: SpannedTable<RawVocabField>,
    /// Canonical events, by dot-name.
    #[serde(default)]
    pub events: SpannedTable<RawVocabEvent>,
}

/// A canonical field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVocabField {
    /// JSON type: `string`, `number`, `integer`, `bool`, `object`, `array`, `string[]`,
    /// `any`; a trailing `?` allows null.
    #[serde(rename = "type")]
    pub ty: Spanned<String>,
    /// What it means.
    pub doc: String,
    /// Fields an object value carries beside its own: decoding an object lifts its
    /// member named like this field into the field, and these members into the event's
    /// fields of the same names (where the event has none): the browser's ICE candidate
    /// object `{candidate, sdpMid, sdpMLineIndex}`.
    #[serde(default)]
    pub lift: Vec<String>,
}

/// A canonical event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVocabEvent {
    /// `intent` (a client asks), `fact` (a server tells) or `signal` (relayed as is).
    pub kind: Spanned<String>,
    /// What it means.
    pub doc: String,
    /// Canonical fields every decoded event must have.
    #[serde(default)]
    pub required: Vec<Spanned<String>>,
    /// Deliver to the room named by this field.
    #[serde(default)]
    pub room: Option<Spanned<String>>,
    /// Deliver to the user named by this field.
    #[serde(default)]
    pub user: Option<Spanned<String>>,
}
