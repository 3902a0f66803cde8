//! A Salala backend (seed 003): Socket.IO on socketioxide, the token in the `token`
//! query parameter (a refused token is a connect error), the user in its personal room;
//! `joinRoom`, `sendMessage` (`newMessage` to the conversation, the message returned as
//! the ack, as a NestJS handler's return value is; a refusal is an `exception` event),
//! `typing`/`stopTyping` relayed to the others, `userStatusChanged` to everyone.

use super::{user_of, verify};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The user a socket authenticated as.
#[derive(Clone)]
struct User(Arc<str>);

/// A running Salala backend.
pub struct Salala {
    /// Its address (`http://{addr}`, path `/socket.io`).
    pub addr: SocketAddr,
    stop: CancellationToken,
    io: SocketIo,
}

fn user(s: &SocketRef) -> String {
    s.extensions
        .get::<User>()
        .map(|u| u.0.to_string())
        .unwrap_or_default()
}

impl Salala {
    /// Starts on `port` (0: any).
    pub async fn start(secret: &str, port: u16) -> Salala {
        let tcp = super::bind(port).await;
        let addr = tcp.local_addr().expect("addr");
        let (svc, io) = SocketIo::builder().build_svc();
        let secret = secret.to_string();
        let io2 = io.clone();
        let auth = move |s: SocketRef| {
            let (secret, io) = (secret.clone(), io2.clone());
            async move {
                let token = super::query_token(s.req_parts().uri.query())
                    .ok_or("unauthorized: no token")?;
                let claims = verify(&secret, &token).ok_or("unauthorized: invalid token")?;
                let u = user_of(&claims).ok_or("unauthorized: no user")?;
                s.extensions.insert(User(Arc::from(u.as_str())));
                // Before the client hears it is connected: an event it sends at once must
                // find its handler (socketioxide runs the connect handler afterwards).
                handlers(&s, io);
                Ok::<(), &'static str>(())
            }
        };
        let io2 = io.clone();
        let on_connect = move |s: SocketRef| {
            let io = io2.clone();
            async move {
                let me = user(&s);
                s.join(me.clone());
                let _ = io
                    .emit(
                        "userStatusChanged",
                        &json!({"userId": me, "status": "online"}),
                    )
                    .await;
            }
        };
        io.ns("/", on_connect.with(auth));
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    () = s.cancelled() => return,
                    r = tcp.accept() => match r { Ok(x) => x, Err(_) => continue },
                };
                let svc = svc.clone();
                let s = s.clone();
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    tokio::select! {
                        _ = conn => {}
                        () = s.cancelled() => {}
                    }
                });
            }
        });
        Salala { addr, stop, io }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sockets connected now.
    pub fn connections(&self) -> usize {
        self.io.of("/").map(|ns| ns.sockets().len()).unwrap_or(0)
    }

    /// Stops: every socket is disconnected, the port closes.
    pub async fn stop(&self) {
        if let Some(ns) = self.io.of("/") {
            let _ = ns.disconnect().await;
        }
        self.stop.cancel();
    }
}

/// What the gateway's ChatGateway handles.
fn handlers(s: &SocketRef, io: SocketIo) {
    s.on(
        "joinRoom",
        async |s: SocketRef, Data(d): Data<Value>, ack: AckSender| {
            let room = d["conversationId"].as_str().unwrap_or_default().to_string();
            s.join(room.clone());
            let _ = ack.send(&json!({"joined": room}));
        },
    );
    let io3 = io.clone();
    s.on("sendMessage", move |s: SocketRef, Data(d): Data<Value>, ack: AckSender| {
        let io = io3.clone();
        async move {
            let room = d["conversationId"].as_str().unwrap_or_default().to_string();
            if room == "forbidden" || d["content"].as_str().unwrap_or_default().is_empty() {
                // A WsException: an `exception` event, no ack.
                let _ = s.emit("exception", &json!({"status": "error", "message": "Unauthorized to send message to this room"}));
                return;
            }
            let msg = json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "conversationId": room,
                "senderId": user(&s),
                "content": d["content"],
                "createdAt": "2026-11-22T00:00:00.000Z",
            });
            let _ = io.within(room).emit("newMessage", &msg).await;
            let _ = ack.send(&msg);
        }
    });
    s.on("typing", async |s: SocketRef, Data(d): Data<Value>| {
        let room = d["conversationId"].as_str().unwrap_or_default().to_string();
        let _ = s
            .to(room.clone())
            .emit(
                "userTyping",
                &json!({"userId": user(&s), "conversationId": room}),
            )
            .await;
    });
    s.on("stopTyping", async |s: SocketRef, Data(d): Data<Value>| {
        let room = d["conversationId"].as_str().unwrap_or_default().to_string();
        let _ = s
            .to(room.clone())
            .emit(
                "userStopTyping",
                &json!({"userId": user(&s), "conversationId": room}),
            )
            .await;
    });
}
