//! Errors of the mapping engine: load errors (file, line, rule) and per-event translation
//! errors (a short stable code for the dialect's error event, and a readable reason).

use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// One thing wrong with a mapping file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file, as given to the loader.
    pub file: PathBuf,
    /// 1-based line (0 when the error concerns the file as a whole).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// The rule that was broken, a stable kebab-case name (`unknown-canonical-event`).
    pub rule: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        write!(f, ": [{}] {}", self.rule, self.message)
    }
}

/// Every error found while loading a set of mapping files.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} error(s) in the mapping files:", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Why one event could not be translated. The connection and the run go on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TranslateError {
    /// The input was not JSON (or nested deeper than the parser allows).
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// The input is larger than the configured limit.
    #[error("event of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Size seen (at least).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// JSON, but not in the dialect's framing.
    #[error("wrong framing for {framing}: {reason}")]
    Framing {
        /// The framing expected.
        framing: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// No rule of the dialect decodes this wire name in this direction.
    #[error("unknown event `{name}` for dialect {dialect} ({dir})")]
    UnknownEvent {
        /// Dialect name.
        dialect: String,
        /// Wire event name.
        name: String,
        /// Direction.
        dir: &'static str,
    },
    /// The wire name is known but its selector fields match no rule.
    #[error("event `{name}` of dialect {dialect}: {reason}")]
    NoVariant {
        /// Dialect name.
        dialect: String,
        /// Wire event name.
        name: String,
        /// Which selector fields did not match.
        reason: String,
    },
    /// The payload of the event is not a JSON object.
    #[error("payload of `{name}` must be a JSON object, found {found}")]
    PayloadNotObject {
        /// Wire event name.
        name: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A required field is missing.
    #[error("`{event}` is missing required field `{field}`")]
    MissingField {
        /// Event name, as the sender knows it.
        event: String,
        /// Field path, as the sender knows it.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("field `{field}` of `{event}` must be {expected}, found {found}")]
    FieldType {
        /// Event name, as the sender knows it.
        event: String,
        /// Field path, as the sender knows it.
        field: String,
        /// Expected type.
        expected: String,
        /// Type found.
        found: &'static str,
    },
    /// A field's value is not one of those its value map knows.
    #[error("field `{field}` of `{event}` cannot be {value}: expected one of {expected}")]
    BadValue {
        /// Event name.
        event: String,
        /// Field path.
        field: String,
        /// The value found (JSON text, shortened).
        value: String,
        /// The values accepted.
        expected: String,
    },
    /// The target dialect cannot express this canonical event in this direction.
    #[error("dialect {dialect} cannot express `{canonical}` ({dir}){because}")]
    Inexpressible {
        /// Target dialect.
        dialect: String,
        /// Canonical name.
        canonical: String,
        /// Direction.
        dir: &'static str,
        /// `: <reason>` from the mapping file's `lacks`, or empty.
        because: String,
    },
    /// The canonical event names no known canonical event.
    #[error("unknown canonical event `{0}`")]
    UnknownCanonical(String),
    /// No such dialect is loaded.
    #[error("unknown dialect `{0}`")]
    UnknownDialect(String),
}

impl TranslateError {
    /// A short stable code, used in dialect error events and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            TranslateError::NotJson(_) => "bad_json",
            TranslateError::TooLarge { .. } => "too_large",
            TranslateError::Framing { .. } => "bad_framing",
            TranslateError::UnknownEvent { .. } => "unknown_event",
            TranslateError::NoVariant { .. } => "unknown_variant",
            TranslateError::PayloadNotObject { .. } => "bad_payload",
            TranslateError::MissingField { .. } => "missing_field",
            TranslateError::FieldType { .. } => "bad_field_type",
            TranslateError::BadValue { .. } => "bad_value",
            TranslateError::Inexpressible { .. } => "inexpressible",
            TranslateError::UnknownCanonical(_) => "unknown_canonical",
            TranslateError::UnknownDialect(_) => "unknown_dialect",
        }
    }
}

/// The name of a JSON value's type, for error messages.
pub fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
