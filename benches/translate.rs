//! Translation throughput, one core: `translate/*` is what `switchboard translate` and
//! the relay do with one wire frame (frame to frame where a relay covers the rule pair),
//! `general/*` the same through the canonical event (decode → Event → encode),
//! `encode/*` the encoding alone (what the hub does per delivery: an event to a frame),
//! `serde_json_baseline/*` serde_json alone (parse the frame to a Value, write it back,
//! no mapping), `sonic_rs_baseline/*` the same with sonic-rs's DOM and `hand_written/clerk→nexus` a typed serde program written for that one
//! mapping, the reference the engine is held to. After criterion, a summary measured in
//! alternating rounds prints each case's median and events/s against the goal (2 M/s)
//! and the engine's ratio to the hand-written program (goal 1.5×).
//! Run: `cargo bench --bench translate`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::hint::black_box;
use std::time::Instant;
use switchboard::dialect::Registry;
use switchboard::dialect::translate::{Side, Translator};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// `CASES`: `(from, to, typical frame)`, one per dialect, each into another dialect (the
// relay's tests check that each takes the relay).
include!("shared/cases.rs");

/// Clerk's `message:send` payload, typed.
#[derive(Deserialize)]
struct ClerkSend<'a> {
    #[serde(borrow)]
    content: Cow<'a, str>,
    #[serde(rename = "channelId", borrow)]
    channel_id: Cow<'a, str>,
    #[serde(rename = "tempId", borrow, default)]
    temp_id: Option<Cow<'a, str>>,
}

/// NexusChat's `SEND_MSG` envelope, typed.
#[derive(Serialize)]
struct NexusEnvelope<'a> {
    event: &'static str,
    #[serde(rename = "traceId")]
    trace_id: &'a str,
    data: NexusSend<'a>,
}

#[derive(Serialize)]
struct NexusSend<'a> {
    #[serde(rename = "roomId")]
    room_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "contentText")]
    content_text: &'a str,
    #[serde(rename = "clientRef", skip_serializing_if = "Option::is_none")]
    client_ref: Option<&'a str>,
}

/// The hand-written Clerk → NexusChat translation: what a team would write for this one
/// mapping with serde (borrowed strings, typed structs, a fresh trace id).
fn hand_written(frame: &[u8], out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let (name, msg): (Cow<'_, str>, ClerkSend<'_>) = serde_json::from_slice(frame)?;
    if name != "message:send" {
        return Err(serde::de::Error::custom("not message:send"));
    }
    let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let env = NexusEnvelope {
        event: "SEND_MSG",
        trace_id: id.hyphenated().encode_lower(&mut buf),
        data: NexusSend {
            room_id: &msg.channel_id,
            kind: "TEXT",
            content_text: &msg.content,
            client_ref: msg.temp_id.as_deref(),
        },
    };
    serde_json::to_writer(&mut *out, &env)?;
    out.push(b'\n');
    Ok(())
}

fn translators(reg: &Registry) -> Vec<(String, Translator<'_>, &'static str)> {
    CASES
        .iter()
        .map(|(from, to, frame)| {
            let from_side = Side::named(reg, from).expect("dialect");
            let to_side = Side::named(reg, to).expect("dialect");
            let tr = Translator::new(reg, from_side, to_side, None);
            (format!("{from}→{to}"), tr, *frame)
        })
        .collect()
}

fn translate(c: &mut Criterion) {
    let reg = match Registry::embedded() {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let cases = translators(&reg);
    let mut group = c.benchmark_group("translate");
    group.throughput(Throughput::Elements(1));
    for (name, tr, frame) in &cases {
        let mut out = Vec::with_capacity(512);
        assert!(
            tr.relay(frame.as_bytes(), &mut out),
            "{name}: the relay covers it"
        );
        group.bench_function(name.as_str(), |b| {
            b.iter(|| {
                out.clear();
                black_box(tr.translate(black_box(frame.as_bytes()), &mut out)).ok();
            })
        });
    }
    group.finish();

    let mut general = c.benchmark_group("general");
    general.throughput(Throughput::Elements(1));
    for (name, tr, frame) in &cases {
        let tr = tr.clone().general();
        let mut out = Vec::with_capacity(512);
        general.bench_function(name.as_str(), |b| {
            b.iter(|| {
                out.clear();
                black_box(tr.translate(black_box(frame.as_bytes()), &mut out)).ok();
            })
        });
    }
    general.finish();

    // What the hub does per delivery: one canonical event encoded as a target frame.
    let mut encode = c.benchmark_group("encode");
    encode.throughput(Throughput::Elements(1));
    for ((name, tr, frame), (_, to, _)) in cases.iter().zip(CASES) {
        let (events, dir) = tr.decode(frame.as_bytes()).expect("decodes");
        let ev = &events[0];
        let target = reg.dialect(to).expect("dialect");
        let mut out = Vec::with_capacity(512);
        encode.bench_function(name.as_str(), |b| {
            b.iter(|| {
                out.clear();
                black_box(target.encode_frame(black_box(ev), dir, &mut out)).ok();
            })
        });
    }
    encode.finish();

    let reference = CASES[1].2.as_bytes();
    let mut out = Vec::with_capacity(512);
    c.benchmark_group("hand_written")
        .throughput(Throughput::Elements(1))
        .bench_function("clerk→nexus", |b| {
            b.iter(|| {
                out.clear();
                black_box(hand_written(black_box(reference), &mut out)).ok();
            })
        });

    // Reference: serde_json alone (parse to a Value, write it back), no mapping.
    baseline(c, "serde_json_baseline", |frame, out| {
        let v: serde_json::Value = serde_json::from_slice(frame).expect("json");
        serde_json::to_writer(out, &v).ok();
    });
    // The DOM of a crate built for speed (issue 26 asked to measure one): sonic-rs
    // parsing the same frames into its `Value` and writing them back.
    baseline(c, "sonic_rs_baseline", |frame, out| {
        let v: sonic_rs::Value = sonic_rs::from_slice(frame).expect("json");
        sonic_rs::to_writer(out, &v).ok();
    });
}

/// A JSON library alone on the six frames: `parse_write` parses one and writes it back.
fn baseline(c: &mut Criterion, group: &str, parse_write: impl Fn(&[u8], &mut Vec<u8>)) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    for (from, _, frame) in CASES {
        let mut out = Vec::with_capacity(512);
        g.bench_function(from, |b| {
            b.iter(|| {
                out.clear();
                parse_write(black_box(frame.as_bytes()), &mut out);
                black_box(&out);
            })
        });
    }
    g.finish();
}

/// Median nanoseconds per call of each function, measured in alternating rounds so that
/// the machine's noise falls on all of them alike.
fn alternating(fs: &mut [&mut dyn FnMut()], rounds: usize, per_round: u32) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); fs.len()];
    for _ in 0..rounds {
        for (f, s) in fs.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            for _ in 0..per_round {
                f();
            }
            s.push(start.elapsed().as_nanos() as f64 / f64::from(per_round));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

/// The goals, checked in one run: every case at 2 M events/s, and the engine 1.5× the
/// hand-written program on Clerk → NexusChat.
fn summary(_: &mut Criterion) {
    let reg = match Registry::embedded() {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let cases = translators(&reg);
    let (mut a, mut b) = (Vec::with_capacity(512), Vec::with_capacity(512));
    let clerk = &cases[1];
    clerk
        .1
        .translate(clerk.2.as_bytes(), &mut a)
        .expect("translates");
    hand_written(clerk.2.as_bytes(), &mut b).expect("translates");
    // The same bytes but the random trace id.
    let cut = |v: &[u8]| {
        let s = String::from_utf8_lossy(v).into_owned();
        let at = s.find("\"data\"").unwrap_or(0);
        (s[..20].to_string(), s[at..].to_string())
    };
    assert_eq!(
        cut(&a),
        cut(&b),
        "the hand-written program writes what the engine writes"
    );

    println!("\nsummary (alternating rounds, medians):");
    println!(
        "{:<24} {:>10} {:>12} {:>8}",
        "case", "ns/event", "events/s", "≥ 2 M/s"
    );
    for (name, tr, frame) in &cases {
        let mut out = Vec::with_capacity(512);
        let mut f = || {
            out.clear();
            black_box(tr.translate(black_box(frame.as_bytes()), &mut out)).ok();
        };
        let ns = alternating(&mut [&mut f], 21, 20_000)[0];
        let rate = 1e9 / ns;
        let ok = if rate >= 2e6 { "yes" } else { "no" };
        println!("{name:<24} {ns:>10.0} {:>10.2} M {ok:>8}", rate / 1e6);
    }
    let (tr, frame) = (&clerk.1, clerk.2.as_bytes());
    let (mut o1, mut o2) = (Vec::with_capacity(512), Vec::with_capacity(512));
    let mut engine = || {
        o1.clear();
        black_box(tr.translate(black_box(frame), &mut o1)).ok();
    };
    let mut reference = || {
        o2.clear();
        black_box(hand_written(black_box(frame), &mut o2)).ok();
    };
    let ns = alternating(&mut [&mut engine, &mut reference], 31, 20_000);
    println!(
        "clerk→nexus: engine {:.0} ns, hand-written serde {:.0} ns: the engine is {:.2}× the hand-written program (goal ≥ 1.5×)",
        ns[0],
        ns[1],
        ns[1] / ns[0]
    );
}

criterion_group!(benches, translate, summary);
criterion_main!(benches);
