//! A served WebSocket as one task: waiting for the client's next message also writes the
//! connection's queue (`writer.rs`), so a connection is one task rather than a reader
//! and a writer, and its socket is not split. Raw WebSocket routes (`raw.rs`) and our
//! Socket.IO connections (`listen::socketio::websocket`) are both served this way.

use super::outgoing::{self, Outgoing};
use super::writer::{ReadOnly, Writer};
use futures_util::StreamExt;
use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// An accepted WebSocket as tungstenite reads it.
pub(crate) type WsStream = WebSocketStream<ReadOnly>;

/// How long a connection the server closed waits for the client's close reply (reading
/// and dropping what it still sends), so that closing a socket with unread data does not
/// reset it before the client has read the close frame.
const CLOSE_REPLY: Duration = Duration::from_secs(1);

/// How long a connection that ends otherwise may take to write what is left in its queue.
const FLUSH: Duration = Duration::from_secs(5);

/// A served WebSocket connection: tungstenite reading its socket, its queue's writer
/// writing it.
pub(crate) struct WsConnection {
    ws: WsStream,
    writer: Writer,
}

impl WsConnection {
    pub(crate) fn new(ws: WsStream, queue: outgoing::Receiver<Outgoing>) -> WsConnection {
        WsConnection {
            ws,
            writer: Writer::new(queue),
        }
    }

    /// Writes `queue` from now on, instead of the one it was made with.
    pub(crate) fn replace_queue(&mut self, queue: outgoing::Receiver<Outgoing>) {
        self.writer.replace_queue(queue);
    }

    /// The socket, to write on before the connection is served (a refusal).
    pub(crate) fn io(&mut self) -> &mut super::writer::Io {
        self.ws.get_mut().io()
    }

    /// Writes what is queued (see [`Writer::poll_write`]).
    fn poll_writer(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        self.writer.poll_write(cx, self.ws.get_mut().io())
    }

    /// The client's next message, the queue written meanwhile. `None` once the
    /// connection is over: the client closed or went away, or the last frame was written
    /// (the server closed, or the socket failed).
    ///
    /// Input first: while the client's frames are there to be read, they are handled
    /// before the queue is written, so that the answers and echoes of a burst go out in
    /// one `send`, not one each. (Writing first cost a system call per frame from a busy
    /// sender, and capped what one turn of its task handled at ~105 frames, the
    /// scheduler's budget shared between reads and writes: a sender's backlog then drained
    /// at ~26 messages per millisecond.) Unless the writer goes first (see
    /// [`Writer::goes_first`]): a client that never stops sending still gets its queue.
    pub(crate) async fn next(&mut self) -> Option<Result<Message, WsError>> {
        poll_fn(|cx| {
            let read_first = !self.writer.goes_first();
            if read_first && let Poll::Ready(m) = self.ws.poll_next_unpin(cx) {
                return Poll::Ready(m);
            }
            if self.poll_writer(cx).is_ready() {
                return Poll::Ready(None);
            }
            if read_first {
                // Read already: pending, and the task is registered to be woken.
                return Poll::Pending;
            }
            self.ws.poll_next_unpin(cx)
        })
        .await
    }

    /// Awaits `step` (handling a client's frame, starting a backend session) while the
    /// queue is written: what the step or anyone else queues for this client meanwhile
    /// goes out as it comes, as it would with a writer of its own.
    pub(crate) async fn writing_while<F: Future>(&mut self, step: F) -> F::Output {
        let mut step = std::pin::pin!(step);
        poll_fn(|cx| {
            if let Poll::Ready(out) = step.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            // Done (the last frame written, or the socket gone): the connection ends
            // when the step returns and the next read finds it so.
            let _ = self.poll_writer(cx);
            Poll::Pending
        })
        .await
    }

    /// Ends the connection once every sender of its queue is gone: writes what is left
    /// (then a close frame, if none was queued) and, when the server closed, reads until
    /// the client's close reply. A connection the server `cut` (a slow consumer, who may
    /// never read) gets [`CLOSE_REPLY`] for all of it; any other [`FLUSH`].
    pub(crate) async fn finish(mut self, cut: bool) {
        let grace = if cut { CLOSE_REPLY } else { FLUSH };
        let mut read_done = false;
        let ended = poll_fn(|cx| {
            let written = self.poll_writer(cx).is_ready();
            while !read_done {
                match self.ws.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(m))) => read_done = m.is_close(),
                    Poll::Ready(_) => read_done = true,
                    Poll::Pending => break,
                }
            }
            // Waiting for the client's reply only makes sense after our close.
            if written && (read_done || !self.writer.server_closed()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        if tokio::time::timeout(grace, ended).await.is_err() {
            tracing::debug!("connection ended before its queue was written or its close answered");
        }
    }
}
