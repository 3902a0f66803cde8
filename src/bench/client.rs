//! One bench client: connects in its dialect (Socket.IO over websocket, or a raw
//! WebSocket), joins its room, then reads until the end of the run, timing every
//! message that carries the bench marker; a sender also sends at its share of the rate.

use super::Plan;
use super::stats::Stats;
use crate::dialect::{Direction, write_frame};
use crate::event::{Event, Meta};
use crate::socketio::client::{self, Incoming};
use crate::wsclient::{Reader, Received};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The marker every bench message's content starts with: `bench:<unix nanos>`.
pub const MARKER: &str = "bench:";

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn now_nanos() -> u64 {
    nanos(SystemTime::now())
}

/// The send time in a frame carrying the marker, if any. `hint`: where the marker was in
/// the client's previous frame, tried before a search (a client's frames are alike: the
/// search was 6 % of the generator's CPU); updated when it missed.
fn marked(text: &str, hint: &AtomicUsize) -> Option<u64> {
    static FINDER: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(MARKER));
    let guess = hint.load(Ordering::Relaxed);
    let at = if text.get(guess..).is_some_and(|t| t.starts_with(MARKER)) {
        guess
    } else {
        let at = FINDER.find(text.as_bytes())?;
        hint.store(at, Ordering::Relaxed);
        at
    };
    digits(&text.as_bytes()[at + MARKER.len()..])
}

/// The number `bytes` start with (1 to 19 digits: no overflow to check). One pass:
/// `str::parse` after finding the digits' end was most of the marker's cost (~8 % of the
/// generator's CPU).
fn digits(bytes: &[u8]) -> Option<u64> {
    let mut n = 0;
    let mut v: u64 = 0;
    for &b in bytes {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if n == 19 {
            return None;
        }
        v = v * 10 + u64::from(d);
        n += 1;
    }
    (n > 0).then_some(v)
}

/// A canonical intent in the plan's dialect: (wire name, payload).
fn wire(plan: &Plan, name: &str, body: Value) -> Option<(String, Value)> {
    let d = plan.registry.dialect(&plan.dialect)?;
    let ev = Event::new(name, body.as_object().cloned().unwrap_or_default());
    let enc = d.encode(&ev, Direction::Up).ok()?;
    Some((
        enc.name.to_string(),
        enc.payload_value().unwrap_or(Value::Object(Map::new())),
    ))
}

/// A connected client: its sender and what it reads.
enum Conn {
    Sio(client::Sender, mpsc::Receiver<Incoming>),
    Ws(mpsc::Sender<Message>, Reader),
}

async fn open(plan: &Plan, i: usize, room: &str, stats: &Arc<Stats>) -> Result<Conn, String> {
    let base = &plan.urls[i % plan.urls.len()];
    let user = format!("bench-{i}");
    let rooms = plan.raw_ws.then(|| vec![room.to_string()]);
    let token = plan
        .auth
        .mint(&user, Some(&user), rooms, Duration::from_secs(24 * 3600))
        .map_err(|e| e.to_string())?;
    if plan.raw_ws {
        let url = format!(
            "{}{}?token={token}",
            base.replacen("http://", "ws://", 1)
                .replacen("https://", "wss://", 1),
            plan.path
        );
        let req = url.into_client_request().map_err(|e| e.to_string())?;
        let (r, w) = tokio::time::timeout(
            Duration::from_secs(10),
            crate::wsclient::open_with(req, Some(plan.tls.clone())),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
        // As the Socket.IO client's: a sender that fills it waits.
        let (tx, rx) = mpsc::channel::<Message>(1024);
        tokio::spawn(w.run(rx));
        Ok(Conn::Ws(tx, r))
    } else {
        let auth = json!({"token": format!("Bearer {token}")});
        // Deliveries are timed in the socket's reading task (no hop, no copy), against the
        // time it woke to read them.
        let st = stats.clone();
        let hint = AtomicUsize::new(0);
        let mut opts = client::Options::with_auth(Some(&auth), Duration::from_secs(10));
        opts.tls = Some(plan.tls.clone());
        opts.on_event = Some(Arc::new(move |args: &str, woke| {
            match marked(args, &hint) {
                Some(t0) => {
                    st.record(i, nanos(woke).saturating_sub(t0) / 1000);
                    true
                }
                None => false,
            }
        }));
        let (s, rx) = client::connect_with(base, &plan.path, &plan.ns, &opts)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Conn::Sio(s, rx))
    }
}

/// Joins the room (Socket.IO dialects with a join event), waiting for the ack.
async fn join(plan: &Plan, conn: &mut Conn, room: &str) -> Result<(), String> {
    let Conn::Sio(s, rx) = conn else {
        return Ok(());
    };
    let Some((name, payload)) = wire(plan, "room.join", json!({"conversationId": room})) else {
        return Ok(());
    };
    s.emit(&name, &payload, Some(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Incoming::Ack { id: 1, .. })) => return Ok(()),
            Ok(Some(Incoming::Closed(why))) => return Err(why),
            Ok(Some(_)) => continue,
            _ => return Err("no join ack".into()),
        }
    }
}

/// Runs client `i` of the plan: connect, join, report ready, read (and send) until the
/// run ends.
pub async fn run(
    plan: Arc<Plan>,
    stats: Arc<Stats>,
    i: usize,
    ready: mpsc::Sender<bool>,
    go: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
) {
    let room = format!("{}-room-{}", plan.prefix, i % plan.rooms);
    let mut conn = match open(&plan, i, &room, &stats).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(client = i, "connect failed: {e}");
            stats.connect_errors.fetch_add(1, Ordering::Relaxed);
            let _ = ready.send(false).await;
            return;
        }
    };
    if let Err(e) = join(&plan, &mut conn, &room).await {
        tracing::debug!(client = i, "join failed: {e}");
        stats.connect_errors.fetch_add(1, Ordering::Relaxed);
        let _ = ready.send(false).await;
        return;
    }
    let _ = ready.send(true).await;
    let mut go = go;
    // Senders: the first `senders` clients, each at rate / senders per second.
    let sender = i < plan.senders;
    let send_task = sender.then(|| {
        let (plan, stats, room) = (plan.clone(), stats.clone(), room.clone());
        let mut go = go.clone();
        let tx = match &conn {
            Conn::Sio(s, _) => Either::Sio(s.clone()),
            Conn::Ws(t, _) => Either::Ws(t.clone()),
        };
        tokio::spawn(async move {
            let Ok(start) = go.wait_for(Option::is_some).await.map(|v| v.unwrap_or_else(tokio::time::Instant::now)) else {
                return;
            };
            let per_sec = plan.rate / plan.senders as f64;
            if !per_sec.is_finite() || per_sec <= 0.0 {
                return;
            }
            let end = start + plan.duration;
            // Senders are spread over the period, not in step: sender k of S sends its
            // n-th message at (n + k/S) / rate. In step, 100 senders' messages arrived
            // as one burst and queued behind each other (p50 ~10 ms at 200 msg/s).
            let phase = i as f64 / plan.senders as f64;
            let due_at = |n: u64| start + Duration::from_secs_f64((n as f64 + phase) / per_sec);
            let mut sent: u64 = 0;
            while due_at(sent) < end {
                // Asleep until the next message is due: a slow sender wakes once per
                // message, a fast one once per millisecond (the timer's resolution)
                // for the messages due by then.
                tokio::time::sleep_until(due_at(sent)).await;
                // Every message due by now (n + phase <= elapsed × rate), at least one.
                let elapsed = start.elapsed().as_secs_f64();
                let due = (((elapsed * per_sec - phase).floor() as u64) + 1).max(sent + 1);
                while sent < due {
                    let body = json!({"conversationId": room, "content": format!("{MARKER}{}:{sent}", now_nanos()), "kind": "TEXT"});
                    let Some((name, payload)) = wire(&plan, "message.send", body) else { return };
                    // A full queue waits: the report's `sent_per_sec` shows a sender
                    // that fell behind its rate.
                    let ok = match &tx {
                        Either::Sio(s) => s.emit_waiting(&name, &payload).await.is_ok(),
                        Either::Ws(t) => send_ws(&plan, t, &name, &payload).await,
                    };
                    if !ok {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    sent += 1;
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    });
    let Ok(start) = go
        .wait_for(Option::is_some)
        .await
        .map(|v| v.unwrap_or_else(tokio::time::Instant::now))
    else {
        return;
    };
    let end = start + plan.duration + plan.drain;
    // Socket.IO deliveries are timed by the hook; raw WebSocket ones here, against the
    // time of the read that brought them.
    let hint = AtomicUsize::new(0);
    let mut woke = SystemTime::now();
    loop {
        match &mut conn {
            Conn::Sio(_, rx) => match tokio::time::timeout_at(end, rx.recv()).await {
                Ok(Some(Incoming::Event { text, .. })) => {
                    tally(&stats, i, &text, SystemTime::now(), &hint);
                }
                Ok(Some(Incoming::Ack { .. })) => {}
                Ok(Some(Incoming::Closed(_)) | None) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(_) => break,
            },
            Conn::Ws(tx, r) => match r.try_next() {
                Ok(Some(Received::Text(t))) => tally(&stats, i, t, woke, &hint),
                Ok(Some(Received::Ping(p))) => {
                    let _ = tx.send(Message::Pong(p.to_vec().into())).await;
                }
                Ok(Some(Received::Close(_))) | Err(_) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) => match tokio::time::timeout_at(end, r.fill()).await {
                    Ok(Ok(true)) => woke = SystemTime::now(),
                    Ok(Ok(false) | Err(_)) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(_) => break,
                },
            },
        }
    }
    if let Some(t) = send_task {
        t.abort();
    }
    if let Conn::Sio(s, _) = &conn {
        s.close();
    }
}

/// Counts a frame a client read: a delivery's latency if it carries the marker, an error
/// if it is one.
fn tally(stats: &Stats, i: usize, text: &str, woke: SystemTime, hint: &AtomicUsize) {
    match marked(text, hint) {
        Some(t0) => stats.record(i, nanos(woke).saturating_sub(t0) / 1000),
        None if text.contains("\"error\"")
            || text.contains("\"ERROR\"")
            || text.contains("\"exception\"") =>
        {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        None => {}
    }
}

enum Either {
    Sio(client::Sender),
    Ws(mpsc::Sender<Message>),
}

async fn send_ws(plan: &Plan, tx: &mpsc::Sender<Message>, name: &str, payload: &Value) -> bool {
    let Some(framing) = plan.registry.dialect(&plan.dialect).map(|d| d.framing) else {
        return false;
    };
    let mut buf = Vec::new();
    write_frame(framing, name, Some(payload), &Meta::fresh(), &mut buf);
    tx.send(Message::Text(
        String::from_utf8(buf).unwrap_or_default().into(),
    ))
    .await
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_in_any_dialect() {
        let hint = AtomicUsize::new(0);
        assert_eq!(
            marked(r#"["message:new",{"content":"bench:123:4"}]"#, &hint),
            Some(123)
        );
        assert_eq!(
            marked(
                r#"{"event":"NEW_MESSAGE","data":{"contentText":"bench:99:0"}}"#,
                &hint
            ),
            Some(99)
        );
        assert_eq!(marked(r#"["x",{}]"#, &hint), None);
    }

    #[test]
    fn the_send_time_is_1_to_19_digits() {
        assert_eq!(digits(b"0"), Some(0));
        assert_eq!(
            digits(b"1764412345123456789:7"),
            Some(1_764_412_345_123_456_789)
        );
        assert_eq!(
            digits(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(
            digits(b"12345678901234567890"),
            None,
            "20 digits could overflow"
        );
        assert_eq!(digits(b":1"), None);
        assert_eq!(digits(b""), None);
    }

    #[test]
    fn the_hint_is_tried_first_and_a_miss_searches() {
        let hint = AtomicUsize::new(0);
        assert_eq!(marked(r#"["a",{"c":"bench:1:0"}]"#, &hint), Some(1));
        let at = hint.load(Ordering::Relaxed);
        assert_eq!(&r#"["a",{"c":"bench:1:0"}]"#[at..at + 6], MARKER);
        // Same shape: found at the hint.
        assert_eq!(marked(r#"["a",{"c":"bench:22:1"}]"#, &hint), Some(22));
        // Shifted: searched, and the hint follows.
        assert_eq!(marked(r#"["ab",{"c":"bench:3:2"}]"#, &hint), Some(3));
        assert_eq!(hint.load(Ordering::Relaxed), at + 1);
        // Shorter than the hint: searched, not sliced out of bounds.
        assert_eq!(marked("bench:4", &hint), Some(4));
        assert_eq!(marked("ab", &hint), None);
    }
}
