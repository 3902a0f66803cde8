//! The opening handshake of a client WebSocket, done by tungstenite on a socket that
//! hands it the server's response and nothing after: once it has checked the response,
//! the socket is ours again, with no frame of the server's left in tungstenite's buffer.

use super::stream::Stream;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The end of an HTTP response's head.
const HEAD_END: &[u8] = b"\r\n\r\n";

/// A socket that reads up to the end of the HTTP response head and no further (what
/// came after it is kept in `rest`); writes pass through.
pub(super) struct HeadOnly {
    pub(super) io: Stream,
    /// How much of [`HEAD_END`] the bytes handed out so far end with.
    matched: usize,
    /// Bytes read past the head: the server's first frames.
    pub(super) rest: Vec<u8>,
}

impl HeadOnly {
    pub(super) fn new(io: Stream) -> HeadOnly {
        HeadOnly {
            io,
            matched: 0,
            rest: Vec::new(),
        }
    }

    fn head_done(&self) -> bool {
        self.matched == HEAD_END.len()
    }
}

/// How many bytes of `read` belong to the head, given that the bytes before them ended
/// with `*matched` bytes of [`HEAD_END`]; `*matched` is updated.
fn head_part(read: &[u8], matched: &mut usize) -> usize {
    for (i, b) in read.iter().enumerate() {
        *matched = if *b == HEAD_END[*matched] {
            *matched + 1
        } else if *b == HEAD_END[0] {
            1
        } else {
            0
        };
        if *matched == HEAD_END.len() {
            return i + 1;
        }
    }
    read.len()
}

impl AsyncRead for HeadOnly {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.head_done() {
            // tungstenite stops reading at the head's end; waiting here is never reached.
            return Poll::Pending;
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        let this = &mut *self;
        let read = &buf.filled()[before..];
        let head = head_part(read, &mut this.matched);
        this.rest.extend_from_slice(&read[head..]);
        buf.set_filled(before + head);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for HeadOnly {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_the_first_blank_line_even_across_reads() {
        let mut m = 0;
        assert_eq!(
            head_part(b"HTTP/1.1 101 OK\r\nA: b\r\n\r\n\x81\x01x", &mut m),
            25
        );
        assert_eq!(m, 4);
        let mut m = 0;
        assert_eq!(head_part(b"HTTP/1.1 101\r\n\r", &mut m), 15);
        assert_eq!(m, 3);
        assert_eq!(head_part(b"\n\x81\x01x", &mut m), 1);
        let mut m = 0;
        assert_eq!(
            head_part(b"a\r\n\r\r\n\r\nz", &mut m),
            8,
            "a restart on \\r"
        );
    }
}
