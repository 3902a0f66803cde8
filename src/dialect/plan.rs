//! Compiled mapping plans: what the loader makes of a mapping file. Every path is split,
//! every name interned and every lookup indexed here, so that decoding and encoding an
//! event parse nothing.

use super::jsontype::JsonType;
use super::layout::Layout;
use super::path::Path;
use super::vocabulary::Route;
use serde_json::Value;

use std::fmt;
use std::sync::Arc;

pub use super::first::First;

/// A hash map with a fast hasher: the per-event lookups are on short names.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Who sends an event: a client (`up`) or a server (`down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Client → server: intents.
    Up,
    /// Server → client: facts.
    Down,
}

impl Direction {
    /// Both directions, up first.
    pub const ALL: [Direction; 2] = [Direction::Up, Direction::Down];

    /// `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    /// Index into per-direction tables.
    pub fn index(self) -> usize {
        match self {
            Direction::Up => 0,
            Direction::Down => 1,
        }
    }

    /// Parses `up` or `down`.
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "up" => Some(Direction::Up),
            "down" => Some(Direction::Down),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How a dialect frames one event on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `{"event": NAME, "traceId": UUID, "data": {…}}` (raw WebSocket text frames).
    Envelope,
    /// `["NAME", {…}]` (Socket.IO event packets).
    SocketIo,
    /// `{"id": "evt_…", "type": NAME, "timestamp": ISO, "data": {…}}` (webhook bodies).
    Webhook,
}

impl Framing {
    /// The name used in mapping files.
    pub fn as_str(self) -> &'static str {
        match self {
            Framing::Envelope => "envelope",
            Framing::SocketIo => "socketio",
            Framing::Webhook => "webhook",
        }
    }

    /// Parses a framing name.
    pub fn parse(s: &str) -> Option<Framing> {
        match s {
            "envelope" => Some(Framing::Envelope),
            "socketio" => Some(Framing::SocketIo),
            "webhook" => Some(Framing::Webhook),
            _ => None,
        }
    }
}

/// A wire event name: fixed, or a template with `{field}` parameters.
#[derive(Debug, Clone)]
pub enum WireName {
    /// A fixed name.
    Exact(Arc<str>),
    /// A name with parameters, e.g. `user:{userId}:newGroup`.
    Template(Template),
}

impl WireName {
    /// The name as written in the mapping file.
    pub fn pattern(&self) -> &str {
        match self {
            WireName::Exact(s) => s,
            WireName::Template(t) => &t.source,
        }
    }
}

/// A compiled name template: literal pieces between parameters.
#[derive(Debug, Clone)]
pub struct Template {
    /// As written.
    pub source: Arc<str>,
    /// `lits[0] {params[0]} lits[1] {params[1]} … lits[n]`; `lits.len() == params.len() + 1`.
    pub lits: Vec<Box<str>>,
    /// Parameter names: top-level wire fields.
    pub params: Vec<Box<str>>,
}

impl Template {
    /// Matches `name`, returning the parameter values in order. Parameters are non-empty
    /// and, except the last, shortest-match.
    pub fn matches<'a>(&self, name: &'a str) -> Option<Vec<&'a str>> {
        let mut rest = name.strip_prefix(&*self.lits[0])?;
        let mut out = Vec::with_capacity(self.params.len());
        for (i, lit) in self.lits[1..].iter().enumerate() {
            let last = i + 2 == self.lits.len();
            let end = if lit.is_empty() {
                if last { rest.len() } else { return None }
            } else if last {
                if !rest.ends_with(&**lit) {
                    return None;
                }
                rest.len() - lit.len()
            } else {
                rest.find(&**lit)?
            };
            if end == 0 {
                return None;
            }
            out.push(&rest[..end]);
            rest = &rest[end + lit.len()..];
        }
        rest.is_empty().then_some(out)
    }

    /// Renders the name from parameter values in order.
    pub fn render(&self, values: &[String]) -> String {
        let mut s = String::from(&*self.lits[0]);
        for (v, lit) in values.iter().zip(&self.lits[1..]) {
            s.push_str(v);
            s.push_str(lit);
        }
        s
    }
}

/// One field rule: a wire path ⇄ a canonical path.
#[derive(Debug, Clone)]
pub struct FieldOp {
    /// Where it is on the wire.
    pub wire: Path,
    /// Where it is in the canonical body.
    pub canon: Path,
    /// The type the wire value must have.
    pub ty: JsonType,
    /// Decoding fails when absent.
    pub required: bool,
    /// Enum value map, wire → canonical.
    pub values: Option<ValueMap>,
    /// The wire value is an array, one canonical event per element (`split`).
    pub split: bool,
    /// The wire value is the first item of a canonical list (`first`): a single file URL
    /// or media object of a dialect ⇄ the canonical attachment list.
    pub first: Option<First>,
    /// No later field rule of the same rule reads this canonical path: an owning encoder
    /// may move the value instead of cloning it.
    pub last_use: bool,
    /// Wire and canonical paths are the same single key (`conversationId`).
    pub same_key: bool,
}

/// A bijective enum value map.
#[derive(Debug, Clone)]
pub struct ValueMap {
    /// `(wire, canonical)` pairs.
    pub pairs: Vec<(Value, Value)>,
    /// Values the map does not list pass through unchanged.
    pub others_pass: bool,
}

impl ValueMap {
    /// Canonical value for a wire value.
    pub fn to_canon(&self, v: &Value) -> Option<&Value> {
        self.pairs.iter().find(|(w, _)| w == v).map(|(_, c)| c)
    }

    /// Wire value for a canonical value.
    pub fn to_wire(&self, v: &Value) -> Option<&Value> {
        self.pairs.iter().find(|(_, c)| c == v).map(|(w, _)| w)
    }

    /// The wire values, for error messages.
    pub fn wire_values(&self) -> String {
        let v: Vec<String> = self.pairs.iter().map(|(w, _)| w.to_string()).collect();
        v.join(", ")
    }

    /// The canonical values, for error messages.
    pub fn canon_values(&self) -> String {
        let v: Vec<String> = self.pairs.iter().map(|(_, c)| c.to_string()).collect();
        v.join(", ")
    }
}

/// A default for an absent canonical field.
#[derive(Debug, Clone)]
pub enum DefaultValue {
    /// A constant.
    Const(Value),
    /// A piece of the event's metadata.
    Meta(MetaRef),
    /// Another canonical field of the same event (`@field.reason`): where one dialect
    /// says `reason` and another `code` for the same thing.
    Field(Path),
}

/// Metadata a default can name (`@meta.at`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaRef {
    /// `@meta.id`.
    Id,
    /// `@meta.traceId`.
    TraceId,
    /// `@meta.at`: ISO-8601.
    At,
    /// `@meta.atMillis`: Unix milliseconds.
    AtMillis,
    /// `@meta.user.id`.
    UserId,
    /// `@meta.user.name`.
    UserName,
    /// `@meta.user.image`.
    UserImage,
}

impl MetaRef {
    /// Parses the part after `@`.
    pub fn parse(s: &str) -> Option<MetaRef> {
        Some(match s {
            "meta.id" => MetaRef::Id,
            "meta.traceId" => MetaRef::TraceId,
            "meta.at" => MetaRef::At,
            "meta.atMillis" => MetaRef::AtMillis,
            "meta.user.id" => MetaRef::UserId,
            "meta.user.name" => MetaRef::UserName,
            "meta.user.image" => MetaRef::UserImage,
            _ => return None,
        })
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Wire name or template.
    pub wire: WireName,
    /// Direction.
    pub dir: Direction,
    /// Canonical name (shared with the vocabulary).
    pub canonical: Arc<str>,
    /// Wire selectors: `(path, value)`.
    pub when: Vec<(Path, Value)>,
    /// Canonical selectors.
    pub sets: Vec<(Path, Value)>,
    /// Wire constants.
    pub consts: Vec<(Path, Value)>,
    /// Canonical defaults.
    pub defaults: Vec<(Path, DefaultValue)>,
    /// Field rules, in file order.
    pub fields: Vec<FieldOp>,
    /// Canonical required fields, checked after decoding: `(canonical, wire name for errors)`.
    pub required: Vec<(Path, String)>,
    /// Where the hub delivers decoded events (from the vocabulary).
    pub route: Option<Route>,
    /// Unmapped fields pass through under their own names.
    pub passthrough: bool,
    /// Canonical fields whose object values are lifted on decode (the vocabulary's
    /// `lift`), with the members lifted beside them; empty for nearly every rule.
    pub lifts: Vec<(Arc<str>, Vec<Arc<str>>)>,
    /// The wire paths of field rules 0..64 (not `split`) as a key trie, for the fast
    /// decoding path.
    pub trie: KeyTrie,
    /// Top-level canonical keys this rule maps (for passthrough on encode).
    pub canon_heads: Vec<Box<str>>,
    /// Usable for decoding.
    pub decodes: bool,
    /// Usable for encoding.
    pub encodes: bool,
    /// Line in the mapping file.
    pub line: usize,
    /// Whom the hub delivers it to beyond its audience (down rules).
    pub reach: Option<Reach>,
    /// The mapping file's note, for people.
    pub note: Option<String>,
    /// The rule compiled for writing an event straight to a frame, when it can be.
    pub(crate) emit: Option<Box<Emit>>,
}

/// One encoding rule, compiled for writing.
#[derive(Debug, Clone)]
pub(crate) struct Emit {
    // Compiled and written by `emit.rs`.
    /// The wire name, as a JSON string.
    pub(crate) name: Box<[u8]>,
    pub(crate) layout: Layout,
    /// What is written, in the general encoder's order: fields, constants, selectors.
    pub(crate) steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// The rule's field rule `op`; absent from the body, its default (by index in the
    /// rule's defaults) when it has one.
    Field { op: usize, default: Option<usize> },
    /// A constant or selector, as JSON text.
    Const(Box<[u8]>),
}

/// Whom the hub delivers an event to, for one dialect's connections, beyond the
/// audience the hub gave it: what that dialect's own server does (NexusChat's `TYPING`
/// reaches the typist too; Salala's `userStatusChanged` every client; Phase 10's
/// `messages:new` every participant's personal room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// The sender's own connections too.
    pub sender: bool,
    /// Every connection of the dialect.
    pub everyone: bool,
    /// The users listed in this canonical field (their personal rooms).
    pub users: Option<Arc<str>>,
}

/// Wire keys by nesting level: which key holds which field rule, and which key leads to
/// a nested object holding more.
#[derive(Debug, Clone, Default)]
pub struct KeyTrie {
    /// Key → index of the field rule whose wire path ends here.
    pub fields: FastMap<Box<str>, u8>,
    /// Key → the keys inside that object.
    pub children: FastMap<Box<str>, KeyTrie>,
}

impl KeyTrie {
    /// Adds field rule `index` at `path`.
    pub fn add(&mut self, path: &Path, index: u8) {
        let mut node = self;
        let segs: Vec<&str> = path.segments().collect();
        let Some((last, parents)) = segs.split_last() else {
            return;
        };
        for seg in parents {
            node = node.children.entry(Box::from(*seg)).or_default();
        }
        node.fields.insert(Box::from(*last), index);
    }
}

/// A compiled dialect.
#[derive(Debug, Clone)]
pub struct Dialect {
    /// Name (`nexus`).
    pub name: Arc<str>,
    /// The system that speaks it.
    pub system: String,
    /// Spec file.
    pub spec: Option<String>,
    /// Framing.
    pub framing: Framing,
    /// Transport, for people.
    pub transport: Option<String>,
    /// What it cannot express: canonical event (or `event.field`) → reason.
    pub lacks: Vec<(String, String)>,
    /// Its clients cope with an offset as each event's last argument: Socket.IO
    /// recovery is on by default on its routes.
    pub recovery: bool,
    /// A send the hub already took is refused (`message.failed`, `duplicate`), not
    /// confirmed again.
    pub refuses_duplicates: bool,
    /// Sends without a clientRef are de-duplicated by their content.
    pub dedupes_content: bool,
    /// Rules in file order.
    pub rules: Vec<Rule>,
    /// Per direction: exact wire name → decoding rules (in file order).
    pub(crate) decode_exact: [FastMap<Arc<str>, Vec<usize>>; 2],
    /// Per direction: templated decoding rules.
    pub(crate) decode_templates: [Vec<usize>; 2],
    /// Per direction: canonical name → encoding rules (in file order).
    pub(crate) encode_by_canon: [FastMap<Arc<str>, Vec<usize>>; 2],
}

impl Dialect {
    /// The reason this dialect gives for lacking `canonical`, if it states one.
    /// `lacks` keys may end in `.*` to cover a family (`typing.*`).
    pub fn lack_reason(&self, canonical: &str) -> Option<&str> {
        self.lacks
            .iter()
            .find(|(k, _)| match k.strip_suffix('*') {
                Some(prefix) => canonical.starts_with(prefix),
                None => k == canonical,
            })
            .map(|(_, v)| v.as_str())
    }

    /// Rules that encode `canonical` in `dir`.
    pub fn encoders(&self, canonical: &str, dir: Direction) -> impl Iterator<Item = &Rule> {
        self.encode_by_canon[dir.index()]
            .get(canonical)
            .into_iter()
            .flatten()
            .map(|&i| &self.rules[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl(lits: &[&str], params: &[&str]) -> Template {
        Template {
            source: Arc::from("t"),
            lits: lits.iter().map(|s| Box::from(*s)).collect(),
            params: params.iter().map(|s| Box::from(*s)).collect(),
        }
    }

    #[test]
    fn template_match_and_render() {
        let t = tpl(&["user:", ":newGroup"], &["userId"]);
        assert_eq!(t.matches("user:42:newGroup"), Some(vec!["42"]));
        assert_eq!(t.matches("user::newGroup"), None);
        assert_eq!(t.matches("user:42:newGroupX"), None);
        assert_eq!(t.matches("group:42:newGroup"), None);
        assert_eq!(t.render(&["7".into()]), "user:7:newGroup");
        let t = tpl(&["room:", ":", ""], &["a", "b"]);
        assert_eq!(t.matches("room:x:y:z"), Some(vec!["x", "y:z"]));
    }
}
