//! The translation matrix as measured: every example frame of every dialect
//! (`tests/examples/*.jsonl`, embedded) decoded, encoded into every other dialect and read
//! back by that dialect, so that what `switchboard matrix` says crosses does cross and
//! every field lost on the way is named. The fidelity tests read the same cases.

use super::decode::DecodeContext;
use super::plan::{Dialect, Direction};
use super::{Registry, TranslateError};
use crate::event::Event;
use include_dir::{Dir, include_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path as FsPath;
use thiserror::Error;

/// The example frames shipped with the binary (the repository's `tests/examples/`).
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/tests/examples");

/// One example frame of a dialect, as its system sends it.
#[derive(Debug, Clone)]
pub struct Example {
    /// The dialect's name (the file's stem).
    pub dialect: String,
    /// The line in its file, from 1.
    pub line: usize,
    /// Who sends it.
    pub dir: Direction,
    /// The frame, as JSON text.
    pub frame: String,
}

/// A line of an examples file that is not `{"dir": "up"|"down", "frame": …}`.
#[derive(Debug, Error)]
#[error("{file}:{line}: {reason}")]
pub struct ExampleError {
    /// The file.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses one examples file (`<dialect>.jsonl`: one `{"dir", "frame"}` object per line).
///
/// # Errors
/// A line that is not such an object.
pub fn parse_examples(dialect: &str, file: &str, text: &str) -> Result<Vec<Example>, ExampleError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let err = |reason: String| ExampleError {
            file: file.to_string(),
            line: i + 1,
            reason,
        };
        let v: Value = serde_json::from_str(l).map_err(|e| err(e.to_string()))?;
        let dir = v
            .get("dir")
            .and_then(Value::as_str)
            .and_then(Direction::parse)
            .ok_or_else(|| err("`dir` must be \"up\" or \"down\"".into()))?;
        let frame = v
            .get("frame")
            .ok_or_else(|| err("no `frame`".into()))?
            .to_string();
        out.push(Example {
            dialect: dialect.to_string(),
            line: i + 1,
            dir,
            frame,
        });
    }
    Ok(out)
}

/// The examples embedded in the binary.
pub fn embedded_examples() -> Vec<Example> {
    let mut files: Vec<_> = EMBEDDED
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort_by_key(|f| f.path());
    let mut out = Vec::new();
    for f in files {
        let stem = f.path().file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let text = f.contents_utf8().unwrap_or_default();
        // The test suite keeps the shipped files valid (fidelity tests).
        if let Ok(mut ex) = parse_examples(stem, &f.path().display().to_string(), text) {
            out.append(&mut ex);
        }
    }
    out
}

/// Every `<dialect>.jsonl` in `dir`.
///
/// # Errors
/// The directory or a file cannot be read, or a line is not an example.
pub fn load_examples(dir: &FsPath) -> Result<Vec<Example>, ExampleError> {
    let io = |e: std::io::Error| ExampleError {
        file: dir.display().to_string(),
        line: 0,
        reason: e.to_string(),
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(io)?;
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        out.append(&mut parse_examples(stem, &p.display().to_string(), &text)?);
    }
    Ok(out)
}

/// What became of one example in one target dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The target wrote it; read back, these fields were kept.
    Translated {
        /// The target's wire event name.
        wire: String,
        /// Fields (dotted paths, list items by index) that arrived with their value.
        kept: Vec<String>,
        /// Fields that did not arrive.
        lost: Vec<String>,
        /// Fields that arrived with another value (a timestamp's format, say).
        changed: Vec<String>,
        /// The target's reading of its own frame is another canonical event.
        reads_as: Option<String>,
    },
    /// The target cannot write it: the error `switchboard translate` prints.
    Refused(String),
}

/// One example through one target.
#[derive(Debug, Clone)]
pub struct Case {
    /// The example's dialect.
    pub from: String,
    /// Its line in the examples file.
    pub line: usize,
    /// Its direction.
    pub dir: Direction,
    /// Its wire event name.
    pub wire: String,
    /// The canonical event it decodes to.
    pub canonical: String,
    /// The target dialect.
    pub to: String,
    /// What happened.
    pub outcome: Outcome,
}

/// The matrix: every case, and the examples their own dialect could not decode.
#[derive(Debug, Default)]
pub struct Matrix {
    /// One per example and target dialect.
    pub cases: Vec<Case>,
    /// Examples that do not decode (the suite keeps this empty).
    pub undecodable: Vec<(Example, String)>,
    /// Examples of a dialect the registry does not have.
    pub unknown: Vec<Example>,
}

impl Matrix {
    /// Translates every example into every other dialect.
    pub fn compute(reg: &Registry, examples: &[Example]) -> Matrix {
        let mut m = Matrix::default();
        let ctx = DecodeContext::default();
        for ex in examples {
            let Some(from) = reg.dialect(&ex.dialect) else {
                m.unknown.push(ex.clone());
                continue;
            };
            let ev = match from.decode_frame(ex.frame.as_bytes(), Some(ex.dir), &ctx) {
                Ok(evs) => match evs.into_iter().next() {
                    Some(ev) => ev,
                    None => {
                        m.undecodable.push((ex.clone(), "no event".into()));
                        continue;
                    }
                },
                Err(e) => {
                    m.undecodable.push((ex.clone(), e.to_string()));
                    continue;
                }
            };
            let wire = wire_name(from, &ex.frame);
            for to in reg.dialects().iter().filter(|d| d.name != from.name) {
                m.cases.push(Case {
                    from: ex.dialect.clone(),
                    line: ex.line,
                    dir: ex.dir,
                    wire: wire.clone(),
                    canonical: ev.name.to_string(),
                    to: to.name.to_string(),
                    outcome: cross(&ev, to, ex.dir),
                });
            }
        }
        m
    }

    /// The cases from one dialect to another, in example order.
    pub fn pair<'a>(&'a self, from: &'a str, to: &'a str) -> impl Iterator<Item = &'a Case> {
        self.cases
            .iter()
            .filter(move |c| c.from == from && c.to == to)
    }
}

/// The wire event name of a frame, for the report (its framing's name member).
fn wire_name(d: &Dialect, frame: &str) -> String {
    let v: Value = serde_json::from_str(frame).unwrap_or(Value::Null);
    let name = match d.framing {
        super::Framing::SocketIo => v.get(0),
        super::Framing::Envelope => v.get("event"),
        super::Framing::Webhook => v.get("type"),
    };
    name.and_then(Value::as_str).unwrap_or("?").to_string()
}

/// Encodes `ev` into `to` and reads the frame back with `to`.
fn cross(ev: &Event, to: &Dialect, dir: Direction) -> Outcome {
    let mut out = Vec::new();
    if let Err(e) = to.encode_frame(ev, dir, &mut out) {
        return Outcome::Refused(e.to_string());
    }
    let wire = wire_name(to, &String::from_utf8_lossy(&out));
    let back = to
        .decode_frame(&out, Some(dir), &DecodeContext::default())
        .map_err(|e: TranslateError| e.to_string())
        .ok()
        .and_then(|evs| evs.into_iter().next());
    let mut kept = Vec::new();
    let mut lost = Vec::new();
    let mut changed = Vec::new();
    let mut reads_as = None;
    match back {
        Some(back) => {
            if back.name != ev.name {
                reads_as = Some(back.name.to_string());
            }
            let arrived = arrived(&back);
            for (path, v) in sent(ev) {
                match arrived.get(&path) {
                    Some(w) if *w == v => kept.push(path),
                    Some(_) => changed.push(path),
                    None => lost.push(path),
                }
            }
        }
        None => {
            // The target cannot read what it wrote (a rule it only encodes): what its frame
            // holds is judged by the values it carries.
            let text = String::from_utf8_lossy(&out);
            for (path, v) in sent(ev) {
                if contains_value(&text, &v) {
                    kept.push(path);
                } else {
                    lost.push(path);
                }
            }
        }
    }
    Outcome::Translated {
        wire,
        kept,
        lost,
        changed,
        reads_as,
    }
}

/// The leaves of an event: its body's fields (dotted paths, list items by index) and what
/// its dialect sent that the vocabulary has no field for (by its wire name).
fn sent(ev: &Event) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    leaves("", &Value::Object(ev.body.clone()), &mut out);
    if let Some(c) = &ev.meta.carried {
        for (k, v) in &c.fields {
            leaves(k, v, &mut out);
        }
    }
    out
}

/// What arrived, by path: body and carried fields alike (a passthrough dialect takes
/// carried fields into its body).
fn arrived(ev: &Event) -> BTreeMap<String, Value> {
    sent(ev).into_iter().collect()
}

fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, v) in o {
                leaves(&join(k), v, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                leaves(&join(&i.to_string()), v, out);
            }
        }
        _ if prefix.is_empty() => {}
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn contains_value(text: &str, v: &Value) -> bool {
    match v {
        Value::Null => true,
        other => text.contains(&other.to_string()),
    }
}

/// One translation as `switchboard translate` prints it, with the fields lost on the
/// way (the console's translate view).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Explained {
    /// The frames written, one per line as the CLI prints them.
    pub output: Vec<String>,
    /// The error the CLI prints instead, if any.
    pub error: Option<String>,
    /// The fields of the decoded event that did not arrive (by path).
    pub lost: Vec<String>,
    /// The fields that arrived with another value.
    pub changed: Vec<String>,
    /// The direction read (given, or inferred).
    pub direction: Option<&'static str>,
}

/// Translates `frame` from `from` to `to` (a dialect or `canonical`) as the CLI does,
/// naming what is lost when both are dialects.
pub fn explain(
    reg: &Registry,
    from: &str,
    to: &str,
    dir: Option<Direction>,
    frame: &[u8],
) -> Explained {
    use super::translate::{Side, Translator};
    let mut out = Explained::default();
    let (src, dst) = match (Side::named(reg, from), Side::named(reg, to)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let tr = Translator::new(reg, src, dst, dir);
    let mut buf = Vec::new();
    match tr.translate(frame, &mut buf) {
        Ok(_) => {
            out.output = String::from_utf8_lossy(&buf)
                .lines()
                .map(str::to_string)
                .collect();
        }
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    }
    if let (Side::Dialect(_), Side::Dialect(b)) = (src, dst)
        && let Ok((events, d)) = tr.decode(frame)
    {
        out.direction = Some(d.as_str());
        if let Some(ev) = events.first()
            && let Outcome::Translated { lost, changed, .. } = cross(ev, b, d)
        {
            out.lost = lost;
            out.changed = changed;
        }
    }
    out
}
