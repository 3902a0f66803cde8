//! Every dialect states, for every canonical event, either how it expresses it (a rule in
//! each direction the event travels) or why it cannot (`lacks` in its mapping file).

use switchboard::dialect::{Direction, EventKind};

#[test]
fn every_canonical_event_is_mapped_or_declared_lacking() {
    let reg = crate::common::registry();
    let mut gaps = Vec::new();
    for d in reg.dialects() {
        for name in &reg.vocab.order {
            let ev = reg.vocab.event(name).expect("vocabulary event");
            let dirs: &[Direction] = match ev.kind {
                EventKind::Intent => &[Direction::Up],
                EventKind::Fact => &[Direction::Down],
                EventKind::Signal => &Direction::ALL,
            };
            for &dir in dirs {
                if d.encoders(name, dir).next().is_none() && d.lack_reason(name).is_none() {
                    gaps.push(format!("{}: {name} ({dir})", d.name));
                }
            }
        }
    }
    assert!(
        gaps.is_empty(),
        "{} undeclared gaps:\n{}",
        gaps.len(),
        gaps.join("\n")
    );
}
