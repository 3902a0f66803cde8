//! A server WebSocket's writing side: its queue written as frames straight on the
//! socket. tungstenite reads (`ws::accept` gives it a read-only view of the socket);
//! frames out are formatted with tungstenite's `Frame` into one buffer per batch, written
//! with one system call, and the buffer dropped: an idle connection keeps no write
//! buffer (tungstenite's grew with the first frames and stayed, ~400 bytes), no split
//! stream and no sink state.

use crate::hub::WsOut;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

/// The socket under an accepted WebSocket.
pub(super) type Io = TokioIo<Upgraded>;

/// The writing half of an accepted WebSocket.
pub(super) type WsWrite = WriteHalf<Io>;

/// What a batch may hold before it is written, bytes: a slow reader's backlog goes out in
/// pieces of this size, not as one buffer of the whole queue.
const BATCH: usize = 64 * 1024;

/// The reading half as tungstenite sees it: reads pass through; what tungstenite would
/// write itself (its automatic pong and close replies) is dropped, and the connection's
/// reader queues those replies instead, in order with everything else it sends.
pub(super) struct ReadOnly(pub(super) ReadHalf<Io>);

impl AsyncRead for ReadOnly {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadOnly {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `out` as a frame appended to `buf`; `true` when it ends the connection (a close).
fn append(buf: &mut Vec<u8>, out: WsOut) -> bool {
    let (frame, last) = match out {
        WsOut::Text(t) => (Frame::message(t, OpCode::Data(Data::Text), true), false),
        WsOut::Ping => (Frame::ping(Vec::new()), false),
        WsOut::Pong(p) => (Frame::pong(p), false),
        WsOut::Close(code, reason) => (close_frame(code, &reason), true),
    };
    // Writing into a Vec cannot fail.
    let _ = frame.format(buf);
    last
}

/// About how many bytes `out` takes as a frame.
fn frame_len(out: &WsOut) -> usize {
    // The longest server frame header: 2 bytes and a 64-bit length.
    const HEADER: usize = 10;
    HEADER
        + match out {
            WsOut::Text(t) => t.len(),
            WsOut::Pong(p) => p.len(),
            WsOut::Ping => 0,
            WsOut::Close(_, reason) => 2 + reason.len(),
        }
}

/// A close frame: `code` and `reason` (cut to the 123 bytes a control frame allows).
fn close_frame(code: u16, reason: &str) -> Frame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..end].to_string().into(),
    }))
}

/// Writes `outs` now (a refusal before the connection's writer exists), then, if one of
/// them was a close, shuts the socket's writing side.
pub(super) async fn write_now(wr: &mut WsWrite, outs: impl IntoIterator<Item = WsOut>) {
    let mut buf = Vec::new();
    let mut last = false;
    for out in outs {
        last |= append(&mut buf, out);
        if last {
            break;
        }
    }
    if wr.write_all(&buf).await.is_ok() && last {
        let _ = wr.shutdown().await;
    }
}

/// A connection's writer: its queue, in order, until a close frame or the queue's end
/// (then a close frame without a code). What is queued when it wakes is written with one
/// system call: a fan-out costs a `send` per recipient per batch, not per frame.
pub(super) async fn write_queue(mut wr: WsWrite, out_rx: flume::Receiver<WsOut>) {
    let mut closed = false;
    while let Ok(first) = out_rx.recv_async().await {
        // Sized for what waits, if it is like the first: one allocation per batch.
        let waiting = 1 + out_rx.len();
        let mut buf = Vec::with_capacity((frame_len(&first) * waiting).min(BATCH));
        closed = append(&mut buf, first);
        while !closed && buf.len() < BATCH {
            match out_rx.try_recv() {
                Ok(out) => closed = append(&mut buf, out),
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() {
            return;
        }
        if closed {
            break;
        }
    }
    if !closed {
        let mut buf = Vec::new();
        let _ = Frame::close(None).format(&mut buf);
        let _ = wr.write_all(&buf).await;
    }
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::Control;

    /// The frames in `buf`: (opcode, payload).
    fn frames(buf: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
        let mut cur = Cursor::new(buf);
        let mut out = Vec::new();
        while let Ok(Some((h, len))) = FrameHeader::parse(&mut cur) {
            assert!(
                h.is_final && h.mask.is_none(),
                "server frames are final and unmasked"
            );
            let at = cur.position() as usize;
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            out.push((h.opcode, buf[at..at + len].to_vec()));
            cur.set_position((at + len) as u64);
        }
        out
    }

    #[test]
    fn a_batch_is_the_frames_in_order_and_a_close_ends_it() {
        let mut buf = Vec::new();
        let big = "x".repeat(70_000);
        assert!(!append(&mut buf, WsOut::Text("hé".into())));
        assert!(!append(&mut buf, WsOut::Text(big.clone().into())));
        assert!(!append(&mut buf, WsOut::Pong(vec![1, 2].into())));
        assert!(append(&mut buf, WsOut::Close(1008, "é".repeat(100))));
        let got = frames(&buf);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (OpCode::Data(Data::Text), "hé".as_bytes().to_vec()));
        assert_eq!(got[1].1.len(), 70_000, "a 64-bit length");
        assert_eq!(got[2], (OpCode::Control(Control::Pong), vec![1, 2]));
        let (op, close) = &got[3];
        assert_eq!(*op, OpCode::Control(Control::Close));
        assert_eq!(&close[..2], &1008u16.to_be_bytes());
        assert!(
            close.len() <= 125,
            "a control frame's payload is at most 125 bytes"
        );
        assert!(
            std::str::from_utf8(&close[2..]).is_ok(),
            "the reason is cut on a char"
        );
    }
}
