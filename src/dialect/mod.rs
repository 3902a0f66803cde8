//! The mapping engine: dialects defined as data (`mappings/*.toml`), validated and compiled
//! once into plans, then used to decode wire events into canonical events and encode them
//! back out. `Registry` holds the vocabulary and every dialect.

mod compile;
mod decode;
mod emit;
mod encode;
pub mod error;
mod escape;
pub mod external;
pub mod fidelity;
mod first;
mod framing;
pub mod jsontype;
mod layout;
pub mod path;
pub mod plan;
mod read;
mod relay;
pub mod report;
mod source;
mod spec;
pub mod translate;
pub mod tree;
pub mod vocabulary;

pub use decode::{DecodeContext, Decoded};
pub use encode::WireEventRef;
pub use error::{LoadError, LoadErrors, TranslateError};
pub(crate) use escape::{json_len, write_str};
pub use framing::{WireEvent, write_frame};
pub use plan::{Dialect, Direction, Framing};
pub use read::parse_frame;
pub use vocabulary::{EventKind, Route, Vocabulary};

use include_dir::{Dir, include_dir};
use source::Source;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// The mapping files shipped with the binary (the repository's `mappings/`).
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/mappings");

/// The vocabulary file's name inside a mappings directory.
pub const VOCABULARY_FILE: &str = "canonical.toml";

/// Every dialect, compiled, with the vocabulary they share.
#[derive(Debug, Clone)]
pub struct Registry {
    /// The canonical vocabulary.
    pub vocab: Vocabulary,
    dialects: Vec<Dialect>,
    /// Per canonical event: the dialects whose rule for it reaches beyond the hub's
    /// audience (`reach`), and how.
    reach: plan::FastMap<Arc<str>, Vec<(Arc<str>, plan::Reach)>>,
}

impl Registry {
    /// The mapping files embedded in the binary.
    ///
    /// # Errors
    /// Only if the shipped files are broken (the test suite keeps them valid).
    pub fn embedded() -> Result<Registry, LoadErrors> {
        let files: Vec<(PathBuf, String)> = EMBEDDED
            .files()
            .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
            .map(|f| {
                let text = f.contents_utf8().unwrap_or_default().to_string();
                (PathBuf::from("mappings").join(f.path()), text)
            })
            .collect();
        Registry::from_sources(&files)
    }

    /// Every `*.toml` file in `dir` (`canonical.toml` is the vocabulary).
    ///
    /// # Errors
    /// The directory cannot be read, or any file has errors: all of them are returned.
    pub fn load_dir(dir: &FsPath) -> Result<Registry, LoadErrors> {
        let io_err = |file: &FsPath, e: std::io::Error| {
            LoadErrors(vec![LoadError {
                file: file.to_path_buf(),
                line: 0,
                column: 0,
                rule: "io",
                message: e.to_string(),
            }])
        };
        let mut files = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| io_err(dir, e))?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
                files.push((path, text));
            }
        }
        files.sort();
        Registry::from_sources(&files)
    }

    /// Compiles mapping files given as `(path, text)`.
    ///
    /// # Errors
    /// Every error in every file, with file, line and rule.
    pub fn from_sources(files: &[(PathBuf, String)]) -> Result<Registry, LoadErrors> {
        let mut errors = Vec::new();
        let is_vocab = |p: &PathBuf| p.file_name().is_some_and(|n| n == VOCABULARY_FILE);
        let vocab = match files.iter().find(|(p, _)| is_vocab(p)) {
            Some((path, text)) => {
                let mut src = Source::new(path, text);
                let v = Vocabulary::compile(&mut src);
                errors.append(&mut src.errors);
                v
            }
            None => {
                errors.push(LoadError {
                    file: PathBuf::from(VOCABULARY_FILE),
                    line: 0,
                    column: 0,
                    rule: "vocabulary",
                    message: format!(
                        "the mappings need a {VOCABULARY_FILE} declaring the canonical vocabulary"
                    ),
                });
                Vocabulary::default()
            }
        };
        let mut dialects: Vec<Dialect> = Vec::new();
        for (path, text) in files.iter().filter(|(p, _)| !is_vocab(p)) {
            let mut src = Source::new(path, text);
            if let Some(d) = compile::compile_dialect(&mut src, &vocab) {
                if d.name.as_ref() == "canonical" {
                    src.file_error(
                        "dialect-name",
                        "`canonical` is reserved for the canonical form",
                    );
                }
                dialects.push(d);
            }
            errors.append(&mut src.errors);
        }
        if errors.is_empty() {
            dialects.sort_by(|a, b| a.name.cmp(&b.name));
            let mut reach: plan::FastMap<Arc<str>, Vec<(Arc<str>, plan::Reach)>> =
                plan::FastMap::default();
            for d in &dialects {
                for r in &d.rules {
                    if let Some(x) = r
                        .reach
                        .as_ref()
                        .filter(|_| r.encodes && r.dir == Direction::Down)
                    {
                        let list = reach.entry(r.canonical.clone()).or_default();
                        if !list.iter().any(|(n, y)| *n == d.name && y == x) {
                            list.push((d.name.clone(), x.clone()));
                        }
                    }
                }
            }
            Ok(Registry {
                vocab,
                dialects,
                reach,
            })
        } else {
            Err(LoadErrors(errors))
        }
    }

    /// A dialect by name.
    pub fn dialect(&self, name: &str) -> Option<&Dialect> {
        self.dialects.iter().find(|d| &*d.name == name)
    }

    /// The dialects whose connections an event reaches beyond the hub's audience, and
    /// how (their rules' `reach`); empty for most events.
    pub fn reach(&self, canonical: &str) -> &[(Arc<str>, plan::Reach)] {
        self.reach.get(canonical).map_or(&[], Vec::as_slice)
    }

    /// Whether some rule of `dialect` reaches its connections beyond rooms (every
    /// connection, or users' personal rooms): they then listen on the dialect's channel.
    pub fn reaches_beyond_rooms(&self, dialect: &str) -> bool {
        self.reach
            .values()
            .flatten()
            .any(|(d, r)| **d == *dialect && (r.everyone || r.users.is_some()))
    }

    /// Every dialect, by name.
    pub fn dialects(&self) -> &[Dialect] {
        &self.dialects
    }

    /// The direction a canonical event travels by default: intents up, facts down,
    /// signals up.
    pub fn default_direction(&self, canonical: &str) -> Direction {
        match self.vocab.event(canonical).map(|e| e.kind) {
            Some(EventKind::Fact) => Direction::Down,
            _ => Direction::Up,
        }
    }
}
