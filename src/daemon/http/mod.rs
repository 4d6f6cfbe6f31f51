//! The status page and metrics endpoint: a small HTTP/1.1 server that shows the
//! [`Status`] the daemon publishes on a watch channel as an HTML page (`/`), as the
//! JSON document of `failoverd status --json` (`/status`) and as Prometheus metrics
//! (`/metrics`). It reads the status and nothing else: it changes nothing and
//! decides nothing. The page and the metrics are [`crate::view`]s; this module
//! accepts connections, routes requests and sends the responses.
//!
//! Why a thread: the loop's thread sends the heartbeats, and a flood of requests
//! must not take its time. So the server runs on the `failoverd-http` thread, in a
//! tokio runtime of its own, at a lower scheduling priority (nice 10), and reads the
//! status from the watch channel; when the CPU is short, the heartbeats win. What a
//! client may cost is bounded further:
//! - connections: at most 32 open, 8 from one address, new ones at most 100 a second
//!   and 10 from one address (`admission.rs`); a connection over a limit is closed at
//!   once, so one flooding address leaves room for the others; and when every slot
//!   is taken, the connection that has waited longest (a second or more) for its
//!   request head is closed to let a new one in;
//! - time: the request head must arrive within 3 s and the response be taken within
//!   5 s, so a slow client is shed;
//! - size: a head of at most 8 KiB, one request per connection (`Connection: close`);
//! - host: a request must name the address it came in on, `localhost` on a loopback
//!   address, or a name of `[http] hosts` (`host.rs`), against DNS rebinding.
//!
//! Parsing the head is pure code that never panics (`request.rs`).

mod admission;
mod host;
mod request;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::timeout;
use tracing::{debug, warn};

use crate::status::{Status, rfc3339, unix_ms};
use crate::view::html::render_page;
use crate::view::metrics::{Format, Served, render_served_metrics};
use admission::{Admission, Refusal};
use request::{Method, Request, Route, head_end, parse_request, prefers_openmetrics};

/// How long a connection stays open after its response to take in what the client
/// still sends, and how much of it is read at most.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;
/// The server thread's nice value: above the loop's 0, so that under a flood the
/// scheduler gives the heartbeats the CPU first.
const NICE: libc::c_int = 10;
/// How often at most the log says what the server turned away: once a minute is
/// enough to notice a flood, and a flood cannot fill the journal.
const REPORT_EVERY: Duration = Duration::from_secs(60);

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// What one client, and all of them, may cost the server.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Longest request head (request line and headers) read.
    max_head: usize,
    /// Time allowed for the whole request head to arrive. A request arrives in one
    /// segment; 3 s leave room for its retransmission after the first timeout (1 s),
    /// and cut a client that sends a byte a second long before it fills a slot for
    /// good.
    head_timeout: Duration,
    /// Time allowed for the response to be taken.
    write_timeout: Duration,
    /// When the server is full, a connection still waiting for its head after this
    /// long is closed to make room for a new one. A request arrives in one segment
    /// at once; one that is a second late is most likely a slow client's, and
    /// closing it lets the monitoring in while a crowd of them from several
    /// addresses holds every slot.
    evict_after: Duration,
    /// Connections open and new ones per second, over all clients and per address.
    admission: admission::Limits,
}

impl Limits {
    const DEFAULT: Limits = Limits {
        max_head: 8 * 1024,
        head_timeout: Duration::from_secs(3),
        write_timeout: Duration::from_secs(5),
        evict_after: Duration::from_secs(1),
        admission: admission::Limits::DEFAULT,
    };
}

/// Starts the server on a thread of its own (see the module docs); it serves on
/// `listener` until the sender of `status` is dropped. Every request sees the latest
/// value of `status`; `hosts` are the names of `[http] hosts`.
pub fn spawn(
    listener: TcpListener,
    status: watch::Receiver<Arc<Status>>,
    hosts: Vec<String>,
) -> io::Result<thread::JoinHandle<()>> {
    // The listener moves to the server's runtime; `into_std` leaves this one's.
    let listener = listener.into_std()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    thread::Builder::new()
        .name("failoverd-http".to_string())
        .spawn(move || {
            lower_priority();
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve_with(listener, status, hosts, Limits::DEFAULT).await,
                    Err(err) => warn!("status page: cannot listen: {err}"),
                }
            });
        })
}

/// Renices the calling thread (Linux schedules threads, and nice applies to each).
fn lower_priority() {
    // SAFETY: gettid has no preconditions; setpriority only reads its arguments.
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE)
    };
    if result != 0 {
        debug!(
            "status page: cannot lower the thread's priority: {}",
            io::Error::last_os_error()
        );
    }
}

/// What the server counts of itself; read for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    busy: AtomicU64,
    rate: AtomicU64,
    host: AtomicU64,
    slow: AtomicU64,
}

impl Counters {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn served(&self) -> Served {
        Served {
            busy: self.busy.load(Ordering::Relaxed),
            rate: self.rate.load(Ordering::Relaxed),
            host: self.host.load(Ordering::Relaxed),
            slow: self.slow.load(Ordering::Relaxed),
        }
    }
}

/// What the log last said about turned-away connections, and when.
#[derive(Debug, Default)]
struct Report {
    at: Option<Instant>,
    told: Served,
}

impl Report {
    /// Logs what was turned away since the last report, at most every
    /// [`REPORT_EVERY`].
    fn log_news(&mut self, now_served: &Served, now: Instant) {
        if *now_served == self.told
            || self
                .at
                .is_some_and(|at| now.saturating_duration_since(at) < REPORT_EVERY)
        {
            return;
        }
        let since = |now: u64, then: u64| now.saturating_sub(then);
        warn!(
            "status page: turned away {} connections for too many open, {} for coming \
             too fast, {} requests for another host and {} slow clients since the last \
             report (failoverd_http_refused_total)",
            since(now_served.busy, self.told.busy),
            since(now_served.rate, self.told.rate),
            since(now_served.host, self.told.host),
            since(now_served.slow, self.told.slow),
        );
        self.at = Some(now);
        self.told = *now_served;
    }
}

/// What every connection shares.
struct Shared {
    status: watch::Receiver<Arc<Status>>,
    hosts: Vec<String>,
    limits: Limits,
    admission: Mutex<Admission>,
    counters: Counters,
    waiting: Mutex<Waiting>,
}

/// The connections still waiting for their request head, oldest first, each with
/// the means to close it.
#[derive(Debug, Default)]
struct Waiting {
    next: u64,
    heads: BTreeMap<u64, (Instant, oneshot::Sender<()>)>,
}

impl Waiting {
    /// Closes the oldest connection waiting since before `waited_since`, if any.
    fn evict(&mut self, waited_since: Instant) -> bool {
        match self.heads.first_key_value() {
            Some((_, (since, _))) if *since <= waited_since => {}
            _ => return false,
        }
        // The receiving task sees the sender dropped, and ends.
        self.heads.pop_first().is_some()
    }
}

/// An admitted connection; dropping it (also when its task ends early) frees its slot.
struct Slot {
    shared: Arc<Shared>,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared
            .admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(self.peer);
    }
}

/// Accepts connections until the sender of `status` is dropped.
///
/// Errors stay inside a connection: a failed accept (such as running out of file
/// descriptors) is logged and retried after a pause.
async fn serve_with(
    listener: TcpListener,
    status: watch::Receiver<Arc<Status>>,
    hosts: Vec<String>,
    limits: Limits,
) {
    let mut updates = status.clone();
    let shared = Arc::new(Shared {
        status,
        hosts,
        limits,
        admission: Mutex::new(Admission::new(limits.admission, Instant::now())),
        counters: Counters::default(),
        waiting: Mutex::new(Waiting::default()),
    });
    let mut report = Report::default();
    loop {
        report.log_news(&shared.counters.served(), Instant::now());
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            changed = updates.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return, // The daemon is gone.
            },
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, typically: pause instead of spinning.
                warn!("status page: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let now = Instant::now();
        let admitted = {
            let mut admission = shared
                .admission
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match admission.admit(now, peer.ip()) {
                Err(Refusal::Full) if evict(&shared, now) => {
                    admission.admit_in_place(now, peer.ip())
                }
                admitted => admitted,
            }
        };
        if let Err(refusal) = admitted {
            let counters = &shared.counters;
            Counters::count(match refusal {
                Refusal::Busy | Refusal::Full => &counters.busy,
                Refusal::Rate => &counters.rate,
            });
            debug!(%peer, ?refusal, "status page: connection closed at once");
            drop(stream);
            continue;
        }
        let slot = Slot {
            shared: Arc::clone(&shared),
            peer: peer.ip(),
        };
        tokio::spawn(async move {
            handle_connection(stream, &slot.shared).await;
            drop(slot);
        });
    }
}

/// Closes the connection that has waited longest for its head, if it has waited
/// `evict_after` or longer, and counts it slow.
fn evict(shared: &Shared, now: Instant) -> bool {
    let Some(waited_since) = now.checked_sub(shared.limits.evict_after) else {
        return false;
    };
    let evicted = shared
        .waiting
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .evict(waited_since);
    if evicted {
        Counters::count(&shared.counters.slow);
    }
    evicted
}

/// Reads the request head within the head timeout, unless the server closes the
/// connection first to make room ([`evict`]); None then.
async fn read_head_or_make_room(
    stream: &mut TcpStream,
    shared: &Shared,
) -> Option<Result<io::Result<Head>, tokio::time::error::Elapsed>> {
    let (close, closed) = oneshot::channel();
    let id = {
        let mut waiting = shared
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let id = waiting.next;
        waiting.next += 1;
        waiting.heads.insert(id, (Instant::now(), close));
        id
    };
    let limits = shared.limits;
    let head = timeout(limits.head_timeout, read_head(stream, limits.max_head));
    let read = tokio::select! {
        head = head => Some(head),
        _ = closed => None,
    };
    let mut waiting = shared
        .waiting
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    waiting.heads.remove(&id);
    read
}

async fn handle_connection(mut stream: TcpStream, shared: &Shared) {
    let limits = shared.limits;
    let counters = &shared.counters;
    let Some(head) = read_head_or_make_room(&mut stream, shared).await else {
        return; // Closed to make room; counted by `evict`.
    };
    let (response, head_only) = match head {
        Err(_elapsed) => {
            Counters::count(&counters.slow);
            (Response::error(Code::RequestTimeout), false)
        }
        Ok(Err(err)) => {
            debug!("status page: reading a request failed: {err}");
            return;
        }
        Ok(Ok(Head::Closed)) => return,
        Ok(Ok(Head::Truncated)) => (Response::error(Code::BadRequest), false),
        Ok(Ok(Head::TooLarge)) => (Response::error(Code::HeadTooLarge), false),
        Ok(Ok(Head::Complete(bytes))) => match parse_request(&bytes) {
            Ok(request) => {
                let local = stream.local_addr().map(|a| a.ip());
                let allowed = local.is_ok_and(|local| {
                    host::allowed(request.host.as_deref(), local, &shared.hosts)
                });
                if allowed {
                    // Clone the Arc and let go of the channel at once: rendering must
                    // not hold up the daemon's next update.
                    let snapshot = Arc::clone(&shared.status.borrow());
                    let served = counters.served();
                    (
                        respond(&request, &snapshot, &served),
                        request.method == Method::Head,
                    )
                } else {
                    Counters::count(&counters.host);
                    (Response::error(Code::Misdirected), false)
                }
            }
            Err(err) => (Response::error(err.code()), false),
        },
    };
    let bytes = response.encode(SystemTime::now(), head_only);
    match timeout(limits.write_timeout, send_and_close(&mut stream, &bytes)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => debug!("status page: sending a response failed: {err}"),
        Err(_elapsed) => Counters::count(&counters.slow),
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

fn respond(request: &Request, status: &Arc<Status>, served: &Served) -> Response {
    match (request.route, request.method) {
        (Route::Unknown, _) => Response::error(Code::NotFound),
        (_, Method::Other) => Response::error(Code::MethodNotAllowed),
        (Route::Page, _) => Response::ok(
            "text/html; charset=utf-8",
            render_page(status, SystemTime::now()),
        ),
        (Route::Status, _) => match serde_json::to_string(&**status) {
            Ok(json) => Response::ok("application/json", json),
            Err(err) => {
                warn!("status page: cannot serialize the status: {err}");
                Response::error(Code::Internal)
            }
        },
        (Route::Metrics, _) => {
            let format = if prefers_openmetrics(&request.accept) {
                Format::OpenMetrics
            } else {
                Format::Prometheus
            };
            Response::ok(
                format.content_type(),
                render_served_metrics(status, served, format),
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    Misdirected,
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
            Code::Misdirected => 421,
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
            Code::Misdirected => "Misdirected Request",
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::machine::event::Role;
    use crate::status::fixture;

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
    fn dates_follow_rfc_9110() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_321_800);
        assert_eq!(http_date(t), "Sun, 22 Nov 2026 04:30:00 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

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

    /// A server on the test's runtime that also answers to the host name `a`.
    async fn start(limits: Limits) -> (SocketAddr, watch::Sender<Arc<Status>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(Arc::new(fixture::status()));
        tokio::spawn(serve_with(listener, rx, vec!["a".to_string()], limits));
        (addr, tx)
    }

    fn metrics_of(served: &Served, format: Format) -> String {
        render_served_metrics(&fixture::status(), served, format)
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
            assert_eq!(status, fixture::status());

            let metrics = get(addr, "/metrics").await;
            assert_eq!(metrics.code, 200);
            assert_eq!(
                metrics.header("content-type"),
                Some(Format::Prometheus.content_type())
            );
            let text = String::from_utf8(metrics.body).unwrap();
            assert_eq!(text, metrics_of(&Served::default(), Format::Prometheus));
            assert!(text.contains("\nfailoverd_state{state=\"active\"} 1\n"));

            let openmetrics = exchange(
                addr,
                b"GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text;\
                  version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3\r\n\r\n",
            )
            .await
            .unwrap();
            assert_eq!(
                openmetrics.header("content-type"),
                Some(Format::OpenMetrics.content_type())
            );
            let text = String::from_utf8(openmetrics.body).unwrap();
            assert_eq!(text, metrics_of(&Served::default(), Format::OpenMetrics));

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
            let mut newer = fixture::status();
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
    async fn slow_clients_are_shed_and_a_full_server_closes_new_ones_at_once() {
        let head_timeout = Duration::from_millis(300);
        let limits = Limits {
            head_timeout,
            admission: admission::Limits {
                connections: 2,
                ..admission::Limits::DEFAULT
            },
            ..Limits::DEFAULT
        };
        let (addr, _tx) = start(limits).await;
        let check = async {
            let started = tokio::time::Instant::now();
            let mut idle = Vec::new();
            for _ in 0..2 {
                idle.push(TcpStream::connect(addr).await.unwrap());
            }
            // Both slots are taken: this one is closed at once, without a reply.
            let turned_away = exchange(addr, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
            assert!(turned_away.is_none());
            assert!(started.elapsed() < head_timeout, "{:?}", started.elapsed());
            // The idle ones are cut when their head is late, and free their slots.
            for mut stream in idle {
                let mut bytes = Vec::new();
                stream.read_to_end(&mut bytes).await.unwrap();
                assert!(bytes.starts_with(b"HTTP/1.1 408 "), "{bytes:?}");
            }
            assert!(started.elapsed() >= head_timeout, "{:?}", started.elapsed());
            let metrics = get(addr, "/metrics").await;
            assert_eq!(metrics.code, 200);
            let served = Served {
                busy: 1,
                slow: 2,
                ..Served::default()
            };
            let text = String::from_utf8(metrics.body).unwrap();
            assert_eq!(text, metrics_of(&served, Format::Prometheus));
            assert!(text.contains("\nfailoverd_http_refused_total{reason=\"slow\"} 2\n"));
        };
        timeout(Duration::from_secs(20), check)
            .await
            .expect("the server took too long");
    }

    #[test]
    fn turned_away_connections_are_logged_at_most_once_a_minute() {
        let start = Instant::now();
        let mut report = Report::default();
        report.log_news(&Served::default(), start);
        assert_eq!(report.at, None, "nothing to tell");
        let one = Served {
            rate: 1,
            ..Served::default()
        };
        report.log_news(&one, start);
        assert_eq!((report.at, report.told), (Some(start), one));
        let many = Served {
            rate: 500,
            host: 2,
            ..Served::default()
        };
        report.log_news(&many, start + Duration::from_secs(59));
        assert_eq!(report.told, one, "told again within the minute");
        report.log_news(&many, start + REPORT_EVERY);
        assert_eq!(report.told, many);
    }

    /// Slow clients from more addresses than one hold every slot: a new client is
    /// let in by closing the one that has waited longest for its head.
    #[tokio::test]
    async fn a_full_server_closes_its_slowest_connection_to_let_a_new_one_in() {
        let evict_after = Duration::from_millis(200);
        let limits = Limits {
            evict_after,
            admission: admission::Limits {
                connections: 2,
                ..admission::Limits::DEFAULT
            },
            ..Limits::DEFAULT
        };
        let (addr, _tx) = start(limits).await;
        let check = async {
            let mut oldest = TcpStream::connect(addr).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut younger = TcpStream::connect(addr).await.unwrap();
            // Both have waited less than `evict_after`: the newcomer is turned away.
            let turned_away = exchange(addr, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
            assert!(turned_away.is_none());
            tokio::time::sleep(evict_after).await;
            let page = get(addr, "/").await;
            assert_eq!(page.code, 200);
            let mut bytes = Vec::new();
            oldest.read_to_end(&mut bytes).await.ok();
            assert!(bytes.is_empty(), "{bytes:?}");
            // The younger one is still open, and still served.
            younger
                .write_all(b"GET /status HTTP/1.1\r\nHost: a\r\n\r\n")
                .await
                .unwrap();
            let mut bytes = Vec::new();
            younger.read_to_end(&mut bytes).await.unwrap();
            assert!(bytes.starts_with(b"HTTP/1.1 200 "), "{bytes:?}");
            let metrics = String::from_utf8(get(addr, "/metrics").await.body).unwrap();
            assert!(
                metrics.contains("\nfailoverd_http_refused_total{reason=\"slow\"} 1\n")
                    && metrics.contains("\nfailoverd_http_refused_total{reason=\"busy\"} 1\n"),
                "{metrics}"
            );
        };
        timeout(Duration::from_secs(20), check)
            .await
            .expect("the server took too long");
    }

    #[tokio::test]
    async fn a_request_for_another_host_gets_421() {
        let (addr, _tx) = start(Limits::DEFAULT).await;
        let check = async {
            for (host, code) in [
                ("evil.example.com", 421),
                ("127.0.0.1:9469", 200),
                ("localhost", 200),
                ("a", 200),
                ("127.0.0.2", 421),
            ] {
                let request = format!("GET /status HTTP/1.1\r\nHost: {host}\r\n\r\n");
                let reply = exchange(addr, request.as_bytes()).await.unwrap();
                assert_eq!(reply.code, code, "{host}");
            }
            let absolute = b"GET http://evil.example.com/ HTTP/1.1\r\nHost: a\r\n\r\n";
            assert_eq!(exchange(addr, absolute).await.unwrap().code, 421);
            let old = exchange(addr, b"GET /status HTTP/1.0\r\n\r\n").await;
            assert_eq!(old.unwrap().code, 200, "no Host at all");
            let metrics = String::from_utf8(get(addr, "/metrics").await.body).unwrap();
            assert!(
                metrics.contains("\nfailoverd_http_refused_total{reason=\"host\"} 3\n"),
                "{metrics}"
            );
        };
        timeout(Duration::from_secs(20), check)
            .await
            .expect("the server took too long");
    }

    /// The daemon's way: a thread of its own, which ends when the daemon drops its
    /// side of the status channel.
    #[tokio::test]
    async fn the_server_thread_serves_until_the_status_goes_away() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(Arc::new(fixture::status()));
        let thread = spawn(listener, rx, Vec::new()).unwrap();
        let page = timeout(Duration::from_secs(20), get(addr, "/"))
            .await
            .expect("no reply from the server thread");
        assert_eq!(page.code, 200);
        drop(tx);
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .expect("the server thread panicked");
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    }
}
