//! One frame of dialect A (or canonical JSON) → zero or more frames of dialect B (or
//! canonical JSON): decode → canonical → encode, as the `translate` command and tests use it.

use super::decode::DecodeContext;
use super::error::TranslateError;
use super::framing::write_frame;
use super::plan::{Dialect, Direction};
use super::relay::Relays;
use super::{Decoded, Registry};
use crate::event::Event;

/// One side of a translation.
#[derive(Debug, Clone, Copy)]
pub enum Side<'a> {
    /// Canonical JSON (`{"name", "body", "meta"}`).
    Canonical,
    /// A dialect's wire framing.
    Dialect(&'a Dialect),
}

impl<'a> Side<'a> {
    /// `canonical` or a dialect's name.
    ///
    /// # Errors
    /// No such dialect.
    pub fn named(reg: &'a Registry, name: &str) -> Result<Side<'a>, TranslateError> {
        if name == "canonical" {
            return Ok(Side::Canonical);
        }
        reg.dialect(name)
            .map(Side::Dialect)
            .ok_or_else(|| TranslateError::UnknownDialect(name.to_string()))
    }
}

/// A configured translation from one side to another.
#[derive(Debug, Clone)]
pub struct Translator<'a> {
    reg: &'a Registry,
    from: Side<'a>,
    to: Side<'a>,
    dir: Option<Direction>,
    ctx: DecodeContext<'a>,
    max_bytes: usize,
    /// Frame to frame without the canonical event, for the rule pairs it covers.
    relays: Option<Relays<'a>>,
}

impl<'a> Translator<'a> {
    /// Translates from `from` to `to`; `dir` forces the direction (else: inferred).
    pub fn new(reg: &'a Registry, from: Side<'a>, to: Side<'a>, dir: Option<Direction>) -> Self {
        let relays = match (from, to) {
            (Side::Dialect(a), Side::Dialect(b)) => Some(Relays::new(reg, a, b, dir)),
            _ => None,
        };
        Translator {
            reg,
            from,
            to,
            dir,
            ctx: DecodeContext::default(),
            max_bytes: 1 << 20,
            relays,
        }
    }

    /// Always through the canonical event (`decode → Event → encode`): the definition
    /// the relay is checked against.
    pub fn general(mut self) -> Self {
        self.relays = None;
        self
    }

    /// Refuses frames over `bytes` (default 1 MiB).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The frame size limit.
    pub fn limit(&self) -> usize {
        self.max_bytes
    }

    /// Decodes one frame into canonical events.
    ///
    /// # Errors
    /// Any decoding error.
    pub fn decode(&self, frame: &[u8]) -> Result<(Decoded, Direction), TranslateError> {
        if frame.len() > self.max_bytes {
            return Err(TranslateError::TooLarge {
                size: frame.len(),
                limit: self.max_bytes,
            });
        }
        match self.from {
            Side::Canonical => {
                let mut ev: Event = serde_json::from_slice(frame).map_err(|e| {
                    if e.is_data() {
                        TranslateError::Framing {
                            framing: "canonical",
                            reason: format!("expected {{\"name\", \"body\", \"meta\"}}: {e}"),
                        }
                    } else {
                        TranslateError::NotJson(e.to_string())
                    }
                })?;
                ev.name = self
                    .reg
                    .vocab
                    .intern(&ev.name)
                    .ok_or_else(|| TranslateError::UnknownCanonical(ev.name.to_string()))?;
                let dir = self
                    .dir
                    .unwrap_or_else(|| self.reg.default_direction(&ev.name));
                Ok((Decoded::from_elem(ev, 1), dir))
            }
            Side::Dialect(d) => {
                let events = d.decode_frame(frame, self.dir, &self.ctx)?;
                let dir = self.dir.unwrap_or_else(|| {
                    events
                        .first()
                        .map_or(Direction::Up, |e| self.reg.default_direction(&e.name))
                });
                Ok((events, dir))
            }
        }
    }

    /// Encodes one canonical event onto `out` (no newline).
    ///
    /// # Errors
    /// The target cannot express the event.
    pub fn encode(
        &self,
        ev: &Event,
        dir: Direction,
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        match self.to {
            Side::Canonical => {
                // Serialising an Event into a Vec cannot fail: every map key is a string.
                let _ = serde_json::to_writer(&mut *out, ev);
            }
            Side::Dialect(d) => d.encode_frame(ev, dir, out)?,
        }
        Ok(())
    }

    /// Like [`Translator::encode`], moving values out of `ev` instead of cloning them.
    ///
    /// # Errors
    /// The target cannot express the event.
    pub fn encode_consuming(
        &self,
        ev: &mut Event,
        dir: Direction,
        out: &mut Vec<u8>,
    ) -> Result<(), TranslateError> {
        match self.to {
            Side::Canonical => self.encode(ev, dir, out),
            Side::Dialect(d) => {
                let w = d.encode_consuming(ev, dir)?;
                write_frame(d.framing, &w.name, w.payload.as_ref(), &ev.meta, out);
                Ok(())
            }
        }
    }

    /// Translates one frame through the relay alone (frame to frame, no canonical event),
    /// appending it to `out` (no newline); `false`, with `out` as it was, when no relay
    /// covers the frame's rule pair or the relay declines the frame.
    pub fn relay(&self, frame: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(relays) = &self.relays else {
            return false;
        };
        if frame.len() > self.max_bytes {
            return false;
        }
        let start = out.len();
        if relays.translate(frame, &self.ctx, out).is_some() {
            return true;
        }
        out.truncate(start);
        false
    }

    /// Translates one frame, appending each result and a newline to `out`. On error `out`
    /// is left as it was.
    ///
    /// # Errors
    /// Any decoding or encoding error.
    pub fn translate(&self, frame: &[u8], out: &mut Vec<u8>) -> Result<usize, TranslateError> {
        let start = out.len();
        if self.relay(frame, out) {
            out.push(b'\n');
            return Ok(1);
        }
        let (events, dir) = self.decode(frame)?;
        let n = events.len();
        for mut ev in events {
            if let Err(e) = self.encode_consuming(&mut ev, dir, out) {
                out.truncate(start);
                return Err(e);
            }
            out.push(b'\n');
        }
        Ok(n)
    }
}
