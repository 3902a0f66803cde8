//! Cross-dialect golden cases (`tests/golden.jsonl`): each kind of mapping rule, between
//! real dialect pairs. `"$any"` in an expected frame matches any value.

use serde_json::Value;
use switchboard::dialect::Direction;

fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(s), _) if s == "$any" => true,
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, ev)| a.get(k).is_some_and(|av| matches(ev, av)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| matches(x, y))
        }
        _ => expected == actual,
    }
}

#[test]
fn golden_cases() {
    let reg = crate::common::registry();
    let text = include_str!("../golden.jsonl");
    let mut failures = Vec::new();
    let mut count = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("golden line is JSON");
        count += 1;
        let name = case["case"].as_str().unwrap_or("?");
        let dir = case["dir"].as_str().and_then(Direction::parse);
        let from = case["from"].as_str().expect("from");
        let to = case["to"].as_str().expect("to");
        let got = crate::common::translate(reg, from, to, dir, &case["in"]);
        match (&got, case.get("error")) {
            (Err(e), Some(want)) if e.contains(want.as_str().unwrap_or("")) => {}
            (Ok(out), None) if matches(&case["out"], &Value::Array(out.clone())) => {}
            _ => failures.push(format!("{name}: got {got:?}")),
        }
    }
    assert!(count >= 40, "at least 40 golden cases, found {count}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
