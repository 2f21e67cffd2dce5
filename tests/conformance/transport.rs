//! HTTP/1.1 transport (see the module docs for why this is not reqwest).

use super::*;

#[derive(Clone, Debug)]
pub(crate) struct ServerTarget {
    /// `host:port` to connect to and to send as `Host`.
    pub(crate) authority: String,
    /// Path prefix of the SCIM base URL, without a trailing '/', e.g. `/scim/v2`.
    pub(crate) base_path: String,
}

pub(crate) fn parse_base_url(url: &str) -> Result<ServerTarget, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("SCIM base URL `{url}` must start with http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("SCIM base URL `{url}` has no host"));
    }
    Ok(ServerTarget {
        authority: authority.to_string(),
        base_path: path.trim_end_matches('/').to_string(),
    })
}

#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    /// Body after transfer decoding and content decoding.
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serializes a request exactly as it goes on the wire.
pub(crate) fn build_request(
    method: &str,
    target: &str,
    authority: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        let _ = write!(head, "Host: {authority}\r\n");
    }
    for (name, value) in headers {
        // Framing is ours: a scenario-supplied Content-Length could only desynchronize it.
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    bytes
}

pub(crate) fn read_line_crlf(reader: &mut impl BufRead, what: &str) -> Result<String, String> {
    let mut line = Vec::new();
    let n = reader
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("reading {what}: {e}"))?;
    if n == 0 {
        return Err(format!("connection closed while reading {what}"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Parses one HTTP/1.1 response (skipping 1xx interim responses) and decodes its body.
pub(crate) fn read_response(
    reader: &mut impl BufRead,
    method: &str,
) -> Result<RawResponse, String> {
    loop {
        let status_line = read_line_crlf(reader, "status line")?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(format!("malformed status line {status_line:?}"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("malformed status line {status_line:?}"))?;
        let mut headers = Vec::new();
        let mut head_bytes = status_line.len();
        loop {
            let line = read_line_crlf(reader, "response headers")?;
            if line.is_empty() {
                break;
            }
            head_bytes += line.len();
            if head_bytes > MAX_RESPONSE_HEAD_BYTES {
                return Err("response head exceeds 1 MiB".to_string());
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("malformed response header line {line:?}"))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let find = |name: &str| {
            headers
                .iter()
                .filter(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let transfer_encoding = find("transfer-encoding").to_ascii_lowercase();
        let content_length = find("content-length");
        let mut body = Vec::new();
        if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
            // no body by definition
        } else if transfer_encoding.contains("chunked") {
            read_chunked(reader, &mut body)?;
        } else if !content_length.is_empty() {
            let first = content_length.split(',').next().unwrap_or_default().trim();
            let len: usize = first
                .parse()
                .map_err(|_| format!("invalid Content-Length {content_length:?}"))?;
            body.resize(len, 0);
            reader
                .read_exact(&mut body)
                .map_err(|e| format!("reading {len}-byte body: {e}"))?;
        } else {
            reader
                .read_to_end(&mut body)
                .map_err(|e| format!("reading body to EOF: {e}"))?;
        }
        let body = decode_content(&find("content-encoding"), body)?;
        return Ok(RawResponse {
            status,
            headers,
            body,
        });
    }
}

pub(crate) fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Result<(), String> {
    loop {
        let size_line = read_line_crlf(reader, "chunk size")?;
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("invalid chunk size line {size_line:?}"))?;
        if size == 0 {
            // trailers until the empty line
            while !read_line_crlf(reader, "chunked trailer")?.is_empty() {}
            return Ok(());
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|e| format!("reading {size}-byte chunk: {e}"))?;
        let terminator = read_line_crlf(reader, "chunk terminator")?;
        if !terminator.is_empty() {
            return Err(format!("chunk not followed by CRLF (got {terminator:?})"));
        }
    }
}

/// Undoes `Content-Encoding` (applied in order, so decoded in reverse order).
pub(crate) fn decode_content(content_encoding: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut body = body;
    let codings: Vec<String> = content_encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    for coding in codings.iter().rev() {
        let mut out = Vec::new();
        match coding.as_str() {
            "gzip" | "x-gzip" => {
                flate2::read::MultiGzDecoder::new(body.as_slice())
                    .read_to_end(&mut out)
                    .map_err(|e| format!("gzip-decoding response body: {e}"))?;
            }
            "deflate" => {
                // RFC 9110 "deflate" is zlib-wrapped; some servers send raw deflate.
                if flate2::read::ZlibDecoder::new(body.as_slice())
                    .read_to_end(&mut out)
                    .is_err()
                {
                    out.clear();
                    flate2::read::DeflateDecoder::new(body.as_slice())
                        .read_to_end(&mut out)
                        .map_err(|e| format!("deflate-decoding response body: {e}"))?;
                }
            }
            other => return Err(format!("unsupported Content-Encoding `{other}`")),
        }
        body = out;
    }
    Ok(body)
}

/// Blocking round trip: connect, write the exact request bytes, read one response.
pub(crate) fn round_trip(
    authority: &str,
    request: &[u8],
    method: &str,
) -> Result<RawResponse, String> {
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("resolving {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolved to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("connecting to {authority}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| format!("configuring socket: {e}"))?;
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|e| format!("writing request: {e}"))?;
    let mut reader = BufReader::new(stream);
    read_response(&mut reader, method)
}

pub(crate) async fn send(
    authority: &str,
    request: Vec<u8>,
    method: &str,
) -> Result<(RawResponse, Duration), String> {
    let authority = authority.to_string();
    let method = method.to_string();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let response = round_trip(&authority, &request, &method)?;
        Ok((response, started.elapsed()))
    })
    .await
    .map_err(|e| format!("HTTP task panicked or was cancelled: {e}"))?
}
