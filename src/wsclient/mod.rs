//! Client WebSockets (backend sessions, the Socket.IO client, the bench), `ws://` and
//! `wss://`: the opening handshake by tungstenite, then our own reading and writing
//! halves on the socket (`stream.rs`: TCP or TLS), Nagle's algorithm off.

mod handshake;
mod read;
mod stream;
mod write;

pub use read::{ReadError, Reader, Received};
pub use write::Writer;

use rustls::pki_types::ServerName;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_util::either::Either;

/// The read buffer a client connection keeps: a burst of chat frames in one read. Larger
/// frames still arrive whole: the buffer grows for them, and shrinks back after.
pub const READ_BUFFER: usize = 8 * 1024;

/// The largest message a client connection takes (tungstenite's default).
pub const MAX_MESSAGE: usize = 64 << 20;

/// Opens a WebSocket to `req` (`ws://`, or `wss://` verified with the system's roots)
/// with `TCP_NODELAY` (a small frame leaves at once rather than waiting for the previous
/// one's acknowledgement): its reading and writing halves.
///
/// # Errors
/// The connection or the handshake failed (a refusal is `Error::Http` with the
/// server's response).
pub async fn open<R>(req: R) -> Result<(Reader, Writer), tungstenite::Error>
where
    R: IntoClientRequest + Unpin,
{
    open_with(req, None).await
}

/// Like [`open`], `wss://` verified (and a client certificate presented) as `tls` says.
///
/// # Errors
/// As [`open`]; a TLS handshake that failed (a certificate not trusted, expired or of
/// another name) is `Error::Tls`'s text in an `Error::Io`.
pub async fn open_with<R>(
    req: R,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(Reader, Writer), tungstenite::Error>
where
    R: IntoClientRequest + Unpin,
{
    let req = req.into_client_request()?;
    let host = req.uri().host().ok_or(UrlError::NoHostName)?.to_string();
    let (secure, port) = match (req.uri().scheme_str(), req.uri().port_u16()) {
        (Some("wss"), port) => (true, port.unwrap_or(443)),
        (Some("ws"), port) => (false, port.unwrap_or(80)),
        _ => return Err(UrlError::UnsupportedUrlScheme.into()),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    let stream = if secure {
        let name = ServerName::try_from(host.to_string()).map_err(|_| UrlError::NoHostName)?;
        let config = tls.unwrap_or_else(crate::tls::client::system);
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        Either::Right(Box::new(tls))
    } else {
        Either::Left(tcp)
    };
    // Only the handshake: its WebSocket is taken apart at once, so its settings are moot.
    let (ws, _) = tokio_tungstenite::client_async(req, handshake::HeadOnly::new(stream)).await?;
    let head = ws.into_inner();
    let (r, w) = stream::into_split(head.io);
    Ok((
        Reader::new(r, &head.rest, READ_BUFFER, MAX_MESSAGE),
        Writer::new(w),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

    /// A server that answers the handshake and sends a frame in the same write, then
    /// echoes what it reads.
    async fn eager_server(l: TcpListener, status: &'static str) {
        let (s, _) = l.accept().await.expect("accept");
        let mut s = BufReader::new(s);
        let mut key = String::new();
        loop {
            let mut line = String::new();
            s.read_line(&mut line).await.expect("request");
            if let Some(k) = line
                .strip_prefix("Sec-WebSocket-Key: ")
                .or(line.strip_prefix("sec-websocket-key: "))
            {
                key = k.trim().to_string();
            }
            if line == "\r\n" {
                break;
            }
        }
        let accept = derive_accept_key(key.as_bytes());
        let mut out = format!(
            "HTTP/1.1 {status}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        out.extend_from_slice(&[0x81, 5]);
        out.extend_from_slice(b"first");
        s.write_all(&out).await.expect("answer");
        let mut rest = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut rest).await;
    }

    #[tokio::test]
    async fn a_frame_sent_with_the_handshake_answer_is_not_lost() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/ws", l.local_addr().expect("addr"));
        let server = tokio::spawn(eager_server(l, "101 Switching Protocols"));
        let (mut r, mut w) = open(url).await.expect("open");
        assert_eq!(r.next().await.expect("read"), Some(Received::Text("first")));
        assert!(w.send(Message::Close(None)).await.expect("close"));
        drop((r, w));
        server.await.expect("server");
    }

    #[tokio::test]
    async fn a_refusal_is_the_servers_answer_and_other_schemes_are_refused() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/ws", l.local_addr().expect("addr"));
        tokio::spawn(eager_server(l, "401 Unauthorized"));
        match open(url).await {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
            other => panic!("expected the 401, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            open("http://127.0.0.1:1/").await,
            Err(tungstenite::Error::Url(UrlError::UnsupportedUrlScheme))
        ));
    }
}
