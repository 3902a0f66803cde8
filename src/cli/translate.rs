//! `switchboard translate`: stdin lines → translated lines on stdout, errors as
//! `line N: reason` on stderr. Lines are read in bounded batches and translated by worker
//! threads; output keeps input order.

use super::lines::{Line, LineReader};
use crate::dialect::translate::{Side, Translator};
use crate::dialect::{Direction, Registry};
use anyhow::Result;
use std::io::{BufRead, Write};

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

/// Lines per batch, and bytes per batch: bounds memory to about twice the latter.
const BATCH_LINES: usize = 8192;
const BATCH_BYTES: usize = 8 << 20;

enum Input {
    Frame(Vec<u8>),
    TooLong(usize),
}

struct Output {
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
    input: impl BufRead,
    mut out: impl Write,
    mut err: impl Write,
) -> Result<usize> {
    let from = Side::named(reg, opts.from)?;
    let to = Side::named(reg, opts.to)?;
    let tr = Translator::new(reg, from, to, opts.dir).max_bytes(opts.max_line_bytes);
    let mut reader = LineReader::new(input, opts.max_line_bytes);
    let mut failed = 0;
    let mut line_no = 0usize;
    let mut buf = Vec::new();
    loop {
        let first = line_no + 1;
        let mut batch: Vec<Input> = Vec::new();
        let mut bytes = 0;
        while batch.len() < BATCH_LINES && bytes < BATCH_BYTES {
            match reader.next_line(&mut buf)? {
                None => break,
                Some(Line::Ok) => {
                    bytes += buf.len();
                    batch.push(Input::Frame(std::mem::take(&mut buf)));
                }
                Some(Line::TooLong(n)) => batch.push(Input::TooLong(n)),
            }
        }
        if batch.is_empty() {
            break;
        }
        line_no += batch.len();
        let chunk = batch.len().div_ceil(opts.threads).max(512);
        let outputs: Vec<Output> = if batch.len() <= chunk {
            vec![translate_chunk(&tr, &batch, first)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = batch
                    .chunks(chunk)
                    .enumerate()
                    .map(|(i, part)| {
                        let tr = &tr;
                        s.spawn(move || translate_chunk(tr, part, first + i * chunk))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| Output {
                            bytes: Vec::new(),
                            errors: vec![(0, "internal error: a worker panicked".into())],
                        })
                    })
                    .collect()
            })
        };
        for o in outputs {
            out.write_all(&o.bytes)?;
            for (n, reason) in &o.errors {
                writeln!(err, "line {n}: {reason}")?;
            }
            failed += o.errors.len();
        }
    }
    out.flush()?;
    Ok(failed)
}

fn translate_chunk(tr: &Translator<'_>, lines: &[Input], first: usize) -> Output {
    let mut o = Output {
        bytes: Vec::with_capacity(lines.len() * 160),
        errors: Vec::new(),
    };
    for (i, line) in lines.iter().enumerate() {
        match line {
            Input::Frame(f) if f.iter().all(u8::is_ascii_whitespace) => {}
            Input::Frame(f) => {
                if let Err(e) = tr.translate(f, &mut o.bytes) {
                    o.errors.push((first + i, e.to_string()));
                }
            }
            Input::TooLong(n) => o.errors.push((
                first + i,
                format!("line of {n} bytes is over the {}-byte limit", tr.limit()),
            )),
        }
    }
    o
}
