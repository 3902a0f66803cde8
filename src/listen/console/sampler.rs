//! What the console plots and lists, computed once a second for every console at once:
//! events in and out and translation failures per second (from the gateway's own
//! counters, kept for the last 15 minutes), and, while a console is open, the fleet's
//! instances and connections by dialect and transport, the bus and brokers, the
//! backends' sessions and the webhook queues. Consoles read the latest snapshot; however
//! many are open, the work is done once.

use super::super::Context;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One point a second, for this long.
pub const POINTS: usize = 15 * 60;

/// Per-second rates: `(unix seconds, events in, events out, translation failures)`.
type Point = (i64, f64, f64, f64);

/// The series and the latest snapshot.
#[derive(Default)]
pub struct Sampler {
    points: Mutex<VecDeque<Point>>,
    snapshot: Mutex<Arc<Value>>,
    /// Consoles streaming now.
    pub watchers: AtomicUsize,
}

/// Sums of a metric's samples in Prometheus text, and of those with a label value.
pub(super) fn sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A labelled gauge's samples: `(label value, value)`.
fn by_label(text: &str, metric: &str, label: &str) -> Vec<(String, f64)> {
    let key = format!("{label}=\"");
    text.lines()
        .filter(|l| l.strip_prefix(metric).is_some_and(|r| r.starts_with('{')))
        .filter_map(|l| {
            let at = l.find(&key)? + key.len();
            let end = l[at..].find('"')? + at;
            let v = l.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((l[at..end].to_string(), v))
        })
        .collect()
}

impl Sampler {
    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Value> {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn series(&self) -> Value {
        let p = self.points.lock().unwrap_or_else(|p| p.into_inner());
        json!({
            "t": p.iter().map(|x| x.0).collect::<Vec<_>>(),
            "in": p.iter().map(|x| x.1).collect::<Vec<_>>(),
            "out": p.iter().map(|x| x.2).collect::<Vec<_>>(),
            "failures": p.iter().map(|x| x.3).collect::<Vec<_>>(),
        })
    }

    /// Samples every second until the server shuts down.
    pub async fn run(cx: Arc<Context>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<(std::time::Instant, [f64; 3])> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cx.shutdown.cancelled() => return,
            }
            let text = cx.hub.metrics().render();
            let now = std::time::Instant::now();
            let totals = [
                sum(&text, "switchboard_events_in_total"),
                sum(&text, "switchboard_events_out_total"),
                sum(&text, "switchboard_translation_failures_total"),
            ];
            let sampler = &cx.console.sampler;
            if let Some((then, before)) = last {
                let secs = now.duration_since(then).as_secs_f64().max(0.001);
                let rate = |i: usize| ((totals[i] - before[i]) / secs).max(0.0).round();
                let mut p = sampler.points.lock().unwrap_or_else(|p| p.into_inner());
                if p.len() >= POINTS {
                    p.pop_front();
                }
                p.push_back((crate::event::now_millis() / 1000, rate(0), rate(1), rate(2)));
            }
            last = Some((now, totals));
            if sampler.watchers.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let snap = overview(&cx, &text, sampler.series()).await;
            *sampler.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
        }
    }
}

/// The overview: instances, connections by dialect and transport, rates, bus and
/// brokers, backends' sessions, webhook queues.
pub(super) async fn overview(cx: &Context, text: &str, series: Value) -> Value {
    let instances = match cx.hub.instances().await {
        Ok(all) => serde_json::to_value(all).unwrap_or(Value::Null),
        Err(e) => json!({"error": e.to_string()}),
    };
    let mut by_route: std::collections::BTreeMap<(String, String), u64> = Default::default();
    if let Some(all) = instances.as_array() {
        for i in all {
            for r in i["byRoute"].as_array().into_iter().flatten() {
                let k = (
                    r["dialect"].as_str().unwrap_or("?").to_string(),
                    r["transport"].as_str().unwrap_or("?").to_string(),
                );
                *by_route.entry(k).or_default() += r["connections"].as_u64().unwrap_or(0);
            }
        }
    }
    let connections: Vec<Value> = by_route
        .into_iter()
        .map(|((d, t), n)| json!({"dialect": d, "transport": t, "connections": n}))
        .collect();
    let amqp = cx.attached.amqp.as_ref().map(|a| a.ready());
    let upstreams: Vec<Value> = by_label(text, "switchboard_upstream_sessions", "upstream")
        .into_iter()
        .map(|(u, n)| json!({"upstream": u, "sessions": n}))
        .collect();
    let webhooks = cx
        .attached
        .webhooks
        .as_ref()
        .map(|w| serde_json::to_value(w.status()).unwrap_or(Value::Null))
        .unwrap_or_else(|| json!([]));
    json!({
        "instance": cx.hub.instance(),
        "instances": instances,
        "connections": connections,
        "series": series,
        "bus": {"kind": cx.hub.bus().kind(), "ready": cx.hub.bus_ready()},
        "amqp": amqp,
        "upstreams": upstreams,
        "webhooks": webhooks,
        "deadLetters": sum(text, "switchboard_webhook_dead_letters"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_labels_from_prometheus_text() {
        let text = "# HELP x\nswitchboard_events_in_total{dialect=\"a\",event=\"e\"} 3\n\
                    switchboard_events_in_total{dialect=\"b\",event=\"e\"} 4\n\
                    switchboard_events_in_totals 100\n\
                    switchboard_upstream_sessions{upstream=\"nexus\"} 2\n";
        assert_eq!(sum(text, "switchboard_events_in_total"), 7.0);
        assert_eq!(
            by_label(text, "switchboard_upstream_sessions", "upstream"),
            vec![("nexus".to_string(), 2.0)]
        );
    }
}
