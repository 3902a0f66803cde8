//! Opening a WebSocket as a client (backend sessions, the Socket.IO client, the bench):
//! Nagle's algorithm off, and a read buffer sized for chat frames; writing what waits in
//! one write, and reading with one clock read per wake-up.

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use std::time::SystemTime;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

/// The read buffer a client connection keeps. tungstenite zero-fills the free part of
/// its read buffer before every read; at its 128 KiB default that memset was a third
/// of the bench's CPU. Larger frames still arrive whole: the buffer grows for them.
pub const READ_BUFFER: usize = 8 * 1024;

/// An open client WebSocket.
pub type ClientWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `req` with `TCP_NODELAY` (a small frame leaves at once rather
/// than waiting for the previous one's acknowledgement) and [`READ_BUFFER`].
///
/// # Errors
/// The connection or the handshake failed.
pub async fn dial<R>(req: R) -> Result<ClientWs, tungstenite::Error>
where
    R: IntoClientRequest + Unpin,
{
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    Ok(ws)
}

/// Writes `first` and whatever `more` has ready, then flushes once: what waits goes out in
/// one write (a sender that fell behind catches up in a few system calls, not one per
/// frame). Stops after a close frame; `Ok(true)` when one was written.
///
/// # Errors
/// The socket failed.
pub async fn write_waiting<S>(
    w: &mut S,
    first: Message,
    mut more: impl FnMut() -> Option<Message>,
) -> Result<bool, tungstenite::Error>
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let mut close = first.is_close();
    w.feed(first).await?;
    while !close {
        let Some(m) = more() else { break };
        close = m.is_close();
        w.feed(m).await?;
    }
    w.flush().await?;
    Ok(close)
}

/// The next item of `r`; `woke` is set to now when it had to be waited for, and left as
/// it is for one already there (one clock read per wake-up, however many frames it
/// brought).
pub async fn next_stamped<R: Stream + Unpin>(r: &mut R, woke: &mut SystemTime) -> Option<R::Item> {
    if let Some(next) = r.next().now_or_never() {
        return next;
    }
    let next = r.next().await;
    *woke = SystemTime::now();
    next
}
