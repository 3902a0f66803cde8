//! Writing a client WebSocket: messages framed and masked (tungstenite's `Frame`) into
//! one buffer, and what waits written with one system call.

use super::stream::WriteHalf;
use std::io;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// The writing half of a client WebSocket.
pub struct Writer {
    io: WriteHalf,
    buf: Vec<u8>,
}

/// `m` as the frame a client sends (masked).
fn frame(m: Message) -> Frame {
    let mut f = match m {
        Message::Text(t) => Frame::message(t, OpCode::Data(Data::Text), true),
        Message::Binary(b) => Frame::message(b, OpCode::Data(Data::Binary), true),
        Message::Ping(p) => Frame::ping(p),
        Message::Pong(p) => Frame::pong(p),
        Message::Close(c) => Frame::close(c),
        Message::Frame(f) => f,
    };
    // A key from a strong source, as RFC 6455 asks (5.3).
    f.header_mut().mask = Some(rand::random());
    f
}

impl Writer {
    /// Writes on `io`.
    pub fn new(io: WriteHalf) -> Writer {
        Writer {
            io,
            buf: Vec::new(),
        }
    }

    /// Writes `first` and whatever `more` has ready in one write: a sender that fell
    /// behind catches up in one system call, not one per frame. Stops after a close;
    /// `Ok(true)` when one was written (the socket's writing side is then shut).
    ///
    /// # Errors
    /// The socket failed.
    pub async fn write_waiting(
        &mut self,
        first: Message,
        mut more: impl FnMut() -> Option<Message>,
    ) -> io::Result<bool> {
        self.buf.clear();
        let mut next = Some(first);
        let mut close = false;
        while let Some(m) = next.take() {
            close = m.is_close();
            // Writing into a Vec cannot fail.
            let _ = frame(m).format(&mut self.buf);
            if !close {
                next = more();
            }
        }
        self.io.write_all(&self.buf).await?;
        // TLS holds what it encrypted until flushed (TCP's flush does nothing).
        self.io.flush().await?;
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        if close {
            self.io.shutdown().await?;
        }
        Ok(close)
    }

    /// Writes what `queue` gives, what waits in one write each time, until a close is
    /// written, the socket fails, or the queue ends (then a close frame is written).
    pub async fn run(mut self, mut queue: mpsc::Receiver<Message>) {
        while let Some(m) = queue.recv().await {
            if !matches!(
                self.write_waiting(m, || queue.try_recv().ok()).await,
                Ok(false)
            ) {
                return;
            }
        }
        let _ = self.send(Message::Close(None)).await;
    }

    /// Writes one message.
    ///
    /// # Errors
    /// The socket failed.
    pub async fn send(&mut self, m: Message) -> io::Result<bool> {
        self.write_waiting(m, || None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

    #[tokio::test]
    async fn frames_are_masked_and_what_waits_goes_out_together_until_a_close() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (client, server) = tokio::join!(TcpStream::connect(addr), l.accept());
        let (_, w) = client.expect("connect").into_split();
        let mut w = Writer::new(tokio_util::either::Either::Left(w));
        let mut more = vec![
            Message::Text("after the close".into()),
            Message::Close(None),
            Message::Ping(vec![7].into()),
            Message::Text("é".into()),
        ];
        let closed = w
            .write_waiting(Message::Text("hello".into()), || more.pop())
            .await
            .expect("write");
        assert!(closed);
        assert_eq!(more.len(), 1, "nothing is taken after the close");
        let mut wire = Vec::new();
        let mut s = server.expect("accept").0;
        s.read_to_end(&mut wire)
            .await
            .expect("the writing side was shut");
        let mut cur = Cursor::new(&wire[..]);
        let mut got = Vec::new();
        while let Ok(Some((h, len))) = FrameHeader::parse(&mut cur) {
            let mask = h.mask.expect("a client's frames are masked");
            let at = cur.position() as usize;
            let payload: Vec<u8> = wire[at..at + len as usize]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            got.push((h.opcode, payload));
            cur.set_position(at as u64 + len);
        }
        let payloads: Vec<&[u8]> = got.iter().map(|(_, p)| p.as_slice()).collect();
        assert_eq!(payloads, [&b"hello"[..], "é".as_bytes(), &[7], &[]]);
    }
}
