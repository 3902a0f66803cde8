//! Property: the relay (frame to frame, no canonical event) writes exactly the bytes the
//! general path (`decode → Event → encode`) writes, or gives the frame to the general
//! path: on every example of every dialect into every other dialect, and on random
//! frames made from them (values replaced by escaped strings, floats, `-0`, big
//! integers, unsorted and repeated keys, nested objects, whitespace; keys added and
//! dropped; names swapped between examples; frames of the wrong shape). The relay also
//! covers the events the benchmarks translate. Likewise every event those frames decode
//! into is written by every dialect's compiled rules (what the hub sends) exactly as by
//! the payload tree.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;
use switchboard::dialect::translate::{Side, Translator};
use switchboard::dialect::{Direction, Framing};

use crate::common::{DIALECTS, examples, registry};

include!("../../benches/shared/cases.rs");

/// Both paths on one frame, with the same random ids.
fn both(from: &str, to: &str, dir: Option<Direction>, frame: &[u8]) -> (String, String, bool) {
    let reg = registry();
    let side = |n| Side::named(reg, n).expect("dialect");
    let fast = Translator::new(reg, side(from), side(to), dir);
    let general = Translator::new(reg, side(from), side(to), dir).general();
    let run = |tr: &Translator<'_>| {
        fastrand::seed(7);
        let mut out = Vec::new();
        match tr.translate(frame, &mut out) {
            Ok(_) => String::from_utf8_lossy(&out).into_owned(),
            Err(e) => format!("error: {e}"),
        }
    };
    let mut relayed = Vec::new();
    fastrand::seed(7);
    let covered = fast.relay(frame, &mut relayed);
    let (mut a, mut b) = (run(&fast), run(&general));
    // The clock may tick between two runs under load: a difference counts only if it
    // stays over ten tries.
    for _ in 0..10 {
        if a == b {
            break;
        }
        (a, b) = (run(&fast), run(&general));
    }
    (a, b, covered)
}

/// The events `frame` decodes into, written by every dialect in both directions: the
/// compiled rules (`encode_frame`) write exactly what the payload tree writes, or the
/// same error.
fn emits_alike(from: &str, frame: &[u8]) -> Result<(), TestCaseError> {
    let reg = registry();
    let side = Side::named(reg, from).expect("dialect");
    let Ok((events, _)) = Translator::new(reg, side, Side::Canonical, None)
        .general()
        .decode(frame)
    else {
        return Ok(());
    };
    for ev in &events {
        for to in DIALECTS {
            let d = reg.dialect(to).expect("dialect");
            for dir in [Direction::Up, Direction::Down] {
                let (mut fast, mut tree) = (Vec::new(), Vec::new());
                let a = d
                    .encode_frame(ev, dir, &mut fast)
                    .map_err(|e| e.to_string());
                let b = d
                    .encode_frame_tree(ev, dir, &mut tree)
                    .map_err(|e| e.to_string());
                prop_assert_eq!(
                    (a, String::from_utf8_lossy(&fast)),
                    (b, String::from_utf8_lossy(&tree)),
                    "{} written by {} ({:?}) from {}",
                    ev.name,
                    to,
                    dir,
                    String::from_utf8_lossy(frame)
                );
            }
        }
    }
    Ok(())
}

/// Every other dialect as the target: `(relayed, translated)` counts; and the decoded
/// events written by every dialect's compiled rules as by the payload tree.
fn check(
    from: &str,
    frame: &[u8],
    dirs: &[Option<Direction>],
) -> Result<(usize, usize), TestCaseError> {
    emits_alike(from, frame)?;
    let (mut covered, mut translated) = (0, 0);
    for to in DIALECTS.iter().filter(|t| **t != from) {
        for &dir in dirs {
            let (fast, general, c) = both(from, to, dir, frame);
            prop_assert_eq!(
                &fast,
                &general,
                "{} → {} ({:?}) on {}",
                from,
                to,
                dir,
                String::from_utf8_lossy(frame)
            );
            covered += usize::from(c);
            translated += usize::from(!general.starts_with("error: "));
        }
    }
    Ok((covered, translated))
}

#[test]
fn every_example_into_every_dialect_is_the_general_paths_bytes() {
    let (mut covered, mut total) = (0, 0);
    for from in DIALECTS {
        for (dir, frame) in examples(from) {
            let text = frame.to_string();
            let (c, t) = check(from, text.as_bytes(), &[None, Some(dir)]).expect("same bytes");
            covered += c;
            total += t;
        }
    }
    // Most translations take the relay (events read by their shape, split lists, name
    // templates and selectors stay on the general path).
    eprintln!("the relay covered {covered} of {total} translations");
    assert!(
        covered * 2 >= total,
        "the relay covered {covered} of {total}"
    );
}

#[test]
fn the_benchmarked_events_take_the_relay() {
    let reg = registry();
    for (from, to, frame) in CASES {
        let tr = Translator::new(
            reg,
            Side::named(reg, from).expect("dialect"),
            Side::named(reg, to).expect("dialect"),
            None,
        );
        let mut out = Vec::new();
        assert!(tr.relay(frame.as_bytes(), &mut out), "{from} → {to}");
        let (fast, general, _) = both(from, to, None, frame.as_bytes());
        assert_eq!(fast, general);
    }
}

/// JSON texts that serde_json would not write back as they are, and plain ones.
fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,10}".prop_map(|s| Value::String(s).to_string()),
        "[a-z]{0,6}".prop_map(|s| format!("\"{s}\"")),
        Just(r#""es\"caped""#.to_string()),
        Just(r#""\u00e9t\u00e9""#.to_string()),
        Just(r#""a\/b""#.to_string()),
        Just("-0".to_string()),
        Just("1.0".to_string()),
        Just("1e3".to_string()),
        Just("12345678901234567890".to_string()),
        Just("-9223372036854775809".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| Value::from(f).to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("[]".to_string()),
        Just("[ ]".to_string()),
        Just("{}".to_string()),
        Just(r#"{"b":1,"a":2}"#.to_string()),
        Just(r#"{"a":1,"a":2}"#.to_string()),
        Just(r#"["x","y"]"#.to_string()),
        Just("[1, 2.5]".to_string()),
        Just(r#"[{"url":"u","type":"image"},{"url":"v"}]"#.to_string()),
        Just(r#"{"url":"u","width":3}"#.to_string()),
        Just(r#""TEXT""#.to_string()),
        Just(r#""IMAGE""#.to_string()),
        Just(r#""2024-01-15T10:30:00.000Z""#.to_string()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,5}",
        prop::sample::select(vec![
            "conversationId",
            "messageId",
            "content",
            "kind",
            "attachments",
            "createdAt",
            "senderId",
            "replyToId",
            "clientRef",
            "status",
            "userId",
            "fileUrl",
            "contentMeta",
            "type",
            "id",
            "message",
        ])
        .prop_map(String::from),
    ]
}

/// How to change one example.
#[derive(Debug, Clone)]
struct Change {
    pick: Index,
    name_from: Option<Index>,
    replace: Vec<(Index, String)>,
    drop: Vec<Index>,
    add: Vec<(String, String)>,
    repeat: Option<Index>,
    order: Vec<Index>,
    spaces: bool,
    frame_shape: u8,
}

fn change() -> impl Strategy<Value = Change> {
    (
        any::<Index>(),
        prop::option::weighted(0.2, any::<Index>()),
        prop::collection::vec((any::<Index>(), value_text()), 0..3),
        prop::collection::vec(any::<Index>(), 0..2),
        prop::collection::vec((key(), value_text()), 0..3),
        prop::option::weighted(0.2, any::<Index>()),
        prop::collection::vec(any::<Index>(), 0..6),
        any::<bool>(),
        0u8..12,
    )
        .prop_map(
            |(pick, name_from, replace, drop, add, repeat, order, spaces, frame_shape)| Change {
                pick,
                name_from,
                replace,
                drop,
                add,
                repeat,
                order,
                spaces,
                frame_shape,
            },
        )
}

/// An object's text from `(key, value text)` entries, changed as `c` says; nested
/// objects are changed too.
fn object_text(obj: &serde_json::Map<String, Value>, c: &Change, depth: usize) -> String {
    let mut entries: Vec<(String, String)> = obj
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::Object(inner) if depth == 0 => object_text(inner, c, 1),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    if depth == 0 {
        for (i, v) in &c.replace {
            if !entries.is_empty() {
                let n = i.index(entries.len());
                entries[n].1 = v.clone();
            }
        }
        for i in &c.drop {
            if !entries.is_empty() {
                entries.remove(i.index(entries.len()));
            }
        }
        entries.extend(c.add.iter().cloned());
        if let Some(i) = &c.repeat
            && !entries.is_empty()
        {
            let e = entries[i.index(entries.len())].clone();
            entries.push((e.0, "\"again\"".into()));
        }
    }
    for (n, i) in c.order.iter().enumerate() {
        if entries.len() > 1 {
            let a = n % entries.len();
            let b = i.index(entries.len());
            entries.swap(a, b);
        }
    }
    let (colon, comma) = if c.spaces { (": ", " , ") } else { (":", ",") };
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}{colon}{v}", Value::String(k.clone())))
        .collect();
    format!("{{{}}}", body.join(comma))
}

/// The frame of `framing` around a name and a payload text, in one of several shapes.
fn frame_text(framing: Framing, name: &str, payload: &str, shape: u8) -> String {
    let name = Value::String(name.to_string()).to_string();
    match framing {
        Framing::SocketIo => match shape {
            0 => format!("[{name}]"),
            1 => format!("[{name},{payload},1]"),
            2 => format!("[{name},null]"),
            3 => format!("[ {name} , {payload} ]"),
            _ => format!("[{name},{payload}]"),
        },
        Framing::Envelope => match shape {
            0 => format!(r#"{{"data":{payload},"event":{name}}}"#),
            1 => format!(r#"{{"event":{name},"data":null}}"#),
            2 => format!(r#"{{"event":{name},"traceId":7,"data":{payload}}}"#),
            3 => format!(r#"{{"event":{name},"data":{payload},"extra":[1,{{}}]}}"#),
            4 => format!(r#"{{"event":{name}}}"#),
            5 => format!(r#"{{"event":{name},"event":{name},"data":{payload}}}"#),
            _ => format!(r#"{{"event":{name},"traceId":"t-1","data":{payload}}}"#),
        },
        Framing::Webhook => match shape {
            0 => format!(r#"{{"data":{payload},"type":{name}}}"#),
            1 => format!(r#"{{"type":{name},"timestamp":"soon","data":{payload}}}"#),
            2 => format!(r#"{{"id":"abc","type":{name},"data":{payload}}}"#),
            3 => format!(r#"{{"type":{name},"data":null}}"#),
            _ => format!(
                r#"{{"id":"evt_1","type":{name},"timestamp":"2024-01-15T10:30:00.000Z","data":{payload}}}"#
            ),
        },
    }
}

/// A name and payload of an example frame.
fn parts(framing: Framing, frame: &Value) -> (String, serde_json::Map<String, Value>) {
    let (name, payload) = match framing {
        Framing::SocketIo => (frame.get(0), frame.get(1)),
        Framing::Envelope => (frame.get("event"), frame.get("data")),
        Framing::Webhook => (frame.get("type"), frame.get("data")),
    };
    let name = name.and_then(Value::as_str).unwrap_or_default().to_string();
    let payload = payload
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    (name, payload)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn random_frames_give_the_general_paths_bytes(d in any::<Index>(), c in change()) {
        let from = DIALECTS[d.index(DIALECTS.len())];
        let framing = registry().dialect(from).expect("dialect").framing;
        let all = examples(from);
        let (dir, frame) = &all[c.pick.index(all.len())];
        let (mut name, payload) = parts(framing, frame);
        if let Some(i) = &c.name_from {
            name = parts(framing, &all[i.index(all.len())].1).0;
        }
        let text = frame_text(framing, &name, &object_text(&payload, &c, 0), c.frame_shape);
        check(from, text.as_bytes(), &[None, Some(*dir)])?;
    }
}

/// One byte-level edit of a frame's text.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to JSON most of the time, any byte some of the time.
    let byte = prop_oneof![
        3 => prop::sample::select(b"\"\\{}[],:0-9.eE tfn\x00\x1f\xc3\xa9\xff".to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<Index>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
        any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let at = |i: &Index, len: usize| i.index(len.max(1)).min(len);
    match e {
        Edit::Replace(i, b) if !bytes.is_empty() => {
            let n = i.index(bytes.len());
            bytes[n] = *b;
        }
        Edit::Insert(i, b) => {
            let n = at(i, bytes.len() + 1);
            bytes.insert(n, *b);
        }
        Edit::Delete(i) if !bytes.is_empty() => {
            bytes.remove(i.index(bytes.len()));
        }
        Edit::Truncate(i) => bytes.truncate(at(i, bytes.len())),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Arbitrary bytes, and examples with arbitrary byte edits: the relay never panics,
    /// and whatever it writes is what the general path writes (or its error).
    #[test]
    fn arbitrary_bytes_give_the_general_paths_bytes(
        d in any::<Index>(),
        pick in any::<Index>(),
        raw in prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..64)),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let from = DIALECTS[d.index(DIALECTS.len())];
        let all = examples(from);
        let (dir, frame) = &all[pick.index(all.len())];
        let bytes = match raw {
            Some(raw) => raw,
            None => {
                let mut bytes = frame.to_string().into_bytes();
                for e in &edits {
                    apply(&mut bytes, e);
                }
                bytes
            }
        };
        check(from, &bytes, &[None, Some(*dir)])?;
    }
}
