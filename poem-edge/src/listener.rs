//! A listener that closes connections whose request headers arrive too slowly.
//!
//! poem does not expose hyper's header read timeout, so the connection's reads are timed
//! here: the clock starts when the server waits for a request (a new connection, or a
//! kept-alive one after a response) and stops once the blank line ending the headers has
//! been read. A client trickling header bytes (slowloris) or idling on a kept-alive
//! connection is disconnected when it runs out; body reads are timed by the body-limit
//! middleware instead.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use poem::{
    listener::Acceptor,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Sleep,
};

/// Wraps every accepted connection in a [`HeaderTimeoutIo`].
pub struct HeaderTimeoutAcceptor<A> {
    inner: A,
    timeout: Duration,
}

impl<A> HeaderTimeoutAcceptor<A> {
    /// Times the headers of every request on connections from `inner`.
    pub fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A: Acceptor> Acceptor for HeaderTimeoutAcceptor<A> {
    type Io = HeaderTimeoutIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((
            HeaderTimeoutIo::new(io, self.timeout),
            local,
            remote,
            scheme,
        ))
    }
}

/// A connection whose request headers must arrive within a deadline.
pub struct HeaderTimeoutIo<T> {
    inner: T,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    waiting_for_headers: bool,
    /// The last bytes read, to find `\r\n\r\n` across reads.
    tail: [u8; 3],
}

impl<T> HeaderTimeoutIo<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: None,
            waiting_for_headers: true,
            tail: [0; 3],
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        if !self.waiting_for_headers || bytes.is_empty() {
            return;
        }
        let mut window = self.tail.to_vec();
        window.extend_from_slice(bytes);
        if window.windows(4).any(|w| w == b"\r\n\r\n") {
            self.waiting_for_headers = false;
            self.deadline = None;
        }
        let n = window.len();
        self.tail.copy_from_slice(&window[n - 3..]);
    }

    fn wrote(&mut self, bytes: &[u8]) {
        // An interim `100 Continue` is not the response: the body of the same request is
        // still to come, and must not be timed as the next request's headers (a handler
        // running past the deadline would see its connection cut).
        if bytes.starts_with(b"HTTP/1.1 1") {
            return;
        }
        // A response is going out: the next read waits for a new request.
        self.waiting_for_headers = true;
        self.deadline = None;
        self.tail = [0; 3];
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeaderTimeoutIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.waiting_for_headers && this.deadline.is_none() {
            this.deadline = Some(Box::pin(tokio::time::sleep(this.timeout)));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = buf.filled()[before..].to_vec();
                this.saw(&fresh);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request headers not received in time",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeaderTimeoutIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.wrote(buf);
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_headers_is_found_across_reads() {
        let mut io = HeaderTimeoutIo::new((), Duration::from_secs(1));
        io.saw(b"GET / HTTP/1.1\r\nHost: x\r");
        assert!(io.waiting_for_headers);
        io.saw(b"\n\r");
        assert!(io.waiting_for_headers);
        io.saw(b"\n");
        assert!(!io.waiting_for_headers);
    }

    #[test]
    fn a_response_restarts_the_clock_but_100_continue_does_not() {
        let mut io = HeaderTimeoutIo::new((), Duration::from_secs(1));
        io.saw(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        io.wrote(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert!(!io.waiting_for_headers);
        io.wrote(b"HTTP/1.1 201 Created\r\n");
        assert!(io.waiting_for_headers);
    }
}
