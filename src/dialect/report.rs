//! Reports generated from the compiled mappings: the dialect list and the translation
//! matrix (what each example of a dialect becomes in each other dialect, and which fields
//! are lost: computed by `fidelity`), as text or Markdown, so documentation is generated
//! rather than hand-kept.

use super::Registry;
use super::fidelity::{Case, Matrix, Outcome};
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

/// One line of a pair's report: the examples of one wire event, merged.
struct Line<'a> {
    dir: Direction,
    canonical: &'a str,
    wire: &'a str,
    targets: BTreeSet<&'a str>,
    lost: BTreeSet<&'a str>,
    changed: BTreeSet<&'a str>,
    reads_as: BTreeSet<&'a str>,
    refused: BTreeSet<&'a str>,
    translated: usize,
    examples: usize,
}

fn lines<'a>(cases: impl Iterator<Item = &'a Case>) -> Vec<Line<'a>> {
    let mut out: Vec<Line<'a>> = Vec::new();
    for c in cases {
        let i = match out
            .iter()
            .position(|l| l.dir == c.dir && l.canonical == c.canonical && l.wire == c.wire)
        {
            Some(i) => i,
            None => {
                out.push(Line {
                    dir: c.dir,
                    canonical: &c.canonical,
                    wire: &c.wire,
                    targets: BTreeSet::new(),
                    lost: BTreeSet::new(),
                    changed: BTreeSet::new(),
                    reads_as: BTreeSet::new(),
                    refused: BTreeSet::new(),
                    translated: 0,
                    examples: 0,
                });
                out.len() - 1
            }
        };
        let l = &mut out[i];
        l.examples += 1;
        match &c.outcome {
            Outcome::Translated {
                wire,
                lost,
                changed,
                reads_as,
                ..
            } => {
                l.translated += 1;
                l.targets.insert(wire);
                l.lost.extend(lost.iter().map(String::as_str));
                l.changed.extend(changed.iter().map(String::as_str));
                l.reads_as.extend(reads_as.as_deref());
            }
            Outcome::Refused(why) => {
                l.refused.insert(why);
            }
        }
    }
    out.sort_by_key(|l| (l.dir, l.refused.len() == l.examples));
    out
}

fn join(s: &BTreeSet<&str>) -> String {
    s.iter().copied().collect::<Vec<_>>().join(", ")
}

impl Line<'_> {
    /// What arrived: the target's wire names, the lost and changed fields.
    fn arrived(&self) -> String {
        let mut s = format!("{} → {}", self.wire, join(&self.targets));
        if !self.lost.is_empty() {
            let _ = write!(s, "; lost: {}", join(&self.lost));
        }
        if !self.changed.is_empty() {
            let _ = write!(s, "; changed: {}", join(&self.changed));
        }
        if !self.reads_as.is_empty() {
            let _ = write!(s, "; read back as {}", join(&self.reads_as));
        }
        s
    }
}

/// `switchboard matrix`: for every ordered pair of dialects, what each example of the
/// first becomes in the second (computed by translating it, see [`Matrix`]).
pub fn matrix(reg: &Registry, m: &Matrix, markdown: bool) -> String {
    let ds = reg.dialects();
    let mut out = String::new();
    if markdown {
        out.push_str("Examples of the row's dialect (`tests/examples/`) that translate into ");
        out.push_str("the column's dialect, both directions:\n\n| from \\ to |");
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
                let all = m.pair(&a.name, &b.name).count();
                let ok = m
                    .pair(&a.name, &b.name)
                    .filter(|c| matches!(c.outcome, Outcome::Translated { .. }))
                    .count();
                let _ = write!(out, " {ok}/{all} |");
            }
            out.push('\n');
        }
        out.push('\n');
    }
    for (ex, why) in &m.undecodable {
        let _ = writeln!(
            out,
            "example {}:{} does not decode: {why}",
            ex.dialect, ex.line
        );
    }
    for a in ds {
        if !m.cases.iter().any(|c| *c.from == *a.name) {
            let _ = writeln!(out, "{}: no examples, nothing measured", a.name);
            continue;
        }
        for b in ds.iter().filter(|b| b.name != a.name) {
            let ls = lines(m.pair(&a.name, &b.name));
            if markdown {
                let _ = writeln!(out, "<details><summary>{} → {}</summary>\n", a.name, b.name);
                out.push_str("| dir | canonical event | translation |\n|---|---|---|\n");
            } else {
                let _ = writeln!(out, "{} → {}", a.name, b.name);
            }
            for l in &ls {
                let mut cells = Vec::new();
                if l.translated > 0 {
                    cells.push(l.arrived());
                }
                if !l.refused.is_empty() {
                    cells.push(format!("{} ✗ {}", l.wire, join(&l.refused)));
                }
                for cell in cells {
                    if markdown {
                        let _ = writeln!(out, "| {} | `{}` | {cell} |", l.dir, l.canonical);
                    } else {
                        let _ = writeln!(out, "  {:<4} {} ({cell})", l.dir, l.canonical);
                    }
                }
            }
            if markdown {
                out.push_str("\n</details>\n\n");
            }
        }
    }
    out
}
