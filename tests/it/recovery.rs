//! Room history and Socket.IO connection state recovery, with the official
//! socket.io-client (long polling upgraded to a WebSocket, its default; long polling
//! only; a WebSocket only): a client whose transport closes comes back to its session (same
//! socket id, its rooms) and gets every message it missed, in order, once, whoever sent
//! them; on the local bus, across two instances on Redis, and after its instance was
//! restarted; a client away too long starts afresh (`recovered === false`). Chat
//! Service's `messages:sync` answers from the same history and says when it is
//! incomplete.

use crate::live::{Client, Driver, Live, token, unique};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard::config::{BusKind, Config};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy the recovering client connects through, so that it can come back to
/// another instance: each new connection goes to the current target.
struct Proxy {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
}

impl Proxy {
    async fn start(first: SocketAddr) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let target = Arc::new(Mutex::new(first));
        let t = target.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
                let to = *t.lock().expect("target");
                tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Proxy { addr, target }
    }

    fn to(&self, addr: SocketAddr) {
        *self.target.lock().expect("target") = addr;
    }
}

/// Connects the official client (salala) over `transport` ("default": long polling
/// upgraded to a WebSocket, as the client does unless told otherwise) with its token,
/// and waits for it.
async fn recovering(
    live: &Live,
    driver: &Arc<Driver>,
    transport: &str,
    user: &str,
    room: &str,
) -> (Client, String) {
    let t = token(user, Some(user), Some(&[room]));
    let mut c = Client::socketio(
        live,
        driver,
        "salala",
        transport,
        user,
        json!({"token": format!("Bearer {t}")}),
        Value::Null,
    )
    .await;
    let sid = c.wire("__connect__").await.expect("connects");
    assert_eq!(
        c.wire("__recovered__").await,
        Some(json!(false)),
        "a first connect"
    );
    (c, sid.as_str().unwrap_or_default().to_string())
}

/// The messages with `content` starting `prefix` the client receives until none comes
/// for a while.
async fn contents(c: &mut Client, prefix: &str, quiet: Duration) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(e) = c
        .canonical_where("message.created", quiet, |e| {
            e.str_field("content")
                .is_some_and(|s| s.starts_with(prefix))
        })
        .await
    {
        got.push(e.str_field("content").unwrap_or_default().to_string());
    }
    got
}

/// Senders of three other dialects in `room`.
async fn senders(live: &Live, driver: &Arc<Driver>, room: &str) -> Vec<Client> {
    let mut out = Vec::new();
    for d in ["clerk", "chat-service", "nexus"] {
        let u = unique(d);
        out.push(Client::connect(live, driver, d, "websocket", &u, Some(&[room])).await);
    }
    out
}

/// Sends `n` messages round-robin from the senders, each back to its sender (so
/// published) before the next.
async fn say(senders: &mut [Client], room: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let k = i % senders.len();
        let s = &mut senders[k];
        let content = format!("{prefix}{i:02}");
        s.send_message(room, &content, false).await;
        let back = s
            .canonical_where("message.created", Duration::from_secs(5), |e| {
                e.str_field("content") == Some(content.as_str())
            })
            .await;
        assert!(
            back.is_some(),
            "message {content} from {} published",
            s.dialect
        );
    }
}

fn expected(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:02}")).collect()
}

/// The client comes back: the same socket id, `recovered === true`, and the `n`
/// messages of `prefix` it missed, in order, once.
async fn comes_back(c: &mut Client, sid: &str, prefix: &str, n: usize, why: &str) {
    c.drive("resume").await;
    assert_eq!(
        c.wire("__connect__").await,
        Some(json!(sid)),
        "{why}: the same socket id"
    );
    assert_eq!(c.wire("__recovered__").await, Some(json!(true)), "{why}");
    assert_eq!(
        contents(c, prefix, Duration::from_millis(1500)).await,
        expected(prefix, n),
        "{why}: all, in order, once"
    );
}

/// Waits until the hub has let `user`'s connection go (its session is then saved).
async fn gone(live: &Live, user: &str) {
    for _ in 0..500 {
        if live.hub().user_connection_count(user) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the paused client's connection was not let go");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_back_within_the_window_gets_its_session_and_all_it_missed() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let room = unique("room");
    let user = unique("rec");
    let (mut c, sid) = recovering(&live, &driver, "default", &user, &room).await;
    let mut from = senders(&live, &driver, &room).await;
    // One message before: the client has an offset.
    say(&mut from, &room, "before", 1).await;
    assert_eq!(
        contents(&mut c, "before", Duration::from_secs(2)).await,
        expected("before", 1)
    );
    c.drive("pause").await;
    assert!(c.wire("__disconnect__").await.is_some());
    gone(&live, &user).await;
    say(&mut from, &room, "m", 50).await;
    comes_back(&mut c, &sid, "m", 50, "back within the window").await;
    // Its rooms came back with it: live messages reach it again.
    say(&mut from, &room, "after", 2).await;
    assert_eq!(
        contents(&mut c, "after", Duration::from_secs(2)).await,
        expected("after", 2)
    );
    // A second recovery from the same state works too (the pid is the same).
    c.drive("pause").await;
    gone(&live, &user).await;
    say(&mut from, &room, "again", 3).await;
    comes_back(&mut c, &sid, "again", 3, "a second time").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_away_too_long_or_past_the_history_starts_afresh() {
    let live = Live::start_with(|c: &mut Config| {
        c.recovery.max_disconnection = Duration::from_millis(800);
        c.history.size = 10;
    })
    .await;
    let driver = Driver::start().await;
    let room = unique("room");
    let user = unique("late");
    let (mut c, sid) = recovering(&live, &driver, "websocket", &user, &room).await;
    let mut from = senders(&live, &driver, &room).await;
    say(&mut from, &room, "before", 1).await;
    contents(&mut c, "before", Duration::from_secs(2)).await;
    // Away longer than recovery.max_disconnection.
    c.drive("pause").await;
    gone(&live, &user).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.drive("resume").await;
    let again = c.wire("__connect__").await.expect("reconnects");
    assert_ne!(again, json!(sid), "a new session");
    assert_eq!(c.wire("__recovered__").await, Some(json!(false)));
    // Missed more than the history holds: not recovered, never a silent gap.
    say(&mut from, &room, "x", 1).await;
    contents(&mut c, "x", Duration::from_secs(2)).await;
    c.drive("pause").await;
    gone(&live, &user).await;
    say(&mut from, &room, "many", 15).await;
    c.drive("resume").await;
    assert!(c.wire("__connect__").await.is_some());
    assert_eq!(c.wire("__recovered__").await, Some(json!(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_recovers_on_another_instance_and_after_a_restart() {
    let redis = crate::support::Redis::start().await;
    let start = |name: String| {
        let url = redis.url();
        Live::start_with(move |c: &mut Config| {
            c.bus.kind = BusKind::Redis;
            c.redis.url = url;
            c.instance = name;
        })
    };
    let a = start(unique("a")).await;
    let b = start(unique("b")).await;
    for l in [&a, &b] {
        for _ in 0..300 {
            if l.ready().0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let driver = Driver::start().await;
    let proxy = Proxy::start(a.addrs()[0]).await;
    let mut via = a.addrs().to_vec();
    via[0] = proxy.addr;
    let through = Live::at(via);
    let room = unique("room");
    let user = unique("roam");
    let (mut c, sid) = recovering(&through, &driver, "polling", &user, &room).await;
    let mut from = senders(&b, &driver, &room).await;
    // Both instances listen to the room before anything is said in it.
    crate::support::subscribed(&redis.url(), &room, 2).await;
    say(&mut from, &room, "before", 1).await;
    contents(&mut c, "before", Duration::from_secs(3)).await;

    // Away from A, back on B.
    c.drive("pause").await;
    gone(&a, &user).await;
    say(&mut from, &room, "m", 50).await;
    proxy.to(b.addrs()[0]);
    comes_back(&mut c, &sid, "m", 50, "on the other instance").await;

    // B restarts: the client's transport closes without a goodbye (its session is
    // saved as B drains); it comes back to the new B and misses nothing said meanwhile.
    drop(from);
    let mut from = senders(&a, &driver, &room).await;
    crate::support::subscribed(&redis.url(), &room, 2).await;
    b.stop().await;
    assert!(c.wire("__disconnect__").await.is_some());
    say(&mut from, &room, "r", 10).await;
    let b2 = start(unique("b2")).await;
    proxy.to(b2.addrs()[0]);
    comes_back(&mut c, &sid, "r", 10, "after its instance restarted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sync_answers_what_a_chat_service_client_missed() {
    let live = Live::start_with(|c: &mut Config| c.history.size = 40).await;
    let driver = Driver::start().await;
    let room = unique("room");
    let mut from = senders(&live, &driver, &room).await;
    say(&mut from, &room, "old", 1).await;
    let mut cs = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        &unique("cs"),
        Some(&[&room]),
    )
    .await;
    let last = cs
        .canonical_where("message.created", Duration::from_secs(3), |e| {
            e.str_field("content") == Some("old00")
        })
        .await;
    assert!(last.is_none(), "it joined after that message");
    // The id of the last message it saw: one it was sent live.
    say(&mut from, &room, "seen", 1).await;
    let seen = cs
        .canonical_where("message.created", Duration::from_secs(3), |e| {
            e.str_field("content") == Some("seen00")
        })
        .await
        .expect("received live");
    let id = seen.str_field("messageId").expect("id").to_string();
    say(&mut from, &room, "m", 30).await;
    let sync = |last: &str| json!({"conversationId": room, "lastMessageId": last});
    cs.emit_wire("messages:sync", sync(&id), true).await;
    let ack = cs.ack("messages:sync").await.expect("ack");
    assert_eq!(ack["success"], true, "{ack}");
    assert_eq!(ack["complete"], true, "{ack}");
    let got: Vec<String> = ack["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(got, expected("m", 30), "the 30, in order");
    // An id older than the history: what is there, and said to be incomplete.
    say(&mut from, &room, "n", 20).await;
    cs.emit_wire("messages:sync", sync(&id), true).await;
    let ack = cs.ack("messages:sync").await.expect("ack");
    assert_eq!(ack["complete"], false, "{ack}");
    assert_eq!(ack["truncated"], true, "{ack}");
    let n = ack["messages"].as_array().map_or(0, Vec::len);
    assert!((30..=50).contains(&n), "what the history holds: {n}");
}

/// A raw WebSocket client of the test's own: every envelope it receives, whole.
async fn nexus(
    addr: SocketAddr,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?{query}"))
        .await
        .expect("websocket opens");
    ws
}

/// Envelopes (JSON) received until none comes for `quiet`.
async fn envelopes(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    quiet: Duration,
) -> Vec<Value> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(quiet, ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            out.push(serde_json::from_str(&t).expect("an envelope"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nexus_client_asked_to_replays_what_its_rooms_had_since_its_offset() {
    let live = Live::start_with(|c: &mut Config| {
        for l in &mut c.listeners {
            for r in &mut l.routes {
                if r.dialect == "nexus" {
                    r.recovery = Some(true);
                }
            }
        }
    })
    .await;
    let driver = Driver::start().await;
    let room = unique("room");
    let t = token(&unique("nx"), None, Some(&[&room]));
    let addr = live.addrs()[0];
    let mut ws = nexus(addr, &format!("token={t}")).await;
    let mut from = senders(&live, &driver, &room).await;
    from.retain(|c| c.dialect != "nexus");
    say(&mut from, &room, "before", 1).await;
    let got = envelopes(&mut ws, Duration::from_millis(500)).await;
    let last = got
        .iter()
        .find(|e| e["event"] == "NEW_MESSAGE")
        .unwrap_or_else(|| panic!("{got:?}"));
    let offset = last["offset"]
        .as_str()
        .expect("an offset on a kept event")
        .to_string();
    drop(ws);
    say(&mut from, &room, "m", 6).await;
    let mut back = nexus(addr, &format!("token={t}&since={offset}")).await;
    let got = envelopes(&mut back, Duration::from_millis(700)).await;
    let missed: Vec<&str> = got
        .iter()
        .filter(|e| e["event"] == "NEW_MESSAGE")
        .filter_map(|e| e["data"]["contentText"].as_str())
        .collect();
    assert_eq!(missed, expected("m", 6), "{got:?}");
    assert!(got.iter().all(|e| e["event"] != "ERROR"), "{got:?}");
    // An offset of another history: told, in NexusChat's ERROR, and given what is there.
    let mut stale = nexus(addr, &format!("token={t}&since=00ff-1")).await;
    let got = envelopes(&mut stale, Duration::from_millis(500)).await;
    assert_eq!(got[0]["event"], "ERROR", "{got:?}");
    assert_eq!(got[0]["data"]["code"], "history_incomplete", "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_recovers_after_its_instance_crashed() {
    let redis = crate::support::Redis::start().await;
    let url = redis.url();
    let a = crate::process::Running::start(
        &[
            ("AUTH_JWT_SECRET", crate::live::SECRET),
            ("SWITCHBOARD_BUS", "redis"),
            ("REDIS_URL", &url),
            ("SWITCHBOARD_INSTANCE", "crashing"),
        ],
        &[],
    );
    let b = {
        let url = url.clone();
        Live::start_with(move |c: &mut Config| {
            c.bus.kind = BusKind::Redis;
            c.redis.url = url;
            c.instance = unique("b");
        })
        .await
    };
    let driver = Driver::start().await;
    let proxy = Proxy::start(a.addrs()[0]).await;
    let mut via = a.addrs();
    via[0] = proxy.addr;
    let through = Live::at(via);
    let room = unique("room");
    let user = unique("crash");
    let (mut c, sid) = recovering(&through, &driver, "default", &user, &room).await;
    let mut from = senders(&b, &driver, &room).await;
    crate::support::subscribed(&url, &room, 2).await;
    say(&mut from, &room, "before", 1).await;
    assert_eq!(
        contents(&mut c, "before", Duration::from_secs(3)).await,
        expected("before", 1)
    );
    // SIGKILL: no goodbye, no disconnect handler; the session was saved while open.
    a.signal("-KILL");
    assert!(c.wire("__disconnect__").await.is_some());
    say(&mut from, &room, "m", 10).await;
    proxy.to(b.addrs()[0]);
    comes_back(&mut c, &sid, "m", 10, "after its instance crashed").await;
}

/// A message as the hub keeps it: the canonical `message.created` of a 40-character
/// text, to a room and its sender's personal room.
fn kept_message(room: &str, i: usize) -> switchboard::bus::Delivery {
    let body = json!({
        "messageId": format!("5f0e8c2a-1b7d-4c55-9a0e-{i:012}"),
        "conversationId": room,
        "senderId": "user-0001",
        "senderName": "User One",
        "content": format!("message number {i:08} of the flood test"),
        "kind": "TEXT",
        "createdAt": "2026-11-30T15:00:00.000Z",
        "updatedAt": "2026-11-30T15:00:00.000Z",
        "deliveryStatus": "DELIVERED",
    });
    let mut audience =
        switchboard::bus::Audience::room(switchboard::bus::RoomKey::conversation(room));
    audience
        .rooms
        .push(switchboard::bus::RoomKey::user("user-0001"));
    switchboard::bus::Delivery {
        event: switchboard::event::Event::new(
            "message.created",
            body.as_object().cloned().unwrap_or_default(),
        ),
        audience,
        offset: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_room_keeps_history_size_facts() {
    use switchboard::config::HistoryConfig;
    use switchboard::hub::History;
    let room = switchboard::bus::RoomKey::conversation("flood");
    // In process: 1,000,000 messages, 100 kept, the newest.
    let cfg = HistoryConfig {
        size: 100,
        ..HistoryConfig::default()
    };
    let local = History::local(&cfg);
    let d = kept_message("flood", 0);
    for _ in 0..1_000_000 {
        local.append(&d).await;
    }
    let held = local.room(&room).await.expect("read");
    assert_eq!(held.kept.len(), 100);
    assert_eq!(held.kept.last().map(|k| k.seq), Some(1_000_000));
    assert!(
        !held.complete,
        "the start of the room's history was dropped"
    );

    // Redis: 20,000 messages appended as the appender does (batches of 256), at most
    // `history.size` kept (`MAXLEN ~` trims whole nodes: a little more may stay).
    let redis = crate::support::Redis::start().await;
    let client = redis::Client::open(redis.url()).expect("url");
    let conn = switchboard::bus::connection_manager(client.clone()).expect("connection");
    let cfg = HistoryConfig {
        size: 1000,
        ..HistoryConfig::default()
    };
    let shared = History::redis(conn, &cfg);
    let all: Vec<switchboard::bus::Delivery> =
        (0..20_000).map(|i| kept_message("flood", i)).collect();
    for chunk in all.chunks(256) {
        let refs: Vec<&switchboard::bus::Delivery> = chunk.iter().collect();
        assert!(shared.append_many(&refs).await.iter().all(Option::is_some));
    }
    let mut r = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let stream = "switchboard:history:{room:flood}";
    let len: usize = redis::cmd("XLEN")
        .arg(stream)
        .query_async(&mut r)
        .await
        .expect("xlen");
    assert!((1000..=1200).contains(&len), "{len} entries kept");
    let held = shared.room(&room).await.expect("read");
    assert_eq!(held.kept.len(), len);
    assert_eq!(
        held.kept
            .last()
            .map(|k| k.delivery.event.str_field("content").map(str::to_owned)),
        Some(Some(
            "message number 00019999 of the flood test".to_string()
        ))
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(stream)
        .query_async(&mut r)
        .await
        .expect("pttl");
    assert!(ttl > 0, "the stream has its TTL: {ttl}");
    let bytes: usize = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(stream)
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut r)
        .await
        .expect("memory usage");
    eprintln!(
        "Redis history: {len} kept messages in {bytes} bytes: {} bytes per 1,000 per room stream (each message is kept in its room's stream and its sender's personal room's)",
        bytes * 1000 / len.max(1)
    );
}

/// A raw Socket.IO connection on WebSocket: joined to the root namespace (salala) with
/// `auth`; the socket and the CONNECT answer.
async fn joined_raw(
    addr: SocketAddr,
    auth: Value,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    Value,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket opens");
    ws.send(Message::Text(format!("40{auth}").into()))
        .await
        .expect("connect");
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if let Some(answer) = t.strip_prefix("40") {
                    let v = serde_json::from_str(answer).expect("CONNECT answer");
                    return (ws, v);
                }
            }
            other => panic!("no CONNECT answer: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_back_before_its_old_connection_ended_takes_it_over() {
    use futures_util::StreamExt;
    let live = Live::start().await;
    let addr = live.addrs()[0];
    let user = unique("twice");
    let t = format!("Bearer {}", token(&user, None, None));
    let (mut old, first) = joined_raw(addr, json!({"token": t})).await;
    let pid = first["pid"].as_str().expect("a pid").to_string();
    // Another user with that pid is refused, and the session stays its owner's.
    let thief = format!("Bearer {}", token(&unique("thief"), None, None));
    let (mut refused, _) = joined_raw(addr, json!({"token": thief, "pid": pid})).await;
    let told = tokio::time::timeout(Duration::from_secs(5), async {
        let mut frames = Vec::new();
        while let Some(Ok(m)) = refused.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                frames.push(t.to_string());
            }
        }
        frames
    })
    .await
    .expect("the thief is closed");
    assert!(told.iter().any(|f| f.contains("another user")), "{told:?}");
    assert_eq!(live.hub().user_connection_count(&user), 1);
    // The old connection is still open (its network died silently, say): the client
    // comes back on a new one with its pid.
    let (_new, again) = joined_raw(addr, json!({"token": t, "pid": pid})).await;
    assert_eq!(again["sid"], first["sid"], "the same socket id: {again}");
    assert_eq!(again["pid"], first["pid"]);
    // The old one is closed, without a namespace disconnect.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = old.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = &m {
                assert!(!t.starts_with("41"), "{t}");
            }
            if m.is_close() {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the old connection is closed");
    for _ in 0..200 {
        if live.hub().user_connection_count(&user) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the old connection stayed registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_service_conversation_read_counts_what_it_marks_read() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let room = unique("room");
    let reader_id = unique("reader");
    let mut reader = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        &reader_id,
        Some(&[&room]),
    )
    .await;
    let mut from = senders(&live, &driver, &room).await;
    from.retain(|c| c.dialect != "chat-service");
    say(&mut from, &room, "a", 3).await;
    // Its own message is not counted.
    reader.send_message(&room, "mine", false).await;
    let mut ids = Vec::new();
    while let Some(e) = reader
        .canonical_where("message.created", Duration::from_millis(700), |_| true)
        .await
    {
        ids.push(e.str_field("messageId").unwrap_or_default().to_string());
    }
    assert_eq!(ids.len(), 4, "{ids:?}");
    let read = |up_to: Option<&str>| match up_to {
        Some(id) => json!({"conversationId": room, "upToMessageId": id}),
        None => json!({"conversationId": room}),
    };
    // Up to the second message: 2.
    reader
        .emit_wire("conversation:read", read(Some(&ids[1])), false)
        .await;
    let r = reader.wire("conversation:read").await.expect("read");
    assert_eq!(r["count"], 2, "{r}");
    // The rest, its own excluded: 1.
    reader
        .emit_wire("conversation:read", read(None), false)
        .await;
    let r = reader.wire("conversation:read").await.expect("read");
    assert_eq!(r["count"], 1, "{r}");
    // Two more from others: 2.
    say(&mut from, &room, "b", 2).await;
    reader
        .emit_wire("conversation:read", read(None), false)
        .await;
    let r = reader.wire("conversation:read").await.expect("read");
    assert_eq!(r["count"], 2, "{r}");
}
