//! A minimal HTTP/1.1 server side for the local fakes (Azure, Citrex REST): reads requests
//! with a `Content-Length` body from a keep-alive connection and writes JSON responses. No
//! chunked bodies, no TLS: the clients under test talk to 127.0.0.1 over plain HTTP.

use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Accepts connections forever, serving each on its own task. The connection tasks belong to
/// this future: aborting the task that runs it (a fake's `Drop`) ends them all.
pub async fn accept_loop<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((conn, _)) => {
                    let _ = conn.set_nodelay(true);
                    conns.spawn(serve(conn));
                }
                // Out of descriptors, or a connection reset before accept: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// One request as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/v1/depth?symbol=btcperp`).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query without the `?`, or "".
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| percent_decode(k) == name)
            .map(|(_, v)| percent_decode(v))
    }
}

/// `%XX` escapes and `+` as a space, as in a form-encoded query.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            x => out.push(x),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Reads consecutive requests from one connection, keeping whatever arrived past the last one.
#[derive(Default)]
pub struct RequestReader {
    buf: Vec<u8>,
}

impl RequestReader {
    pub fn new() -> RequestReader {
        RequestReader {
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// The next request: head, then `Content-Length` bytes of body. `None` when the peer
    /// closed the connection.
    pub async fn next<R: AsyncRead + Unpin>(
        &mut self,
        conn: &mut R,
    ) -> io::Result<Option<Request>> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if !self.fill(conn).await? {
                return Ok(None);
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < head_end + 4 + len {
            if !self.fill(conn).await? {
                return Ok(None);
            }
        }
        let body =
            String::from_utf8_lossy(&self.buf[head_end + 4..head_end + 4 + len]).into_owned();
        self.buf.drain(..head_end + 4 + len);
        Ok(Some(Request {
            method,
            target,
            headers,
            body,
        }))
    }

    async fn fill<R: AsyncRead + Unpin>(&mut self, conn: &mut R) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }
}

/// A complete response: status line, `content-type: application/json`, `content-length`, the
/// given headers in order, then the body.
pub fn response(status: u16, headers: &[(String, String)], body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_pipelined_requests_and_queries() {
        let raw = b"POST /v1/order HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /v1/depth?symbol=btc%40perp&limit=5&flag HTTP/1.1\r\n\r\n";
        let mut conn: &[u8] = raw;
        let mut r = RequestReader::new();
        let a = r.next(&mut conn).await.unwrap().unwrap();
        assert_eq!(
            (a.method.as_str(), a.path(), a.body.as_str()),
            ("POST", "/v1/order", "{}")
        );
        assert_eq!(a.header("content-length"), Some("2"));
        let b = r.next(&mut conn).await.unwrap().unwrap();
        assert_eq!(b.path(), "/v1/depth");
        assert_eq!(b.query_param("symbol").as_deref(), Some("btc@perp"));
        assert_eq!(b.query_param("limit").as_deref(), Some("5"));
        assert_eq!(b.query_param("flag").as_deref(), Some(""));
        assert_eq!(b.query_param("none"), None);
        assert!(r.next(&mut conn).await.unwrap().is_none());
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz+%41"), "%zz A");
    }
}
