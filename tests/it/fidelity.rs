//! The cross-dialect fidelity suite: every example of `tests/examples/*.jsonl` through every
//! target dialect, translated the way `switchboard translate` does, must do exactly what
//! `switchboard matrix` says (both read `fidelity::Matrix`): fail with its reason, or
//! arrive with the fields it says are kept and without those it says are lost. Then what
//! the issue singled out: files and ICE candidates cross every dialect that can carry them.

use crate::common::{DIALECTS, examples, registry, translate};
use serde_json::Value;
use std::collections::BTreeMap;
use switchboard::dialect::fidelity::{self, Case, Matrix, Outcome};

fn matrix() -> Matrix {
    let reg = registry();
    let m = Matrix::compute(reg, &fidelity::embedded_examples());
    assert!(m.undecodable.is_empty(), "{:?}", m.undecodable);
    assert!(m.unknown.is_empty(), "{:?}", m.unknown);
    m
}

/// Leaves of a canonical event as the CLI prints it: body and carried fields by path.
fn leaves(ev: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
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
                    walk(&join(k), v, out);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, v) in a.iter().enumerate() {
                    walk(&join(&i.to_string()), v, out);
                }
            }
            _ if prefix.is_empty() => {}
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", &ev["body"], &mut out);
    walk("", &ev["meta"]["carried"]["fields"], &mut out);
    out
}

fn frame_of(c: &Case) -> Value {
    let all = examples(&c.from);
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/examples")
            .join(format!("{}.jsonl", c.from)),
    )
    .expect("examples file");
    // The case's line, counted as the file counts it (blank lines included).
    let line = text.lines().nth(c.line - 1).expect("line exists");
    let v: Value = serde_json::from_str(line).expect("example is JSON");
    assert!(all.iter().any(|(_, f)| *f == v["frame"]));
    v["frame"].clone()
}

#[test]
fn the_matrix_reads_every_example_on_disk() {
    let m = matrix();
    let on_disk: usize = DIALECTS.iter().map(|d| examples(d).len()).sum();
    let measured = m
        .cases
        .iter()
        .map(|c| (c.from.clone(), c.line))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(measured, on_disk, "every example is measured, once");
    assert_eq!(m.cases.len(), on_disk * (DIALECTS.len() - 1));
}

#[test]
fn every_example_through_every_dialect_does_what_the_matrix_says() {
    let reg = registry();
    let m = matrix();
    let mut wrong = Vec::new();
    for c in &m.cases {
        let frame = frame_of(c);
        let got = translate(reg, &c.from, &c.to, Some(c.dir), &frame);
        let at = format!("{}:{} {} → {}", c.from, c.line, c.wire, c.to);
        match (&c.outcome, got) {
            (Outcome::Refused(why), Err(e)) => {
                if !e.contains(why.as_str()) {
                    wrong.push(format!("{at}: refused with `{e}`, the matrix says `{why}`"));
                }
            }
            (Outcome::Refused(why), Ok(out)) => {
                wrong.push(format!(
                    "{at}: translated to {out:?}, the matrix says `{why}`"
                ));
            }
            (Outcome::Translated { .. }, Err(e)) => {
                wrong.push(format!(
                    "{at}: refused ({e}), the matrix says it translates"
                ));
            }
            (
                Outcome::Translated {
                    kept,
                    lost,
                    changed,
                    ..
                },
                Ok(out),
            ) => {
                let Some(first) = out.first() else {
                    wrong.push(format!("{at}: no frame written"));
                    continue;
                };
                let Ok(back) = translate(reg, &c.to, "canonical", Some(c.dir), first) else {
                    // Written by a rule the target only encodes: judged by the text.
                    let text = first.to_string();
                    let orig = translate(reg, &c.from, "canonical", Some(c.dir), &frame)
                        .expect("the example decodes");
                    let sent = leaves(&orig[0]);
                    for k in kept {
                        if !text.contains(&sent[k].to_string()) && !sent[k].is_null() {
                            wrong.push(format!("{at}: `{k}` is said kept, not in {text}"));
                        }
                    }
                    continue;
                };
                let orig = translate(reg, &c.from, "canonical", Some(c.dir), &frame)
                    .expect("the example decodes");
                let sent = leaves(&orig[0]);
                let arrived = leaves(&back[0]);
                for k in kept {
                    if arrived.get(k) != sent.get(k) {
                        wrong.push(format!(
                            "{at}: `{k}` is said kept, arrived {:?}",
                            arrived.get(k)
                        ));
                    }
                }
                for k in lost {
                    if arrived.contains_key(k) {
                        wrong.push(format!("{at}: `{k}` is said lost, arrived"));
                    }
                }
                for k in changed {
                    if arrived.get(k) == sent.get(k) || !arrived.contains_key(k) {
                        wrong.push(format!("{at}: `{k}` is said changed"));
                    }
                }
                let named = kept.len() + lost.len() + changed.len();
                if named != sent.len() {
                    wrong.push(format!(
                        "{at}: {named} fields named, {} sent ({:?})",
                        sent.len(),
                        sent.keys().collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// A pair the old rule-based matrix listed as working: it now says why it does not.
#[test]
fn a_pair_the_matrix_lists_as_working_works() {
    let m = matrix();
    let joined: Vec<&Case> = m
        .pair("chat-service", "salala")
        .filter(|c| c.canonical == "conversation.joined")
        .collect();
    assert_eq!(joined.len(), 1);
    match &joined[0].outcome {
        Outcome::Refused(why) => assert!(why.contains("userId"), "{why}"),
        other => panic!("a frame without a user cannot name Salala's event: {other:?}"),
    }
    let text = switchboard_matrix();
    assert!(
        text.contains("conversation.joined (conversation:joined ✗ `conversation.joined` is missing required field `userId`)"),
        "{text}"
    );
}

fn switchboard_matrix() -> String {
    let reg = registry();
    let m = matrix();
    switchboard::dialect::report::matrix(reg, &m, false)
}

/// Every attachment-bearing example reaches every dialect that has a place for a file with
/// its URL (Clerk and Phase 10 have none; the webhooks take `message.created` only).
#[test]
fn a_file_attached_in_any_dialect_arrives_in_every_dialect_that_can_carry_one() {
    let m = matrix();
    let carriers = ["chat-service", "nexus", "salala", "webhook"];
    let mut seen = 0;
    for c in m.cases.iter().filter(|c| carriers.contains(&c.to.as_str())) {
        let reg = registry();
        let frame = frame_of(c);
        let ev = translate(reg, &c.from, "canonical", Some(c.dir), &frame).expect("decodes");
        let Some(url) = ev[0]["body"]["attachments"][0]["url"].as_str() else {
            continue;
        };
        if c.to == "webhook" && c.canonical != "message.created" {
            continue;
        }
        seen += 1;
        match &c.outcome {
            Outcome::Translated { kept, .. } => {
                assert!(
                    kept.iter().any(|k| k == "attachments.0.url"),
                    "{}:{} → {}: {kept:?}",
                    c.from,
                    c.line,
                    c.to
                );
                let out = translate(reg, &c.from, &c.to, Some(c.dir), &frame).expect("translates");
                assert!(out[0].to_string().contains(url), "{}: {}", c.to, out[0]);
            }
            Outcome::Refused(why) => panic!("{}:{} → {}: {why}", c.from, c.line, c.to),
        }
    }
    // Up and down in Chat Service, NexusChat and Salala, each to the others and webhooks.
    assert!(seen >= 14, "{seen} crossings with a file");
    // The lists that cannot hold a file say so.
    for to in ["clerk", "phase10"] {
        let lost = m
            .cases
            .iter()
            .filter(|c| c.to == to && c.canonical == "message.created" && c.from == "nexus")
            .any(|c| matches!(&c.outcome, Outcome::Translated { lost, .. } if lost.iter().any(|l| l.starts_with("attachments"))));
        assert!(lost, "{to} names the file it drops");
    }
}

/// Every ICE candidate example crosses every dialect that relays candidates with its
/// candidate string, `sdpMid` and `sdpMLineIndex`.
#[test]
fn an_ice_candidate_crosses_every_pair_with_its_three_fields() {
    let m = matrix();
    let mut crossed = BTreeMap::new();
    for c in m
        .cases
        .iter()
        .filter(|c| c.canonical == "call.ice_candidate")
    {
        if let Outcome::Translated { kept, .. } = &c.outcome {
            for f in ["candidate", "sdpMid", "sdpMLineIndex"] {
                assert!(
                    kept.iter().any(|k| k == f),
                    "{}:{} → {}: {f} not kept: {kept:?}",
                    c.from,
                    c.line,
                    c.to
                );
            }
            *crossed.entry((c.from.clone(), c.to.clone())).or_insert(0) += 1;
        }
    }
    assert!(
        crossed.contains_key(&("salala".into(), "nexus".into())),
        "{crossed:?}"
    );
    assert!(
        crossed.contains_key(&("nexus".into(), "salala".into())),
        "{crossed:?}"
    );
    // A browser's candidate object, as a Salala client sends it, reaches every dialect
    // that relays candidates flat, with the three fields.
    let reg = registry();
    let object = serde_json::json!(["call:ice-candidate", {"targetId": "u-2", "candidate": {
        "candidate": "candidate:1 1 UDP 2122252543 192.0.2.1 54400 typ host",
        "sdpMid": "0", "sdpMLineIndex": 0}}]);
    for ((_, to), _) in crossed.iter().filter(|((from, _), _)| from == "salala") {
        let out = translate(reg, "salala", to, None, &object).expect("translates");
        let back = translate(reg, to, "canonical", None, &out[0]).expect("reads back");
        let body = &back[0]["body"];
        assert_eq!(
            body["candidate"], "candidate:1 1 UDP 2122252543 192.0.2.1 54400 typ host",
            "{to}"
        );
        assert_eq!(body["sdpMid"], "0", "{to}");
        assert_eq!(body["sdpMLineIndex"], 0, "{to}");
    }
}

/// The README's matrix is the generated one.
#[test]
fn the_readmes_matrix_is_the_computed_one() {
    let reg = registry();
    let md = switchboard::dialect::report::matrix(reg, &matrix(), true);
    let summary = md.split("<details>").next().unwrap_or_default().trim_end();
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README");
    assert!(
        readme.contains(summary),
        "README's matrix is stale: paste `switchboard matrix --markdown`'s summary:\n{summary}"
    );
}
