//! Reports generated from the compiled mappings: the dialect list and the translation
//! matrix (which canonical events cross each pair of dialects, and which fields are lost),
//! as text or Markdown, so documentation is generated rather than hand-kept.

use super::Registry;
use super::plan::{Dialect, Direction, Rule};
use std::collections::BTreeSet;
use std::fmt::Write;

fn rule_label(r: &Rule) -> String {
    let mut s = r.wire.pattern().to_string();
    if !r.when.is_empty() {
        let w: Vec<String> = r.when.iter().map(|(p, v)| format!("{p}={v}")).collect();
        let _ = write!(s, "{{{}}}", w.join(","));
    }
    let _ = write!(s, " → {}", r.canonical);
    if !r.sets.is_empty() {
        let w: Vec<String> = r.sets.iter().map(|(p, v)| format!("{p}={v}")).collect();
        let _ = write!(s, "{{{}}}", w.join(","));
    }
    if !r.encodes {
        s.push_str(" (decode only)");
    } else if !r.decodes {
        s.push_str(" (encode only)");
    }
    s
}

fn rules_in(d: &Dialect, dir: Direction) -> impl Iterator<Item = &Rule> {
    d.rules.iter().filter(move |r| r.dir == dir)
}

/// `switchboard dialects`: every dialect, its framing and its events per direction.
pub fn dialects(reg: &Registry, markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        out.push_str("| dialect | system | framing | transport | events up | events down |\n");
        out.push_str("|---|---|---|---|---|---|\n");
    }
    for d in reg.dialects() {
        let up = rules_in(d, Direction::Up).count();
        let down = rules_in(d, Direction::Down).count();
        let transport = d.transport.as_deref().unwrap_or("-");
        if markdown {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {up} | {down} |",
                d.name,
                d.system,
                d.framing.as_str(),
                transport
            );
            continue;
        }
        let _ = writeln!(
            out,
            "{} — {} ({} framing, {} transport{})",
            d.name,
            d.system,
            d.framing.as_str(),
            transport,
            d.spec
                .as_deref()
                .map(|s| format!(", spec {s}"))
                .unwrap_or_default()
        );
        for dir in Direction::ALL {
            let _ = writeln!(out, "  {dir}:");
            for r in rules_in(d, dir) {
                let _ = writeln!(out, "    {}", rule_label(r));
                if let Some(note) = &r.note {
                    let _ = writeln!(out, "      ({note})");
                }
            }
        }
        for (what, why) in &d.lacks {
            let _ = writeln!(out, "  lacks {what}: {why}");
        }
    }
    out
}

/// Canonical fields a dialect's decoders produce for an event (`*` for passthrough).
fn produced(d: &Dialect, canonical: &str, dir: Direction) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for r in rules_in(d, dir).filter(|r| r.decodes && &*r.canonical == canonical) {
        s.extend(r.fields.iter().map(|f| f.canon.to_string()));
        s.extend(r.defaults.iter().map(|(p, _)| p.to_string()));
        if r.passthrough {
            s.insert("*".into());
        }
    }
    s
}

/// Canonical fields a dialect's encoders consume for an event.
fn consumed(d: &Dialect, canonical: &str, dir: Direction) -> (BTreeSet<String>, bool) {
    let mut s = BTreeSet::new();
    let mut all = false;
    for r in d.encoders(canonical, dir) {
        s.extend(r.fields.iter().map(|f| f.canon.to_string()));
        s.extend(r.sets.iter().map(|(p, _)| p.to_string()));
        all |= r.passthrough;
    }
    (s, all)
}

/// One pair's translation: `(direction, canonical, lost fields)` per event that crosses,
/// and `(direction, canonical)` per event that does not.
pub struct PairReport {
    /// Events that translate, with the canonical fields lost on the way.
    pub ok: Vec<(Direction, String, Vec<String>)>,
    /// Events `from` decodes that `to` cannot express.
    pub missing: Vec<(Direction, String)>,
}

/// Computes the translation of every event `from` decodes into `to`.
pub fn pair(from: &Dialect, to: &Dialect) -> PairReport {
    let mut ok = Vec::new();
    let mut missing = Vec::new();
    for dir in Direction::ALL {
        let mut seen = BTreeSet::new();
        for r in rules_in(from, dir).filter(|r| r.decodes) {
            if !seen.insert(r.canonical.to_string()) {
                continue;
            }
            if to.encoders(&r.canonical, dir).next().is_none() {
                missing.push((dir, r.canonical.to_string()));
                continue;
            }
            let (takes, all) = consumed(to, &r.canonical, dir);
            let lost = if all {
                Vec::new()
            } else {
                produced(from, &r.canonical, dir)
                    .into_iter()
                    .filter(|f| {
                        !takes.contains(f) && !takes.iter().any(|t| f.starts_with(&format!("{t}.")))
                    })
                    .collect()
            };
            ok.push((dir, r.canonical.to_string(), lost));
        }
    }
    PairReport { ok, missing }
}

/// `switchboard matrix`: for every ordered pair of dialects, what crosses and what is lost.
pub fn matrix(reg: &Registry, markdown: bool) -> String {
    let ds = reg.dialects();
    let mut out = String::new();
    if markdown {
        out.push_str("Events of the row's dialect that the column's dialect can express ");
        out.push_str("(translated / decoded, both directions):\n\n| from \\ to |");
        for d in ds {
            let _ = write!(out, " `{}` |", d.name);
        }
        out.push_str("\n|---|");
        for _ in ds {
            out.push_str("---|");
        }
        out.push('\n');
        for a in ds {
            let _ = write!(out, "| `{}` |", a.name);
            for b in ds {
                if a.name == b.name {
                    out.push_str(" — |");
                    continue;
                }
                let p = pair(a, b);
                let _ = write!(out, " {}/{} |", p.ok.len(), p.ok.len() + p.missing.len());
            }
            out.push('\n');
        }
        out.push('\n');
    }
    for a in ds {
        for b in ds.iter().filter(|b| b.name != a.name) {
            let p = pair(a, b);
            if markdown {
                let _ = writeln!(out, "<details><summary>{} → {}</summary>\n", a.name, b.name);
                out.push_str("| dir | canonical event | fields lost |\n|---|---|---|\n");
                for (dir, ev, lost) in &p.ok {
                    let _ = writeln!(out, "| {dir} | `{ev}` | {} |", lost.join(", "));
                }
                for (dir, ev) in &p.missing {
                    let why = b.lack_reason(ev).unwrap_or("no rule");
                    let _ = writeln!(out, "| {dir} | `{ev}` | not expressible: {why} |");
                }
                out.push_str("\n</details>\n\n");
            } else {
                let _ = writeln!(out, "{} → {}", a.name, b.name);
                for (dir, ev, lost) in &p.ok {
                    if lost.is_empty() {
                        let _ = writeln!(out, "  {dir:<4} {ev}");
                    } else {
                        let _ = writeln!(out, "  {dir:<4} {ev} (lost: {})", lost.join(", "));
                    }
                }
                for (dir, ev) in &p.missing {
                    let why = b.lack_reason(ev).unwrap_or("no rule");
                    let _ = writeln!(out, "  {dir:<4} {ev} ✗ {why}");
                }
            }
        }
    }
    out
}
