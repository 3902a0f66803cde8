//! Reading a client WebSocket: the server's frames parsed (tungstenite's frame header
//! parser) straight out of one buffer kept for the connection, and handed out as messages
//! that borrow it: no allocation, copy or zero-fill per frame, and no `await` per message
//! already read. (Through tungstenite's stream, the bench spent a quarter of its CPU
//! per frame: zero-filling its read buffer, moving messages, refcounting.)

use super::stream::ReadHalf;
use std::io::{self, Cursor};
use thiserror::Error;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Why reading failed. The connection is over after any of them.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The server broke the protocol (a masked or reserved-bit frame, a control frame
    /// over 125 bytes or fragmented, a stray continuation, text that is not UTF-8, a
    /// connection ended inside a frame).
    #[error("protocol: {0}")]
    Protocol(&'static str),
    /// A message over the reader's limit.
    #[error("a message of {0} bytes is over the limit")]
    TooBig(u64),
}

/// A message from the server, borrowed from the reader until its next read.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping: answer with a pong carrying the same bytes.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// A close, with its code and reason if it had them.
    Close(Option<(u16, &'a str)>),
}

/// Where a whole message lies: in the buffer (offsets) or in the assembled fragments.
#[derive(Debug, Clone, Copy)]
enum Found {
    Data { text: bool, at: usize, len: usize },
    Assembled { text: bool },
    Ping { at: usize, len: usize },
    Pong,
    Close { at: usize, len: usize },
}

/// The reading half of a client WebSocket.
pub struct Reader {
    io: ReadHalf,
    /// Initialised once; `start..end` holds what was read and not yet handed out.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The size `buf` returns to after a larger message.
    base: usize,
    /// Bytes of the message handed out last, dropped at the next call.
    consumed: usize,
    /// A fragmented message being assembled: whether it is text, and its bytes so far.
    partial: Option<(bool, Vec<u8>)>,
    /// The last fragmented message, whole.
    assembled: Vec<u8>,
    max: usize,
}

impl Reader {
    /// Reads `io`, which has already given `rest` (bytes read with the handshake);
    /// messages over `max` bytes end the connection. The buffer holds `base` bytes, and
    /// grows for a larger frame.
    pub fn new(io: ReadHalf, rest: &[u8], base: usize, max: usize) -> Reader {
        let base = base.max(rest.len()).max(16);
        let mut buf = vec![0; base];
        buf[..rest.len()].copy_from_slice(rest);
        Reader {
            io,
            buf,
            start: 0,
            end: rest.len(),
            base,
            consumed: 0,
            partial: None,
            assembled: Vec::new(),
            max,
        }
    }

    /// The next message; `None` when the server closed the socket between messages.
    ///
    /// # Errors
    /// The socket failed, or the server broke the protocol.
    pub async fn next(&mut self) -> Result<Option<Received<'_>>, ReadError> {
        match self.advance().await? {
            Some(found) => self.message(found).map(Some),
            None => Ok(None),
        }
    }

    /// The next message already read, if a whole one is there (no waiting): with
    /// [`Reader::fill`], a loop that handles what one read brought without an `await`
    /// per message.
    ///
    /// # Errors
    /// The server broke the protocol.
    pub fn try_next(&mut self) -> Result<Option<Received<'_>>, ReadError> {
        self.consume();
        match self.frame()? {
            Some(found) => self.message(found).map(Some),
            None => Ok(None),
        }
    }

    /// Reads until a whole message is in: where it lies.
    async fn advance(&mut self) -> Result<Option<Found>, ReadError> {
        self.consume();
        loop {
            if let Some(found) = self.frame()? {
                return Ok(Some(found));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// The next whole message in the buffer, if there is one: fragments are set aside
    /// as they come, and what a message takes is dropped at the next call.
    fn frame(&mut self) -> Result<Option<Found>, ReadError> {
        loop {
            let mut cur = Cursor::new(&self.buf[self.start..self.end]);
            let Some((h, len)) = FrameHeader::parse(&mut cur)
                .map_err(|_| ReadError::Protocol("bad frame header"))?
            else {
                return Ok(None);
            };
            if h.mask.is_some() {
                return Err(ReadError::Protocol("a masked frame from the server"));
            }
            if h.rsv1 || h.rsv2 || h.rsv3 {
                return Err(ReadError::Protocol("reserved bits set"));
            }
            let so_far = self.partial.as_ref().map_or(0, |(_, p)| p.len());
            if len.saturating_add(so_far as u64) > self.max as u64 {
                return Err(ReadError::TooBig(len.saturating_add(so_far as u64)));
            }
            // Fits in usize: at most `max`.
            let len = len as usize;
            let head = cur.position() as usize;
            if self.end - self.start < head + len {
                // Room for the whole frame, for the next read.
                self.room_for(head + len);
                return Ok(None);
            }
            let at = self.start + head;
            self.consumed = head + len;
            let found = match h.opcode {
                OpCode::Control(c) => {
                    if !h.is_final || len > 125 {
                        return Err(ReadError::Protocol("a fragmented or long control frame"));
                    }
                    match c {
                        Control::Ping => Found::Ping { at, len },
                        Control::Pong => Found::Pong,
                        Control::Close => Found::Close { at, len },
                        Control::Reserved(_) => {
                            return Err(ReadError::Protocol("a reserved control opcode"));
                        }
                    }
                }
                OpCode::Data(Data::Continue) => {
                    let Some((text, mut bytes)) = self.partial.take() else {
                        return Err(ReadError::Protocol("a continuation of nothing"));
                    };
                    bytes.extend_from_slice(&self.buf[at..at + len]);
                    if h.is_final {
                        self.assembled = bytes;
                        Found::Assembled { text }
                    } else {
                        self.partial = Some((text, bytes));
                        self.consume();
                        continue;
                    }
                }
                OpCode::Data(d @ (Data::Text | Data::Binary)) => {
                    if self.partial.is_some() {
                        return Err(ReadError::Protocol("a new message inside a fragmented one"));
                    }
                    let text = d == Data::Text;
                    if h.is_final {
                        Found::Data { text, at, len }
                    } else {
                        self.partial = Some((text, self.buf[at..at + len].to_vec()));
                        self.consume();
                        continue;
                    }
                }
                OpCode::Data(Data::Reserved(_)) => {
                    return Err(ReadError::Protocol("a reserved data opcode"));
                }
            };
            return Ok(Some(found));
        }
    }

    /// `found`, borrowed.
    fn message(&self, found: Found) -> Result<Received<'_>, ReadError> {
        let text =
            |b| std::str::from_utf8(b).map_err(|_| ReadError::Protocol("text that is not UTF-8"));
        Ok(match found {
            Found::Data {
                text: true,
                at,
                len,
            } => Received::Text(text(&self.buf[at..at + len])?),
            Found::Data {
                text: false,
                at,
                len,
            } => Received::Binary(&self.buf[at..at + len]),
            Found::Assembled { text: true } => Received::Text(text(&self.assembled)?),
            Found::Assembled { text: false } => Received::Binary(&self.assembled),
            Found::Ping { at, len } => Received::Ping(&self.buf[at..at + len]),
            Found::Pong => Received::Pong,
            Found::Close { at, len } => match &self.buf[at..at + len] {
                [] => Received::Close(None),
                [a, b, reason @ ..] => {
                    Received::Close(Some((u16::from_be_bytes([*a, *b]), text(reason)?)))
                }
                [_] => return Err(ReadError::Protocol("a close frame of one byte")),
            },
        })
    }

    /// Drops the message handed out last (an assembled one's memory with it).
    fn consume(&mut self) {
        self.start += std::mem::take(&mut self.consumed);
        if self.assembled.capacity() > 0 {
            self.assembled = Vec::new();
        }
    }

    /// Makes room after `start` for a frame of `total` bytes: what is unread moves to the
    /// front, and the buffer grows if it is still too small.
    fn room_for(&mut self, total: usize) {
        if self.start + total <= self.buf.len() {
            return;
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if total > self.buf.len() {
            self.buf.resize(total, 0);
        }
    }

    /// Reads what the socket has (waiting until it has something); `false` when the
    /// server closed it between messages.
    ///
    /// # Errors
    /// The socket failed, or it ended inside a message.
    pub async fn fill(&mut self) -> Result<bool, ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > self.base && self.partial.is_none() {
                // Back to its size after a large message.
                self.buf = vec![0; self.base];
            }
        } else if self.end == self.buf.len() {
            self.room_for(self.end - self.start + 1);
        }
        let n = self.io.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        if n == 0 && (self.start < self.end || self.partial.is_some()) {
            return Err(ReadError::Protocol("the connection ended inside a message"));
        }
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A server frame (unmasked): `first` is FIN and opcode.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n < 65536 => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// A reader on a socket whose other end is returned, its buffer `base` bytes.
    async fn pair(base: usize, max: usize) -> (Reader, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (client, server) = tokio::join!(TcpStream::connect(addr), l.accept());
        // The writing half's drop shuts only our writing side.
        let (r, _) = client.expect("connect").into_split();
        (
            Reader::new(tokio_util::either::Either::Left(r), &[], base, max),
            server.expect("accept").0,
        )
    }

    /// Every message until the end, as owned values.
    async fn all(r: &mut Reader) -> Result<Vec<String>, ReadError> {
        let mut got = Vec::new();
        while let Some(m) = r.next().await? {
            got.push(match m {
                Received::Text(t) => format!("text {t}"),
                Received::Binary(b) => format!("binary {}", b.len()),
                Received::Ping(p) => format!("ping {}", String::from_utf8_lossy(p)),
                Received::Pong => "pong".into(),
                Received::Close(c) => format!("close {c:?}"),
            });
        }
        Ok(got)
    }

    #[tokio::test]
    async fn frames_cut_anywhere_arrive_whole_and_in_order() {
        let (mut r, mut s) = pair(16, 1 << 20).await;
        let big = "x".repeat(70_000);
        let mut wire = frame(0x81, b"hello");
        wire.extend(frame(0x89, b"hb"));
        wire.extend(frame(0x81, big.as_bytes()));
        wire.extend(frame(0x82, &[0, 1, 2]));
        wire.extend(frame(0x8A, b""));
        wire.extend(frame(0x88, &[0x03, 0xE8, b'o', b'k']));
        let writer = tokio::spawn(async move {
            // Cut into pieces of 7 bytes: headers and payloads split across reads.
            for piece in wire.chunks(7) {
                s.write_all(piece).await.expect("write");
                s.flush().await.expect("flush");
            }
        });
        let got = all(&mut r).await.expect("read");
        writer.await.expect("writer");
        assert_eq!(
            got,
            [
                "text hello".to_string(),
                "ping hb".into(),
                format!("text {big}"),
                "binary 3".into(),
                "pong".into(),
                "close Some((1000, \"ok\"))".into()
            ]
        );
        assert_eq!(r.buf.len(), 16, "back to its size after the large message");
    }

    #[tokio::test]
    async fn a_fragmented_message_is_assembled_around_a_control_frame() {
        let (mut r, mut s) = pair(64, 1 << 20).await;
        let mut wire = frame(0x01, b"hel");
        wire.extend(frame(0x89, b"p"));
        wire.extend(frame(0x00, "lo é".as_bytes()));
        wire.extend(frame(0x80, b"!"));
        wire.extend(frame(0x81, b"next"));
        s.write_all(&wire).await.expect("write");
        drop(s);
        let got = all(&mut r).await.expect("read");
        assert_eq!(got, ["ping p", "text hello é!", "text next"]);
        assert_eq!(
            r.assembled.capacity(),
            0,
            "an assembled message is not kept"
        );
    }

    async fn error_of(wire: Vec<u8>, max: usize) -> ReadError {
        let (mut r, mut s) = pair(64, max).await;
        s.write_all(&wire).await.expect("write");
        drop(s);
        match all(&mut r).await {
            Err(e) => e,
            Ok(got) => panic!("no error, got {got:?}"),
        }
    }

    #[tokio::test]
    async fn protocol_breaches_and_oversized_messages_are_errors() {
        // Masked (0x80 in the length byte) frames must not come from a server.
        let masked = vec![0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1];
        assert!(matches!(
            error_of(masked, 100).await,
            ReadError::Protocol(_)
        ));
        let rsv = frame(0xC1, b"x");
        assert!(matches!(error_of(rsv, 100).await, ReadError::Protocol(_)));
        let stray = frame(0x80, b"x");
        assert!(matches!(error_of(stray, 100).await, ReadError::Protocol(_)));
        let bad_utf8 = frame(0x81, &[0xff, 0xfe]);
        assert!(matches!(
            error_of(bad_utf8, 100).await,
            ReadError::Protocol(_)
        ));
        let long_ping = frame(0x89, &[0; 126]);
        assert!(matches!(
            error_of(long_ping, 1000).await,
            ReadError::Protocol(_)
        ));
        let big = frame(0x81, &[b'x'; 101]);
        assert!(matches!(error_of(big, 100).await, ReadError::TooBig(101)));
        // Fragments add up against the limit.
        let mut parts = frame(0x01, &[b'x'; 60]);
        parts.extend(frame(0x80, &[b'x'; 60]));
        assert!(matches!(error_of(parts, 100).await, ReadError::TooBig(120)));
        let mut cut = frame(0x81, b"hello");
        cut.truncate(4);
        assert!(matches!(error_of(cut, 100).await, ReadError::Protocol(_)));
    }

    #[tokio::test]
    async fn try_next_hands_out_what_one_read_brought_then_asks_for_more() {
        let (mut r, mut s) = pair(256, 1000).await;
        let mut wire = frame(0x81, b"a");
        wire.extend(frame(0x81, b"b"));
        s.write_all(&wire).await.expect("write");
        assert!(matches!(r.try_next(), Ok(None)), "nothing read yet");
        let mut got = Vec::new();
        while got.len() < 2 {
            match r.try_next().expect("frames") {
                Some(Received::Text(t)) => got.push(t.to_string()),
                Some(other) => panic!("unexpected {other:?}"),
                None => assert!(r.fill().await.expect("fill")),
            }
        }
        assert_eq!(got, ["a", "b"]);
        drop(s);
        assert!(matches!(r.try_next(), Ok(None)));
        assert!(!r.fill().await.expect("a clean end"));
    }
}
