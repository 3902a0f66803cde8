//! The rules that keep the tree the architecture (CONTRIBUTING.md): the hub knows no
//! transport crate; no module imports a module that imports it back (among siblings and
//! among the crate's top-level modules); a file over 500 lines says in its `//!` that it
//! holds one idea.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every source file, by module path (`hub/conn`, `listen/socketio/websocket`; `hub` for
/// `hub/mod.rs`; `` for lib.rs and main.rs).
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("src").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).expect("under src").with_extension("");
            let mut m = rel.to_string_lossy().replace('\\', "/");
            if let Some(parent) = m.strip_suffix("/mod") {
                m = parent.to_string();
            }
            if m == "lib" || m == "main" {
                m = String::new();
            }
            (m, p)
        })
        .collect()
}

/// The code of a file without its unit tests.
fn code(p: &Path) -> String {
    let text = std::fs::read_to_string(p).expect("readable");
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The longest module path a `::`-path names.
fn resolve(mods: &BTreeMap<String, PathBuf>, parts: &[&str]) -> Option<String> {
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("/"))
        .find(|m| mods.contains_key(m))
}

/// Identifier-ish path segments starting at `at` in `s` (`a::b::c`).
fn path_at(s: &str, at: usize) -> Vec<&str> {
    let rest = &s[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].split("::").filter(|p| !p.is_empty()).collect()
}

/// Which modules each module imports (`crate::…`, `super::…`, `use super::{…}`).
fn imports(mods: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, p) in mods {
        let s = code(p);
        let mine: Vec<&str> = if m.is_empty() {
            Vec::new()
        } else {
            m.split('/').collect()
        };
        let parent = &mine[..mine.len().saturating_sub(1)];
        let out = edges.entry(m.clone()).or_default();
        for (at, _) in s.match_indices("crate::") {
            if let Some(t) = resolve(mods, &path_at(&s, at + 7)) {
                out.insert(t);
            }
        }
        for (at, _) in s.match_indices("super::") {
            let mut parts: Vec<&str> = parent.to_vec();
            parts.extend(path_at(&s, at + 7));
            if let Some(t) = resolve(mods, &parts) {
                out.insert(t);
            }
            // `use super::{a, b::c}`: each item.
            if s[at + 7..].starts_with('{')
                && let Some(end) = s[at..].find('}')
            {
                for item in s[at + 8..at + end].split(',') {
                    let mut parts: Vec<&str> = parent.to_vec();
                    parts.extend(item.trim().split("::").filter(|x| !x.is_empty()));
                    if let Some(t) = resolve(mods, &parts)
                        && t != parent.join("/")
                    {
                        out.insert(t);
                    }
                }
            }
        }
    }
    edges
}

fn is_ancestor(a: &str, b: &str) -> bool {
    a.is_empty() || a == b || b.starts_with(&format!("{a}/"))
}

#[test]
fn the_hub_knows_no_transport() {
    for (m, p) in modules() {
        if m == "hub" || m.starts_with("hub/") {
            let s = code(&p);
            for krate in ["socketioxide", "tungstenite", "engineioxide", "hyper"] {
                assert!(!s.contains(krate), "src/{m}.rs names {krate}");
            }
        }
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mods = modules();
    let edges = imports(&mods);
    let mut cycles = Vec::new();
    // Files that are not each other's ancestors (a parent re-exporting its children's
    // items is how Rust modules work).
    for (a, targets) in &edges {
        for b in targets {
            if is_ancestor(a, b) || is_ancestor(b, a) {
                continue;
            }
            if edges.get(b).is_some_and(|t| t.contains(a)) && a < b {
                cycles.push(format!("{a} <-> {b}"));
            }
        }
    }
    // The crate's top-level modules, as a graph: no cycle of any length.
    let top = |m: &str| m.split('/').next().unwrap_or_default().to_string();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, targets) in &edges {
        for b in targets {
            let (ta, tb) = (top(a), top(b));
            if !ta.is_empty() && !tb.is_empty() && ta != tb {
                graph.entry(ta).or_default().insert(tb);
            }
        }
    }
    fn reaches(
        graph: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for n in graph.get(from).into_iter().flatten() {
            if n == to {
                return true;
            }
            if seen.insert(n.clone()) && reaches(graph, n, to, seen) {
                return true;
            }
        }
        false
    }
    for (a, targets) in &graph {
        for b in targets {
            if reaches(&graph, b, a, &mut BTreeSet::new()) {
                cycles.push(format!("{a} -> {b} -> … -> {a}"));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn a_long_file_says_it_holds_one_idea() {
    for (m, p) in modules() {
        let text = std::fs::read_to_string(&p).expect("readable");
        if text.lines().count() <= 500 {
            continue;
        }
        let doc: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            doc.to_lowercase().contains("one idea"),
            "src/{m}.rs has {} lines: split it, or say in its //! which one idea it holds",
            text.lines().count()
        );
    }
}
