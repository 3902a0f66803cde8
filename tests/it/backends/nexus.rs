//! A NexusChat backend (seed 000): envelopes over raw WebSocket at `/ws?token=`, a
//! connection in the rooms its token grants; `SEND_MSG` answered by `NEW_MESSAGE` (same
//! `traceId`) to the room, `TYPING` relayed to the others, `SIGNAL_SDP` relayed to the
//! target with the `busy` state and `CALL_REJECTED`, `ERROR` for what it cannot do. Its
//! REST API (`GET /api/rooms/{id}/messages`) listens on a port of its own.

use super::{user_of, verify};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request as WsReq, Response as WsResp,
};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct State {
    /// user → its connections.
    users: HashMap<String, Vec<(u64, mpsc::UnboundedSender<Message>)>>,
    /// room → users in it.
    rooms: HashMap<String, HashSet<String>>,
    busy: HashSet<String>,
    next: u64,
    /// Every message stored, for the REST API.
    history: Vec<Value>,
}

/// A running NexusChat backend.
pub struct Nexus {
    /// The WebSocket address (`ws://{addr}/ws`).
    pub addr: SocketAddr,
    /// The REST API address.
    pub rest: SocketAddr,
    stop: CancellationToken,
    state: Arc<Mutex<State>>,
}

impl Nexus {
    /// Starts on `port` (0: any) with its REST API on `rest_port`.
    pub async fn start(secret: &str, port: u16, rest_port: u16) -> Nexus {
        let tcp = super::bind(port).await;
        let rest_tcp = super::bind(rest_port).await;
        let (addr, rest) = (
            tcp.local_addr().expect("addr"),
            rest_tcp.local_addr().expect("addr"),
        );
        let stop = CancellationToken::new();
        let state: Arc<Mutex<State>> = Arc::default();
        let (st, s, secret) = (state.clone(), stop.clone(), secret.to_string());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    () = s.cancelled() => return,
                    r = tcp.accept() => match r { Ok(x) => x, Err(_) => continue },
                };
                tokio::spawn(serve(stream, secret.clone(), st.clone(), s.clone()));
            }
        });
        let (st, s) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    () = s.cancelled() => return,
                    r = rest_tcp.accept() => match r { Ok(x) => x, Err(_) => continue },
                };
                let (st, s) = (st.clone(), s.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, std::convert::Infallible>(rest_api(req, &st).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    // A stopped backend keeps no connection open (as a dead process).
                    tokio::select! {
                        _ = conn => {}
                        () = s.cancelled() => {}
                    }
                });
            }
        });
        Nexus {
            addr,
            rest,
            stop,
            state,
        }
    }

    /// The WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The REST base URL.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest)
    }

    /// Marks `user` busy (in a call).
    pub fn set_busy(&self, user: &str) {
        self.state.lock().expect("state").busy.insert(user.into());
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.state
            .lock()
            .expect("state")
            .users
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Stops: every connection gets a close frame (1012), the ports close.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn rest_api(
    req: Request<hyper::body::Incoming>,
    st: &Arc<Mutex<State>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let authed = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = |status: StatusCode, v: Value| {
        let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
        *r.status_mut() = status;
        r.headers_mut()
            .insert("content-type", "application/json".parse().expect("header"));
        r.headers_mut()
            .insert("x-backend", "nexus".parse().expect("header"));
        r.headers_mut().insert(
            "x-seen-forwarded-for",
            forwarded
                .parse()
                .unwrap_or_else(|_| "?".parse().expect("header")),
        );
        r
    };
    if !authed {
        return answer(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["api", "rooms", room, "messages"]) => {
            let list: Vec<Value> = st
                .lock()
                .expect("state")
                .history
                .iter()
                .rev()
                .filter(|m| m["roomId"] == *room)
                .cloned()
                .collect();
            answer(StatusCode::OK, Value::Array(list))
        }
        ("POST", ["api", "rooms", room, "echo"]) => answer(
            StatusCode::CREATED,
            json!({"room": room, "body": String::from_utf8_lossy(&body)}),
        ),
        _ => answer(
            StatusCode::NOT_FOUND,
            json!({"error": "no such route", "path": path}),
        ),
    }
}

fn envelope(event: &str, trace: &str, data: Value) -> Message {
    Message::Text(
        json!({"event": event, "traceId": trace, "data": data})
            .to_string()
            .into(),
    )
}

#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
async fn serve(
    stream: tokio::net::TcpStream,
    secret: String,
    st: Arc<Mutex<State>>,
    stop: CancellationToken,
) {
    let claims: Arc<Mutex<Option<serde_json::Map<String, Value>>>> = Arc::default();
    let c = claims.clone();
    let callback = move |req: &WsReq, resp: WsResp| -> Result<WsResp, ErrorResponse> {
        let token = super::query_token(req.uri().query());
        match token.and_then(|t| verify(&secret, &t)) {
            Some(cl) => {
                *c.lock().expect("claims") = Some(cl);
                Ok(resp)
            }
            None => {
                let mut e = ErrorResponse::new(Some("invalid or missing token".into()));
                *e.status_mut() = StatusCode::UNAUTHORIZED;
                Err(e)
            }
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some(cl) = claims.lock().expect("claims").take() else {
        return;
    };
    let Some(user) = user_of(&cl) else { return };
    let rooms: Vec<String> = cl
        .get("rooms")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let id = {
        let mut s = st.lock().expect("state");
        s.next += 1;
        let id = s.next;
        s.users
            .entry(user.clone())
            .or_default()
            .push((id, tx.clone()));
        for r in &rooms {
            s.rooms.entry(r.clone()).or_default().insert(user.clone());
        }
        id
    };
    let (mut w, mut r) = ws.split();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = m.is_close();
            if w.send(m).await.is_err() || close {
                break;
            }
        }
    });
    loop {
        let m = tokio::select! {
            () = stop.cancelled() => {
                let _ = tx.send(Message::Close(Some(CloseFrame { code: 1012.into(), reason: "restarting".into() })));
                break;
            }
            m = r.next() => m,
        };
        let text = match m {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            let _ = tx.send(envelope(
                "ERROR",
                "",
                json!({"code": "bad_event", "message": "not JSON"}),
            ));
            continue;
        };
        let trace = v["traceId"].as_str().unwrap_or_default().to_string();
        let data = &v["data"];
        let mut s = st.lock().expect("state");
        let to_users = |s: &State, users: &mut dyn Iterator<Item = &String>, m: &Message| {
            for u in users {
                for (_, t) in s.users.get(u).into_iter().flatten() {
                    let _ = t.send(m.clone());
                }
            }
        };
        match v["event"].as_str().unwrap_or_default() {
            "SEND_MSG" => {
                let room = data["roomId"].as_str().unwrap_or_default().to_string();
                if !rooms.contains(&room) {
                    let _ = tx.send(envelope("ERROR", &trace, json!({"code": "forbidden", "message": format!("not a member of room {room}")})));
                    continue;
                }
                let msg = json!({
                    "id": uuid::Uuid::new_v4().to_string(),
                    "roomId": room,
                    "senderId": user,
                    "type": data["type"].as_str().unwrap_or("TEXT"),
                    "contentText": data["contentText"],
                    "createdAt": "2026-11-22T00:00:00.000Z",
                });
                s.history.push(msg.clone());
                let m = envelope("NEW_MESSAGE", &trace, msg);
                let members: Vec<String> =
                    s.rooms.get(&room).into_iter().flatten().cloned().collect();
                to_users(&s, &mut members.iter(), &m);
            }
            "TYPING" => {
                let room = data["roomId"].as_str().unwrap_or_default().to_string();
                let m = envelope(
                    "TYPING",
                    &trace,
                    json!({"roomId": room, "userId": user, "isTyping": data["isTyping"]}),
                );
                let others: Vec<String> = s
                    .rooms
                    .get(&room)
                    .into_iter()
                    .flatten()
                    .filter(|u| **u != user)
                    .cloned()
                    .collect();
                to_users(&s, &mut others.iter(), &m);
            }
            "SIGNAL_SDP" => {
                let target = data["targetId"].as_str().unwrap_or_default().to_string();
                if data["type"] == "offer" && s.busy.contains(&target) {
                    let _ = tx.send(envelope("CALL_REJECTED", &trace, json!({"callerId": user, "targetId": target, "status": "busy", "reason": "user is in another call"})));
                    continue;
                }
                if data["type"] == "offer" {
                    s.busy.insert(user.clone());
                }
                let m = envelope(
                    "SIGNAL_SDP",
                    &trace,
                    json!({"targetId": target, "type": data["type"], "sdp": data["sdp"]}),
                );
                to_users(&s, &mut std::iter::once(&target), &m);
            }
            other => {
                let _ = tx.send(envelope(
                    "ERROR",
                    &trace,
                    json!({"code": "unknown_event", "message": format!("unknown event {other}")}),
                ));
            }
        }
    }
    {
        let mut s = st.lock().expect("state");
        if let Some(list) = s.users.get_mut(&user) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                s.users.remove(&user);
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
