//! `switchboard translate`: stdin lines → translated lines on stdout, errors as
//! `line N: reason` on stderr. A reader thread cuts the input into numbered batches,
//! worker threads translate them, and the caller's thread writes results in input order.
//! Every queue is bounded, so memory stays bounded whatever the input size.

use super::lines::{Line, LineReader};
use crate::dialect::translate::{Side, Translator};
use crate::dialect::{Direction, Registry};
use anyhow::{Result, anyhow};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::{Mutex, mpsc};

/// What to translate, and how.
pub struct Options<'a> {
    /// Source dialect or `canonical`.
    pub from: &'a str,
    /// Target dialect or `canonical`.
    pub to: &'a str,
    /// Forced direction.
    pub dir: Option<Direction>,
    /// Line length limit.
    pub max_line_bytes: usize,
    /// Worker threads.
    pub threads: usize,
}

/// Lines per batch, and bytes per batch.
const BATCH_LINES: usize = 2048;
const BATCH_BYTES: usize = 4 << 20;
/// Batches queued per worker, both ways: with the batch limits, this bounds memory.
const QUEUE_PER_WORKER: usize = 2;

/// One input line: a range of the batch's bytes, or the length of a refused line.
enum Input {
    Frame(std::ops::Range<usize>),
    TooLong(usize),
}

/// Consecutive lines, their bytes in one buffer.
struct Batch {
    seq: u64,
    first_line: usize,
    data: Vec<u8>,
    lines: Vec<Input>,
}

struct Output {
    seq: u64,
    bytes: Vec<u8>,
    /// `(line number, reason)` per failed line, in order.
    errors: Vec<(usize, String)>,
}

/// Translates `input` to `out`; returns how many lines failed.
///
/// # Errors
/// Unknown dialects, and I/O errors.
pub fn run(
    reg: &Registry,
    opts: &Options<'_>,
    input: impl BufRead + Send,
    mut out: impl Write,
    mut err: impl Write,
) -> Result<usize> {
    let from = Side::named(reg, opts.from)?;
    let to = Side::named(reg, opts.to)?;
    let tr = Translator::new(reg, from, to, opts.dir).max_bytes(opts.max_line_bytes);
    let workers = opts.threads.max(1);
    let (batch_tx, batch_rx) = mpsc::sync_channel::<Batch>(workers * QUEUE_PER_WORKER);
    let (out_tx, out_rx) = mpsc::sync_channel::<Output>(workers * QUEUE_PER_WORKER);
    let batch_rx = Mutex::new(batch_rx);
    let max_line = opts.max_line_bytes;

    std::thread::scope(|s| -> Result<usize> {
        let reader = s.spawn(move || read_batches(input, max_line, &batch_tx));
        for _ in 0..workers {
            let (rx, tx, tr) = (&batch_rx, out_tx.clone(), &tr);
            s.spawn(move || {
                loop {
                    let next = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = next else { return };
                    if tx.send(translate_batch(tr, batch)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(out_tx);

        // Write in input order; out-of-order results wait (at most the queued batches).
        let mut failed = 0;
        let mut next_seq = 0u64;
        let mut pending = BTreeMap::new();
        for o in out_rx {
            pending.insert(o.seq, o);
            while let Some(o) = pending.remove(&next_seq) {
                out.write_all(&o.bytes)?;
                for (n, reason) in &o.errors {
                    writeln!(err, "line {n}: {reason}")?;
                }
                failed += o.errors.len();
                next_seq += 1;
            }
        }
        out.flush()?;
        reader
            .join()
            .map_err(|_| anyhow!("the input reader panicked"))??;
        Ok(failed)
    })
}

fn read_batches(
    input: impl BufRead,
    max_line: usize,
    tx: &mpsc::SyncSender<Batch>,
) -> std::io::Result<()> {
    let mut reader = LineReader::new(input, max_line);
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    for seq in 0u64.. {
        let first_line = line_no + 1;
        let mut lines = Vec::with_capacity(BATCH_LINES);
        let mut data = Vec::with_capacity(BATCH_BYTES / 16);
        while lines.len() < BATCH_LINES && data.len() < BATCH_BYTES {
            match reader.next_line(&mut buf)? {
                None => break,
                Some(Line::Ok) => {
                    let start = data.len();
                    data.extend_from_slice(&buf);
                    lines.push(Input::Frame(start..data.len()));
                }
                Some(Line::TooLong(n)) => lines.push(Input::TooLong(n)),
            }
        }
        if lines.is_empty() {
            break;
        }
        line_no += lines.len();
        let batch = Batch {
            seq,
            first_line,
            data,
            lines,
        };
        if tx.send(batch).is_err() {
            break;
        }
    }
    Ok(())
}

fn translate_batch(tr: &Translator<'_>, batch: Batch) -> Output {
    let mut o = Output {
        seq: batch.seq,
        bytes: Vec::with_capacity(batch.lines.len() * 160),
        errors: Vec::new(),
    };
    for (i, line) in batch.lines.iter().enumerate() {
        let n = batch.first_line + i;
        match line {
            Input::Frame(r) => {
                let f = &batch.data[r.clone()];
                if f.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Err(e) = tr.translate(f, &mut o.bytes) {
                    o.errors.push((n, e.to_string()));
                }
            }
            Input::TooLong(len) => o.errors.push((
                n,
                format!("line of {len} bytes is over the {}-byte limit", tr.limit()),
            )),
        }
    }
    o
}
