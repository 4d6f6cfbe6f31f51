//! Request heads, parsed: pure code that never panics, whatever the bytes. Only what
//! the server looks at is kept: the method, the route, the host the request is for
//! and the Accept header.

use super::Code;

/// The length of the head in `bytes`: up to the first empty line, which ends with
/// CRLF or a bare LF (RFC 9112 lets servers accept either). `from` is where to start
/// looking.
pub(super) fn head_end(bytes: &[u8], from: usize) -> Option<usize> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Head,
    /// Any other well-formed method: answered with 405.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Page,
    Status,
    Metrics,
    Unknown,
}

/// A parsed request head: only what the server looks at.
#[derive(Debug, PartialEq)]
pub(super) struct Request {
    pub(super) method: Method,
    pub(super) route: Route,
    /// The Accept header fields, joined with commas.
    pub(super) accept: String,
    /// The host the request is for, as sent (`name`, `name:port`, `[v6]:port`): the
    /// authority of an absolute request target, else the Host header (RFC 9112,
    /// section 3.2.2). None when neither names one (HTTP/1.0 without Host).
    pub(super) host: Option<String>,
}

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestError {
    /// The head does not follow HTTP/1.1's syntax.
    Malformed,
    /// A well-formed request line of an HTTP version other than 1.0 and 1.1.
    Version,
}

impl RequestError {
    pub(super) fn code(self) -> Code {
        match self {
            RequestError::Malformed => Code::BadRequest,
            RequestError::Version => Code::VersionNotSupported,
        }
    }
}

/// Parses a request head (RFC 9112, section 2 and 3). Strict where sloppiness could
/// hide a mistake (one space between the parts, token characters in names, no line
/// folding, exactly one Host in HTTP/1.1), lenient where RFC 9112 allows (bare LF).
pub(super) fn parse_request(head: &[u8]) -> Result<Request, RequestError> {
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
    let (authority, path) = request_path(target).ok_or(RequestError::Malformed)?;

    let mut hosts = 0;
    let mut host = None;
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
            host = Some(String::from_utf8_lossy(value.trim_ascii()).into_owned());
        } else if name.eq_ignore_ascii_case(b"accept") {
            if !accept.is_empty() {
                accept.push(',');
            }
            accept.push_str(String::from_utf8_lossy(value).trim());
        }
    }
    // One Host, and none only in HTTP/1.0 (RFC 9112, section 3.2). Two would let
    // the Host check pass on one name while something in front of the server went
    // by the other.
    if hosts > 1 || (http11 && hosts == 0) {
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
    let host = match authority {
        Some(authority) => Some(String::from_utf8_lossy(authority).into_owned()),
        None => host.filter(|h| !h.is_empty()),
    };
    Ok(Request {
        method,
        route,
        accept,
        host,
    })
}

/// The authority (absolute form only) and the path of a request target in origin
/// form (`/status?x`) or absolute form (`http://host/status`), without the query.
fn request_path(target: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    if !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return None;
    }
    let mut authority = None;
    let origin = if target.starts_with(b"/") {
        target
    } else {
        let scheme_end = target.windows(3).position(|w| w == b"://")?;
        let scheme = &target[..scheme_end];
        if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
            return None;
        }
        let rest = &target[scheme_end + 3..];
        let end = rest.iter().position(|&b| b == b'/' || b == b'?');
        authority = Some(&rest[..end.unwrap_or(rest.len())]);
        match end {
            Some(i) if rest[i] == b'/' => &rest[i..],
            _ => b"/",
        }
    };
    let end = origin.iter().position(|&b| b == b'?' || b == b'#');
    Some((authority, &origin[..end.unwrap_or(origin.len())]))
}

/// A token character (RFC 9110, section 5.6.2): what method and header names are
/// made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether the client's Accept header ranks OpenMetrics above Prometheus' text
/// format. Prometheus asks for OpenMetrics first; curl, browsers and most other
/// scrapers get plain text, which they show rather than download.
pub(super) fn prefers_openmetrics(accept: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn request_heads_parse_strictly() {
        use RequestError::{Malformed, Version};
        let ok = |method, route, accept: &str| {
            Ok(Request {
                method,
                route,
                accept: accept.into(),
                host: Some("a".into()),
            })
        };
        let no_host = |method, route| {
            Ok(Request {
                method,
                route,
                accept: String::new(),
                host: None,
            })
        };
        let cases: &[(&[u8], Result<Request, RequestError>)] = &[
            (
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                ok(Method::Get, Route::Page, ""),
            ),
            (
                b"GET /status HTTP/1.0\n\n",
                no_host(Method::Get, Route::Status),
            ),
            (
                b"HEAD /metrics?x=1 HTTP/1.1\r\nhost: a\r\nAccept: a/b\r\naccept: c/d \r\n\r\n",
                ok(Method::Head, Route::Metrics, "a/b,c/d"),
            ),
            (
                b"GET http://a:9469/status HTTP/1.1\r\nHost: b\r\n\r\n",
                Ok(Request {
                    method: Method::Get,
                    route: Route::Status,
                    accept: String::new(),
                    host: Some("a:9469".into()),
                }),
            ),
            (
                b"GET http://a HTTP/1.0\r\n\r\n",
                ok(Method::Get, Route::Page, ""),
            ),
            (
                b"GET http://a/status HTTP/1.1\r\nHost: b\r\n\r\n",
                ok(Method::Get, Route::Status, ""),
            ),
            (
                b"GET / HTTP/1.0\r\nHost:\r\n\r\n",
                no_host(Method::Get, Route::Page),
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
                no_host(Method::Other, Route::Page),
            ),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(Version)),
            (b"GET / HTTP/1.1\r\n\r\n", Err(Malformed)),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                Err(Malformed),
            ),
            (
                b"GET / HTTP/1.0\r\nHost: evil.example\r\nHost: a\r\n\r\n",
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
}
