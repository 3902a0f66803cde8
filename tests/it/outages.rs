//! Broker outages and crashes under traffic: Redis stopped for 10 s between two
//! instances (a `redis-server` of the test's own), with every message either delivered
//! after recovery or refused to its sender, never lost without a word.

use crate::live::{Live, token};
use crate::support::{Redis, Wire, open, until};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::config::BusKind;

/// A NexusChat client of a room on one instance: what it sent, what the gateway said of
/// each (`accepted`: its own copy came back; `refused`: an ERROR with its traceId), and
/// what it received from the other instance.
#[derive(Default)]
struct Ledger {
    sent: BTreeSet<String>,
    accepted: BTreeSet<String>,
    refused: BTreeMap<String, String>,
    received: BTreeMap<String, Instant>,
}

async fn nexus(live: &Live, user: &str, room: &str) -> Wire {
    let t = token(user, None, Some(&[room]));
    open(&format!("ws://{}/ws?token={t}", live.addrs()[0])).await
}

/// Reads a client's frames into its ledger until the socket ends.
fn read_into(
    mut ws: futures_util::stream::SplitStream<Wire>,
    me: String,
    ledger: Arc<Mutex<Ledger>>,
) {
    use futures_util::StreamExt;
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            let Ok(text) = m.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            let trace = v["traceId"].as_str().unwrap_or_default().to_string();
            let mut l = ledger.lock().expect("ledger");
            match v["event"].as_str() {
                Some("NEW_MESSAGE") => {
                    let content = v["data"]["contentText"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    if content.starts_with(&me) {
                        l.accepted.insert(content);
                    } else {
                        l.received.entry(content).or_insert_with(Instant::now);
                    }
                }
                Some("ERROR") => {
                    let code = v["data"]["code"].as_str().unwrap_or_default().to_string();
                    if let Some(c) = trace.strip_prefix("00000000-0000-4000-8000-") {
                        l.refused
                            .insert(format!("{me}-{}", c.trim_start_matches('0')), code);
                    }
                }
                _ => {}
            }
        }
    });
}

/// Redis killed for 10 s with a sender on each of two instances at 10 messages/s: every
/// message is delivered on the other instance once Redis is back, or was refused to its
/// sender (`unavailable`, when the bounded bus queue is full: instance B's is kept small
/// to show it); nothing is lost without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_loses_no_message_without_a_word() {
    let mut redis = Redis::start().await;
    let url = redis.url();
    let start = |name: &str, queue: usize| {
        let (name, url) = (name.to_string(), url.clone());
        Live::start_with(move |c| {
            c.bus.kind = BusKind::Redis;
            c.bus.queue = queue;
            c.redis.url = url;
            c.instance = name;
            c.limits.rate = 1000.0;
        })
    };
    let a = start("outage-a", 10_000).await;
    let b = start("outage-b", 30).await;
    until("both buses", Duration::from_secs(10), || {
        a.ready().0 && b.ready().0
    })
    .await;
    let room = crate::live::unique("outage");
    let ledgers: Vec<Arc<Mutex<Ledger>>> = (0..2).map(|_| Arc::default()).collect();
    let mut writers = Vec::new();
    for (i, live) in [&a, &b].into_iter().enumerate() {
        use futures_util::StreamExt;
        let me = ["a", "b"][i].to_string();
        let ws = nexus(live, &format!("outage-{me}"), &room).await;
        let (w, r) = ws.split();
        read_into(r, me, ledgers[i].clone());
        writers.push(w);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seq = 0u32;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let send_round = async |writers: &mut Vec<
        futures_util::stream::SplitSink<Wire, tokio_tungstenite::tungstenite::Message>,
    >,
                            seq: &mut u32| {
        use futures_util::SinkExt;
        *seq += 1;
        for (i, w) in writers.iter_mut().enumerate() {
            let me = ["a", "b"][i];
            let content = format!("{me}-{seq}");
            ledgers[i]
                .lock()
                .expect("ledger")
                .sent
                .insert(content.clone());
            let frame = json!({"event": "SEND_MSG", "traceId": format!("00000000-0000-4000-8000-{seq:012}"),
                "data": {"roomId": room, "contentText": content, "type": "TEXT"}});
            let _ = w
                .send(tokio_tungstenite::tungstenite::Message::Text(
                    frame.to_string().into(),
                ))
                .await;
        }
    };
    // 2 s of traffic before, 10 s of outage, 4 s after.
    for _ in 0..20 {
        tick.tick().await;
        send_round(&mut writers, &mut seq).await;
    }
    redis.kill();
    let down_at = Instant::now();
    while down_at.elapsed() < Duration::from_secs(10) {
        tick.tick().await;
        send_round(&mut writers, &mut seq).await;
    }
    let outage_end_seq = seq;
    redis.resume().await;
    let back_at = Instant::now();
    for _ in 0..40 {
        tick.tick().await;
        send_round(&mut writers, &mut seq).await;
    }
    until(
        "both buses to report ready again",
        Duration::from_secs(10),
        || a.ready().0 && b.ready().0,
    )
    .await;
    // Everything accepted reaches the other instance.
    let settle = Instant::now() + Duration::from_secs(15);
    loop {
        let missing: usize = (0..2)
            .map(|i| {
                let mine = ledgers[i].lock().expect("ledger");
                let theirs = ledgers[1 - i].lock().expect("ledger");
                let unanswered = mine
                    .sent
                    .iter()
                    .filter(|c| !mine.accepted.contains(*c) && !mine.refused.contains_key(*c))
                    .count();
                unanswered
                    + mine
                        .accepted
                        .iter()
                        .filter(|c| !theirs.received.contains_key(*c))
                        .count()
            })
            .sum();
        if missing == 0 || Instant::now() > settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..2 {
        let mine = ledgers[i].lock().expect("ledger");
        let theirs = ledgers[1 - i].lock().expect("ledger");
        let lost: Vec<&String> = mine
            .sent
            .iter()
            .filter(|c| !theirs.received.contains_key(*c) && !mine.refused.contains_key(*c))
            .collect();
        let refused_codes: BTreeSet<&String> = mine.refused.values().collect();
        eprintln!(
            "instance {}: sent {}, accepted {}, refused {} ({refused_codes:?}), delivered on the other {}, lost without a word {}",
            ["a", "b"][i],
            mine.sent.len(),
            mine.accepted.len(),
            mine.refused.len(),
            mine.sent
                .iter()
                .filter(|c| theirs.received.contains_key(*c))
                .count(),
            lost.len()
        );
        assert!(lost.is_empty(), "lost without a word: {lost:?}");
        assert!(
            refused_codes.iter().all(|c| *c == "unavailable"),
            "{refused_codes:?}"
        );
        // Accepted and refused are the two answers; none is both.
        assert!(mine.accepted.iter().all(|c| !mine.refused.contains_key(c)));
    }
    // Instance B's small queue filled: some of its sends were refused, said out loud.
    assert!(
        !ledgers[1].lock().expect("ledger").refused.is_empty(),
        "b's bus queue (30) overflowed"
    );
    // Instance A's queue held all: every message sent during the outage arrived on B.
    let a_during: Vec<String> = (21..=outage_end_seq).map(|n| format!("a-{n}")).collect();
    {
        let b_led = ledgers[1].lock().expect("ledger");
        assert!(
            a_during.iter().all(|c| b_led.received.contains_key(c)),
            "a's outage traffic delivered on b"
        );
        // In order: what A sent during the outage arrived on B in the order sent.
        let mut times: Vec<Instant> = a_during.iter().map(|c| b_led.received[c]).collect();
        let sorted = {
            let mut t = times.clone();
            t.sort();
            t
        };
        assert_eq!(times, sorted, "in order");
        times.sort();
        let first_after = times.first().map(|t| t.saturating_duration_since(back_at));
        eprintln!("first delivery on the other instance after Redis returned: {first_after:?}");
        assert!(
            first_after.is_some_and(|d| d < Duration::from_secs(3)),
            "{first_after:?}"
        );
    }
}
