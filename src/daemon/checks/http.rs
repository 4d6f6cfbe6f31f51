//! `http` checks: one plain HTTP/1.1 GET per run, judged by its status and, when
//! asked, by text in the body.
//!
//! Written here rather than with a client crate: one GET with `Connection: close`,
//! a status line, two headers that frame the body (`Transfer-Encoding`,
//! `Content-Length`) and at most [`MAX_HTTP_BODY`] bytes of body is a page of code,
//! and a client library would bring TLS, pools and redirects we do not want (a
//! check of a service's local port must not follow it elsewhere). The parsing is
//! pure and never panics; the whole exchange runs within the check's timeout.
//!
//! A chunked body is decoded, so the text is found even when it straddles two
//! chunks; the search stops as soon as the text is found.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, lookup_host};
use tokio::time::{Instant, timeout};

use super::bounded_line;
use crate::config::{HttpUrl, MAX_HTTP_BODY};
use crate::duration::format_duration;
use crate::machine::health::Run;

/// The longest response head (status line and headers) read.
const MAX_HEAD: usize = 16 * 1024;
/// The longest chunk-size or trailer line accepted.
const MAX_CHUNK_LINE: usize = 1024;

/// One `http` check, ready to run.
#[derive(Debug, Clone)]
pub struct Http {
    pub url: HttpUrl,
    /// The statuses that pass.
    pub status: RangeInclusive<u16>,
    /// Text the body must contain, if any.
    pub body: Option<String>,
    pub timeout: Duration,
}

/// Why a run got no verdict; its text is the run's detail.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL's host name could not be resolved.
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    /// The host name resolved to nothing.
    #[error("{host} has no address")]
    NoAddress { host: String },
    /// No address of the host took the connection.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("sending the request: {0}")]
    Send(io::Error),
    #[error("reading the response: {0}")]
    Receive(io::Error),
    /// The server closed the connection before a whole response head.
    #[error("connection closed before the response")]
    Closed,
    #[error("response head longer than {MAX_HEAD} bytes")]
    HeadTooLong,
    /// The server answered something that is not HTTP/1.x.
    #[error("not an HTTP response: {0}")]
    Malformed(&'static str),
    /// The whole exchange took longer than the check's timeout.
    #[error("timed out after {}", format_duration(*.0))]
    Timeout(Duration),
}

/// What a response says about the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass(u16),
    WrongStatus(u16),
    NoText,
}

impl Http {
    /// GETs the URL once, within the timeout.
    pub async fn run(&self) -> Run {
        let started = Instant::now();
        let outcome = timeout(self.timeout, self.exchange())
            .await
            .unwrap_or(Err(HttpError::Timeout(self.timeout)));
        let (passed, detail) = match outcome {
            Ok(Verdict::Pass(status)) => (true, format!("status {status}")),
            Ok(Verdict::WrongStatus(status)) => (false, format!("status {status}")),
            Ok(Verdict::NoText) => {
                let text = self.body.as_deref().unwrap_or_default();
                (false, format!("no {text:?} in the body"))
            }
            Err(err) => (false, err.to_string()),
        };
        Run {
            passed,
            took: started.elapsed(),
            detail: bounded_line(detail.as_bytes()),
        }
    }

    async fn exchange(&self) -> Result<Verdict, HttpError> {
        let mut stream = connect(&self.url).await?;
        stream
            .write_all(request(&self.url).as_bytes())
            .await
            .map_err(HttpError::Send)?;
        let mut buf = Vec::with_capacity(4096);
        let head_len = loop {
            if let Some(end) = head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                return Err(HttpError::HeadTooLong);
            }
            if read_more(&mut stream, &mut buf).await? == 0 {
                return Err(HttpError::Closed);
            }
        };
        let head = parse_head(&buf[..head_len])?;
        if !self.status.contains(&head.status) {
            return Ok(Verdict::WrongStatus(head.status));
        }
        let Some(text) = self.body.as_deref() else {
            return Ok(Verdict::Pass(head.status));
        };
        let mut body = Body::new(head.framing);
        body.feed(&buf[head_len..])?;
        loop {
            if body.find(text.as_bytes()) {
                return Ok(Verdict::Pass(head.status));
            }
            if body.finished() {
                return Ok(Verdict::NoText);
            }
            buf.clear();
            // A body cut short by the server is searched as far as it came.
            if read_more(&mut stream, &mut buf).await? == 0 {
                return Ok(Verdict::NoText);
            }
            body.feed(&buf)?;
        }
    }
}

/// Connects to the URL's host: an address as it is (an IPv6 one without its
/// brackets), a name through the resolver, trying its addresses in order.
async fn connect(url: &HttpUrl) -> Result<TcpStream, HttpError> {
    let host = url
        .host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&url.host);
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        Err(_) => lookup_host((host, url.port))
            .await
            .map_err(|source| HttpError::Resolve {
                host: host.to_string(),
                source,
            })?
            .collect(),
    };
    let mut last = HttpError::NoAddress {
        host: host.to_string(),
    };
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(source) => last = HttpError::Connect { address, source },
        }
    }
    Err(last)
}

/// The request: a GET of the path, with the Host header as the URL writes it (an
/// IPv6 address in brackets), the port only when not the default.
fn request(url: &HttpUrl) -> String {
    let port = if url.port == 80 {
        String::new()
    } else {
        format!(":{}", url.port)
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}{port}\r\nUser-Agent: failoverd/{version}\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n",
        path = url.path,
        host = url.host,
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// Appends what the stream has next to `buf`; 0 at its end.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, HttpError> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.map_err(HttpError::Receive)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// The length of the response head, blank line included, once `buf` holds all of
/// it. Bare line feeds are accepted as line ends.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.iter().enumerate().find_map(|(i, &b)| {
        if b != b'\n' {
            return None;
        }
        match buf.get(i + 1..) {
            Some([b'\n', ..]) => Some(i + 2),
            Some([b'\r', b'\n', ..]) => Some(i + 3),
            _ => None,
        }
    })
}

/// How the body's end is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(u64),
    /// It ends when the connection does.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
}

/// The status and the body's framing out of a response head.
fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    if !words.next().is_some_and(|v| v.starts_with(b"HTTP/1.")) {
        return Err(HttpError::Malformed("no HTTP/1.x status line"));
    }
    let status = match words.next() {
        Some(code @ [b'1'..=b'5', b'0'..=b'9', b'0'..=b'9']) => code
            .iter()
            .fold(0u16, |n, digit| n * 10 + u16::from(digit - b'0')),
        _ => return Err(HttpError::Malformed("no status code")),
    };
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The last coding applied is the one that frames the body.
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok());
            length = Some(parsed.ok_or(HttpError::Malformed("bad Content-Length"))?);
        }
    }
    let framing = if matches!(status, 100..=199 | 204 | 304) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else {
        length.map_or(Framing::Close, Framing::Length)
    };
    Ok(Head { status, framing })
}

/// The body as it arrives, decoded, its first [`MAX_HTTP_BODY`] bytes kept.
#[derive(Debug)]
struct Body {
    framing: Framing,
    chunked: Chunked,
    /// Bytes still to come, for a body of known length.
    left: u64,
    bytes: Vec<u8>,
    /// How far `find` has searched.
    searched: usize,
}

impl Body {
    fn new(framing: Framing) -> Body {
        Body {
            framing,
            chunked: Chunked::default(),
            left: match framing {
                Framing::Length(n) => n,
                Framing::Chunked | Framing::Close => 0,
            },
            bytes: Vec::new(),
            searched: 0,
        }
    }

    fn feed(&mut self, input: &[u8]) -> Result<(), HttpError> {
        let room = MAX_HTTP_BODY.saturating_sub(self.bytes.len());
        match self.framing {
            Framing::Chunked => self.chunked.feed(input, &mut self.bytes, MAX_HTTP_BODY)?,
            Framing::Length(_) => {
                let take = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                self.left -= take as u64;
                self.bytes.extend_from_slice(&input[..take.min(room)]);
            }
            Framing::Close => self
                .bytes
                .extend_from_slice(&input[..input.len().min(room)]),
        }
        Ok(())
    }

    /// Whether `needle` is in the body so far; searches only what is new since the
    /// last call (and the overlap a match across the seam needs).
    fn find(&mut self, needle: &[u8]) -> bool {
        let from = self.searched.saturating_sub(needle.len().saturating_sub(1));
        self.searched = self.bytes.len();
        needle.is_empty()
            || self.bytes[from..]
                .windows(needle.len())
                .any(|window| window == needle)
    }

    /// Nothing more will count: the body ended, or its first bytes are all in.
    fn finished(&self) -> bool {
        self.bytes.len() >= MAX_HTTP_BODY
            || match self.framing {
                Framing::Chunked => self.chunked.state == ChunkState::Done,
                Framing::Length(_) => self.left == 0,
                Framing::Close => false,
            }
    }
}

/// A decoder of `Transfer-Encoding: chunked`, fed as the bytes arrive.
#[derive(Debug, Default)]
struct Chunked {
    state: ChunkState,
    /// The part of a size or trailer line seen so far.
    line: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk, with this many bytes of it to come.
    Data(u64),
    /// Reading the line break after a chunk.
    DataEnd,
    /// Past the last chunk, reading trailer lines up to a blank one.
    Trailer,
    Done,
}

impl Chunked {
    /// Decodes `input`, appending the data to `out` up to `limit` bytes in all.
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), HttpError> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Done => return Ok(()),
                ChunkState::Data(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    let room = limit.saturating_sub(out.len());
                    out.extend_from_slice(&input[..take.min(room)]);
                    input = &input[take..];
                    self.state = match left - take as u64 {
                        0 => ChunkState::DataEnd,
                        rest => ChunkState::Data(rest),
                    };
                }
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailer => {
                    let end = input.iter().position(|&b| b == b'\n');
                    let (part, rest) = match end {
                        Some(i) => (&input[..i], &input[i + 1..]),
                        None => (input, &input[input.len()..]),
                    };
                    self.line.extend_from_slice(part);
                    if self.line.len() > MAX_CHUNK_LINE {
                        return Err(HttpError::Malformed("chunk line too long"));
                    }
                    input = rest;
                    if end.is_some() {
                        let line = std::mem::take(&mut self.line);
                        self.state = self.after_line(line.strip_suffix(b"\r").unwrap_or(&line))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The state after a whole line in the current state.
    fn after_line(&self, line: &[u8]) -> Result<ChunkState, HttpError> {
        Ok(match self.state {
            ChunkState::Size => match chunk_size(line)? {
                0 => ChunkState::Trailer,
                size => ChunkState::Data(size),
            },
            ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
            ChunkState::DataEnd => return Err(HttpError::Malformed("chunk longer than its size")),
            ChunkState::Trailer if line.is_empty() => ChunkState::Done,
            state => state,
        })
    }
}

/// The size of a chunk-size line (hex, extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    // Fifteen hex digits cannot overflow a u64.
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(HttpError::Malformed("bad chunk size"));
    }
    Ok(digits.iter().fold(0u64, |n, &d| {
        n * 16 + u64::from(char::from(d).to_digit(16).unwrap_or(0))
    }))
}

#[cfg(test)]
mod tests;
