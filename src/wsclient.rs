//! Opening a WebSocket as a client (backend sessions, the Socket.IO client, the bench):
//! Nagle's algorithm off, and a read buffer sized for chat frames.

use tokio::net::TcpStream;
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
