//! The status page and metrics endpoint: a small HTTP/1.1 server that shows the
//! [`Status`] the daemon publishes on a watch channel as an HTML page (`/`), as the
//! JSON document of `failoverd status --json` (`/status`) and as Prometheus metrics
//! (`/metrics`). It reads the status and nothing else: it changes nothing and
//! decides nothing, so a slow or hostile client can cost a connection slot, never a
//! heartbeat.
//!
//! The server is small on purpose: GET and HEAD only, one request per connection
//! (`Connection: close`), a request head of at most 8 KiB read within 5 s, at most
//! 32 connections at a time. Parsing the head is pure code that never panics.

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::timeout;
use tracing::{debug, warn};

use crate::machine::event::{Role, Severity};
use crate::machine::peer::LinkState;
use crate::status::{Failback, Named, PeerState, Status, rfc3339, unix_ms};

/// How often the status page reloads itself.
const REFRESH_SECONDS: u32 = 2;
/// Events shown on the page, newest first.
const EVENTS_SHOWN: usize = 20;
/// Hook runs shown on the page, newest first.
const HOOKS_SHOWN: usize = 10;
/// The states of [`Status::state`], in the order the `state` metric lists them.
const STATES: [Role; 4] = [Role::Starting, Role::Standby, Role::Active, Role::Fault];

/// How long a connection stays open after its response to take in what the client
/// still sends, and how much of it is read at most.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What one client may cost the server.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Longest request head (request line and headers) read.
    max_head: usize,
    /// Time allowed for the whole request head to arrive.
    head_timeout: Duration,
    /// Time allowed for the response to be taken.
    write_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    max_connections: usize,
}

impl Limits {
    const DEFAULT: Limits = Limits {
        max_head: 8 * 1024,
        head_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        max_connections: 32,
    };
}

/// Serves the status page, `/status` and `/metrics` on `listener` until the task is
/// dropped or aborted. Every request sees the latest value of `status`.
///
/// Errors stay inside a connection: a failed accept (such as running out of file
/// descriptors) is logged and retried after a pause.
pub async fn serve(listener: TcpListener, status: watch::Receiver<Arc<Status>>) {
    serve_with(listener, status, Limits::DEFAULT).await;
}

/// Renders the status page. Every string that comes from `status` is escaped.
pub fn render_page(status: &Status) -> String {
    render_page_at(status, unix_ms(SystemTime::now()))
}

/// Renders the metrics in Prometheus' text format 0.0.4.
pub fn render_metrics(status: &Status) -> String {
    openmetrics_to_prometheus(&render_openmetrics(Arc::new(status.clone())))
}

async fn serve_with(listener: TcpListener, status: watch::Receiver<Arc<Status>>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        // Take a slot before accepting, so that connections beyond the limit wait in
        // the kernel's backlog rather than in memory here.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return; // Only a closed semaphore fails, and this one is never closed.
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, typically: pause instead of spinning.
                warn!("status page: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let status = status.clone();
        tokio::spawn(async move {
            handle_connection(stream, &status, limits).await;
            drop(slot);
        });
    }
}

async fn handle_connection(
    mut stream: TcpStream,
    status: &watch::Receiver<Arc<Status>>,
    limits: Limits,
) {
    let head = timeout(limits.head_timeout, read_head(&mut stream, limits.max_head)).await;
    let (response, head_only) = match head {
        Err(_elapsed) => (Response::error(Code::RequestTimeout), false),
        Ok(Err(err)) => {
            debug!("status page: reading a request failed: {err}");
            return;
        }
        Ok(Ok(Head::Closed)) => return,
        Ok(Ok(Head::Truncated)) => (Response::error(Code::BadRequest), false),
        Ok(Ok(Head::TooLarge)) => (Response::error(Code::HeadTooLarge), false),
        Ok(Ok(Head::Complete(bytes))) => match parse_request(&bytes) {
            Ok(request) => {
                // Clone the Arc and let go of the channel at once: rendering must not
                // hold up the daemon's next update.
                let snapshot = Arc::clone(&status.borrow());
                (respond(&request, &snapshot), request.method == Method::Head)
            }
            Err(err) => (Response::error(err.code()), false),
        },
    };
    let bytes = response.encode(SystemTime::now(), head_only);
    let sent = timeout(limits.write_timeout, send_and_close(&mut stream, &bytes)).await;
    if let Ok(Err(err)) = sent {
        debug!("status page: sending a response failed: {err}");
    }
}

/// How reading a request head ended.
#[derive(Debug, PartialEq)]
enum Head {
    /// The bytes up to and including the empty line that ends the head.
    Complete(Vec<u8>),
    /// The client closed the connection without sending anything.
    Closed,
    /// The client closed the connection in the middle of the head.
    Truncated,
    /// The head did not end within the size limit.
    TooLarge,
}

async fn read_head(stream: &mut (impl AsyncRead + Unpin), max_head: usize) -> io::Result<Head> {
    let mut buf = vec![0u8; max_head];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            return Ok(Head::TooLarge);
        }
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(if filled == 0 {
                Head::Closed
            } else {
                Head::Truncated
            });
        }
        // The end marker may straddle two reads: look a little behind the new bytes.
        let from = filled.saturating_sub(2);
        filled += n;
        if let Some(end) = head_end(&buf[..filled], from) {
            buf.truncate(end);
            return Ok(Head::Complete(buf));
        }
    }
}

/// The length of the head in `bytes`: up to the first empty line, which ends with
/// CRLF or a bare LF (RFC 9112 lets servers accept either). `from` is where to start
/// looking.
fn head_end(bytes: &[u8], from: usize) -> Option<usize> {
    let tail = bytes.get(from..)?;
    tail.windows(2)
        .enumerate()
        .find_map(|(i, pair)| match pair {
            b"\n\n" => Some(i + 2),
            b"\n\r" if tail.get(i + 2) == Some(&b'\n') => Some(i + 3),
            _ => None,
        })
        .map(|end| from + end)
}

/// Writes the response, then reads and drops whatever the client still sends (a
/// body, say) for a moment before closing. Closing a socket with unread input makes
/// the kernel send a reset, which can destroy the response before the client reads it.
async fn send_and_close(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    response: &[u8],
) -> io::Result<()> {
    stream.write_all(response).await?;
    stream.shutdown().await?;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    let linger = tokio::time::sleep(LINGER);
    tokio::pin!(linger);
    while drained < LINGER_BYTES {
        tokio::select! {
            read = stream.read(&mut sink) => match read? {
                0 => break,
                n => drained += n,
            },
            () = &mut linger => break,
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    /// Any other well-formed method: answered with 405.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Page,
    Status,
    Metrics,
    Unknown,
}

/// A parsed request head: only what the server looks at.
#[derive(Debug, PartialEq)]
struct Request {
    method: Method,
    route: Route,
    /// The Accept header fields, joined with commas.
    accept: String,
}

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestError {
    /// The head does not follow HTTP/1.1's syntax.
    Malformed,
    /// A well-formed request line of an HTTP version other than 1.0 and 1.1.
    Version,
}

impl RequestError {
    fn code(self) -> Code {
        match self {
            RequestError::Malformed => Code::BadRequest,
            RequestError::Version => Code::VersionNotSupported,
        }
    }
}

/// Parses a request head (RFC 9112, section 2 and 3). Strict where sloppiness could
/// hide a mistake (one space between the parts, token characters in names, no line
/// folding, exactly one Host in HTTP/1.1), lenient where RFC 9112 allows (bare LF).
fn parse_request(head: &[u8]) -> Result<Request, RequestError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(RequestError::Malformed);
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(RequestError::Version);
        }
        _ => return Err(RequestError::Malformed),
    };
    let path = request_path(target).ok_or(RequestError::Malformed)?;

    let mut hosts = 0;
    let mut accept = String::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        // Names are tokens, which also rejects whitespace before the colon and a line
        // that starts with whitespace (obsolete line folding, which RFC 9112 lets a
        // server reject).
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(RequestError::Malformed);
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(RequestError::Malformed);
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(RequestError::Malformed);
        }
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"accept") {
            if !accept.is_empty() {
                accept.push(',');
            }
            accept.push_str(String::from_utf8_lossy(value).trim());
        }
    }
    if http11 && hosts != 1 {
        return Err(RequestError::Malformed);
    }

    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    let route = match path {
        b"/" => Route::Page,
        b"/status" => Route::Status,
        b"/metrics" => Route::Metrics,
        _ => Route::Unknown,
    };
    Ok(Request {
        method,
        route,
        accept,
    })
}

/// The path of a request target in origin form (`/status?x`) or absolute form
/// (`http://host/status`), without the query.
fn request_path(target: &[u8]) -> Option<&[u8]> {
    if !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return None;
    }
    let origin = if target.starts_with(b"/") {
        target
    } else {
        let scheme_end = target.windows(3).position(|w| w == b"://")?;
        let scheme = &target[..scheme_end];
        if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
            return None;
        }
        let rest = &target[scheme_end + 3..];
        match rest.iter().position(|&b| b == b'/' || b == b'?') {
            Some(i) if rest[i] == b'/' => &rest[i..],
            _ => b"/",
        }
    };
    let end = origin.iter().position(|&b| b == b'?' || b == b'#');
    Some(&origin[..end.unwrap_or(origin.len())])
}

/// A token character (RFC 9110, section 5.6.2): what method and header names are
/// made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn respond(request: &Request, status: &Arc<Status>) -> Response {
    match (request.route, request.method) {
        (Route::Unknown, _) => Response::error(Code::NotFound),
        (_, Method::Other) => Response::error(Code::MethodNotAllowed),
        (Route::Page, _) => Response::ok("text/html; charset=utf-8", render_page(status)),
        (Route::Status, _) => match serde_json::to_string(&**status) {
            Ok(json) => Response::ok("application/json", json),
            Err(err) => {
                warn!("status page: cannot serialize the status: {err}");
                Response::error(Code::Internal)
            }
        },
        (Route::Metrics, _) => {
            let openmetrics = render_openmetrics(Arc::clone(status));
            if prefers_openmetrics(&request.accept) {
                Response::ok(OPENMETRICS_TEXT, openmetrics)
            } else {
                Response::ok(PROMETHEUS_TEXT, openmetrics_to_prometheus(&openmetrics))
            }
        }
    }
}

/// Whether the client's Accept header ranks OpenMetrics above Prometheus' text
/// format. Prometheus asks for OpenMetrics first; curl, browsers and most other
/// scrapers get plain text, which they show rather than download.
fn prefers_openmetrics(accept: &str) -> bool {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut params = range.split(';');
        let media = params.next().unwrap_or_default().trim();
        let quality = params
            .filter_map(|param| param.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, value)| value.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            openmetrics = openmetrics.max(quality);
        } else if ["text/plain", "text/*", "*/*"]
            .iter()
            .any(|m| media.eq_ignore_ascii_case(m))
        {
            text = text.max(quality);
        }
    }
    openmetrics > 0.0 && openmetrics > text
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    HeadTooLarge,
    Internal,
    VersionNotSupported,
}

impl Code {
    fn number(self) -> u16 {
        match self {
            Code::Ok => 200,
            Code::BadRequest => 400,
            Code::NotFound => 404,
            Code::MethodNotAllowed => 405,
            Code::RequestTimeout => 408,
            Code::HeadTooLarge => 431,
            Code::Internal => 500,
            Code::VersionNotSupported => 505,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::BadRequest => "Bad Request",
            Code::NotFound => "Not Found",
            Code::MethodNotAllowed => "Method Not Allowed",
            Code::RequestTimeout => "Request Timeout",
            Code::HeadTooLarge => "Request Header Fields Too Large",
            Code::Internal => "Internal Server Error",
            Code::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

#[derive(Debug)]
struct Response {
    code: Code,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn ok(content_type: &'static str, body: String) -> Response {
        Response {
            code: Code::Ok,
            content_type,
            body,
        }
    }

    fn error(code: Code) -> Response {
        Response {
            code,
            content_type: TEXT_PLAIN,
            body: format!("{} {}\n", code.number(), code.reason().to_lowercase()),
        }
    }

    /// The response as sent; without the body for HEAD, which still gets the
    /// Content-Length a GET would.
    fn encode(&self, now: SystemTime, head_only: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
            self.code.number(),
            self.code.reason(),
            http_date(now),
            self.content_type,
            self.body.len(),
        );
        if self.code == Code::MethodNotAllowed {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        if self.content_type.starts_with("text/html") {
            // The page needs nothing from anywhere: no scripts, no requests, no frames.
            head.push_str(
                "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; \
                 img-src data:; frame-ancestors 'none'\r\n",
            );
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// An IMF-fixdate (RFC 9110, section 5.6.7), e.g. `Sun, 22 Nov 2026 04:30:00 GMT`.
fn http_date(t: SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(unix_ms(t) / 86_400_000 % 7) as usize];
    // rfc3339 gives 2026-11-22T04:30:00.123Z.
    let stamp = rfc3339(t);
    let (date, time) = stamp.split_once('T').unwrap_or((&stamp, ""));
    let mut ymd = date.split('-');
    let (year, month, day) = (
        ymd.next().unwrap_or_default(),
        ymd.next().unwrap_or_default(),
        ymd.next().unwrap_or_default(),
    );
    let month = month
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    let time = time.get(..8).unwrap_or("00:00:00");
    format!("{weekday}, {day} {month} {year} {time} GMT")
}

// ---------------------------------------------------------------------------------
// The status page

/// `s`, escaped for HTML text and attribute values.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

fn render_page_at(status: &Status, now_ms: u64) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail, and every Display used here only forwards.
    let _ = write_page(&mut out, status, now_ms);
    out
}

const STYLE: &str = "\
:root{--ok:#1a7f37;--late:#b35900;--bad:#cf222e;--idle:#6e7781;--blue:#0969da;\
--line:#d0d7de;--soft:#eaeef2;--bg:#f6f8fa;--text:#1f2328;--muted:#57606a}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--text);\
font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}\
header{background:#24292f;color:#fff;padding:14px 24px;display:flex;align-items:center;\
gap:14px;flex-wrap:wrap}\
header h1{margin:0;font-size:22px;font-weight:600}\
header .meta{margin-left:auto;color:#d0d7de;font-size:13px}\
.banner{padding:12px 24px;font-weight:700;font-size:15px}\
.banner.maintenance{background:repeating-linear-gradient(-45deg,#ffd33d 0 18px,#ffdf5d 18px 36px);\
color:#3b2300;border-bottom:3px solid #9a6700;font-size:17px}\
.banner.notice{background:#ddf4ff;color:#0a3069;border-bottom:1px solid #54aeff}\
main{max-width:1200px;margin:0 auto;padding:16px 24px;display:grid;\
grid-template-columns:repeat(auto-fit,minmax(min(480px,100%),1fr));gap:16px}\
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px;overflow-x:auto;\
min-width:0}\
section.wide{grid-column:1/-1}\
h2{margin:0 0 8px;font-size:12px;text-transform:uppercase;letter-spacing:.07em;\
color:var(--muted)}\
h3{margin:0;font-size:15px}\
table{width:100%;border-collapse:collapse}\
th,td{text-align:left;padding:4px 8px 4px 0;border-bottom:1px solid var(--soft);\
vertical-align:baseline}\
th{font-size:12px;font-weight:600;color:var(--muted)}\
tr:last-child td{border-bottom:0}\
td.num,th.num{text-align:right;padding-right:12px;font-variant-numeric:tabular-nums;\
white-space:nowrap}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}\
dt{color:var(--muted)}dd{margin:0;min-width:0;overflow-wrap:anywhere}\
.badge{display:inline-block;padding:1px 10px;border-radius:999px;font-size:12px;\
font-weight:700;text-transform:uppercase;letter-spacing:.05em;color:#fff;\
background:var(--idle)}\
header .badge{font-size:14px;padding:3px 14px}\
.b-active{background:var(--ok)}.b-standby{background:var(--blue)}\
.b-fault,.b-dead{background:var(--bad)}.b-starting{background:var(--idle)}\
.c-ok{color:var(--ok)}.c-late{color:var(--late)}.c-bad{color:var(--bad)}\
.c-idle{color:var(--muted)}\
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:6px;\
background:currentColor;vertical-align:baseline}\
.mono{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:13px}\
.muted{color:var(--muted)}\
.peer{border-top:1px solid var(--soft);padding:10px 0 4px}\
.peer:first-of-type{border-top:0;padding-top:0}\
.peer-head{display:flex;align-items:center;gap:10px;flex-wrap:wrap;margin-bottom:6px}\
.flag{font-size:12px;border:1px solid var(--line);border-radius:4px;padding:0 6px;\
color:var(--muted)}\
.flag.bad{border-color:var(--bad);color:var(--bad);font-weight:700}\
.sev{font-size:11px;font-weight:700;text-transform:uppercase}\
footer{max-width:1200px;margin:0 auto;padding:0 24px 20px;color:var(--muted);font-size:12px}\
a{color:var(--blue)}";

fn write_page(out: &mut String, s: &Status, now_ms: u64) -> fmt::Result {
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{node}: {state} \u{2014} failoverd</title><style>{STYLE}</style></head>\n<body>\n",
        node = Esc(&s.node),
        state = Esc(s.state.as_str()),
    )?;
    writeln!(
        out,
        "<header><h1>{node}</h1>{badge}<div class=\"meta\">cluster <b>{cluster}</b> \
         \u{b7} failoverd {version} \u{b7} pid {pid}</div></header>",
        node = Esc(&s.node),
        badge = StateBadge::role(&s.state),
        cluster = Esc(&s.cluster),
        version = Esc(&s.daemon_version),
        pid = s.pid,
    )?;
    if s.maintenance.on {
        out.push_str(
            "<div class=\"banner maintenance\">MAINTENANCE MODE \u{2014} automatic \
             transitions are frozen",
        );
        if !s.maintenance.set_by.is_empty() {
            out.push_str(" (set by ");
            write_joined(out, &s.maintenance.set_by)?;
            out.push(')');
        }
        out.push_str("</div>\n");
    }
    if s.releasing {
        out.push_str(
            "<div class=\"banner notice\">Releasing: the stop hook and the removal of \
             the VIPs are under way.</div>\n",
        );
    }
    if s.standby_requested {
        out.push_str(
            "<div class=\"banner notice\">Standby requested: this node keeps out of the \
             way while a peer can hold the VIPs.</div>\n",
        );
    }
    out.push_str("<main>\n");
    write_node(out, s, now_ms)?;
    write_vips(out, s)?;
    write_peers(out, s)?;
    write_gateways(out, s)?;
    write_interfaces(out, s)?;
    write_hooks(out, s)?;
    write_events(out, s)?;
    write!(
        out,
        "</main>\n<footer>Refreshes every {REFRESH_SECONDS} s \u{b7} \
         <a href=\"status\">status as JSON</a> \u{b7} <a href=\"metrics\">metrics</a> \
         \u{b7} configuration {config}</footer>\n</body></html>\n",
        config = Esc(&s.config),
    )
}

fn write_node(out: &mut String, s: &Status, now_ms: u64) -> fmt::Result {
    out.push_str("<section><h2>This node</h2><dl>");
    write!(
        out,
        "<dt>State</dt><dd>{badge} for {age}</dd>\
         <dt>Since</dt><dd class=\"mono\">{since}</dd>\
         <dt>Reason</dt><dd>{reason}</dd>",
        badge = StateBadge::role(&s.state),
        age = Age(now_ms.saturating_sub(s.since_unix_ms) as f64),
        since = Esc(&display_time(&s.since)),
        reason = Esc(&s.reason),
    )?;
    out.push_str("<dt>Health</dt><dd>");
    match s.health.failing {
        0 => out.push_str("<span class=\"c-ok\"><span class=\"dot\"></span>healthy</span>"),
        n => write!(
            out,
            "<span class=\"c-bad\"><span class=\"dot\"></span>{}</span>",
            FailingChecks(n)
        )?,
    }
    out.push_str("</dd><dt>Maintenance</dt><dd>");
    out.push_str(if s.maintenance.on {
        "<b class=\"c-late\">on</b>"
    } else {
        "off"
    });
    write!(
        out,
        "</dd><dt>Failback</dt><dd>{}",
        Esc(s.failback.as_str())
    )?;
    if s.failback == Failback::Auto {
        write!(out, " after {}", Age(s.failback_delay_ms as f64))?;
    }
    out.push_str("</dd><dt>Last takeover</dt><dd>");
    match s.last_takeover_ms {
        Some(ms) => write!(out, "took {}", Age(ms))?,
        None => out.push_str("<span class=\"muted\">none yet</span>"),
    }
    let short = shorten(&s.fingerprint, 16);
    writeln!(
        out,
        "</dd><dt>Fingerprint</dt><dd class=\"mono\" title=\"{full}\">{short}{more}</dd>\
         </dl></section>",
        full = Esc(&s.fingerprint),
        short = Esc(short),
        more = if short.len() < s.fingerprint.len() {
            "\u{2026}"
        } else {
            ""
        },
    )
}

fn write_vips(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section><h2>Virtual IPs</h2>");
    if s.vips.is_empty() {
        out.push_str("<p class=\"muted\">No VIPs are configured.</p></section>\n");
        return Ok(());
    }
    out.push_str(
        "<table><tr><th>Address</th><th>Interface</th><th>Label</th><th>Held by</th></tr>",
    );
    for vip in &s.vips {
        write!(
            out,
            "<tr><td class=\"mono\">{address}</td><td class=\"mono\">{interface}</td><td>{label}</td><td>",
            address = Esc(&vip.address),
            interface = Esc(&vip.interface),
            label = Esc(vip.label.as_deref().unwrap_or("")),
        )?;
        match (&vip.holder, vip.held_here) {
            (_, true) => out.push_str(
                "<span class=\"c-ok\"><span class=\"dot\"></span><b>this node</b></span>",
            ),
            (Some(holder), false) => write!(
                out,
                "<span class=\"c-ok\"><span class=\"dot\"></span></span>{}",
                Esc(holder)
            )?,
            (None, false) => {
                out.push_str("<span class=\"c-bad\"><span class=\"dot\"></span>nobody</span>")
            }
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table></section>\n");
    Ok(())
}

fn write_peers(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section class=\"wide\"><h2>Peers</h2>");
    if s.peers.is_empty() {
        out.push_str("<p class=\"muted\">No peers.</p>");
    }
    for peer in &s.peers {
        write!(
            out,
            "<div class=\"peer\"><div class=\"peer-head\"><h3>{name}</h3>{badge}\
             <span class=\"flag\">priority {priority}</span>",
            name = Esc(&peer.name),
            badge = StateBadge::peer(&peer.state),
            priority = peer.priority,
        )?;
        match peer.health_failing {
            0 => out.push_str("<span class=\"flag\">healthy</span>"),
            n => write!(out, "<span class=\"flag bad\">{}</span>", FailingChecks(n))?,
        }
        out.push_str(match peer.fingerprint_match {
            Some(true) => "<span class=\"flag\">configuration matches</span>",
            Some(false) => "<span class=\"flag bad\">CONFIGURATION DIFFERS</span>",
            None => "<span class=\"flag\">configuration not yet seen</span>",
        });
        if !peer.alive {
            out.push_str("<span class=\"flag bad\">not heard on any link</span>");
        }
        if peer.maintenance {
            out.push_str("<span class=\"flag bad\">maintenance</span>");
        }
        if peer.standby_requested {
            out.push_str("<span class=\"flag\">standby requested</span>");
        }
        out.push_str(
            "</div><table><tr><th>Link</th><th>Address</th><th>Heartbeats</th>\
             <th class=\"num\">Last heard</th><th class=\"num\">Received</th></tr>",
        );
        for link in &peer.links {
            write!(
                out,
                "<tr><td>{name}</td><td class=\"mono\">{address}</td>\
                 <td class=\"{class}\"><span class=\"dot\"></span>{state}</td>\
                 <td class=\"num\">{age}</td><td class=\"num\">{received}</td></tr>",
                name = Esc(&link.name),
                address = Esc(&link.address),
                class = link_class(&link.state),
                state = Esc(link.state.as_str()),
                age = link
                    .last_heartbeat_ms
                    .map_or_else(|| "never".to_string(), |ms| format!("{} ago", Age(ms))),
                received = link.received,
            )?;
        }
        out.push_str("</table></div>");
    }
    out.push_str("</section>\n");
    Ok(())
}

fn write_gateways(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section><h2>Gateways</h2>");
    if s.health.gateways.is_empty() {
        out.push_str("<p class=\"muted\">No gateways are checked.</p></section>\n");
        return Ok(());
    }
    out.push_str(
        "<table><tr><th>Gateway</th><th>Reachable</th><th class=\"num\">RTT</th>\
         <th class=\"num\">Failures in a row</th><th class=\"num\">Probes</th></tr>",
    );
    for gw in &s.health.gateways {
        let (class, word) = if gw.reachable {
            ("c-ok", "yes")
        } else {
            ("c-bad", "no")
        };
        write!(
            out,
            "<tr><td class=\"mono\">{address}</td><td class=\"{class}\"><span class=\"dot\"></span>{word}</td>\
             <td class=\"num\">{rtt}</td><td class=\"num\">{failures}</td><td class=\"num\">{probes}</td></tr>",
            address = Esc(&gw.address),
            rtt = gw
                .rtt_ms
                .map_or_else(|| "\u{2014}".to_string(), |ms| Age(ms).to_string()),
            failures = gw.consecutive_failures,
            probes = gw.probes,
        )?;
    }
    out.push_str("</table></section>\n");
    Ok(())
}

fn write_interfaces(out: &mut String, s: &Status) -> fmt::Result {
    if s.health.interfaces.is_empty() {
        return Ok(());
    }
    out.push_str("<section><h2>VIP interfaces</h2><table><tr><th>Interface</th><th>Link</th></tr>");
    for iface in &s.health.interfaces {
        let (class, word) = if iface.up {
            ("c-ok", "up")
        } else {
            ("c-bad", "down")
        };
        write!(
            out,
            "<tr><td class=\"mono\">{name}</td><td class=\"{class}\"><span class=\"dot\"></span>{word}</td></tr>",
            name = Esc(&iface.name),
        )?;
    }
    out.push_str("</table></section>\n");
    Ok(())
}

fn write_hooks(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section><h2>Last hook runs</h2>");
    if s.hooks.is_empty() {
        out.push_str("<p class=\"muted\">No hook has run yet.</p></section>\n");
        return Ok(());
    }
    out.push_str(
        "<table><tr><th>Hook</th><th>Started (UTC)</th><th class=\"num\">Took</th><th>Outcome</th></tr>",
    );
    for run in s.hooks.iter().take(HOOKS_SHOWN) {
        write!(
            out,
            "<tr><td>{hook}</td><td class=\"mono\" title=\"{started}\">{time}</td>\
             <td class=\"num\">{took}</td><td class=\"{class}\"><span class=\"dot\"></span>{outcome}</td></tr>",
            hook = Esc(&run.hook),
            started = Esc(&run.started),
            time = Esc(time_of_day(&run.started)),
            took = Age(run.duration_ms),
            class = if run.success { "c-ok" } else { "c-bad" },
            outcome = Esc(&run.outcome),
        )?;
    }
    out.push_str("</table></section>\n");
    Ok(())
}

fn write_events(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section class=\"wide\"><h2>Recent events</h2>");
    if s.events.is_empty() {
        out.push_str("<p class=\"muted\">No events yet.</p></section>\n");
        return Ok(());
    }
    out.push_str(
        "<table><tr><th>Time (UTC)</th><th>Severity</th><th>Kind</th><th>Message</th></tr>",
    );
    for event in s.events.iter().rev().take(EVENTS_SHOWN) {
        let class = match event.severity.known() {
            Some(Severity::Error) => "c-bad",
            Some(Severity::Warn) => "c-late",
            Some(Severity::Info) | None => "c-idle",
        };
        write!(
            out,
            "<tr><td class=\"mono\" title=\"{time}\">{short}</td><td class=\"sev {class}\">{severity}</td>\
             <td>{kind}</td><td>{message}</td></tr>",
            time = Esc(&event.time),
            short = Esc(time_of_day(&event.time)),
            severity = Esc(event.severity.as_str()),
            kind = Esc(event.kind.as_str()),
            message = Esc(&event.message),
        )?;
    }
    out.push_str("</table></section>\n");
    Ok(())
}

fn write_joined(out: &mut String, items: &[String]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write!(out, "{}", Esc(item))?;
    }
    Ok(())
}

/// A coloured badge for a node state; the colour comes from the known state, never
/// from the string itself.
struct StateBadge<'a> {
    word: &'a str,
    state: Option<PeerState>,
}

impl<'a> StateBadge<'a> {
    fn role(role: &'a Named<Role>) -> StateBadge<'a> {
        StateBadge {
            word: role.as_str(),
            state: role.known().map(PeerState::from),
        }
    }

    fn peer(state: &'a Named<PeerState>) -> StateBadge<'a> {
        StateBadge {
            word: state.as_str(),
            state: state.known(),
        }
    }
}

impl fmt::Display for StateBadge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.state {
            Some(PeerState::Active) => "b-active",
            Some(PeerState::Standby) => "b-standby",
            Some(PeerState::Fault) => "b-fault",
            Some(PeerState::Dead) => "b-dead",
            Some(PeerState::Starting | PeerState::Unknown | PeerState::Stopped) | None => {
                "b-starting"
            }
        };
        write!(f, "<span class=\"badge {class}\">{}</span>", Esc(self.word))
    }
}

/// `1 failing check`, `2 failing checks`.
struct FailingChecks(u8);

impl fmt::Display for FailingChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 failing check"),
            n => write!(f, "{n} failing checks"),
        }
    }
}

fn link_class(state: &Named<LinkState>) -> &'static str {
    match state.known() {
        Some(LinkState::Up) => "c-ok",
        Some(LinkState::Late) => "c-late",
        Some(LinkState::Down) => "c-bad",
        Some(LinkState::Unknown) | None => "c-idle",
    }
}

/// A duration given in milliseconds, in the largest units that keep it readable:
/// `0.42 ms`, `12 ms`, `1.5 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`.
struct Age(f64);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if !ms.is_finite() || ms < 0.0 {
            return f.write_str("?");
        }
        if ms < 1.0 {
            return write!(f, "{ms:.2} ms");
        }
        if ms < 1000.0 {
            return write!(f, "{ms:.0} ms");
        }
        if ms < 60_000.0 {
            return write!(f, "{:.1} s", ms / 1000.0);
        }
        let secs = (ms / 1000.0) as u64;
        match secs {
            ..3600 => write!(f, "{} min {} s", secs / 60, secs % 60),
            3600..86_400 => write!(f, "{} h {} min", secs / 3600, secs % 3600 / 60),
            _ => write!(f, "{} d {} h", secs / 86_400, secs % 86_400 / 3600),
        }
    }
}

/// `2026-11-22T04:30:00.123Z` as `2026-11-22 04:30:00 UTC`; anything else as is.
fn display_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(time)) if rfc3339.ends_with('Z') => format!("{date} {time} UTC"),
        _ => rfc3339.to_string(),
    }
}

/// `2026-11-22T04:30:00.123Z` as `04:30:00.123`; anything else as is.
fn time_of_day(rfc3339: &str) -> &str {
    rfc3339.get(11..23).unwrap_or(rfc3339)
}

/// The first `chars` characters of `s`.
fn shorten(s: &str, chars: usize) -> &str {
    s.char_indices().nth(chars).map_or(s, |(i, _)| &s[..i])
}

// ---------------------------------------------------------------------------------
// Metrics

/// The metrics of one status snapshot. A fresh registry per scrape holds only this
/// collector, so every sample is the snapshot's value and nothing outlives the scrape.
#[derive(Debug)]
struct StatusMetrics(Arc<Status>);

impl Collector for StatusMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), fmt::Error> {
        let s = &*self.0;
        family(
            &mut enc,
            "state",
            "1 for the state this node is in, 0 for the others.",
            None,
            STATES.map(|state| ([("state", state.as_str())], gauge(s.state == state))),
        )?;
        single(
            &mut enc,
            "maintenance",
            "1 while automatic transitions are frozen (set here or by a peer).",
            None,
            gauge(s.maintenance.on),
        )?;
        single(
            &mut enc,
            "health_failing_checks",
            "Failing health checks on this node; 0 is healthy.",
            None,
            ConstGauge::new(i64::from(s.health.failing)),
        )?;
        family(
            &mut enc,
            "transitions",
            "State transitions of this node, by target state and kind of reason.",
            None,
            s.counters.transitions.iter().map(|t| {
                (
                    [("to", t.to.as_str()), ("reason", t.reason.as_str())],
                    ConstCounter::new(t.count),
                )
            }),
        )?;
        single(
            &mut enc,
            "heartbeats_sent",
            "Heartbeats sent, over all links.",
            None,
            ConstCounter::new(s.counters.heartbeats_sent),
        )?;
        family(
            &mut enc,
            "heartbeats_received",
            "Valid heartbeats received, by link.",
            None,
            s.counters
                .heartbeats_received
                .iter()
                .map(|(link, n)| ([("link", link.as_str())], ConstCounter::new(*n))),
        )?;
        family(
            &mut enc,
            "heartbeats_rejected",
            "Datagrams dropped on the heartbeat port, by reason.",
            None,
            s.counters
                .rejected
                .iter()
                .map(|(reason, n)| ([("reason", reason.as_str())], ConstCounter::new(*n))),
        )?;
        family(
            &mut enc,
            "peer_up",
            "1 while the peer is heard on at least one link.",
            None,
            s.peers
                .iter()
                .map(|p| ([("peer", p.name.as_str())], gauge(p.alive))),
        )?;
        family(
            &mut enc,
            "peer_last_heartbeat",
            "Age of the last valid heartbeat from the peer on the link.",
            Some(&Unit::Seconds),
            s.peers.iter().flat_map(|p| {
                p.links.iter().filter_map(|link| {
                    let labels = [("peer", p.name.as_str()), ("link", link.name.as_str())];
                    Some((labels, seconds(link.last_heartbeat_ms?)?))
                })
            }),
        )?;
        let gateways = &s.health.gateways;
        family(
            &mut enc,
            "gateway_up",
            "1 while the gateway answers its probes.",
            None,
            gateways
                .iter()
                .map(|g| ([("gateway", g.address.as_str())], gauge(g.reachable))),
        )?;
        family(
            &mut enc,
            "gateway_rtt",
            "Round-trip time of the gateway's last answered probe.",
            Some(&Unit::Seconds),
            gateways
                .iter()
                .filter_map(|g| Some(([("gateway", g.address.as_str())], seconds(g.rtt_ms?)?))),
        )?;
        family(
            &mut enc,
            "gateway_consecutive_failures",
            "Probes of the gateway that failed in a row.",
            None,
            gateways.iter().map(|g| {
                (
                    [("gateway", g.address.as_str())],
                    ConstGauge::new(i64::from(g.consecutive_failures)),
                )
            }),
        )?;
        family(
            &mut enc,
            "interface_up",
            "1 while an interface that carries a VIP is up and running.",
            None,
            s.health
                .interfaces
                .iter()
                .map(|i| ([("interface", i.name.as_str())], gauge(i.up))),
        )?;
        let last_runs = last_run_per_hook(s);
        family(
            &mut enc,
            "hook_last_duration",
            "How long the hook's last run took.",
            Some(&Unit::Seconds),
            last_runs
                .iter()
                .filter_map(|run| Some(([("hook", run.hook.as_str())], seconds(run.duration_ms)?))),
        )?;
        family(
            &mut enc,
            "hook_last_success",
            "1 if the hook's last run succeeded, 0 if it failed.",
            None,
            last_runs
                .iter()
                .map(|run| ([("hook", run.hook.as_str())], gauge(run.success))),
        )?;
        family(
            &mut enc,
            "vip_held",
            "1 while the VIP is on this node's interface.",
            None,
            s.vips
                .iter()
                .map(|v| ([("vip", v.address.as_str())], gauge(v.held_here))),
        )?;
        if let Some(takeover) = s.last_takeover_ms.and_then(seconds) {
            single(
                &mut enc,
                "last_takeover",
                "How long the last takeover took, from the decision to every VIP in place.",
                Some(&Unit::Seconds),
                takeover,
            )?;
        }
        family(
            &mut enc,
            "info",
            "Always 1; the labels name this node, its cluster and the daemon's version.",
            None,
            [(
                [
                    ("node", s.node.as_str()),
                    ("cluster", s.cluster.as_str()),
                    ("version", s.daemon_version.as_str()),
                ],
                ConstGauge::new(1i64),
            )],
        )
    }
}

/// One metric family without labels.
fn single<M: EncodeMetric + TypedMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: M,
) -> Result<(), fmt::Error> {
    metric.encode(enc.encode_descriptor(name, help, unit, M::TYPE)?)
}

/// One metric family with a sample per label set, in the order given; nothing at all
/// when there are no samples.
fn family<L: EncodeLabelSet, M: EncodeMetric + TypedMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Result<(), fmt::Error> {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut metric = enc.encode_descriptor(name, help, unit, M::TYPE)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(on: bool) -> ConstGauge {
    ConstGauge::new(i64::from(on))
}

/// Milliseconds as a gauge in seconds; None for values no scraper should see.
fn seconds(ms: f64) -> Option<ConstGauge<f64>> {
    ms.is_finite().then(|| ConstGauge::new(ms / 1000.0))
}

/// The most recent run of each hook (`status.hooks` is newest first).
fn last_run_per_hook(s: &Status) -> Vec<&crate::status::HookRun> {
    let mut seen = HashSet::new();
    s.hooks
        .iter()
        .filter(|run| seen.insert(run.hook.as_str()))
        .collect()
}

/// The metrics in the OpenMetrics text format, as prometheus-client writes them.
fn render_openmetrics(status: Arc<Status>) -> String {
    let mut registry = Registry::with_prefix("failoverd");
    registry.register_collector(Box::new(StatusMetrics(status)));
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail, and the collector only fails on write errors.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Turns prometheus-client's OpenMetrics text into Prometheus' text format 0.0.4.
/// The two differ, for the metrics here, in three places: 0.0.4 has no `# EOF` and
/// no `# UNIT` lines, and a counter's HELP and TYPE lines carry the name its samples
/// have (`x_total`), not the family's (`x`). Label values are escaped alike.
fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let (name, rest) = line.strip_prefix(prefix)?.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {rest}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::machine::event::EventKind;
    use crate::status::{
        Counters, EventRecord, GatewayStatus, HealthStatus, HookRun, LinkStatus, Maintenance,
        PeerStatus, TransitionCount, VERSION, VipStatus,
    };

    /// 2026-11-22T04:30:00Z, a fixed "now" for the page.
    const NOW_MS: u64 = 1_795_321_800_000;
    const SCRIPT_MESSAGE: &str = "hook said <script>alert('x')</script> & \"quoted\"";

    fn event(seq: u64, severity: Severity, kind: EventKind, message: &str) -> EventRecord {
        let unix_ms = NOW_MS - 60_000 + seq * 1000;
        EventRecord {
            seq,
            time: rfc3339(UNIX_EPOCH + Duration::from_millis(unix_ms)),
            unix_ms,
            severity: severity.into(),
            kind: kind.into(),
            message: message.into(),
        }
    }

    fn sample_status() -> Status {
        Status {
            version: VERSION,
            cluster: "shop".into(),
            node: "alpha".into(),
            priority: 200,
            pid: 4242,
            daemon_version: "0.1.0".into(),
            config: "/etc/failoverd/failoverd.toml".into(),
            fingerprint: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into(),
            state: Role::Active.into(),
            since: "2026-11-22T04:20:00.000Z".into(),
            since_unix_ms: NOW_MS - 600_000,
            reason: "peer beta dead on all links".into(),
            releasing: false,
            maintenance: Maintenance::default(),
            standby_requested: false,
            failback: Failback::Auto.into(),
            failback_delay_ms: 30_000,
            preferred: Some("alpha".into()),
            health: HealthStatus {
                failing: 0,
                interfaces: Vec::new(),
                gateways: vec![GatewayStatus {
                    address: "198.18.0.1".into(),
                    reachable: true,
                    rtt_ms: Some(0.5),
                    consecutive_failures: 0,
                    probes: 1200,
                }],
            },
            vips: vec![
                VipStatus {
                    address: "198.18.0.10/24".into(),
                    interface: "eth0".into(),
                    label: Some("eth0:web".into()),
                    held_here: true,
                    holder: Some("alpha".into()),
                },
                VipStatus {
                    address: "198.18.0.11/24".into(),
                    interface: "eth0".into(),
                    label: None,
                    held_here: false,
                    holder: None,
                },
            ],
            peers: vec![PeerStatus {
                name: "beta".into(),
                state: PeerState::Standby.into(),
                alive: true,
                priority: 100,
                health_failing: 0,
                maintenance: false,
                standby_requested: false,
                fingerprint_match: Some(true),
                links: vec![
                    LinkStatus {
                        name: "crossover".into(),
                        address: "198.19.0.2".into(),
                        state: LinkState::Up.into(),
                        last_heartbeat_ms: Some(45.0),
                        received: 5000,
                    },
                    LinkStatus {
                        name: "lan".into(),
                        address: "198.18.0.3".into(),
                        state: LinkState::Down.into(),
                        last_heartbeat_ms: None,
                        received: 0,
                    },
                ],
            }],
            counters: Counters {
                heartbeats_sent: 12_000,
                heartbeats_received: vec![("crossover".into(), 5000), ("lan".into(), 0)],
                rejected: vec![("replayed or duplicate".into(), 2)],
                transitions: vec![
                    TransitionCount {
                        to: Role::Standby.into(),
                        reason: "peer_active".into(),
                        count: 1,
                    },
                    TransitionCount {
                        to: Role::Active.into(),
                        reason: "peer_dead".into(),
                        count: 2,
                    },
                ],
            },
            hooks: vec![
                HookRun {
                    hook: "start".into(),
                    started: "2026-11-22T04:20:00.100Z".into(),
                    duration_ms: 250.0,
                    outcome: "exited 0 after 250ms".into(),
                    success: true,
                },
                HookRun {
                    hook: "start".into(),
                    started: "2026-11-22T03:00:00.100Z".into(),
                    duration_ms: 30_000.0,
                    outcome: "timed out after 30s and was killed".into(),
                    success: false,
                },
            ],
            events: vec![
                event(
                    1,
                    Severity::Info,
                    EventKind::Transition,
                    "starting -> standby: peer beta is active",
                ),
                event(
                    2,
                    Severity::Error,
                    EventKind::Peer,
                    "peer beta dead: silent on all links",
                ),
                event(3, Severity::Warn, EventKind::Hook, SCRIPT_MESSAGE),
            ],
            last_takeover_ms: Some(180.0),
        }
    }

    // --- The page ---------------------------------------------------------------

    #[test]
    fn page_shows_the_cluster_at_a_glance() {
        let page = render_page_at(&sample_status(), NOW_MS);
        for needle in [
            "<h1>alpha</h1>",
            "<span class=\"badge b-active\">active</span>",
            "for 10 min 0 s",
            "peer beta dead on all links",
            "198.18.0.10/24",
            "198.18.0.11/24",
            "nobody",
            "<h3>beta</h3>",
            "<span class=\"badge b-standby\">standby</span>",
            "priority 100",
            "configuration matches",
            "crossover",
            "45 ms ago",
            "<td class=\"c-bad\"><span class=\"dot\"></span>dead</td>",
            "198.18.0.1",
            "0.50 ms",
            "exited 0 after 250ms",
            "took 180 ms",
            "http-equiv=\"refresh\" content=\"2\"",
        ] {
            assert!(page.contains(needle), "page lacks {needle:?}:\n{page}");
        }
        assert!(!page.contains("MAINTENANCE MODE"));
    }

    #[test]
    fn page_escapes_every_string_from_the_status() {
        let mut status = sample_status();
        status.peers[0].name = "\"><img src=x onerror=alert(1)>".into();
        status.maintenance = Maintenance {
            on: true,
            set_by: vec!["<b>mallory</b>".into()],
        };
        let page = render_page_at(&status, NOW_MS);
        assert!(page.contains(
            "hook said &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"
        ));
        assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("set by &lt;b&gt;mallory&lt;/b&gt;"));
        let lower = page.to_lowercase();
        assert!(!lower.contains("<script"), "{page}");
        assert!(!lower.contains("<img"), "{page}");
        assert!(!lower.contains("<b>mallory"), "{page}");
    }

    #[test]
    fn page_needs_nothing_from_elsewhere() {
        let page = render_page_at(&sample_status(), NOW_MS).to_lowercase();
        for outside in [
            "http://",
            "https://",
            "src=",
            "<script",
            "stylesheet",
            "@import",
        ] {
            assert!(!page.contains(outside), "page refers to {outside:?}");
        }
    }

    #[test]
    fn page_flags_trouble() {
        let mut status = sample_status();
        status.health.failing = 2;
        status.releasing = true;
        let peer = &mut status.peers[0];
        peer.health_failing = 1;
        peer.alive = false;
        peer.state = PeerState::Dead.into();
        peer.fingerprint_match = Some(false);
        let page = render_page_at(&status, NOW_MS);
        for needle in [
            "<span class=\"c-bad\"><span class=\"dot\"></span>2 failing checks</span>",
            "<span class=\"flag bad\">1 failing check</span>",
            "<span class=\"flag bad\">not heard on any link</span>",
            "<span class=\"flag bad\">CONFIGURATION DIFFERS</span>",
            "<span class=\"badge b-dead\">dead</span>",
            "Releasing:",
        ] {
            assert!(page.contains(needle), "page lacks {needle:?}");
        }
    }

    #[test]
    fn maintenance_is_a_banner() {
        let mut status = sample_status();
        status.maintenance = Maintenance {
            on: true,
            set_by: vec!["alpha".into(), "beta".into()],
        };
        let page = render_page_at(&status, NOW_MS);
        assert!(page.contains("MAINTENANCE MODE"));
        assert!(page.contains("(set by alpha, beta)"));
    }

    #[test]
    fn page_lists_the_last_twenty_events_newest_first() {
        let mut status = sample_status();
        status.events = (1..=30)
            .map(|seq| {
                event(
                    seq,
                    Severity::Info,
                    EventKind::Peer,
                    &format!("event number {seq}."),
                )
            })
            .collect();
        let page = render_page_at(&status, NOW_MS);
        let shown: Vec<u64> = (1..=30)
            .filter(|seq| page.contains(&format!("event number {seq}.")))
            .collect();
        assert_eq!(shown, (11..=30).collect::<Vec<_>>());
        let position = |seq: u64| page.find(&format!("event number {seq}.")).unwrap();
        assert!(position(30) < position(29) && position(12) < position(11));
    }

    #[test]
    fn odd_values_render_without_panicking() {
        let mut status = sample_status();
        status.since = "not a time".into();
        status.since_unix_ms = u64::MAX;
        status.fingerprint = "é".repeat(40);
        status.last_takeover_ms = Some(f64::NAN);
        status.hooks[0].started = "ü".into();
        status.hooks[0].duration_ms = f64::INFINITY;
        status.peers[0].links[0].last_heartbeat_ms = Some(-3.0);
        status.state = Named::Newer("something new".into());
        let page = render_page_at(&status, 0);
        assert!(page.contains("<span class=\"badge b-starting\">something new</span>"));
        assert!(page.contains(&"é".repeat(16)));
        let metrics = render_metrics(&status);
        assert!(!metrics.contains("last_takeover"));
        assert!(!metrics.contains("hook_last_duration"));
    }

    #[test]
    fn ages_read_naturally() {
        for (ms, text) in [
            (0.412, "0.41 ms"),
            (45.0, "45 ms"),
            (1500.0, "1.5 s"),
            (200_000.0, "3 min 20 s"),
            (7_500_000.0, "2 h 5 min"),
            (273_600_000.0, "3 d 4 h"),
            (-1.0, "?"),
            (f64::NAN, "?"),
        ] {
            assert_eq!(Age(ms).to_string(), text, "{ms} ms");
        }
    }

    // --- Metrics ----------------------------------------------------------------

    /// Checks `text` against Prometheus' text format 0.0.4, strictly: every sample
    /// follows its family's HELP and TYPE lines, families are contiguous, series are
    /// unique. Returns each series (`name{labels}` as written) with its value.
    fn parse_prometheus_text(text: &str) -> BTreeMap<String, f64> {
        fn is_name(s: &str) -> bool {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        }
        assert!(text.ends_with('\n'), "no final newline");
        let mut helped = HashSet::new();
        let mut typed = HashSet::new();
        let mut current: Option<String> = None;
        let mut finished = HashSet::new();
        let mut series = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP without text");
                assert!(is_name(name) && !help.is_empty(), "{line}");
                assert!(helped.insert(name.to_string()), "second HELP: {line}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE without type");
                assert!(is_name(name), "{line}");
                assert!(["counter", "gauge", "untyped"].contains(&kind), "{line}");
                assert!(helped.contains(name), "TYPE before HELP: {line}");
                assert!(typed.insert(name.to_string()), "second TYPE: {line}");
                if let Some(previous) = current.replace(name.to_string()) {
                    finished.insert(previous);
                }
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment: {line}");
            let name_end = line.find(['{', ' ']).expect("sample without value");
            let name = &line[..name_end];
            assert!(is_name(name), "bad name: {line}");
            assert_eq!(
                current.as_deref(),
                Some(name),
                "sample outside its family: {line}"
            );
            assert!(!finished.contains(name), "family split: {line}");
            let mut rest = &line[name_end..];
            if let Some(labels) = rest.strip_prefix('{') {
                let mut chars = labels.char_indices();
                let mut expect_name = true;
                let end = loop {
                    let (i, c) = chars.next().expect("unterminated labels");
                    match c {
                        '}' if expect_name => break i,
                        '"' => loop {
                            match chars.next().expect("unterminated value").1 {
                                '\\' => {
                                    let escaped = chars.next().expect("lone backslash").1;
                                    assert!(['\\', '"', 'n'].contains(&escaped), "{line}");
                                }
                                '"' => {
                                    expect_name = true;
                                    break;
                                }
                                '\n' => panic!("raw newline in {line}"),
                                _ => {}
                            }
                        },
                        ',' => {}
                        _ => {
                            let from = i;
                            let eq = labels[from..].find('=').expect("label without value");
                            let label = &labels[from..from + eq];
                            assert!(is_name(label) && !label.contains(':'), "{line}");
                            while chars.next().expect("label").0 < from + eq {}
                            expect_name = false;
                        }
                    }
                };
                rest = &labels[end + 1..];
            }
            let value = rest.strip_prefix(' ').expect("no space before the value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
            };
            let key = line[..line.len() - rest.len()].to_string();
            assert!(
                series.insert(key, value).is_none(),
                "duplicate series: {line}"
            );
        }
        series
    }

    #[test]
    fn metrics_parse_as_prometheus_text_and_hold_the_snapshot() {
        let text = render_metrics(&sample_status());
        let series = parse_prometheus_text(&text);
        let lines: HashSet<&str> = text.lines().collect();
        for line in [
            "failoverd_state{state=\"active\"} 1",
            "failoverd_state{state=\"standby\"} 0",
            "failoverd_state{state=\"starting\"} 0",
            "failoverd_state{state=\"fault\"} 0",
            "failoverd_maintenance 0",
            "failoverd_health_failing_checks 0",
            "# TYPE failoverd_transitions_total counter",
            "failoverd_transitions_total{to=\"active\",reason=\"peer_dead\"} 2",
            "failoverd_heartbeats_sent_total 12000",
            "failoverd_heartbeats_received_total{link=\"crossover\"} 5000",
            "failoverd_heartbeats_rejected_total{reason=\"replayed or duplicate\"} 2",
            "failoverd_peer_up{peer=\"beta\"} 1",
            "failoverd_gateway_up{gateway=\"198.18.0.1\"} 1",
            "failoverd_gateway_consecutive_failures{gateway=\"198.18.0.1\"} 0",
            "failoverd_hook_last_success{hook=\"start\"} 1",
            "failoverd_vip_held{vip=\"198.18.0.10/24\"} 1",
            "failoverd_vip_held{vip=\"198.18.0.11/24\"} 0",
            "failoverd_info{node=\"alpha\",cluster=\"shop\",version=\"0.1.0\"} 1",
        ] {
            assert!(lines.contains(line), "metrics lack {line:?}:\n{text}");
        }
        let value = |key: &str| series.get(key).copied().unwrap_or_else(|| panic!("{key}"));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(
            value("failoverd_peer_last_heartbeat_seconds{peer=\"beta\",link=\"crossover\"}"),
            0.045
        ));
        assert!(close(
            value("failoverd_gateway_rtt_seconds{gateway=\"198.18.0.1\"}"),
            0.0005
        ));
        assert!(close(
            value("failoverd_hook_last_duration_seconds{hook=\"start\"}"),
            0.25
        ));
        assert!(close(value("failoverd_last_takeover_seconds"), 0.18));
        // A link never heard has no age, and only the newest run of a hook counts.
        assert!(!text.contains("heartbeat_seconds{peer=\"beta\",link=\"lan\"}"));
        assert_eq!(text.matches("failoverd_hook_last_success{").count(), 1);
        // Every family says what it is.
        let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(
            families,
            text.lines().filter(|l| l.starts_with("# HELP ")).count()
        );
        assert_eq!(families, 17);
    }

    #[test]
    fn openmetrics_is_what_the_crate_writes() {
        let text = render_openmetrics(Arc::new(sample_status()));
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("# TYPE failoverd_heartbeats_sent counter\n"));
        assert!(text.contains("\nfailoverd_heartbeats_sent_total 12000\n"));
        assert!(text.contains("# UNIT failoverd_gateway_rtt_seconds seconds\n"));
        assert_eq!(
            render_metrics(&sample_status()),
            openmetrics_to_prometheus(&text)
        );
    }

    #[test]
    fn metric_label_values_are_escaped() {
        let mut status = sample_status();
        status.health.gateways[0].address = "a\"b\\c\nd".into();
        let text = render_metrics(&status);
        parse_prometheus_text(&text);
        assert!(text.contains("failoverd_gateway_up{gateway=\"a\\\"b\\\\c\\nd\"} 1"));
    }

    #[test]
    fn metrics_of_an_empty_status_parse() {
        let mut status = sample_status();
        status.vips.clear();
        status.peers.clear();
        status.hooks.clear();
        status.health.gateways.clear();
        status.counters = Counters::default();
        status.last_takeover_ms = None;
        let series = parse_prometheus_text(&render_metrics(&status));
        assert!(series.contains_key("failoverd_heartbeats_sent_total"));
        assert!(!series.keys().any(|k| k.starts_with("failoverd_peer_up")));
    }

    #[test]
    fn accept_header_picks_the_format() {
        for (accept, openmetrics) in [
            ("", false),
            ("*/*", false),
            ("text/plain", false),
            ("application/openmetrics-text", true),
            (
                "application/openmetrics-text;version=1.0.0;q=0.5,\
                 application/openmetrics-text;version=0.0.1;q=0.4,\
                 text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                true,
            ),
            (
                "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5",
                false,
            ),
            ("application/openmetrics-text;q=0", false),
            ("application/openmetrics-text;q=banana", true),
        ] {
            assert_eq!(prefers_openmetrics(accept), openmetrics, "{accept:?}");
        }
    }

    // --- Requests ---------------------------------------------------------------

    #[test]
    fn request_heads_parse_strictly() {
        use RequestError::{Malformed, Version};
        let ok = |method, route, accept: &str| {
            Ok(Request {
                method,
                route,
                accept: accept.into(),
            })
        };
        let cases: &[(&[u8], Result<Request, RequestError>)] = &[
            (
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                ok(Method::Get, Route::Page, ""),
            ),
            (
                b"GET /status HTTP/1.0\n\n",
                ok(Method::Get, Route::Status, ""),
            ),
            (
                b"HEAD /metrics?x=1 HTTP/1.1\r\nhost: a\r\nAccept: a/b\r\naccept: c/d \r\n\r\n",
                ok(Method::Head, Route::Metrics, "a/b,c/d"),
            ),
            (
                b"GET http://a:9469/status HTTP/1.1\r\nHost: a\r\n\r\n",
                ok(Method::Get, Route::Status, ""),
            ),
            (
                b"GET http://a HTTP/1.0\r\n\r\n",
                ok(Method::Get, Route::Page, ""),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\n\r\n",
                ok(Method::Other, Route::Page, ""),
            ),
            (
                b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
                ok(Method::Get, Route::Unknown, ""),
            ),
            (
                b"get / HTTP/1.0\r\n\r\n",
                ok(Method::Other, Route::Page, ""),
            ),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(Version)),
            (b"GET / HTTP/1.1\r\n\r\n", Err(Malformed)),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                Err(Malformed),
            ),
            (b"GET /\r\n\r\n", Err(Malformed)),
            (b"GET  / HTTP/1.0\r\n\r\n", Err(Malformed)),
            (b"GET / HTTP/1.0 \r\n\r\n", Err(Malformed)),
            (b"GET / http/1.0\r\n\r\n", Err(Malformed)),
            (b"G(T / HTTP/1.0\r\n\r\n", Err(Malformed)),
            (b"GET status HTTP/1.0\r\n\r\n", Err(Malformed)),
            (b"GET ftp://a/ HTTP/1.0\r\n\r\n", Err(Malformed)),
            (b"GET /\xff HTTP/1.0\r\n\r\n", Err(Malformed)),
            (b"GET / HTTP/1.0\r\nNo colon\r\n\r\n", Err(Malformed)),
            (b"GET / HTTP/1.0\r\nBad name: x\r\n\r\n", Err(Malformed)),
            (b"GET / HTTP/1.0\r\nA: b\r\n folded\r\n\r\n", Err(Malformed)),
            (b"GET / HTTP/1.0\r\nA: b\0c\r\n\r\n", Err(Malformed)),
            (b"\r\n\r\n", Err(Malformed)),
            (b"", Err(Malformed)),
        ];
        for (head, expected) in cases {
            assert_eq!(
                &parse_request(head),
                expected,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn the_head_ends_at_the_first_empty_line() {
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r\nbody", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\nbody", 0), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\nbody", 0), Some(17));
        assert_eq!(head_end(b"GET / HTTP/1.0\r\nA: b\r\n", 0), None);
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r", 0), None);
        assert_eq!(head_end(b"ab\r\n\r\n", 2), Some(6));
        assert_eq!(head_end(b"ab", 5), None);
    }

    #[tokio::test]
    async fn reading_a_head_finds_its_end_across_reads() {
        let mut input: &[u8] = b"GET / HTTP/1.0\r\n\r\nrest";
        let head = read_head(&mut input, 64).await.unwrap();
        assert_eq!(head, Head::Complete(b"GET / HTTP/1.0\r\n\r\n".to_vec()));
        // The marker split over reads, one byte at a time.
        let (mut client, mut server) = tokio::io::duplex(1);
        let writer = tokio::spawn(async move {
            client.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
            client
        });
        let head = read_head(&mut server, 64).await.unwrap();
        assert_eq!(head, Head::Complete(b"GET / HTTP/1.0\r\n\r\n".to_vec()));
        drop(writer.await.unwrap());
        for (input, expected) in [
            (&b""[..], Head::Closed),
            (b"GET / HTTP/1.0\r\n", Head::Truncated),
            (&[b'a'; 100][..], Head::TooLarge),
        ] {
            let mut input = input;
            assert_eq!(read_head(&mut input, 64).await.unwrap(), expected);
        }
    }

    #[test]
    fn random_heads_never_panic() {
        // xorshift64*, seeded: the same bytes on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let valid = b"GET /metrics?x HTTP/1.1\r\nHost: a\r\nAccept: text/plain;q=0.5\r\n\r\n";
        let alphabet = b"GET /HTP1.0\r\n: ;=,?\x00\xff";
        for _ in 0..20_000 {
            let mut head = valid.to_vec();
            for _ in 0..next() % 6 {
                let at = (next() % head.len() as u64) as usize;
                match next() % 3 {
                    0 => head[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                    1 => head.truncate(at),
                    _ => head.insert(at, next() as u8),
                }
                if head.is_empty() {
                    break;
                }
            }
            let _ = head_end(&head, (next() % 80) as usize);
            if let Ok(request) = parse_request(&head) {
                let _ = prefers_openmetrics(&request.accept);
            }
        }
    }

    #[test]
    fn dates_follow_rfc_9110() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_321_800);
        assert_eq!(http_date(t), "Sun, 22 Nov 2026 04:30:00 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    // --- The server -------------------------------------------------------------

    struct Reply {
        code: u16,
        headers: String,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim())
            })
        }
    }

    /// Sends `request`, closes the sending side and reads the reply to the end.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> Option<Reply> {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.ok()?;
        let end = head_end(&bytes, 0)?;
        let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
        let (status_line, headers) = head.split_once("\r\n").unwrap();
        let code = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let reply = Reply {
            code,
            headers: headers.to_string(),
            body: bytes[end..].to_vec(),
        };
        assert_eq!(reply.header("connection"), Some("close"));
        assert!(reply.header("date").is_some_and(|d| d.ends_with(" GMT")));
        Some(reply)
    }

    async fn get(addr: SocketAddr, path: &str) -> Reply {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        exchange(addr, request.as_bytes()).await.expect("no reply")
    }

    async fn start(limits: Limits) -> (SocketAddr, watch::Sender<Arc<Status>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(Arc::new(sample_status()));
        tokio::spawn(serve_with(listener, rx, limits));
        (addr, tx)
    }

    #[tokio::test]
    async fn serves_the_routes_and_survives_bad_requests() {
        let (addr, tx) = start(Limits::DEFAULT).await;
        let check = async {
            let page = get(addr, "/").await;
            assert_eq!(page.code, 200);
            assert_eq!(
                page.header("content-type"),
                Some("text/html; charset=utf-8")
            );
            assert_eq!(
                page.header("content-length"),
                Some(page.body.len().to_string().as_str())
            );
            assert!(
                String::from_utf8(page.body)
                    .unwrap()
                    .contains("<h1>alpha</h1>")
            );

            let json = get(addr, "/status").await;
            assert_eq!(json.code, 200);
            assert_eq!(json.header("content-type"), Some("application/json"));
            let status: Status = serde_json::from_slice(&json.body).unwrap();
            assert_eq!(status, sample_status());

            let metrics = get(addr, "/metrics").await;
            assert_eq!(metrics.code, 200);
            assert_eq!(metrics.header("content-type"), Some(PROMETHEUS_TEXT));
            let text = String::from_utf8(metrics.body).unwrap();
            parse_prometheus_text(&text);
            assert!(text.contains("\nfailoverd_state{state=\"active\"} 1\n"));

            let openmetrics = exchange(
                addr,
                b"GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text;\
                  version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3\r\n\r\n",
            )
            .await
            .unwrap();
            assert_eq!(openmetrics.header("content-type"), Some(OPENMETRICS_TEXT));
            assert!(openmetrics.body.ends_with(b"# EOF\n"));

            let head = exchange(addr, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
                .await
                .unwrap();
            assert_eq!(head.code, 200);
            assert!(head.body.is_empty());
            assert!(head.header("content-length").is_some_and(|n| n != "0"));

            assert_eq!(get(addr, "/nope").await.code, 404);
            let post = exchange(
                addr,
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            )
            .await
            .unwrap();
            assert_eq!(post.code, 405);
            assert_eq!(post.header("allow"), Some("GET, HEAD"));

            for garbage in [
                &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
                b"\0\0\0\0\r\n\r\n",
                b"GET /\r\n\r\n",
                b"GET / HTTP/1.1\r\n\r\n",
                b"\xff\xfe\r\n\r\n\r\n",
            ] {
                let reply = exchange(addr, garbage).await;
                assert!(reply.is_none_or(|r| r.code == 400), "{garbage:?}");
            }
            let version = exchange(addr, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n").await;
            assert_eq!(version.unwrap().code, 505);

            let mut long = b"GET / HTTP/1.1\r\nHost: a\r\nX-Fill: ".to_vec();
            long.resize(16 * 1024, b'a');
            let reply = exchange(addr, &long)
                .await
                .expect("no reply to a long head");
            assert!([400, 431].contains(&reply.code), "{}", reply.code);

            // Still serving, and serving the latest status.
            let mut newer = sample_status();
            newer.state = Role::Standby.into();
            tx.send(Arc::new(newer.clone())).unwrap();
            let json = get(addr, "/status").await;
            assert_eq!(serde_json::from_slice::<Status>(&json.body).unwrap(), newer);
            assert_eq!(get(addr, "/").await.code, 200);
        };
        timeout(Duration::from_secs(30), check)
            .await
            .expect("the server took too long");
    }

    #[tokio::test]
    async fn idle_clients_time_out_and_free_their_slot() {
        let head_timeout = Duration::from_millis(300);
        let limits = Limits {
            head_timeout,
            max_connections: 2,
            ..Limits::DEFAULT
        };
        let (addr, _tx) = start(limits).await;
        let check = async {
            let started = tokio::time::Instant::now();
            let mut idle = Vec::new();
            for _ in 0..2 {
                idle.push(TcpStream::connect(addr).await.unwrap());
            }
            // Both slots are taken, so this one waits until an idle client times out.
            let page = get(addr, "/").await;
            assert_eq!(page.code, 200);
            assert!(started.elapsed() >= head_timeout, "{:?}", started.elapsed());
            for mut stream in idle {
                let mut bytes = Vec::new();
                stream.read_to_end(&mut bytes).await.unwrap();
                assert!(bytes.starts_with(b"HTTP/1.1 408 "), "{bytes:?}");
            }
        };
        timeout(Duration::from_secs(20), check)
            .await
            .expect("the server took too long");
    }
}
