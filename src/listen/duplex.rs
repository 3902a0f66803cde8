//! One WebSocket connection driven by one task: frames are read in order, and between
//! reads the connection's queue is written (what is queued, then one flush). An idle
//! connection is then one task holding one stream: no second task, no split halves.

use super::ws::{Ws, close};
use crate::hub::WsOut;
use futures_util::{SinkExt, StreamExt};
use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Interval, Sleep};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

/// What happened while waiting.
pub(super) enum Next {
    /// A frame from the client.
    Frame(Message),
    /// The ticker ticked (keep-alive).
    Tick,
    /// The deadline passed.
    Deadline,
    /// The connection was cut (by the hub, or at shutdown).
    Cut,
    /// The client left, or a close frame was written.
    Gone,
    /// Reading failed.
    Failed(WsError),
}

/// A WebSocket and its queue.
pub(super) struct Duplex {
    ws: Ws,
    queue: flume::Receiver<WsOut>,
    /// A close frame was written: nothing more is.
    closed: bool,
}

impl Duplex {
    pub(super) fn new(ws: Ws, queue: flume::Receiver<WsOut>) -> Duplex {
        Duplex {
            ws,
            queue,
            closed: false,
        }
    }

    /// Sends one message at once (a refusal before the connection is registered).
    pub(super) async fn send(&mut self, m: Message) {
        let _ = self.ws.send(m).await;
    }

    /// Writes what is queued until the next frame, tick, deadline or cut.
    pub(super) async fn next(
        &mut self,
        cut: &CancellationToken,
        ticker: &mut Interval,
        deadline: &mut Option<Pin<Box<Sleep>>>,
    ) -> Next {
        loop {
            tokio::select! {
                () = cut.cancelled() => return Next::Cut,
                _ = ticker.tick() => return Next::Tick,
                () = async {
                    if let Some(d) = deadline.as_mut() {
                        d.await;
                    }
                }, if deadline.is_some() => return Next::Deadline,
                out = self.queue.recv_async(), if !self.closed => {
                    let Ok(out) = out else { return Next::Gone };
                    // A client that does not read blocks the write: the hub then cuts it.
                    // The write is polled first: frames already taken from the queue
                    // (a notice the hub queued before cutting) are written if they can be.
                    let wrote = tokio::select! {
                        biased;
                        w = self.write(out) => w,
                        () = cut.cancelled() => return Next::Cut,
                    };
                    if !wrote {
                        return Next::Gone;
                    }
                }
                m = self.ws.next() => return match m {
                    Some(Ok(m)) => Next::Frame(m),
                    Some(Err(e)) => Next::Failed(e),
                    None => Next::Gone,
                },
            }
        }
    }

    /// Writes `first` and whatever else is queued, then flushes: a fan-out costs a
    /// system call per batch, not per frame. `false`: the connection is done (a close
    /// frame was written, or writing failed).
    async fn write(&mut self, first: WsOut) -> bool {
        let mut next = Some(first);
        while let Some(out) = next.take() {
            let r = match out {
                WsOut::Text(t) => self.ws.feed(Message::Text(t)).await,
                WsOut::Ping => self.ws.feed(Message::Ping(Default::default())).await,
                WsOut::Close(code, reason) => {
                    let _ = self.ws.send(close(code, &reason)).await;
                    self.closed = true;
                    return false;
                }
            };
            if r.is_err() {
                return false;
            }
            next = self.queue.try_recv().ok();
        }
        self.ws.flush().await.is_ok()
    }

    /// Ends the connection: what is still queued is written (a close frame the hub
    /// queued among it), then the close; a connection the server cut also reads (and
    /// drops) what the client sends until its close reply, so that closing the socket
    /// with unread data does not reset it before the client read our close frame. A
    /// moment for a cut connection (a slow consumer may never read), a few seconds for
    /// any other.
    pub(super) async fn finish(mut self, cut: bool) {
        let grace = Duration::from_secs(if cut { 1 } else { 5 });
        let _ = tokio::time::timeout(grace, async {
            if !self.closed
                && let Ok(out) = self.queue.try_recv()
            {
                self.write(out).await;
            }
            if !self.closed {
                let _ = self.ws.close(None).await;
            }
            if cut {
                while let Some(Ok(m)) = self.ws.next().await {
                    if m.is_close() {
                        break;
                    }
                }
            }
        })
        .await;
    }
}
