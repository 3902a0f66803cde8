//! A line reader with a length limit: a line over the limit is reported and skipped
//! without being buffered, so memory stays bounded whatever the input.

use std::io::{self, BufRead};

/// One input line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line's bytes are in the caller's buffer (without `\n` or `\r\n`).
    Ok,
    /// The line had this many bytes (at least), over the limit; it was skipped.
    TooLong(usize),
}

/// Reads `\n`-separated lines, refusing those over `max` bytes.
pub struct LineReader<R> {
    inner: R,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    /// Reads from `inner`, lines of at most `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader { inner, max }
    }

    /// Reads the next line into `buf` (cleared first). `None` at end of input.
    ///
    /// # Errors
    /// I/O errors of the underlying reader.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Line>> {
        buf.clear();
        let mut seen = 0usize;
        let mut any = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            let (chunk, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], true),
                None => (avail, false),
            };
            let n = chunk.len();
            if seen + n <= self.max {
                buf.extend_from_slice(chunk);
            } else {
                buf.clear();
            }
            seen += n;
            self.inner.consume(if done { n + 1 } else { n });
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if seen > self.max {
            return Ok(Some(Line::TooLong(seen)));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some(Line::Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_endings() {
        let input = b"ab\r\n0123456789\nlast";
        let mut r = LineReader::new(io::BufReader::with_capacity(4, &input[..]), 5);
        let mut buf = Vec::new();
        assert_eq!(r.next_line(&mut buf).unwrap(), Some(Line::Ok));
        assert_eq!(buf, b"ab");
        assert_eq!(r.next_line(&mut buf).unwrap(), Some(Line::TooLong(10)));
        assert!(buf.len() <= 5);
        assert_eq!(r.next_line(&mut buf).unwrap(), Some(Line::Ok));
        assert_eq!(buf, b"last");
        assert_eq!(r.next_line(&mut buf).unwrap(), None);
    }
}
