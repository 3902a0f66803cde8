//! Reading a configuration file: every unknown key and every bad value is reported at
//! once, each with its line and dotted key, before anything starts.

use super::Config;
use serde::de::IntoDeserializer;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(p: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path;
    let mut out = match p {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. }
        | Path::Map { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent),
    };
    match p {
        Path::Seq { index, .. } => out.push(Seg::Index(*index)),
        Path::Map { key, .. } => out.push(Seg::Key(key.clone())),
        _ => {}
    }
    out
}

fn dotted(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// 1-based line of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The span of the key at `path` (the key itself for tables, the element for arrays).
fn span_of(table: &DeTable<'_>, path: &[Seg]) -> Option<Range<usize>> {
    let (Seg::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let (key, value) = table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == first.as_str())?;
    if rest.is_empty() {
        return Some(key.span());
    }
    span_in(value, rest).or(Some(key.span()))
}

fn span_in(value: &Spanned<DeValue<'_>>, path: &[Seg]) -> Option<Range<usize>> {
    match (value.get_ref(), path.first()?) {
        (DeValue::Table(t), Seg::Key(_)) => span_of(t, path),
        (DeValue::Array(a), Seg::Index(i)) => {
            let elem = a.get(*i)?;
            if path.len() == 1 {
                Some(elem.span())
            } else {
                span_in(elem, &path[1..]).or(Some(elem.span()))
            }
        }
        _ => None,
    }
}

/// The dotted path of the innermost value whose span holds `at` (tables' spans cover
/// only their headers, so every entry is searched).
fn key_at(table: &DeTable<'_>, at: &Range<usize>) -> Option<Vec<Seg>> {
    for (k, v) in table.iter() {
        let here = vec![Seg::Key(k.get_ref().to_string())];
        if k.span().start == at.start {
            return Some(here);
        }
        if let Some(mut rest) = key_in(v, at) {
            let mut path = here;
            path.append(&mut rest);
            return Some(path);
        }
    }
    None
}

fn key_in(value: &Spanned<DeValue<'_>>, at: &Range<usize>) -> Option<Vec<Seg>> {
    match value.get_ref() {
        DeValue::Table(t) => key_at(t, at),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| {
                let mut inner = key_in(v, at)?;
                let mut path = vec![Seg::Index(i)];
                path.append(&mut inner);
                Some(path)
            })
            .or_else(|| {
                let s = value.span();
                (s.start <= at.start && at.end <= s.end).then(Vec::new)
            }),
        _ => {
            let s = value.span();
            (s.start <= at.start && at.end <= s.end).then(Vec::new)
        }
    }
}

/// Parses `text` into a configuration; on failure, every problem found, one per line.
pub(super) fn parse(text: &str) -> Result<Config, Vec<String>> {
    let doc = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        vec![format!("line {line}: not TOML: {}", e.message().trim())]
    })?;
    let mut unknown: Vec<Vec<Seg>> = Vec::new();
    let full: Result<Config, toml::de::Error> =
        serde_ignored::deserialize(doc.clone().into_deserializer(), |p| {
            unknown.push(segments(&p))
        });
    let table = doc.get_ref();
    let mut problems: Vec<(usize, String)> = unknown
        .iter()
        .map(|path| {
            let line = span_of(table, path).map_or(1, |s| line_of(text, s.start));
            (line, format!("line {line}: unknown key `{}`", dotted(path)))
        })
        .collect();
    match full {
        Ok(cfg) if problems.is_empty() => return Ok(cfg),
        Ok(_) => {}
        Err(_) => {
            // Each top-level key on its own, so that every bad section is reported.
            for (k, v) in table.iter() {
                let mut one = DeTable::new();
                one.insert(k.clone(), v.clone());
                let one = Spanned::new(doc.span(), one);
                let r: Result<Config, toml::de::Error> =
                    serde_ignored::deserialize(one.into_deserializer(), |_| {});
                if let Err(e) = r {
                    let span = e.span().unwrap_or(k.span());
                    let line = line_of(text, span.start);
                    let key = key_at(table, &span)
                        .map(|p| dotted(&p))
                        .unwrap_or_else(|| k.get_ref().to_string());
                    problems.push((
                        line,
                        format!("line {line}: `{key}`: {}", e.message().trim()),
                    ));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    Err(problems.into_iter().map(|(_, p)| p).collect())
}

impl Config {
    /// Parses TOML text without the environment (for tests and tools).
    ///
    /// # Errors
    /// Every unknown key and bad value, one per entry.
    pub fn from_toml(text: &str) -> Result<Config, Vec<String>> {
        let mut cfg = parse(text)?;
        cfg.normalize();
        let p = cfg.problems();
        if p.is_empty() { Ok(cfg) } else { Err(p) }
    }
}
