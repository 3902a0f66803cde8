//! A served WebSocket's outbound queue and what goes in it ([`Outgoing`]: a text
//! frame, a ping, a pong, a close): bounded, many senders (the hub through the
//! connection's outlet, the connection's own task), one reader (the task writing the
//! socket). Unlike a general-purpose channel it
//! holds nothing while empty: its buffer is freed each time the reader drains it, and the
//! reader's waker lives in the queue, not in a hook allocated per wait. An idle
//! connection keeps ~100 bytes for it; flume's channel kept its grown buffer, its list of
//! waiting receivers and a wake-up hook (~480 bytes).
//!
//! Overflow: a send to a full queue fails at once ([`TrySendError::Full`]); the hub
//! then closes the connection as a slow consumer.

use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

/// What a served WebSocket's writer is asked to send.
#[derive(Debug)]
pub enum Outgoing {
    /// A text frame (UTF-8: every producer writes text).
    Text(bytes::Bytes),
    /// A keep-alive ping.
    Ping,
    /// The answer to a client's ping, with its payload.
    Pong(bytes::Bytes),
    /// A close frame with a code and reason, then the end of the connection.
    Close(u16, String),
}

/// Items a drained queue makes room for when the next one comes.
const FIRST: usize = 16;

/// Why a send failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrySendError {
    /// The queue holds its capacity: the reader is behind.
    #[error("the queue is full")]
    Full,
    /// The reader is gone.
    #[error("the queue's reader is gone")]
    Closed,
}

struct Queue<T> {
    queue: Mutex<VecDeque<T>>,
    capacity: usize,
    reader: AtomicWaker,
    senders: AtomicUsize,
    reader_gone: AtomicBool,
}

impl<T> Queue<T> {
    fn queue(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An idle queue holds no buffer: a drained one is freed.
fn free_if_empty<T>(q: &mut VecDeque<T>) {
    if q.is_empty() && q.capacity() > 0 {
        *q = VecDeque::new();
    }
}

/// A queue of at most `capacity` items: its sending and reading ends.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Queue {
        queue: Mutex::new(VecDeque::new()),
        capacity,
        reader: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
        reader_gone: AtomicBool::new(false),
    });
    (Sender(shared.clone()), Receiver(shared))
}

/// A sending end; cloned for each sender. The queue ends for the reader when the last
/// is dropped.
pub struct Sender<T>(Arc<Queue<T>>);

impl<T> Sender<T> {
    /// Queues `item` without waiting.
    ///
    /// # Errors
    /// The queue is full, or its reader is gone.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError> {
        if self.0.reader_gone.load(Ordering::Acquire) {
            return Err(TrySendError::Closed);
        }
        {
            let mut q = self.0.queue();
            if q.len() >= self.0.capacity {
                return Err(TrySendError::Full);
            }
            if q.capacity() == 0 {
                // A burst (a fan-out's messages) fills it in one allocation, not three.
                q.reserve_exact(FIRST.min(self.0.capacity));
            }
            q.push_back(item);
        }
        self.0.reader.wake();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.reader.wake();
        }
    }
}

/// The reading end.
pub struct Receiver<T>(Arc<Queue<T>>);

impl<T> Receiver<T> {
    /// The next item if one waits. The buffer is freed when this empties it.
    pub fn try_recv(&mut self) -> Option<T> {
        let mut q = self.0.queue();
        let item = q.pop_front();
        free_if_empty(&mut q);
        item
    }

    /// Takes items in order while `take` wants more (it is given each one and answers
    /// whether to go on), under one lock. The buffer is freed when this empties it.
    pub fn recv_while(&mut self, mut take: impl FnMut(T) -> bool) {
        let mut q = self.0.queue();
        while let Some(item) = q.pop_front() {
            if !take(item) {
                break;
            }
        }
        free_if_empty(&mut q);
    }

    /// The next item; `None` once the queue is empty and every sender gone. Pending
    /// otherwise: the task is woken by the next send or the last sender's drop.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(item) = self.try_recv() {
            return Poll::Ready(Some(item));
        }
        self.0.reader.register(cx.waker());
        // Again, now that a send will wake this task: one may have come in between.
        if let Some(item) = self.try_recv() {
            return Poll::Ready(Some(item));
        }
        // A last sender queues before it drops: once none is left, what it queued is
        // there to be read.
        if self.0.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(self.try_recv());
        }
        Poll::Pending
    }

    /// How many items wait.
    pub fn len(&self) -> usize {
        self.0.queue().len()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.0.reader_gone.store(true, Ordering::Release);
        *self.0.queue() = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[test]
    fn a_full_queue_refuses_and_a_gone_reader_closes_it() {
        let (tx, mut rx) = bounded(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full));
        assert_eq!(rx.len(), 2);
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(tx.try_send(3), Ok(()));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.len(), 0);
        assert_eq!(rx.0.queue().capacity(), 0, "drained: the buffer is freed");
        for i in 10..12 {
            assert_eq!(tx.try_send(i), Ok(()));
        }
        let mut got = Vec::new();
        rx.recv_while(|x| {
            got.push(x);
            false
        });
        assert_eq!(got, [10], "one taken: it wanted no more");
        rx.recv_while(|x| {
            got.push(x);
            true
        });
        assert_eq!(got, [10, 11]);
        assert_eq!(rx.0.queue().capacity(), 0);
        drop(rx);
        assert_eq!(tx.try_send(4), Err(TrySendError::Closed));
    }

    #[tokio::test]
    async fn the_reader_gets_every_item_in_order_then_the_end() {
        let (tx, mut rx) = bounded::<u32>(1024);
        let senders: Vec<_> = (0..4)
            .map(|s| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..200 {
                        while tx.try_send(s * 1000 + i) == Err(TrySendError::Full) {
                            tokio::task::yield_now().await;
                        }
                        if i % 7 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let mut got: Vec<Vec<u32>> = vec![Vec::new(); 4];
        while let Some(x) = poll_fn(|cx| rx.poll_recv(cx)).await {
            got[(x / 1000) as usize].push(x % 1000);
        }
        for s in senders {
            assert!(s.await.is_ok());
        }
        for g in got {
            assert_eq!(
                g,
                (0..200).collect::<Vec<_>>(),
                "each sender's items, in order"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_reader_is_woken_by_a_send_from_another_thread() {
        for _ in 0..200 {
            let (tx, mut rx) = bounded::<u8>(4);
            let reader = tokio::spawn(async move { poll_fn(|cx| rx.poll_recv(cx)).await });
            tokio::task::yield_now().await;
            assert_eq!(tx.try_send(7), Ok(()));
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
            assert!(matches!(got, Ok(Ok(Some(7)))), "{got:?}");
        }
    }
}
