//! Raw WebSocket routes (NexusChat's envelopes): the upgrade with the token from
//! `Authorization: Bearer` or `?token=`, then one task per connection handing each text
//! frame to the inbound path (`route`), answering control frames, and ending the
//! connection on a close, a protocol violation, silence or the server's cut.

use super::{
    CLOSE_UNAUTHORIZED, Outgoing, QueueOutlet, Upgrade, WsConnection, accept, answer_control,
    bounded, close_for, user_agent, write_now,
};
use crate::auth as token;
use crate::auth::Provider;
use crate::bus::Offset;
use crate::config::Transport;
use crate::hub::{CLOSE_TRY_LATER, ErrorCode, Recover};
use crate::listen::Context;
use crate::listen::http::WsRoute;
use crate::listen::respond::Body;
use crate::route::{Arrival, Inbound};
use crate::upstream::Upstream;
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Request, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Answers a WebSocket upgrade on a raw WebSocket route.
pub(crate) fn upgrade(
    mut req: Request<Incoming>,
    route: &WsRoute,
    cx: Arc<Context>,
    peer: SocketAddr,
) -> Response<Body> {
    let (dialect, upstream, auth) = (
        route.dialect.clone(),
        route.upstream.clone(),
        route.auth.clone(),
    );
    let h = req.headers();
    let token = token::from_authorization(h.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .or_else(|| token::from_query(req.uri().query()));
    let user_agent = user_agent(&req);
    // A recovering route (an extension of the dialect, off unless configured): kept
    // events carry their offset, and `?since=<offset>` replays what came after it.
    let recovery = route.recovery.then(|| Recover {
        pid: Arc::from(""),
        resume: None,
        since: since_of(req.uri().query()),
    });
    let task_cx = cx.clone();
    accept(&mut req, &cx, peer, move |up| {
        let who = Who {
            dialect,
            upstream,
            auth,
            token,
            user_agent,
            peer,
            recovery,
        };
        serve(up, who, task_cx)
    })
}

/// What the handshake said about the client.
struct Who {
    dialect: Arc<str>,
    /// The backend this route fronts, if it does.
    upstream: Option<Arc<Upstream>>,
    /// The route's auth provider.
    auth: Arc<Provider>,
    token: Option<String>,
    user_agent: Option<Arc<str>>,
    peer: SocketAddr,
    recovery: Option<Recover>,
}

/// `?since=<offset>`: where a reconnecting client's replay starts (an offset this
/// gateway did not give is ignored: the client starts afresh).
fn since_of(query: Option<&str>) -> Option<Offset> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "since")
        .and_then(|(_, v)| Offset::parse(&v))
}

async fn serve(mut up: Upgrade, who: Who, cx: Arc<Context>) {
    let Some(ws) = up.open().await else {
        return;
    };
    let (out_tx, out_rx) = bounded::<Outgoing>(cx.cfg.limits.outbound_queue);
    let mut socket = WsConnection::new(ws, out_rx);
    let hub = &cx.hub;
    let arrival = Arrival {
        dialect: who.dialect.clone(),
        transport: Transport::Websocket,
        socket_id: None,
        token: who.token,
        claimed_user: None,
        auth: who.auth,
        user_agent: who.user_agent,
        ip: Some(who.peer.ip()),
        outlet: Box::new(QueueOutlet(out_tx.clone())),
        cancel: None,
        upstream: who.upstream,
        recovery: who.recovery,
    };
    // Boxed, as every one-time or per-event step below: the task's future stays as
    // small as its idle loop while the connection waits. The queue is written while a
    // backend session opens.
    let opened = Box::pin(socket.writing_while(Inbound::open(hub, arrival))).await;
    let inbound = match opened {
        Ok(inbound) => inbound,
        Err(refusal) => {
            let said = hub
                .refuse_connection(
                    &who.dialect,
                    Transport::Websocket,
                    &refusal,
                    Some((who.peer.ip(), None)),
                )
                .map(|f| Outgoing::Text(f.text));
            let code = match refusal.code {
                ErrorCode::Unauthorized | ErrorCode::TokenExpired => CLOSE_UNAUTHORIZED,
                _ => CLOSE_TRY_LATER,
            };
            let close = Outgoing::Close(code, refusal.code.as_str().into());
            write_now(socket.io(), said.into_iter().chain([close])).await;
            tracing::debug!(peer = %who.peer, code = %refusal.code, "websocket refused: {}", refusal.message);
            return;
        }
    };
    let conn = inbound.conn().clone();
    let idle_limit = cx.cfg.socketio.ping_interval + cx.cfg.socketio.ping_timeout;
    let mut beat = cx.heartbeat.beat();
    let mut last_heard = Instant::now();
    loop {
        let msg = tokio::select! {
            () = conn.cancel.cancelled() => break,
            () = beat.tick() => {
                if last_heard.elapsed() > idle_limit {
                    conn.close(1001, "ping timeout");
                    break;
                }
                let _ = out_tx.try_send(Outgoing::Ping);
                continue;
            }
            m = socket.next() => m,
        };
        last_heard = Instant::now();
        match msg {
            Some(Ok(Message::Text(t))) => {
                Box::pin(socket.writing_while(inbound.frame(t.as_bytes(), None))).await;
            }
            Some(Ok(Message::Binary(_))) => {
                inbound.unreadable("binary", "binary frames are not accepted: send JSON text");
            }
            Some(Ok(m @ (Message::Ping(_) | Message::Pong(_)))) => {
                answer_control(&m, &out_tx);
                inbound.touch();
            }
            Some(Ok(Message::Frame(_))) => {}
            Some(Ok(m @ Message::Close(_))) => {
                answer_control(&m, &out_tx);
                break;
            }
            None => break,
            Some(Err(e)) => {
                tracing::debug!(conn = conn.id, error = %e, "websocket read failed");
                if let Some((code, why)) = close_for(&e) {
                    hub.count_unreadable(&conn.dialect, "websocket_protocol");
                    conn.close(code, why);
                }
                break;
            }
        }
    }
    let cut = conn.is_closed();
    drop(conn);
    Box::pin(inbound.close()).await;
    drop(out_tx);
    Box::pin(socket.finish(cut)).await;
}
