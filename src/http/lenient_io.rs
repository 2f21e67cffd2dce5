//! A byte-level fix-up in front of the HTTP parser. Microsoft's SCIM Validator
//! sends filters with raw double quotes in the query (`?filter=userName+eq+"x"`),
//! which the `http` crate (under actix and hyper alike) rejects before any handler
//! runs. This wrapper percent-encodes the bytes RFC 3986 forbids in a request
//! target, in request lines only: it follows HTTP/1.1 framing (header block, then
//! `Content-Length` bytes of body) so bodies pass through untouched. On a chunked
//! body it stops rewriting for the rest of the connection rather than guess.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    RequestLine,
    Headers,
    Body(u64),
    Passthrough,
}

/// The request-line rewriter, independent of I/O (unit-tested on byte slices).
#[derive(Debug)]
pub struct Rewriter {
    state: State,
    line: Vec<u8>,
    content_length: u64,
    chunked: bool,
}

impl Default for Rewriter {
    fn default() -> Self {
        Rewriter {
            state: State::RequestLine,
            line: Vec::new(),
            content_length: 0,
            chunked: false,
        }
    }
}

/// Bytes the `http` crate refuses in a request target; all are encoded by
/// well-behaved clients, so encoding them here changes no valid request.
fn needs_encoding(b: u8) -> bool {
    matches!(
        b,
        b'"' | b'{' | b'}' | b'|' | b'\\' | b'^' | b'`' | b'<' | b'>'
    ) || b >= 0x80
}

impl Rewriter {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Passthrough => {
                    out.extend_from_slice(&input[i..]);
                    return;
                }
                State::Body(left) => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - i);
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::RequestLine
                    } else {
                        State::Body(left)
                    };
                }
                State::RequestLine => {
                    let b = input[i];
                    i += 1;
                    if needs_encoding(b) {
                        out.extend_from_slice(format!("%{b:02X}").as_bytes());
                    } else {
                        out.push(b);
                    }
                    if b == b'\n' {
                        // A blank line before a request line is allowed (RFC 9112 §2.2).
                        if !self.line.is_empty() {
                            self.state = State::Headers;
                        }
                        self.line.clear();
                        self.content_length = 0;
                        self.chunked = false;
                    } else if b != b'\r' {
                        self.line.push(b);
                    }
                }
                State::Headers => {
                    let b = input[i];
                    i += 1;
                    out.push(b);
                    if b != b'\n' {
                        if b != b'\r' {
                            self.line.push(b);
                        }
                        continue;
                    }
                    if self.line.is_empty() {
                        self.state = if self.chunked {
                            State::Passthrough
                        } else if self.content_length > 0 {
                            State::Body(self.content_length)
                        } else {
                            State::RequestLine
                        };
                        continue;
                    }
                    let line = String::from_utf8_lossy(&self.line).to_ascii_lowercase();
                    if let Some(v) = line.strip_prefix("content-length:") {
                        self.content_length = v.trim().parse().unwrap_or(0);
                    } else if line.starts_with("transfer-encoding:") && line.contains("chunked") {
                        self.chunked = true;
                    }
                    self.line.clear();
                }
            }
        }
    }
}

/// An I/O stream whose reads pass through a `Rewriter`.
pub struct LenientIo<T> {
    inner: T,
    rewriter: Rewriter,
    pending: Vec<u8>,
    pos: usize,
}

impl<T> LenientIo<T> {
    pub fn new(inner: T) -> Self {
        LenientIo {
            inner,
            rewriter: Rewriter::default(),
            pending: Vec::new(),
            pos: 0,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for LenientIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos >= this.pending.len() {
            this.pending.clear();
            this.pos = 0;
            let mut raw = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut raw);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let filled = rb.filled();
                    if filled.is_empty() {
                        return Poll::Ready(Ok(())); // EOF
                    }
                    this.rewriter.feed(filled, &mut this.pending);
                }
                other => return other,
            }
        }
        let n = (this.pending.len() - this.pos).min(buf.remaining());
        buf.put_slice(&this.pending[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for LenientIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::Rewriter;

    fn run(chunks: &[&[u8]]) -> String {
        let mut r = Rewriter::default();
        let mut out = Vec::new();
        for c in chunks {
            r.feed(c, &mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn encodes_raw_quotes_in_request_lines_only() {
        let req = b"GET /scim/v2/Users?filter=userName+eq+\"a@b.c\" HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            run(&[req]),
            "GET /scim/v2/Users?filter=userName+eq+%22a@b.c%22 HTTP/1.1\r\nHost: x\r\n\r\n"
        );
    }

    #[test]
    fn bodies_pass_untouched_and_keep_alive_requests_are_rewritten() {
        let body = "{\"userName\":\"q\\\"x\"}";
        let req = format!(
            "POST /Users HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}GET /Users?f=\"1\" HTTP/1.1\r\n\r\n",
            body.len()
        );
        let out = run(&[req.as_bytes()]);
        assert!(out.contains(body), "{out}");
        assert!(
            out.ends_with("GET /Users?f=%221%22 HTTP/1.1\r\n\r\n"),
            "{out}"
        );
    }

    #[test]
    fn state_survives_arbitrary_splits() {
        let body = "{\"a\":\"\\\"\"}";
        let req = format!(
            "PATCH /U HTTP/1.1\r\ncontent-length: {}\r\n\r\n{body}GET /U?x=\"y\" HTTP/1.1\r\n\r\n",
            body.len()
        );
        let whole = run(&[req.as_bytes()]);
        for split in 1..req.len() {
            let (a, b) = req.as_bytes().split_at(split);
            assert_eq!(run(&[a, b]), whole, "split at {split}");
        }
    }

    #[test]
    fn chunked_switches_to_passthrough() {
        let req = b"POST /U HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\"a\"\r\n0\r\n\r\n";
        assert_eq!(run(&[req]), String::from_utf8_lossy(req));
    }
}
