//! The socket under a client WebSocket: plain TCP (`ws://`) or TLS over it (`wss://`),
//! one type for the handshake and a reading and a writing half for after it (tokio-util's
//! `Either` forwards reads and writes to whichever it holds). Plain TCP splits without a
//! lock; TLS halves share the session through tokio's split.

use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

/// A connected socket: `Left` for `ws://`, `Right` for `wss://`.
pub type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// The reading half of a [`Stream`].
pub type ReadHalf = Either<OwnedReadHalf, tokio::io::ReadHalf<TlsStream<TcpStream>>>;

/// The writing half of a [`Stream`].
pub type WriteHalf = Either<OwnedWriteHalf, tokio::io::WriteHalf<TlsStream<TcpStream>>>;

/// A stream's two halves.
pub fn into_split(s: Stream) -> (ReadHalf, WriteHalf) {
    match s {
        Either::Left(s) => {
            let (r, w) = s.into_split();
            (Either::Left(r), Either::Left(w))
        }
        Either::Right(s) => {
            let (r, w) = tokio::io::split(*s);
            (Either::Right(r), Either::Right(w))
        }
    }
}
