//! A lean HTTP/1.1 client: one keep-alive connection per worker, reconnecting
//! when the server closes it (scim2-server answers HTTP/1.0 and closes every
//! connection). Only requests that were never written are retried.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// Where requests go and the Host header they carry.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub host: String,
}

impl Endpoint {
    /// Parses `http://host:port` (no TLS: benchmarks run on loopback).
    pub fn parse(url: &str) -> Result<(Endpoint, String), String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("'{url}': only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
            None => (rest, String::new()),
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
            .map_err(|e| format!("'{authority}': {e}"))?
            .next()
            .ok_or_else(|| format!("'{authority}' resolves to no address"))?;
        Ok((
            Endpoint {
                addr,
                host: authority.to_string(),
            },
            path,
        ))
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            )
        })
    }
}

pub struct Conn {
    endpoint: Endpoint,
    sender: Option<SendRequest<Full<Bytes>>>,
    pub connects: u64,
}

impl Conn {
    pub fn new(endpoint: Endpoint) -> Conn {
        Conn {
            endpoint,
            sender: None,
            connects: 0,
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        let stream = TcpStream::connect(self.endpoint.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.endpoint.addr))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        self.connects += 1;
        Ok(())
    }

    pub async fn send(
        &mut self,
        method: &Method,
        path: &str,
        auth: Option<&str>,
        body: Option<&Bytes>,
    ) -> Result<Response, String> {
        // At most one reconnect: a closed idle connection is normal, two in a
        // row means the server is refusing us.
        for _ in 0..2 {
            let ready = match self.sender.as_mut() {
                Some(s) if !s.is_closed() => s.ready().await.is_ok(),
                _ => false,
            };
            if !ready {
                self.sender = None;
                self.connect().await?;
                continue;
            }
            let Some(sender) = self.sender.as_mut() else {
                continue;
            };
            let mut req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(header::HOST, &self.endpoint.host)
                .header(header::ACCEPT, "application/scim+json");
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            if body.is_some() {
                req = req.header(header::CONTENT_TYPE, "application/scim+json");
            }
            let req = req
                .body(Full::new(body.cloned().unwrap_or_default()))
                .map_err(|e| format!("request: {e}"))?;
            let resp = match sender.try_send_request(req).await {
                Ok(r) => r,
                // Never written: safe to retry on a fresh connection.
                Err(e) if e.message().is_some() => {
                    self.sender = None;
                    continue;
                }
                Err(e) => {
                    self.sender = None;
                    return Err(format!("{method} {path}: {}", e.error()));
                }
            };
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{method} {path}: reading body: {e}"))?
                .to_bytes();
            return Ok(Response { status, body });
        }
        Err(format!(
            "{method} {path}: connection closed twice before sending"
        ))
    }
}
