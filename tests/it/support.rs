//! What the fault and outage tests share: brokers of the tests' own (a `redis-server` on a
//! free port, stopped and started at will, never the machine's), raw WebSocket clients
//! that speak frame by frame, and waiting for a condition.

use futures_util::{SinkExt, StreamExt};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A raw WebSocket client.
pub type Wire = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A TCP port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Waits until `n` instances listen to `room`'s channel.
pub async fn subscribed(url: &str, room: &str, n: usize) {
    listening(url, &format!("switchboard:{{room:{room}}}"), n).await;
}

/// Waits until `n` instances listen to `channel` (each subscribes in the background
/// once a member registered, after its client heard it connected).
pub async fn listening(url: &str, channel: &str, n: usize) {
    let mut r = redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    for _ in 0..250 {
        let numsub: Vec<(String, usize)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut r)
            .await
            .expect("numsub");
        if numsub.first().is_some_and(|(_, k)| *k >= n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} instances never listened to {channel}");
}

/// A `redis-server` of the test's own on `port`, killed when dropped.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    /// For a TLS-only server: `--tls-*` arguments (the port is then its TLS port).
    tls: Vec<String>,
}

impl Redis {
    /// Starts one on a free port and waits until it answers.
    pub async fn start() -> Redis {
        Redis::start_with_tls(Vec::new()).await
    }

    /// Starts one serving TLS only on a free port, with `tls` (`--tls-cert-file`, …).
    pub async fn start_with_tls(tls: Vec<String>) -> Redis {
        let mut r = Redis {
            port: free_port(),
            child: None,
            tls,
        };
        r.resume().await;
        r
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: an outage, not a goodbye).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing).
    pub async fn resume(&mut self) {
        let port = self.port.to_string();
        let ports = if self.tls.is_empty() {
            vec!["--port", port.as_str()]
        } else {
            vec!["--port", "0", "--tls-port", port.as_str()]
        };
        let child = Command::new("redis-server")
            .args(ports)
            .args(&self.tls)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        wait_port(self.port).await;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `port` accepts connections.
pub async fn wait_port(port: u16) {
    for _ in 0..1000 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("port {port} never opened");
}

/// Waits until `f` holds, up to `limit`.
pub async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a raw WebSocket.
pub async fn open(url: &str) -> Wire {
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(ws, _)| ws)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Sends a text frame.
pub async fn send(ws: &mut Wire, text: impl Into<String>) {
    ws.send(Message::Text(text.into().into()))
        .await
        .expect("send");
}

/// The next text frame within `wait`; `None` on a close, an error or silence.
pub async fn next_text(ws: &mut Wire, wait: Duration) -> Option<String> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Reads until the connection closes; the close code (1005: none, 1006: no close frame).
pub async fn close_code(ws: &mut Wire, wait: Duration) -> Option<u16> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => return Some(f.map_or(1005, |f| u16::from(f.code))),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return Some(1006),
            Err(_) => return None,
        }
    }
}

/// A raw HTTP/1.1 exchange on a fresh TCP connection: (status, whole answer); status 0
/// when none came.
pub async fn http(addr: std::net::SocketAddr, req: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let _ = s.write_all(req).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

/// Opens a Socket.IO long-polling session at `addr`'s `/socket.io/`; its sid.
pub async fn poll_open(addr: std::net::SocketAddr) -> String {
    let (code, body) = http(
        addr,
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let open = body.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(open.trim_start_matches('0')).expect("open packet");
    v["sid"].as_str().expect("sid").to_string()
}

/// POSTs a polling body to session `sid`; the status.
pub async fn poll_post(addr: std::net::SocketAddr, sid: &str, body: &str) -> u16 {
    let req = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http(addr, req.as_bytes()).await.0
}

/// GETs what waits for session `sid` (a long poll: until something comes).
pub async fn poll_get(addr: std::net::SocketAddr, sid: &str) -> String {
    let req = format!(
        "GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let (_, body) = http(addr, req.as_bytes()).await;
    body.split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Polls session `sid` until a payload holds `needle` (a few polls at most); that payload.
pub async fn poll_until(addr: std::net::SocketAddr, sid: &str, needle: &str) -> Option<String> {
    for _ in 0..5 {
        let got = poll_get(addr, sid).await;
        if got.contains(needle) {
            return Some(got);
        }
    }
    None
}

/// One HTTP/1.1 request built from its parts (`headers`: whole `Name: value\r\n`
/// lines), the connection closed after it: (status, whole answer), as [`http`].
pub async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http(addr, req.as_bytes()).await
}
