//! What the Redis hop itself adds: two instances' buses (A and B, each with its own
//! connections to the real Redis at `REDIS_URL`, default 127.0.0.1:6379) in one process;
//! A publishes a room's deliveries at a fixed rate, B (subscribed to the room) records when
//! each arrives; the same on one in-process bus for comparison. The time in the delivery
//! is A's publish instant, so the figure is publish → delivered on the other instance
//! (encoding, Redis PUBLISH, the pub/sub push, decoding, de-duplication). Not a test; run
//! with `cargo run --release --example redis_hop [MSG_PER_S] [SECONDS] [RUNS]`.

use hdrhistogram::Histogram;
use serde_json::{Map, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::bus::{Audience, Bus, Deliver, Delivery, LocalBus, RedisBus, RoomKey};
use switchboard::event::Event;

/// Records the latency of each delivery (its body carries the publish time, in µs since
/// `epoch`).
struct Recorder {
    epoch: Instant,
    hist: Mutex<Histogram<u64>>,
}

impl Deliver for Recorder {
    fn deliver(&self, d: &Delivery) {
        let Some(sent) = d.event.body.get("t").and_then(serde_json::Value::as_u64) else {
            return;
        };
        let now = self.epoch.elapsed().as_micros() as u64;
        let _ = self
            .hist
            .lock()
            .expect("hist")
            .record(now.saturating_sub(sent));
    }
}

/// Publishes `rate` deliveries per second for `secs` on `from`; `to`'s recorder measures.
async fn measure(from: &dyn Bus, rec: &Arc<Recorder>, rate: u64, secs: u64) -> (u64, u64, u64) {
    let room = RoomKey::conversation("bench-room");
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    *rec.hist.lock().expect("hist") = Histogram::new(3).expect("histogram");
    let total = rate * secs;
    for _ in 0..total {
        tick.tick().await;
        let mut body = Map::new();
        body.insert("t".into(), json!(rec.epoch.elapsed().as_micros() as u64));
        body.insert(
            "content".into(),
            json!("a message of some forty bytes, like chat"),
        );
        let ev = Event::new("message.created", body);
        let _ = from.publish(Delivery {
            event: ev,
            audience: Audience::room(room.clone()),
            offset: None,
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h = rec.hist.lock().expect("hist");
    (h.len(), h.value_at_quantile(0.5), h.value_at_quantile(0.99))
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let epoch = Instant::now();
    let new_rec = || {
        Arc::new(Recorder {
            epoch,
            hist: Mutex::new(Histogram::new(3).expect("histogram")),
        })
    };
    let client = redis::Client::open(url.as_str())?;
    let bus = |name: &'static str| {
        let client = client.clone();
        async move {
            let conn = client.get_connection_manager().await?;
            anyhow::Ok(RedisBus::start(client, conn, name, 100_000))
        }
    };
    let (a, b) = (bus("hop-a").await?, bus("hop-b").await?);
    let rec_b = new_rec();
    let sink: Arc<dyn Deliver> = Arc::new(NoOp);
    a.attach(Arc::downgrade(&sink));
    b.attach(Arc::downgrade(&(rec_b.clone() as Arc<dyn Deliver>)));
    b.interest(&RoomKey::conversation("bench-room"), true);
    while !(a.ready() && b.ready()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let local = LocalBus::new();
    let rec_l = new_rec();
    local.attach(Arc::downgrade(&(rec_l.clone() as Arc<dyn Deliver>)));
    let (mut r50, mut r99, mut l50, mut l99) = (vec![], vec![], vec![], vec![]);
    for r in 0..runs {
        let (n, p50, p99) = measure(&a, &rec_b, rate, secs).await;
        println!("run {r}: redis hop: {n} delivered, p50 {p50} µs, p99 {p99} µs");
        r50.push(p50);
        r99.push(p99);
        let (n, p50, p99) = measure(&local, &rec_l, rate, secs).await;
        println!("run {r}: local bus: {n} delivered, p50 {p50} µs, p99 {p99} µs");
        l50.push(p50);
        l99.push(p99);
    }
    let (r50, r99, l50, l99) = (median(r50), median(r99), median(l50), median(l99));
    println!(
        "\n| bus | p50 | p99 |\n|---|---|---|\n| local (one instance) | {l50} µs | {l99} µs |\n| Redis pub/sub (A → B) | {r50} µs | {r99} µs |\n| added by the hop | {} µs | {} µs |\n\n({runs} runs of {secs} s at {rate} deliveries/s; medians of the runs' percentiles)",
        r50.saturating_sub(l50),
        r99.saturating_sub(l99)
    );
    Ok(())
}

struct NoOp;

impl Deliver for NoOp {
    fn deliver(&self, _: &Delivery) {}
}
