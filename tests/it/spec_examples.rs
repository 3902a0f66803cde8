//! Every example event of the five specs decodes in its dialect and re-encodes to itself,
//! and together the examples exercise every decoding rule of every mapping file.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use switchboard::dialect::plan::WireName;

use crate::common::DIALECTS;

fn wire_name(frame: &Value) -> String {
    match frame {
        Value::Array(a) => a[0].as_str().unwrap_or_default().to_string(),
        Value::Object(o) => o
            .get("event")
            .or_else(|| o.get("type"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

#[test]
fn examples_round_trip_to_themselves() {
    let reg = crate::common::registry();
    let mut failures = Vec::new();
    for d in DIALECTS {
        for (dir, frame) in crate::common::examples(d) {
            match crate::common::translate(reg, d, d, Some(dir), &frame) {
                Ok(out) if out.len() == 1 && out[0] == frame => {}
                Ok(out) => failures.push(format!("{d} {dir}: {frame}\n   became {out:?}")),
                Err(e) => failures.push(format!("{d} {dir}: {frame}\n   failed: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn examples_cover_every_decoding_rule() {
    let reg = crate::common::registry();
    let mut missing = Vec::new();
    for d in DIALECTS {
        let dialect = reg.dialect(d).expect("dialect loads");
        let mut used = BTreeSet::new();
        for (dir, frame) in crate::common::examples(d) {
            let out = crate::common::translate(reg, d, "canonical", Some(dir), &frame)
                .unwrap_or_else(|e| panic!("{d}: {frame}: {e}"));
            for ev in out {
                let name = ev["name"].as_str().unwrap_or_default().to_string();
                used.insert((dir, wire_name(&frame), name));
            }
        }
        for r in dialect.rules.iter().filter(|r| r.decodes) {
            let covered = used.iter().any(|(dir, wire, canon)| {
                *dir == r.dir
                    && *canon == *r.canonical
                    && match &r.wire {
                        WireName::Exact(n) => **n == **wire,
                        WireName::Template(t) => t.matches(wire).is_some(),
                    }
            });
            if !covered {
                missing.push(format!(
                    "{d}:{} {} → {}",
                    r.line,
                    r.wire.pattern(),
                    r.canonical
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "rules without an example:\n{}",
        missing.join("\n")
    );
}

#[test]
fn decoded_examples_are_canonical() {
    let reg = crate::common::registry();
    let out = crate::common::translate(
        reg,
        "nexus",
        "canonical",
        None,
        &json!({"event":"SEND_MSG","traceId":"t-1","data":{"roomId":"r","contentText":"hi","x":1}}),
    )
    .expect("decodes");
    let ev = &out[0];
    assert_eq!(ev["name"], "message.send");
    assert_eq!(
        ev["body"],
        json!({"conversationId":"r","content":"hi","kind":"TEXT"})
    );
    assert_eq!(ev["meta"]["traceId"], "t-1");
    assert_eq!(ev["meta"]["target"], json!({"room":"r"}));
    assert_eq!(ev["meta"]["origin"]["dialect"], "nexus");
    assert_eq!(ev["meta"]["carried"]["fields"], json!({"x": 1}));
}
