//! The embedded on-disk store of webhook deliveries (fjall, at `webhooks.store`): every
//! pending delivery (its id, body, attempts and when it is next due) and every dead
//! letter. A delivery is written before the event that caused it counts as accepted, so
//! a crash of the process (SIGKILL, OOM, panic) loses nothing, and a restart resumes the
//! retry schedule with the same ids.
//!
//! Why fjall: its journal hands every committed batch to the operating system at once
//! (a crash of the process keeps it; `webhooks.fsync` adds `fdatasync` for power loss),
//! batches are atomic across keyspaces (a dead letter moves in one step), and a queue's
//! churn of inserts and deletes is what an LSM tree absorbs (compaction drops the
//! tombstones). redb, the other candidate, makes a commit crash-safe only with an fsync.
//!
//! Writes go through one writer thread that commits whatever waits as one batch (group
//! commit): the hot path queues and never blocks on the disk; whoever needs to know
//! awaits the batch's [`Receipt`].

use super::letter::DeadLetter;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

/// Why the store failed.
#[derive(Debug, Clone, Error)]
pub enum JournalError {
    /// The database could not be opened or written.
    #[error("webhook store: {0}")]
    Store(String),
    /// The writer thread is gone (the process is stopping).
    #[error("webhook store: the writer has stopped")]
    Stopped,
}

impl From<fjall::Error> for JournalError {
    fn from(e: fjall::Error) -> Self {
        JournalError::Store(e.to_string())
    }
}

/// One pending delivery, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Pending {
    /// The event id (`evt_…`), the same on every attempt and after a restart.
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The signed body.
    pub body: String,
    /// The trace id, for logs.
    #[serde(default)]
    pub trace: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it is next due, Unix ms (0: now).
    pub due: i64,
}

/// A pending delivery as written: the same encoding as [`Pending`], borrowed from the
/// job (no copy of the body per write).
#[derive(Serialize)]
pub(super) struct PendingRef<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub body: &'a str,
    pub trace: &'a str,
    pub attempts: u32,
    pub due: i64,
}

/// What a restart finds: pending deliveries per endpoint (in the order offered), the
/// dead letters (oldest first).
#[derive(Debug, Default)]
pub(super) struct Recovered {
    pub pending: BTreeMap<String, Vec<(u64, Pending)>>,
    pub dead: Vec<(u64, DeadLetter)>,
}

enum Op {
    Put(Arc<str>, u64, Vec<u8>),
    Dead {
        pending: Option<(Arc<str>, u64)>,
        key: u64,
        letter: Vec<u8>,
    },
    RemoveDead(u64),
}

/// How far the writer got: every op numbered up to `done` is stored; `error` once a
/// batch failed (the store then refuses what comes after).
#[derive(Debug, Clone, Default)]
struct Progress {
    done: u64,
    error: Option<String>,
}

/// Settles when the writes sent before it are stored (committed to the operating
/// system; with `webhooks.fsync`, to the disk).
#[derive(Debug)]
pub struct Receipt(Option<(u64, watch::Receiver<Progress>)>);

impl Receipt {
    /// A receipt with nothing to wait for.
    pub fn settled() -> Receipt {
        Receipt(None)
    }

    /// Whether there is nothing to wait for.
    pub fn is_settled(&self) -> bool {
        self.0.is_none()
    }

    /// Waits until the writes are stored.
    ///
    /// # Errors
    /// The store failed, or stopped before writing them.
    pub async fn stored(self) -> Result<(), JournalError> {
        let Some((target, mut rx)) = self.0 else {
            return Ok(());
        };
        let p = rx
            .wait_for(|p| p.done >= target || p.error.is_some())
            .await
            .map_err(|_| JournalError::Stopped)?;
        if p.done >= target {
            return Ok(());
        }
        Err(p
            .error
            .clone()
            .map_or(JournalError::Stopped, JournalError::Store))
    }
}

/// The store.
pub(super) struct Journal {
    tx: mpsc::Sender<(u64, Op)>,
    /// Ops sent so far (each is numbered by this count).
    sent: AtomicU64,
    progress: watch::Receiver<Progress>,
    /// Delivered ones, forgotten with the next batch (or within [`LAZY`]): a delivery
    /// that a crash brings back is sent again with its id (at least once), so its
    /// removal need not wake the writer.
    delivered: Delivered,
    next: AtomicU64,
}

/// Deliveries done (endpoint, key), waiting to be forgotten by the writer.
type Delivered = Arc<Mutex<Vec<(Arc<str>, u64)>>>;

/// The longest a delivered record waits to be forgotten.
const LAZY: Duration = Duration::from_millis(50);

/// How long the writer lets ops gather after the first one woke it (group commit: one
/// write for many, and one wake-up of the writer rather than one per event).
const GATHER: Duration = Duration::from_micros(200);

/// Ops a batch takes at most (then it commits and starts the next).
const BATCH: usize = 4096;

fn pending_key(endpoint: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(endpoint.len() + 9);
    k.extend_from_slice(endpoint.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn split_pending_key(k: &[u8]) -> Option<(String, u64)> {
    let at = k.len().checked_sub(9)?;
    if k.get(at) != Some(&0) {
        return None;
    }
    let seq = u64::from_be_bytes(k.get(at + 1..)?.try_into().ok()?);
    Some((String::from_utf8(k[..at].to_vec()).ok()?, seq))
}

impl Journal {
    /// Opens (or creates) the store at `path`, reads what it holds, and starts the
    /// writer thread.
    ///
    /// # Errors
    /// The directory cannot be created, is locked by another process, or is corrupt.
    pub(super) fn open(path: &Path, fsync: bool) -> Result<(Journal, Recovered), JournalError> {
        std::fs::create_dir_all(path)
            .map_err(|e| JournalError::Store(format!("cannot create {}: {e}", path.display())))?;
        let db = Database::builder(path).worker_threads(1).open()?;
        let pending = db.keyspace("pending", KeyspaceCreateOptions::default)?;
        let dead = db.keyspace("dead", KeyspaceCreateOptions::default)?;
        let mut found = Recovered::default();
        let mut max = 0u64;
        for kv in pending.iter() {
            let (k, v) = kv.into_inner()?;
            let (Some((endpoint, seq)), Ok(p)) =
                (split_pending_key(&k), postcard::from_bytes::<Pending>(&v))
            else {
                tracing::warn!("webhook store: an unreadable pending record was skipped");
                continue;
            };
            max = max.max(seq);
            found.pending.entry(endpoint).or_default().push((seq, p));
        }
        for kv in dead.iter() {
            let (k, v) = kv.into_inner()?;
            let (Ok(seq), Ok(l)) = (
                <[u8; 8]>::try_from(&*k).map(u64::from_be_bytes),
                postcard::from_bytes::<DeadLetter>(&v),
            ) else {
                tracing::warn!("webhook store: an unreadable dead letter was skipped");
                continue;
            };
            max = max.max(seq);
            found.dead.push((seq, l));
        }
        let (tx, rx) = mpsc::channel();
        let delivered = Delivered::default();
        let (progress_tx, progress) = watch::channel(Progress::default());
        let w = Writer {
            db,
            pending,
            dead,
            delivered: delivered.clone(),
            progress: progress_tx,
            fsync,
        };
        std::thread::Builder::new()
            .name("webhook-store".into())
            .spawn(move || w.run(&rx))
            .map_err(|e| JournalError::Store(e.to_string()))?;
        Ok((
            Journal {
                tx,
                sent: AtomicU64::new(0),
                progress,
                delivered,
                next: AtomicU64::new(max + 1),
            },
            found,
        ))
    }

    /// A key no record has.
    pub(super) fn next_key(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn send(&self, op: Op) {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        if self.tx.send((n, op)).is_err() {
            tracing::error!("webhook store: the writer has stopped; a change was not stored");
        }
    }

    /// Stores (or replaces) a pending delivery.
    pub(super) fn put(&self, endpoint: &Arc<str>, key: u64, p: &PendingRef<'_>) {
        match postcard::to_allocvec(p) {
            Ok(v) => self.send(Op::Put(endpoint.clone(), key, v)),
            Err(e) => tracing::error!("webhook store: a delivery did not serialise: {e}"),
        }
    }

    /// Forgets a delivered one (with the next batch, within [`LAZY`]).
    pub(super) fn remove(&self, endpoint: &Arc<str>, key: u64) {
        self.delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((endpoint.clone(), key));
    }

    /// Moves a delivery (if it was pending) to the dead letters, in one step.
    pub(super) fn dead(&self, pending: Option<(&Arc<str>, u64)>, key: u64, letter: &DeadLetter) {
        match postcard::to_allocvec(letter) {
            Ok(v) => self.send(Op::Dead {
                pending: pending.map(|(e, k)| (e.clone(), k)),
                key,
                letter: v,
            }),
            Err(e) => tracing::error!("webhook store: a dead letter did not serialise: {e}"),
        }
    }

    /// Forgets a dead letter (replayed, or dropped over the bound).
    pub(super) fn remove_dead(&self, key: u64) {
        self.send(Op::RemoveDead(key));
    }

    /// A receipt that settles once everything sent before it is stored.
    pub(super) fn receipt(&self) -> Receipt {
        Receipt(Some((
            self.sent.load(Ordering::Relaxed),
            self.progress.clone(),
        )))
    }
}

/// The writer thread's side.
struct Writer {
    db: Database,
    pending: Keyspace,
    dead: Keyspace,
    delivered: Delivered,
    progress: watch::Sender<Progress>,
    fsync: bool,
}

impl Writer {
    fn take_delivered(&self) -> Vec<(Arc<str>, u64)> {
        std::mem::take(&mut *self.delivered.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Commits what waits as one batch (with the deliveries forgotten meanwhile), then
    /// tells the receipts how far it got; until the journal is dropped.
    fn run(self, rx: &mpsc::Receiver<(u64, Op)>) {
        loop {
            let first = match rx.recv_timeout(LAZY) {
                Ok(op) => {
                    std::thread::sleep(GATHER);
                    Some(op)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            // Taken before the ops are read: a delivery's put was sent before its
            // removal was noted, so once the channel is drained every put these remove
            // is in this batch, ahead of its removal.
            let forget = self.take_delivered();
            let mut op = first.or_else(|| rx.try_recv().ok());
            if op.is_none() && forget.is_empty() {
                continue;
            }
            let mut batch = self.db.batch();
            let (mut n, mut last, mut drained) = (0, None, true);
            while let Some((seq, o)) = op.take() {
                match o {
                    Op::Put(e, k, v) => batch.insert(&self.pending, pending_key(&e, k), v),
                    Op::Dead {
                        pending: from,
                        key,
                        letter,
                    } => {
                        if let Some((e, k)) = from {
                            batch.remove(&self.pending, pending_key(&e, k));
                        }
                        batch.insert(&self.dead, key.to_be_bytes(), letter);
                    }
                    Op::RemoveDead(k) => batch.remove(&self.dead, k.to_be_bytes()),
                }
                last = Some(seq);
                n += 1;
                if n < BATCH {
                    op = rx.try_recv().ok();
                } else {
                    drained = false;
                }
            }
            if drained {
                for (e, k) in forget {
                    batch.remove(&self.pending, pending_key(&e, k));
                }
            } else {
                // Some puts wait behind this batch: their removals wait with them.
                self.delivered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(forget);
            }
            let mut r = batch.commit();
            if r.is_ok() && self.fsync {
                r = self.db.persist(PersistMode::SyncData);
            }
            match r {
                Ok(()) => {
                    if let Some(seq) = last {
                        self.progress.send_modify(|p| p.done = p.done.max(seq));
                    }
                }
                Err(e) => {
                    tracing::error!(
                        "webhook store: a batch was not stored ({e}): events are refused until it works"
                    );
                    self.progress.send_modify(|p| p.error = Some(e.to_string()));
                }
            }
        }
        // The last deliveries forgotten before the store closes.
        let last = self.take_delivered();
        if !last.is_empty() {
            let mut batch = self.db.batch();
            for (e, k) in last {
                batch.remove(&self.pending, pending_key(&e, k));
            }
            if let Err(e) = batch.commit() {
                tracing::warn!(
                    "webhook store: delivered ones not forgotten ({e}): they are sent again after a restart"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_endpoint_and_order() {
        let k = pending_key("a\0b", 7);
        assert_eq!(split_pending_key(&k), Some(("a\0b".to_string(), 7)));
        assert!(pending_key("e", 2) < pending_key("e", 10));
        assert_eq!(split_pending_key(b"short"), None);
    }

    #[tokio::test]
    async fn what_was_stored_is_found_again() {
        let dir = std::env::temp_dir().join(format!("sb-journal-{}", fastrand::u64(..)));
        let p = |id: &'static str| PendingRef {
            id,
            kind: "message.created",
            body: "{}",
            trace: "",
            attempts: 1,
            due: 42,
        };
        let (ep, other): (Arc<str>, Arc<str>) = (Arc::from("ep"), Arc::from("other"));
        {
            let (j, found) = Journal::open(&dir, false).expect("opens");
            assert!(found.pending.is_empty());
            let (a, b, c) = (j.next_key(), j.next_key(), j.next_key());
            j.put(&ep, a, &p("evt_a"));
            j.put(&ep, b, &p("evt_b"));
            j.put(&other, c, &p("evt_c"));
            j.remove(&ep, a);
            let letter = DeadLetter {
                endpoint: "other".into(),
                id: "evt_c".into(),
                kind: "message.created".into(),
                attempts: 8,
                last_error: "500".into(),
                at: "now".into(),
                body: "{}".into(),
            };
            j.dead(Some((&other, c)), j.next_key(), &letter);
            j.receipt().stored().await.expect("stored");
        }
        // The writer thread holds the database until its channel closes.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let (j, found) = Journal::open(&dir, false).expect("reopens");
        assert_eq!(found.pending.len(), 1);
        assert_eq!(found.pending["ep"][0].1.id, "evt_b");
        assert_eq!(found.dead.len(), 1);
        assert_eq!(found.dead[0].1.id, "evt_c");
        assert!(j.next_key() > found.dead[0].0);
        drop(j);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
