//! The canonical vocabulary (`mappings/canonical.toml`): every canonical event and field,
//! with kinds, types, required fields and routes. Dialect files are checked against it.

use super::jsontype::JsonType;
use super::source::Source;
use super::spec::VocabularyFile;
use std::collections::HashMap;
use std::sync::Arc;

/// What a canonical event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A client asks for something (`message.send`); travels up.
    Intent,
    /// A server tells that something happened (`message.created`); travels down.
    Fact,
    /// Relayed as is between peers (`call.offer`); travels both ways.
    Signal,
}

impl EventKind {
    /// The name used in the vocabulary file.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Intent => "intent",
            EventKind::Fact => "fact",
            EventKind::Signal => "signal",
        }
    }
}

/// Where the hub delivers an event, by a body field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the room named by this field.
    Room(Arc<str>),
    /// To the user named by this field.
    User(Arc<str>),
}

/// A canonical field.
#[derive(Debug, Clone)]
pub struct VocabField {
    /// Its type.
    pub ty: JsonType,
    /// What it means.
    pub doc: String,
    /// An object value's members lifted into the event's fields (see `lift` in
    /// canonical.toml).
    pub lift: Vec<Arc<str>>,
}

/// A canonical event.
#[derive(Debug, Clone)]
pub struct VocabEvent {
    /// Dot-name, shared by every rule and event that names it.
    pub name: Arc<str>,
    /// Intent, fact or signal.
    pub kind: EventKind,
    /// What it means.
    pub doc: String,
    /// Fields every decoded instance must have.
    pub required: Vec<Arc<str>>,
    /// Where the hub delivers it.
    pub route: Option<Route>,
}

/// The compiled vocabulary.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    /// Fields by name.
    pub fields: HashMap<String, VocabField>,
    /// Events by name.
    pub events: HashMap<Arc<str>, VocabEvent>,
    /// Event names in file order.
    pub order: Vec<Arc<str>>,
}

impl Vocabulary {
    /// An event by name.
    pub fn event(&self, name: &str) -> Option<&VocabEvent> {
        self.events.get(name)
    }

    /// The shared name for `name`, if it is a canonical event.
    pub fn intern(&self, name: &str) -> Option<Arc<str>> {
        self.events.get_key_value(name).map(|(k, _)| k.clone())
    }

    /// Compiles the vocabulary file; errors go to `src`.
    pub fn compile(src: &mut Source<'_>) -> Vocabulary {
        let file: VocabularyFile = match toml::from_str(src.text) {
            Ok(f) => f,
            Err(e) => {
                src.toml_error(&e);
                return Vocabulary::default();
            }
        };
        let mut v = Vocabulary::default();
        for (name, f) in file.fields {
            match JsonType::parse(f.ty.get_ref()) {
                Some(ty) => {
                    let lift = f.lift.iter().map(|l| Arc::from(l.as_str())).collect();
                    v.fields.insert(
                        name.into_inner(),
                        VocabField {
                            ty,
                            doc: f.doc,
                            lift,
                        },
                    );
                }
                None => src.error(
                    f.ty.span(),
                    "unknown-type",
                    format!(
                        "`{}` is not a type (string, number, integer, bool, object, array, \
                         string[], id, any; `?` allows null)",
                        f.ty.get_ref()
                    ),
                ),
            }
        }
        for (name, e) in file.events {
            let span = name.span();
            let name = name.into_inner();
            if name.split('.').count() < 2 || name.split('.').any(str::is_empty) {
                src.error(
                    span.clone(),
                    "canonical-name",
                    format!("canonical event `{name}` must be dot-style, like `message.created`"),
                );
            }
            let kind = match e.kind.get_ref().as_str() {
                "intent" => EventKind::Intent,
                "fact" => EventKind::Fact,
                "signal" => EventKind::Signal,
                other => {
                    src.error(
                        e.kind.span(),
                        "event-kind",
                        format!("kind `{other}` must be intent, fact or signal"),
                    );
                    EventKind::Fact
                }
            };
            let mut required = Vec::new();
            for r in e.required {
                if !v.fields.contains_key(r.get_ref()) {
                    src.error(
                        r.span(),
                        "unknown-canonical-field",
                        format!("required field `{}` is not in [fields]", r.get_ref()),
                    );
                }
                required.push(Arc::from(r.into_inner()));
            }
            let mut route = None;
            for (field, is_room) in [(e.room, true), (e.user, false)] {
                let Some(field) = field else { continue };
                if !v.fields.contains_key(field.get_ref()) {
                    src.error(
                        field.span(),
                        "unknown-canonical-field",
                        format!("route field `{}` is not in [fields]", field.get_ref()),
                    );
                }
                if route.is_some() {
                    src.error(
                        field.span(),
                        "one-route",
                        "an event routes to a room or to a user, not both",
                    );
                }
                let f = Arc::from(field.into_inner());
                route = Some(if is_room {
                    Route::Room(f)
                } else {
                    Route::User(f)
                });
            }
            let name: Arc<str> = Arc::from(name);
            v.order.push(name.clone());
            v.events.insert(
                name.clone(),
                VocabEvent {
                    name,
                    kind,
                    doc: e.doc,
                    required,
                    route,
                },
            );
        }
        v
    }
}
