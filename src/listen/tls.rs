//! A TLS listener's side of accepting: the client's handshake, bounded by the
//! listener's `handshake_timeout`, each outcome counted. A plain HTTP request on the
//! TLS port is told, in plain HTTP, to use `https://` or `wss://`.

use crate::telemetry::Metrics;
use crate::tls::{ServerSession, ServerTls};
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The first byte of a TLS record carrying a handshake (RFC 8446, 5.1).
const HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain HTTP client on a TLS port reads.
const PLAINTEXT_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 46\r\n\r\nThis port speaks TLS: use https:// or wss://.\n";

/// Why a handshake did not complete.
enum Failed {
    /// Closed before its first byte (a port probe): not counted.
    Closed,
    /// Not TLS: the connection, to be answered.
    Plaintext(TcpStream),
    /// TLS refused (no common version or cipher, an untrusted client certificate, …).
    Tls(std::io::Error),
}

/// The TLS session of `stream`, or `None` (the connection is then closed, and the
/// failure counted and logged at debug).
pub(crate) async fn accept(
    stream: TcpStream,
    tls: &ServerTls,
    metrics: &Metrics,
    port: u16,
    peer: SocketAddr,
) -> Option<ServerSession> {
    let handshake = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(0) | Err(_) => return Err(Failed::Closed),
            Ok(_) => {}
        }
        if first[0] != HANDSHAKE_RECORD {
            return Err(Failed::Plaintext(stream));
        }
        ServerSession::accept(stream, tls.config())
            .await
            .map_err(Failed::Tls)
    };
    let outcome = match tokio::time::timeout(tls.handshake_timeout(), handshake).await {
        Ok(Ok(s)) => {
            metrics.tls_handshake(port, "ok");
            return Some(s);
        }
        Ok(Err(Failed::Closed)) => return None,
        Ok(Err(Failed::Plaintext(mut stream))) => {
            // Counted before the answer, so that whoever reads the answer sees the count;
            // the answer has the handshake's time again, at most.
            metrics.tls_handshake(port, "plaintext");
            tracing::debug!(%peer, port, "plain text on a TLS port: answered and closed");
            let answer = async {
                let _ = stream.write_all(PLAINTEXT_ANSWER).await;
                let _ = stream.shutdown().await;
            };
            let _ = tokio::time::timeout(tls.handshake_timeout(), answer).await;
            return None;
        }
        Ok(Err(Failed::Tls(e))) => {
            tracing::debug!(%peer, port, error = %e, "TLS handshake failed");
            "failed"
        }
        Err(_) => "timeout",
    };
    if outcome != "failed" {
        tracing::debug!(%peer, port, outcome, "TLS handshake did not complete");
    }
    metrics.tls_handshake(port, outcome);
    None
}
