//! Translation throughput: parse one wire frame, decode it to a canonical event through the
//! compiled plan, encode it into another dialect and write the frame; one core.
//! Run: `cargo bench --bench translate`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchboard::dialect::Registry;
use switchboard::dialect::translate::{Side, Translator};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `(from, to, typical frame)`: one per dialect, each into another dialect.
const CASES: [(&str, &str, &str); 6] = [
    (
        "nexus",
        "clerk",
        r#"{"event":"SEND_MSG","traceId":"7b0c1f7e-4a55-4a0e-9d8a-0b1b5b1f1a01","data":{"roomId":"3f2a9c1e-1111-4b7c-9a55-0c0ffee00001","type":"TEXT","contentText":"Hello, room","clientRef":"a3c9e1f2-2222-4d3e-8f10-0c0ffee00002"}}"#,
    ),
    (
        "clerk",
        "nexus",
        r#"["message:send",{"content":"Hello world, this is a typical chat message","channelId":"channel-123","tempId":"temp-123"}]"#,
    ),
    (
        "phase10",
        "salala",
        r#"["messages:new",{"conversationId":"conv-42","message":{"id":"m_1","content":"Ship it","createdAt":"2025-03-01T09:00:00.000Z","status":"sent"},"senderId":"usr_1","recipients":["usr_1","usr_2"]}]"#,
    ),
    (
        "salala",
        "chat-service",
        r#"["sendMessage",{"conversationId":"c-1","content":"hey there, how are you doing today?","replyToId":"m-0"}]"#,
    ),
    (
        "chat-service",
        "webhook",
        r#"["message:new",{"id":"msg_1","conversationId":"conv_1","senderId":"ext_42","content":"Hi all","attachments":[],"replyTo":null,"createdAt":"2024-01-15T10:30:00.000Z"}]"#,
    ),
    (
        "webhook",
        "nexus",
        r#"{"id":"evt_abc123","type":"message.created","timestamp":"2024-01-15T10:30:00.000Z","data":{"messageId":"msg_1","conversationId":"conv_1","senderId":"ext_42","content":"Hi all","createdAt":"2024-01-15T10:30:00.000Z"}}"#,
    ),
];

fn translate(c: &mut Criterion) {
    let reg = match Registry::embedded() {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let mut group = c.benchmark_group("translate");
    group.throughput(Throughput::Elements(1));
    for (from, to, frame) in CASES {
        let from_side = Side::named(&reg, from).expect("dialect");
        let to_side = Side::named(&reg, to).expect("dialect");
        let tr = Translator::new(&reg, from_side, to_side, None);
        let mut out = Vec::with_capacity(512);
        tr.translate(frame.as_bytes(), &mut out)
            .expect("translates");
        group.bench_function(format!("{from}→{to}"), |b| {
            b.iter(|| {
                out.clear();
                black_box(tr.translate(black_box(frame.as_bytes()), &mut out)).ok();
            })
        });
    }
    group.finish();

    // Reference: serde_json alone (parse to a Value, write it back), no mapping.
    let mut base = c.benchmark_group("serde_json_baseline");
    base.throughput(Throughput::Elements(1));
    for (from, _, frame) in CASES {
        let mut out = Vec::with_capacity(512);
        base.bench_function(from, |b| {
            b.iter(|| {
                out.clear();
                let v: serde_json::Value =
                    serde_json::from_slice(black_box(frame.as_bytes())).expect("json");
                serde_json::to_writer(&mut out, &v).ok();
                black_box(&out);
            })
        });
    }
    base.finish();
}

criterion_group!(benches, translate);
criterion_main!(benches);
