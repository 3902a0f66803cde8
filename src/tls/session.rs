//! A listener's TLS session over its TCP socket, on rustls' unbuffered API: the
//! ciphertext read, the plaintext not yet taken and the ciphertext not yet sent live in
//! buffers of ours, released as soon as they are empty, so an idle TLS connection holds
//! no buffer (rustls' buffered connection keeps a 4 KiB read buffer for its whole life,
//! which more than doubled the memory of an idle connection).

use bytes::{Buf, BytesMut};
use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    AppDataRecord, ConnectionState, EncodeError, EncryptError, UnbufferedStatus,
};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How much ciphertext one read asks the socket for.
const READ_SIZE: usize = 4096;

/// Ciphertext waiting for the socket beyond which a write waits for it to drain.
const OUT_LIMIT: usize = 64 * 1024;

/// Plaintext taken by one write at most (the rest is the caller's to write again).
const WRITE_CHUNK: usize = 64 * 1024;

/// What the session needs after processing what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// More ciphertext from the peer.
    Read,
    /// Nothing: application data may be written (and read, when it comes).
    Ready,
    /// Both sides said goodbye.
    Closed,
}

/// One server TLS session.
pub struct ServerSession {
    io: TcpStream,
    conn: UnbufferedServerConnection,
    /// Ciphertext from the peer not yet processed.
    incoming: BytesMut,
    /// Application data decrypted, not yet read.
    plain: BytesMut,
    /// Ciphertext for the peer, and how much of it is sent.
    outgoing: Vec<u8>,
    sent: usize,
    /// The peer's close_notify (or its end of the stream) was seen: reads are at EOF.
    peer_closed: bool,
    /// Our close_notify is queued.
    close_queued: bool,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl ServerSession {
    /// Accepts a TLS client on `io` with `config`: the handshake, done.
    ///
    /// # Errors
    /// The handshake failed (the client's certificate refused, no common version, not
    /// TLS), or the socket did.
    pub async fn accept(io: TcpStream, config: Arc<ServerConfig>) -> io::Result<ServerSession> {
        let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let mut s = ServerSession {
            io,
            conn,
            incoming: BytesMut::new(),
            plain: BytesMut::new(),
            outgoing: Vec::new(),
            sent: 0,
            peer_closed: false,
            close_queued: false,
        };
        std::future::poll_fn(|cx| s.poll_handshake(cx)).await?;
        Ok(s)
    }

    /// Processes what was received: records decrypted into `plain`, handshake and alert
    /// messages encoded into `outgoing`; with application data allowed, `write` is
    /// encrypted (and `close` queues close_notify). What the session needs next.
    fn process(&mut self, mut write: Option<&[u8]>, close: bool) -> io::Result<Next> {
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.incoming[..]);
            let next = match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut r) => {
                    while let Some(record) = r.next_record() {
                        let AppDataRecord {
                            discard: more,
                            payload,
                        } = record.map_err(tls_error)?;
                        discard += more;
                        self.plain.extend_from_slice(payload);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut e) => {
                    grow_into(&mut self.outgoing, 512, |buf| {
                        e.encode(buf).map_err(|err| match err {
                            EncodeError::InsufficientSize(s) => Some(s.required_size),
                            EncodeError::AlreadyEncoded => None,
                        })
                    })?;
                    None
                }
                // What was encoded is in `outgoing`, sent before anything queued later.
                ConnectionState::TransmitTlsData(t) => {
                    t.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Next::Read),
                ConnectionState::WriteTraffic(mut w) => {
                    if let Some(data) = write.take() {
                        let need = data.len() + (data.len() / 16_384 + 1) * 64;
                        grow_into(&mut self.outgoing, need, |buf| {
                            w.encrypt(data, buf).map_err(|err| match err {
                                EncryptError::InsufficientSize(s) => Some(s.required_size),
                                EncryptError::EncryptExhausted => None,
                            })
                        })?;
                    }
                    if close && !self.close_queued {
                        self.close_queued = true;
                        grow_into(&mut self.outgoing, 64, |buf| {
                            w.queue_close_notify(buf).map_err(|err| match err {
                                EncryptError::InsufficientSize(s) => Some(s.required_size),
                                EncryptError::EncryptExhausted => None,
                            })
                        })?;
                    }
                    Some(Next::Ready)
                }
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    None
                }
                ConnectionState::Closed => Some(Next::Closed),
                // Early data is not offered (`max_early_data_size` is 0).
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected TLS state (early data)",
                    ));
                }
            };
            if discard > 0 {
                self.incoming.advance(discard);
            }
            if let Some(next) = next {
                return Ok(next);
            }
        }
    }

    /// Sends what waits in `outgoing`; the buffer is released once empty.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.outgoing[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.outgoing = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Reads ciphertext from the socket: `Ok(false)` at its end. The read buffer is
    /// released while the socket has nothing and nothing partial is held.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.incoming.capacity() - self.incoming.len() < READ_SIZE / 4 {
            self.incoming.reserve(READ_SIZE);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.incoming) {
            Poll::Ready(Ok(n)) => Poll::Ready(Ok(n > 0)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if self.incoming.is_empty() {
                    self.incoming = BytesMut::new();
                }
                Poll::Pending
            }
        }
    }

    /// Drives the handshake to its end (the client's Finished, and its certificate when
    /// one is asked for, verified).
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let next = self.process(None, false)?;
            ready!(self.poll_send(cx))?;
            match next {
                Next::Ready if !self.conn.is_handshaking() => return Poll::Ready(Ok(())),
                Next::Closed => return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into())),
                _ => {
                    if !ready!(self.poll_receive(cx))? {
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
    }
}

/// Appends what `fill` writes to `out`, growing it to what `fill` says it needs (first
/// `hint` bytes); `fill` answers `Err(None)` for an error no size mends.
fn grow_into(
    out: &mut Vec<u8>,
    hint: usize,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> io::Result<()> {
    let start = out.len();
    let mut need = hint;
    loop {
        out.resize(start + need, 0);
        match fill(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Some(required)) if required > need => need = required,
            Err(_) => {
                out.truncate(start);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS record could not be written",
                ));
            }
        }
    }
}

impl AsyncRead for ServerSession {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let s = self.get_mut();
        loop {
            if !s.plain.is_empty() {
                let n = s.plain.len().min(buf.remaining());
                buf.put_slice(&s.plain[..n]);
                s.plain.advance(n);
                if s.plain.is_empty() {
                    s.plain = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            if s.peer_closed {
                return Poll::Ready(Ok(()));
            }
            let next = s.process(None, false)?;
            // Handshake messages and alerts the session produced go out; a full socket
            // does not stop reading (it wakes this task when it drains).
            if let Poll::Ready(Err(e)) = s.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
            if !s.plain.is_empty() || s.peer_closed {
                continue;
            }
            if next == Next::Closed {
                return Poll::Ready(Ok(()));
            }
            if !ready!(s.poll_receive(cx))? {
                // The peer's end without close_notify: EOF all the same.
                s.peer_closed = true;
            }
        }
    }
}

impl AsyncWrite for ServerSession {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let s = self.get_mut();
        if s.outgoing.len() - s.sent >= OUT_LIMIT {
            ready!(s.poll_send(cx))?;
        }
        if s.close_queued {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let data = &buf[..buf.len().min(WRITE_CHUNK)];
        match s.process(Some(data), false)? {
            Next::Ready => {}
            Next::Closed => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            // Only after the handshake are sessions handed out: never here.
            Next::Read => return Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
        if let Poll::Ready(Err(e)) = s.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = self.get_mut();
        ready!(s.poll_send(cx))?;
        Pin::new(&mut s.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = self.get_mut();
        if !s.close_queued {
            // A session that cannot say goodbye any more just closes.
            let _ = s.process(None, true);
            s.close_queued = true;
        }
        ready!(s.poll_send(cx))?;
        Pin::new(&mut s.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server configuration for `localhost` and a client configuration trusting it.
    fn configs() -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        configs_with(rustls::DEFAULT_VERSIONS)
    }

    /// As [`configs`], the client speaking `versions`.
    fn configs_with(
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let der = CertificateDer::from(cert.der().to_vec());
        let server = ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![der.clone()],
                PrivateKeyDer::try_from(key.serialize_der()).expect("key"),
            )
            .expect("server");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).expect("root");
        let client = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    #[tokio::test]
    async fn echoes_large_writes_releases_its_buffers_when_idle_and_ends_cleanly() {
        echo(configs()).await;
        echo(configs_with(&[&rustls::version::TLS12])).await;
    }

    async fn echo((server, client): (Arc<ServerConfig>, Arc<rustls::ClientConfig>)) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let peer = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let mut tls = tokio_rustls::TlsConnector::from(client)
                .connect(ServerName::try_from("localhost").expect("name"), tcp)
                .await
                .expect("handshake");
            let (mut r, mut w) = tokio::io::split(&mut tls);
            let write = async {
                w.write_all(&sent).await.expect("write");
                w.flush().await.expect("flush");
            };
            let mut back = vec![0u8; sent.len()];
            let read = r.read_exact(&mut back);
            let (_, got) = tokio::join!(write, read);
            got.expect("echo");
            assert_eq!(back, sent, "the echo is what was sent");
            // Idle a moment, then goodbye.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            tls.shutdown().await.expect("close_notify");
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest).await;
        });
        let (tcp, _) = l.accept().await.expect("accept");
        let mut s = ServerSession::accept(tcp, server).await.expect("accepted");
        let mut echoed = 0;
        let mut buf = vec![0u8; 10_000];
        while echoed < data.len() {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "not at EOF before everything came");
            s.write_all(&buf[..n]).await.expect("write");
            echoed += n;
        }
        s.flush().await.expect("flush");
        // Nothing more comes for now: a read waits, and every buffer is released.
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut one = [0u8; 1];
        let mut rb = ReadBuf::new(&mut one);
        assert!(Pin::new(&mut s).poll_read(&mut cx, &mut rb).is_pending());
        assert_eq!(
            (
                s.incoming.capacity(),
                s.plain.capacity(),
                s.outgoing.capacity()
            ),
            (0, 0, 0),
            "an idle session holds no buffer"
        );
        // The peer's close_notify is an EOF; ours goes back.
        assert_eq!(s.read(&mut buf).await.expect("eof"), 0);
        s.shutdown().await.expect("shutdown");
        peer.await.expect("peer");
    }

    #[tokio::test]
    async fn a_client_that_is_not_tls_fails_the_handshake() {
        let (server, _) = configs();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            let _ = tcp.write_all(&[0x16, 3, 1, 0, 4, 9, 9, 9, 9]).await;
            let mut rest = Vec::new();
            let _ = tcp.read_to_end(&mut rest).await;
        });
        let (tcp, _) = l.accept().await.expect("accept");
        assert!(ServerSession::accept(tcp, server).await.is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        /// Whatever a client sends first (a handshake record header with anything after
        /// it, or anything at all), the handshake ends in an error or a session, and
        /// nothing panics.
        #[test]
        fn arbitrary_bytes_from_a_client_never_panic(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            record in proptest::prelude::any::<bool>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let (server, _) = configs();
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = l.local_addr().expect("addr");
                let mut bytes = if record { vec![0x16, 3, 1, 0x08, 0] } else { Vec::new() };
                bytes.extend_from_slice(&tail);
                let client = tokio::spawn(async move {
                    let mut tcp = TcpStream::connect(addr).await.expect("connect");
                    let _ = tcp.write_all(&bytes).await;
                    let _ = tcp.shutdown().await;
                    let mut rest = Vec::new();
                    let _ = tcp.read_to_end(&mut rest).await;
                });
                let (tcp, _) = l.accept().await.expect("accept");
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    ServerSession::accept(tcp, server),
                )
                .await
                .expect("the handshake ends");
                let _ = client.await;
            });
        }
    }
}
