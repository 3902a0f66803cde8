//! Live test support: a real switchboard server on port 0 in-process, raw WebSocket
//! clients (tokio-tungstenite), and official `socket.io-client` sockets driven through
//! `tests/js/driver.mjs` under node. Tests speak to every client in its own dialect,
//! through the shipped mappings (a canonical intent is encoded into the client's wire
//! form; what a client receives is decoded back to canonical to be checked).
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard::auth::Authenticator;
use switchboard::config::Config;
use switchboard::dialect::{DecodeContext, Direction, Registry, WireEvent};
use switchboard::event::Event;
use switchboard::server::Server;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The secret test servers verify tokens with.
pub const SECRET: &str = "live-test-secret";

/// How long a test waits for an event that must come.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long a test waits to be sure an event does not come.
pub const QUIET: Duration = Duration::from_millis(400);

/// The shipped mappings.
pub fn registry() -> Arc<Registry> {
    static REG: std::sync::OnceLock<Arc<Registry>> = std::sync::OnceLock::new();
    REG.get_or_init(|| Arc::new(Registry::embedded().expect("embedded mappings load")))
        .clone()
}

/// The shipped configuration on ports chosen by the OS, bound to 127.0.0.1.
pub fn test_config() -> Config {
    let mut cfg = Config::from_toml(switchboard::config::DEFAULT_TOML).expect("default");
    cfg.bind = "127.0.0.1".into();
    cfg.auth.secret = SECRET.into();
    cfg.instance = "test".into();
    // Each server its own webhook store (several run at once in one test binary).
    cfg.webhooks.store = unique_dir("webhooks");
    for l in &mut cfg.listeners {
        l.port = 0;
        l.port_env = None;
    }
    cfg
}

/// A running server and where each dialect listens.
pub struct Live {
    /// The in-process server (absent when the server is another process).
    server: Option<Server>,
    addrs: Vec<std::net::SocketAddr>,
}

/// Where a dialect is served by the shipped configuration: (listener index, path,
/// namespace, is Socket.IO).
pub fn route_of(cfg: &Config, dialect: &str) -> (usize, String, String, bool) {
    for (i, l) in cfg.listeners.iter().enumerate() {
        for r in &l.routes {
            if r.dialect == dialect {
                let sio = r.transport == switchboard::config::Transport::Socketio;
                return (
                    i,
                    r.path.clone(),
                    r.namespace.clone().unwrap_or_else(|| "/".into()),
                    sio,
                );
            }
        }
    }
    panic!("dialect {dialect} has no route")
}

impl Live {
    /// Starts the shipped configuration (adjusted by `tweak`).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Live {
        let mut cfg = test_config();
        tweak(&mut cfg);
        let server = Server::start(cfg, registry()).await.expect("server starts");
        let addrs = server.addrs.clone();
        Live {
            server: Some(server),
            addrs,
        }
    }

    /// A server running as another process, listening at `addrs` (configuration order).
    pub fn at(addrs: Vec<std::net::SocketAddr>) -> Live {
        Live {
            server: None,
            addrs,
        }
    }

    /// The in-process server.
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("an in-process server")
    }

    /// The in-process server's hub.
    pub fn hub(&self) -> &switchboard::hub::Hub {
        &self.server.as_ref().expect("an in-process server").hub
    }

    /// Whether the in-process server's brokers are reachable: (all, bus, RabbitMQ).
    pub fn ready(&self) -> (bool, bool, Option<bool>) {
        self.server.as_ref().expect("an in-process server").ready()
    }

    /// Listener addresses, in configuration order.
    pub fn addrs(&self) -> &[std::net::SocketAddr] {
        &self.addrs
    }

    /// Stops the in-process server as SIGTERM would (drained, every client told).
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(Duration::from_secs(5)).await;
        }
    }

    /// Starts the shipped configuration.
    pub async fn start() -> Live {
        Live::start_with(|_| {}).await
    }

    /// Where `dialect` is served: `(base url, path, is Socket.IO)`.
    pub fn url(&self, dialect: &str) -> (String, String, String, bool) {
        let (i, path, ns, sio) = route_of(&test_config(), dialect);
        let addr = self.addrs[i];
        (format!("http://{addr}"), path, ns, sio)
    }

    /// The HTTP API's base URL.
    pub fn api(&self) -> String {
        format!("http://{}", self.addrs[0])
    }
}

/// A name no other run uses (Redis and RabbitMQ are shared).
pub fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A directory path no other server of this run uses (not created).
pub fn unique_dir(what: &str) -> String {
    std::env::temp_dir()
        .join(unique(&format!("switchboard-{what}")))
        .to_string_lossy()
        .into_owned()
}

/// A token for `user`.
pub fn token(user: &str, name: Option<&str>, rooms: Option<&[&str]>) -> String {
    let auth = Authenticator::hs256(SECRET, Duration::ZERO);
    let rooms = rooms.map(|r| r.iter().map(|s| s.to_string()).collect());
    auth.mint(user, name, rooms, Duration::from_secs(3600))
        .expect("mint")
}

/// An expired token for `user`.
pub fn expired_token(user: &str) -> String {
    let auth = Authenticator::hs256(SECRET, Duration::ZERO);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = switchboard::auth::Claims {
        sub: user.into(),
        name: None,
        rooms: None,
        iat: now - 7200,
        exp: now - 3600,
        nbf: None,
    };
    auth.sign(&claims).expect("sign")
}

/// One wire event a client received (or a transport report: `__connect__`,
/// `__connect_error__`, `__disconnect__`, `__close__`, `__ack__:<event>`).
#[derive(Debug, Clone)]
pub struct Received {
    pub name: String,
    pub payload: Value,
}

/// Serves a connected raw WebSocket for a [`Client`]: what `out_rx` gives is sent, what
/// arrives goes to `tx` (envelopes by their `event`, the close as `__close__`).
pub fn attach<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    tx: mpsc::UnboundedSender<Received>,
    mut out_rx: mpsc::UnboundedReceiver<Message>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut w, mut r) = ws.split();
    let _ = tx.send(Received {
        name: "__connect__".into(),
        payload: Value::Null,
    });
    tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if w.send(m).await.is_err() {
                break;
            }
        }
        let _ = w.close().await;
    });
    tokio::spawn(async move {
        while let Some(m) = r.next().await {
            let rec = match m {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    Received {
                        name: v["event"].as_str().unwrap_or_default().into(),
                        payload: v["data"].clone(),
                    }
                }
                Ok(Message::Close(f)) => {
                    let (code, reason) = f
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    let _ = tx.send(Received {
                        name: "__close__".into(),
                        payload: json!({"code": code, "reason": reason}),
                    });
                    break;
                }
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Received {
                        name: "__close__".into(),
                        payload: json!({"code": 1006, "reason": e.to_string()}),
                    });
                    break;
                }
            };
            let _ = tx.send(rec);
        }
    });
}

/// The node process driving official Socket.IO clients.
pub struct Driver {
    child: Child,
    stdin: tokio::sync::Mutex<ChildStdin>,
    routes: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Received>>>>,
}

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

impl Driver {
    /// Starts `node tests/js/driver.mjs` (scripts/test installs its packages).
    pub async fn start() -> Arc<Driver> {
        Driver::start_with_env(&[]).await
    }

    /// Like [`Driver::start`], with `env` set for node (`NODE_EXTRA_CA_CERTS`: a CA
    /// its TLS connections trust).
    pub async fn start_with_env(env: &[(&str, &str)]) -> Arc<Driver> {
        assert!(
            js_dir().join("node_modules/socket.io-client").exists(),
            "socket.io-client is not installed: run `npm ci --prefix tests/js` (scripts/test does)"
        );
        let mut child = Command::new("node")
            .envs(env.iter().copied())
            .arg("driver.mjs")
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let routes: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Received>>>> = Arc::default();
        let r = routes.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let id = v["id"].as_str().unwrap_or_default().to_string();
                let rec = match v["type"].as_str().unwrap_or_default() {
                    "event" => Received {
                        name: v["event"].as_str().unwrap_or_default().into(),
                        payload: v["args"].get(0).cloned().unwrap_or(Value::Null),
                    },
                    "ack" => Received {
                        name: format!("__ack__:{}", v["event"].as_str().unwrap_or_default()),
                        payload: v["args"].get(0).cloned().unwrap_or(Value::Null),
                    },
                    "connect" => {
                        // Whether the session was recovered follows at once, for the
                        // tests that ask.
                        if let Some(tx) = r.lock().expect("routes").get(&id) {
                            let _ = tx.send(Received {
                                name: "__connect__".into(),
                                payload: v["sid"].clone(),
                            });
                            let _ = tx.send(Received {
                                name: "__recovered__".into(),
                                payload: v["recovered"].clone(),
                            });
                        }
                        continue;
                    }
                    "connect_error" => Received {
                        name: "__connect_error__".into(),
                        payload: v["message"].clone(),
                    },
                    "disconnect" => Received {
                        name: "__disconnect__".into(),
                        payload: v["reason"].clone(),
                    },
                    other => {
                        eprintln!("driver: {other}: {line}");
                        continue;
                    }
                };
                if let Some(tx) = r.lock().expect("routes").get(&id) {
                    let _ = tx.send(rec);
                }
            }
        });
        Arc::new(Driver {
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            routes,
        })
    }

    async fn command(&self, c: Value) {
        let mut line = c.to_string();
        line.push('\n');
        let mut stdin = self.stdin.lock().await;
        stdin
            .write_all(line.as_bytes())
            .await
            .expect("driver stdin");
        stdin.flush().await.expect("flush");
    }
}

enum Transport {
    Ws(mpsc::UnboundedSender<Message>),
    Sio { driver: Arc<Driver>, id: String },
}

/// A client of one dialect, connected to a live server.
pub struct Client {
    pub dialect: String,
    pub user: String,
    transport: Transport,
    inbox: mpsc::UnboundedReceiver<Received>,
    seen: Vec<Received>,
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// How a client presents its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAt {
    /// Socket.IO `auth.token` with `Bearer `; raw WebSocket `Authorization: Bearer`.
    Primary,
    /// Socket.IO `auth.token` without `Bearer `; raw WebSocket `?token=`.
    Plain,
    /// The `token` query parameter.
    Query,
    /// No token.
    None,
}

impl Client {
    /// Connects a client of `dialect` (Socket.IO over `transport`: "websocket" or
    /// "polling"), without waiting for the outcome.
    pub async fn open(
        live: &Live,
        driver: &Arc<Driver>,
        dialect: &str,
        transport: &str,
        user: &str,
        token: Option<&str>,
        at: TokenAt,
    ) -> Client {
        let (base, path, _, sio) = live.url(dialect);
        let (tx, rx) = mpsc::unbounded_channel();
        let transport = if sio {
            let (auth, query) = match (at, token) {
                (TokenAt::Primary, Some(t)) => {
                    (json!({"token": format!("Bearer {t}")}), Value::Null)
                }
                (TokenAt::Plain, Some(t)) => (json!({"token": t}), Value::Null),
                (TokenAt::Query, Some(t)) => (Value::Null, json!({"token": t})),
                _ => (Value::Null, Value::Null),
            };
            return Client::socketio(live, driver, dialect, transport, user, auth, query).await;
        } else {
            let ws_base = base.replacen("http://", "ws://", 1);
            let url = match (at, token) {
                (TokenAt::Plain | TokenAt::Query, Some(t)) => format!("{ws_base}{path}?token={t}"),
                _ => format!("{ws_base}{path}"),
            };
            let mut req = url.into_client_request().expect("request");
            if let (TokenAt::Primary, Some(t)) = (at, token) {
                req.headers_mut().insert(
                    "authorization",
                    format!("Bearer {t}").parse().expect("header"),
                );
            }
            let (out_tx, out_rx) = mpsc::unbounded_channel::<Message>();
            match tokio_tungstenite::connect_async(req).await {
                Ok((ws, _)) => attach(ws, tx, out_rx),
                Err(e) => {
                    let _ = tx.send(Received {
                        name: "__connect_error__".into(),
                        payload: json!(e.to_string()),
                    });
                }
            }
            Transport::Ws(out_tx)
        };
        Client {
            dialect: dialect.into(),
            user: user.into(),
            transport,
            inbox: rx,
            seen: Vec::new(),
        }
    }

    /// Connects an official socket.io-client of `dialect` with the handshake `auth`
    /// given as is (Clerk's `{token, userId}`), without waiting for the outcome.
    pub async fn socketio(
        live: &Live,
        driver: &Arc<Driver>,
        dialect: &str,
        transport: &str,
        user: &str,
        auth: Value,
        query: Value,
    ) -> Client {
        let (base, path, ns, _) = live.url(dialect);
        Client::socketio_at(
            driver, dialect, &base, &path, &ns, transport, user, auth, query,
        )
        .await
    }

    /// Connects an official socket.io-client of `dialect` to `base` (`https://…`),
    /// `path`, namespace `ns`, without waiting for the outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn socketio_at(
        driver: &Arc<Driver>,
        dialect: &str,
        base: &str,
        path: &str,
        ns: &str,
        transport: &str,
        user: &str,
        auth: Value,
        query: Value,
    ) -> Client {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = format!(
            "c{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        driver.routes.lock().expect("routes").insert(id.clone(), tx);
        let url = if ns == "/" {
            format!("{base}/")
        } else {
            format!("{base}{ns}")
        };
        driver
            .command(json!({"op": "connect", "id": id, "url": url, "path": path,
                "transport": transport, "auth": auth, "query": query}))
            .await;
        Client {
            dialect: dialect.into(),
            user: user.into(),
            transport: Transport::Sio {
                driver: driver.clone(),
                id,
            },
            inbox: rx,
            seen: Vec::new(),
        }
    }

    /// A raw WebSocket client of `dialect` on `ws`, already connected (over TLS, say).
    pub fn over<S>(dialect: &str, user: &str, ws: tokio_tungstenite::WebSocketStream<S>) -> Client
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::unbounded_channel::<Message>();
        attach(ws, tx, out_rx);
        Client {
            dialect: dialect.into(),
            user: user.into(),
            transport: Transport::Ws(out_tx),
            inbox: rx,
            seen: Vec::new(),
        }
    }

    /// Sends the driver a command for this (official Socket.IO) client: `pause` (its
    /// transport closes, no goodbye) or `resume` (it comes back).
    pub async fn drive(&self, op: &str) {
        if let Transport::Sio { driver, id } = &self.transport {
            driver.command(json!({"op": op, "id": id})).await;
        }
    }

    /// Connects an authenticated client and waits until it is connected.
    pub async fn connect(
        live: &Live,
        driver: &Arc<Driver>,
        dialect: &str,
        transport: &str,
        user: &str,
        rooms: Option<&[&str]>,
    ) -> Client {
        let t = token(user, Some(&format!("User {user}")), rooms);
        let mut c = Client::open(
            live,
            driver,
            dialect,
            transport,
            user,
            Some(&t),
            TokenAt::Primary,
        )
        .await;
        let r = c.next(|r| r.name.starts_with("__connect")).await;
        assert_eq!(
            r.map(|r| r.name),
            Some("__connect__".into()),
            "{dialect} client connects"
        );
        c
    }

    /// Sends a wire event as is.
    pub async fn emit_wire(&self, name: &str, payload: Value, ack: bool) {
        match &self.transport {
            Transport::Ws(tx) => {
                let frame = json!({"event": name, "traceId": "00000000-0000-4000-8000-000000000000", "data": payload});
                // A server may close the socket under a flood (the rate limit): what is
                // sent after that is lost, as for any client; tests check the close.
                let _ = tx.send(Message::Text(frame.to_string().into()));
            }
            Transport::Sio { driver, id } => {
                driver
                    .command(json!({"op": "emit", "id": id, "event": name, "args": [payload], "ack": ack}))
                    .await;
            }
        }
    }

    /// Sends a raw WebSocket message (raw WebSocket clients only).
    pub fn send_raw(&self, m: Message) {
        if let Transport::Ws(tx) = &self.transport {
            let _ = tx.send(m);
        }
    }

    /// Sends a canonical intent in this client's dialect; false if it cannot express it.
    pub async fn emit(&self, name: &str, body: Value, ack: bool) -> bool {
        let reg = registry();
        let d = reg.dialect(&self.dialect).expect("dialect");
        let mut ev = Event::new(name, body.as_object().cloned().unwrap_or_default());
        ev.meta.trace_id = "00000000-0000-4000-8000-000000000000".to_string().into();
        let Ok(enc) = d.encode(&ev, Direction::Up) else {
            return false;
        };
        let name = enc.name.to_string();
        let payload = enc.payload_value().unwrap_or(Value::Object(Map::new()));
        self.emit_wire(&name, payload, ack).await;
        true
    }

    /// Sends `message.send {conversationId: room, content}` in this client's dialect.
    pub async fn send_message(&self, room: &str, content: &str, ack: bool) {
        let body = json!({"conversationId": room, "content": content});
        assert!(
            self.emit("message.send", body, ack).await,
            "{} sends messages",
            self.dialect
        );
    }

    /// The next received event (already buffered or arriving within `WAIT`) matching `pred`.
    pub async fn next(&mut self, pred: impl Fn(&Received) -> bool) -> Option<Received> {
        self.next_within(WAIT, pred).await
    }

    /// As `next`, with a timeout.
    pub async fn next_within(
        &mut self,
        wait: Duration,
        pred: impl Fn(&Received) -> bool,
    ) -> Option<Received> {
        if let Some(i) = self.seen.iter().position(&pred) {
            return Some(self.seen.remove(i));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.inbox.recv()).await {
                Ok(Some(r)) if pred(&r) => return Some(r),
                Ok(Some(r)) => self.seen.push(r),
                _ => return None,
            }
        }
    }

    /// The next wire event named `name`.
    pub async fn wire(&mut self, name: &str) -> Option<Value> {
        self.next(|r| r.name == name).await.map(|r| r.payload)
    }

    /// The next ack, whatever event it answers.
    pub async fn ack_any(&mut self) -> Option<Value> {
        self.next(|r| r.name.starts_with("__ack__:"))
            .await
            .map(|r| r.payload)
    }

    /// The ack of the last `event` emitted with `ack: true`.
    pub async fn ack(&mut self, event: &str) -> Option<Value> {
        let key = format!("__ack__:{event}");
        self.next(|r| r.name == key).await.map(|r| r.payload)
    }

    /// The next received event that decodes (in this client's dialect, as sent by a
    /// server) to canonical `name` and satisfies `pred`.
    pub async fn canonical_where(
        &mut self,
        name: &str,
        wait: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let dialect = self.dialect.clone();
        let want = name.to_string();
        let found = self
            .next_within(wait, |r| {
                decode_down(&dialect, r)
                    .iter()
                    .any(|e| *e.name == want && pred(e))
            })
            .await?;
        decode_down(&dialect, &found)
            .into_iter()
            .find(|e| &*e.name == name)
    }

    /// The next received event that decodes to canonical `name`.
    pub async fn canonical(&mut self, name: &str) -> Option<Event> {
        self.canonical_where(name, WAIT, |_| true).await
    }

    /// Closes the client.
    pub async fn close(self) {
        match &self.transport {
            Transport::Ws(tx) => {
                let _ = tx.send(Message::Close(None));
            }
            Transport::Sio { driver, id } => driver.command(json!({"op": "close", "id": id})).await,
        }
    }
}

/// Decodes a received wire event in `dialect` (server → client).
pub fn decode_down(dialect: &str, r: &Received) -> Vec<Event> {
    if r.name.starts_with("__") {
        return Vec::new();
    }
    let reg = registry();
    let Some(d) = reg.dialect(dialect) else {
        return Vec::new();
    };
    let payload = if r.payload.is_null() {
        None
    } else {
        Some(r.payload.clone())
    };
    d.decode(
        WireEvent::new(r.name.clone(), payload),
        Some(Direction::Down),
        &DecodeContext::default(),
    )
    .map(|v| v.into_iter().collect())
    .unwrap_or_default()
}

/// Whether `dialect` can send canonical intent `name`.
pub fn can_send(dialect: &str, name: &str) -> bool {
    let reg = registry();
    let d = reg.dialect(dialect).expect("dialect");
    d.encoders(name, Direction::Up).next().is_some()
}

/// Whether `dialect` can receive canonical fact `name`.
pub fn can_receive(dialect: &str, name: &str) -> bool {
    let reg = registry();
    let d = reg.dialect(dialect).expect("dialect");
    d.encoders(name, Direction::Down).next().is_some()
}

/// The client dialects the hub serves.
pub const CLIENT_DIALECTS: [&str; 5] = ["nexus", "clerk", "phase10", "salala", "chat-service"];

/// A webhook receiver that counts deliveries by event id and answers `status`.
pub async fn receiver(
    status: Arc<std::sync::Mutex<u16>>,
    got: Arc<std::sync::Mutex<Vec<String>>>,
) -> std::net::SocketAddr {
    use http_body_util::{BodyExt, Full};
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = tcp.accept().await else {
                return;
            };
            let (status, got) = (status.clone(), got.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (status, got) = (status.clone(), got.clone());
                        async move {
                            let id = req
                                .headers()
                                .get("x-webhook-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            let _ = req.into_body().collect().await;
                            let code = *status.lock().expect("status");
                            if code == 200 {
                                got.lock().expect("got").push(id);
                            }
                            let mut resp =
                                hyper::Response::new(Full::new(bytes::Bytes::from_static(b"")));
                            *resp.status_mut() = hyper::StatusCode::from_u16(code).expect("status");
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// One raw HTTP/1.1 request (`Connection: close`): (status, whole answer).
pub async fn raw_http(addr: std::net::SocketAddr, req: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

/// POSTs to the internal API; (status, whole answer).
pub async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    secret: &str,
    body: &str,
) -> (u16, String) {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nX-Internal-Secret: {secret}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw_http(addr, &req).await
}

/// GETs from the internal API; (status, JSON answer).
pub async fn get_internal(addr: std::net::SocketAddr, path: &str, secret: &str) -> (u16, Value) {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nX-Internal-Secret: {secret}\r\nConnection: close\r\n\r\n"
    );
    let (code, out) = raw_http(addr, &req).await;
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}
