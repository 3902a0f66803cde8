//! A server WebSocket's writing side: its queue written as frames straight on the
//! socket, polled by the connection's one task (`connection.rs`) while it waits to read.
//! tungstenite reads (through a view of the socket that drops its writes); frames out are
//! formatted with tungstenite's `Frame` into one buffer per batch, written with as few
//! system calls as the socket takes, and the buffer dropped: an idle connection keeps no
//! write buffer, no second task, no split stream and no sink state.

use super::outgoing::{self, Outgoing};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

/// The socket under an accepted WebSocket.
pub(crate) type Io = TokioIo<Upgraded>;

/// What a batch may hold before it is written, bytes: a slow reader's backlog goes out in
/// pieces of this size, not as one buffer of the whole queue.
const BATCH: usize = 64 * 1024;

/// Frames waiting in a connection's queue that make its writer go before its reader
/// (`WsConnection::next`): a burst's answers are written together, and a client that keeps
/// sending still has its queue written every this many frames.
pub(crate) const GOES_FIRST_AT: usize = 64;

/// The socket as tungstenite sees it: reads pass through; what tungstenite would write
/// itself (its automatic pong and close replies) is dropped, and the connection queues
/// those replies instead, in order with everything else it sends. The connection's
/// [`Writer`] writes on the socket itself ([`ReadOnly::io`]).
pub(crate) struct ReadOnly(pub(crate) Io);

impl ReadOnly {
    /// The socket, for writing.
    pub(crate) fn io(&mut self) -> &mut Io {
        &mut self.0
    }
}

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
fn append(buf: &mut Vec<u8>, out: Outgoing) -> bool {
    let (frame, last) = match out {
        Outgoing::Text(t) => (Frame::message(t, OpCode::Data(Data::Text), true), false),
        Outgoing::Ping => (Frame::ping(Vec::new()), false),
        Outgoing::Pong(p) => (Frame::pong(p), false),
        Outgoing::Close(code, reason) => (close_frame(code, &reason), true),
    };
    // Writing into a Vec cannot fail.
    let _ = frame.format(buf);
    last
}

/// About how many bytes `out` takes as a frame.
fn frame_len(out: &Outgoing) -> usize {
    // The longest server frame header: 2 bytes and a 64-bit length.
    const HEADER: usize = 10;
    HEADER
        + match out {
            Outgoing::Text(t) => t.len(),
            Outgoing::Pong(p) => p.len(),
            Outgoing::Ping => 0,
            Outgoing::Close(_, reason) => 2 + reason.len(),
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

/// Writes `outs` now (a refusal, before the connection is served), then, if one of them
/// was a close, shuts the socket's writing side.
pub(crate) async fn write_now(io: &mut Io, outs: impl IntoIterator<Item = Outgoing>) {
    let mut buf = Vec::new();
    let mut last = false;
    for out in outs {
        last |= append(&mut buf, out);
        if last {
            break;
        }
    }
    if io.write_all(&buf).await.is_ok() && io.flush().await.is_ok() && last {
        let _ = io.shutdown().await;
    }
}

/// Where a writer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Writing the queue.
    Open,
    /// The connection's last frame (a close) is in the buffer: the socket's writing side
    /// shuts once it is out.
    Last,
    /// Done: the socket's writing side is shut, or writing failed.
    Done,
}

/// A connection's writer: its queue, in order, until a close frame or the queue's end
/// (then a close frame without a code). What is queued when it is polled goes out as one
/// buffer: a fan-out costs a `send` per recipient per batch, not per frame.
pub(crate) struct Writer {
    queue: outgoing::Receiver<Outgoing>,
    /// The batch being written, and how much of it is out.
    buf: Vec<u8>,
    at: usize,
    state: State,
    /// Whether the last frame came from the queue (the server closed), not from its end.
    closed_by_server: bool,
    /// A batch is written but not yet flushed (TLS holds what it encrypted until then;
    /// TCP's flush does nothing).
    unflushed: bool,
}

impl Writer {
    pub(crate) fn new(queue: outgoing::Receiver<Outgoing>) -> Writer {
        Writer {
            queue,
            buf: Vec::new(),
            at: 0,
            state: State::Open,
            closed_by_server: false,
            unflushed: false,
        }
    }

    /// Writes `queue` from now on (a long-polling session upgraded to this socket: its
    /// queue replaces the probe's, whose frames are out).
    pub(crate) fn replace_queue(&mut self, queue: outgoing::Receiver<Outgoing>) {
        self.queue = queue;
    }

    /// Whether this writer should go before the connection reads on: a batch is part
    /// written, the last frame is in, or [`GOES_FIRST_AT`] frames or more wait.
    pub(crate) fn goes_first(&self) -> bool {
        self.at < self.buf.len()
            || self.unflushed
            || self.state != State::Open
            || self.queue.len() >= GOES_FIRST_AT
    }

    /// Whether the server closed the connection: a close frame was queued and is written
    /// or being written.
    pub(crate) fn server_closed(&self) -> bool {
        self.closed_by_server
    }

    /// Writes what is queued on `io`; ready once the last frame is out and the socket's
    /// writing side shut, or writing failed (the socket is gone). Pending while the queue
    /// is empty or the socket is full: the task is woken when either changes.
    pub(crate) fn poll_write<W>(&mut self, cx: &mut Context<'_>, io: &mut W) -> Poll<()>
    where
        W: AsyncWrite + Unpin,
    {
        loop {
            while self.at < self.buf.len() {
                match Pin::new(&mut *io).poll_write(cx, &self.buf[self.at..]) {
                    Poll::Ready(Ok(n)) if n > 0 => self.at += n,
                    Poll::Ready(_) => {
                        self.state = State::Done;
                        self.buf = Vec::new();
                        return Poll::Ready(());
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.at > 0 {
                // Written: dropped, an idle connection keeps no buffer.
                self.buf = Vec::new();
                self.at = 0;
                self.unflushed = true;
            }
            if self.unflushed {
                match Pin::new(&mut *io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(_)) => {
                        self.state = State::Done;
                        return Poll::Ready(());
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            match self.state {
                State::Done => return Poll::Ready(()),
                State::Last => {
                    if Pin::new(&mut *io).poll_shutdown(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.state = State::Done;
                    return Poll::Ready(());
                }
                State::Open => {}
            }
            match self.queue.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    let _ = Frame::close(None).format(&mut self.buf);
                    self.state = State::Last;
                }
                Poll::Ready(Some(first)) => self.batch(first),
            }
        }
    }

    /// `first` and what else waits (up to [`BATCH`] bytes) into the buffer.
    fn batch(&mut self, first: Outgoing) {
        // Sized for what waits, if it is like the first: one allocation per batch.
        let waiting = 1 + self.queue.len();
        self.buf.reserve((frame_len(&first) * waiting).min(BATCH));
        let buf = &mut self.buf;
        let mut last = append(buf, first);
        if !last && buf.len() < BATCH {
            self.queue.recv_while(|out| {
                last = append(buf, out);
                !last && buf.len() < BATCH
            });
        }
        if last {
            self.state = State::Last;
            self.closed_by_server = true;
        }
    }
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
        assert!(!append(&mut buf, Outgoing::Text("hé".into())));
        assert!(!append(&mut buf, Outgoing::Text(big.clone().into())));
        assert!(!append(&mut buf, Outgoing::Pong(vec![1, 2].into())));
        assert!(append(&mut buf, Outgoing::Close(1008, "é".repeat(100))));
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

    /// What `io`'s other end reads until it closes.
    async fn read_all(mut rd: tokio::io::DuplexStream) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        let _ = rd.read_to_end(&mut got).await;
        got
    }

    #[tokio::test]
    async fn the_writer_goes_first_with_a_long_queue_a_part_written_batch_or_its_last_frame() {
        // A socket that takes 8 bytes, then nothing until read.
        let (mut io, rd) = tokio::io::duplex(8);
        let (tx, rx) = outgoing::bounded(GOES_FIRST_AT * 2);
        let mut w = Writer::new(rx);
        assert!(!w.goes_first(), "nothing queued");
        for _ in 1..GOES_FIRST_AT {
            assert!(tx.try_send(Outgoing::Text("x".into())).is_ok());
        }
        assert!(!w.goes_first(), "a burst's answers: the reader goes on");
        assert!(tx.try_send(Outgoing::Text("x".into())).is_ok());
        assert!(w.goes_first(), "{GOES_FIRST_AT} frames wait");
        // Written into a full socket: the batch is part written, and presses.
        let poll = std::future::poll_fn(|cx| Poll::Ready(w.poll_write(cx, &mut io))).await;
        assert!(poll.is_pending());
        assert!(w.goes_first(), "a part-written batch");
        drop((rd, io));
        let (mut io, _rd) = tokio::io::duplex(1 << 20);
        let (tx, rx) = outgoing::bounded(4);
        let mut w = Writer::new(rx);
        assert!(tx.try_send(Outgoing::Close(1000, String::new())).is_ok());
        std::future::poll_fn(|cx| w.poll_write(cx, &mut io)).await;
        assert!(w.goes_first(), "the last frame is out: the connection ends");
    }

    #[tokio::test]
    async fn the_writer_writes_the_queue_in_order_until_a_close() {
        let (mut io, rd) = tokio::io::duplex(1 << 20);
        let (tx, rx) = outgoing::bounded(16);
        let mut w = Writer::new(rx);
        for t in ["a", "b"] {
            assert!(tx.try_send(Outgoing::Text(t.into())).is_ok());
        }
        // Nothing more queued: pending, the frames written.
        assert!(
            std::future::poll_fn(|cx| Poll::Ready(w.poll_write(cx, &mut io)))
                .await
                .is_pending()
        );
        assert!(tx.try_send(Outgoing::Ping).is_ok());
        assert!(tx.try_send(Outgoing::Close(1008, "slow".into())).is_ok());
        assert!(
            tx.try_send(Outgoing::Text("after the close".into()))
                .is_ok()
        );
        std::future::poll_fn(|cx| w.poll_write(cx, &mut io)).await;
        assert!(w.server_closed());
        drop(io);
        let got = frames(&read_all(rd).await);
        let ops: Vec<OpCode> = got.iter().map(|(op, _)| *op).collect();
        assert_eq!(
            ops,
            [
                OpCode::Data(Data::Text),
                OpCode::Data(Data::Text),
                OpCode::Control(Control::Ping),
                OpCode::Control(Control::Close)
            ]
        );
        assert_eq!(got[1].1, b"b");
        assert_eq!(&got[3].1[..2], &1008u16.to_be_bytes());
    }

    #[tokio::test]
    async fn the_queue_ending_writes_a_close_without_a_code() {
        let (mut io, rd) = tokio::io::duplex(64);
        let (tx, rx) = outgoing::bounded(4096);
        let mut w = Writer::new(rx);
        // More than the pipe holds: written as the reader reads.
        let big = "x".repeat(1000);
        for _ in 0..100 {
            assert!(tx.try_send(Outgoing::Text(big.clone().into())).is_ok());
        }
        drop(tx);
        let reader = tokio::spawn(read_all(rd));
        std::future::poll_fn(|cx| w.poll_write(cx, &mut io)).await;
        assert!(!w.server_closed());
        drop(io);
        let got = frames(&reader.await.unwrap_or_default());
        assert_eq!(got.len(), 101);
        assert!(got[..100].iter().all(|(_, p)| p.len() == 1000));
        assert_eq!(got[100], (OpCode::Control(Control::Close), Vec::new()));
    }
}
