//! The HTTP check against tiny servers on loopback, and its pure parts on their own.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::*;

const LONG: Duration = Duration::from_secs(5);

/// A server that answers one request with `response` and closes; the request head
/// comes back on the receiver.
async fn serve_once(response: &'static [u8]) -> (SocketAddr, oneshot::Receiver<String>) {
    serve_once_on("127.0.0.1:0", response).await.unwrap()
}

async fn serve_once_on(
    bind: &str,
    response: &'static [u8],
) -> io::Result<(SocketAddr, oneshot::Receiver<String>)> {
    let listener = TcpListener::bind(bind).await?;
    let address = listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        while head_end(&head).is_none() && head.len() < 8192 {
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        let _ = stream.write_all(response).await;
        let _ = stream.shutdown().await;
    });
    Ok((address, rx))
}

fn check(host: &str, port: u16, status: RangeInclusive<u16>, body: Option<&str>) -> Http {
    Http {
        url: HttpUrl {
            host: host.to_string(),
            port,
            path: "/health?deep=1".to_string(),
        },
        status,
        body: body.map(str::to_string),
        timeout: LONG,
    }
}

#[tokio::test]
async fn a_status_in_range_passes_and_the_request_is_plain_http_1_1() {
    let (address, request) = serve_once(b"HTTP/1.1 204 No Content\r\n\r\n").await;
    let run = check("127.0.0.1", address.port(), 200..=299, None)
        .run()
        .await;
    assert!(run.passed, "{run:?}");
    assert_eq!(run.detail, "status 204");
    let request = request.await.unwrap();
    let lines: Vec<&str> = request.split("\r\n").collect();
    assert_eq!(lines[0], "GET /health?deep=1 HTTP/1.1");
    for header in [
        format!("Host: 127.0.0.1:{}", address.port()),
        "Connection: close".to_string(),
        format!("User-Agent: failoverd/{}", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(
            lines.contains(&header.as_str()),
            "{header:?} in {request:?}"
        );
    }
}

#[tokio::test]
async fn a_status_out_of_range_fails_with_the_status() {
    let (address, _request) =
        serve_once(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy").await;
    let run = check("127.0.0.1", address.port(), 200..=399, Some("ok"))
        .run()
        .await;
    assert!(!run.passed);
    assert_eq!(run.detail, "status 503");
}

#[tokio::test]
async fn the_body_must_hold_the_text_when_asked() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nstatus: ok\r\nX";
    let (address, _request) = serve_once(ok).await;
    let run = check("127.0.0.1", address.port(), 200..=200, Some("status: ok"))
        .run()
        .await;
    assert!(run.passed, "{run:?}");

    // Without a length: the body ends with the connection.
    let (address, _request) = serve_once(b"HTTP/1.0 200 OK\r\n\r\nstarting up").await;
    let run = check("127.0.0.1", address.port(), 200..=200, Some("status: ok"))
        .run()
        .await;
    assert!(!run.passed);
    assert_eq!(run.detail, "no \"status: ok\" in the body");
}

#[tokio::test]
async fn a_chunked_body_is_decoded_so_text_across_chunks_is_found() {
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                     4\r\nstat\r\n6;ext=1\r\nus: ok\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let (address, _request) = serve_once(response).await;
    let run = check("127.0.0.1", address.port(), 200..=200, Some("status: ok"))
        .run()
        .await;
    assert!(run.passed, "{run:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts, reads nothing, answers nothing, until the test ends.
    let server = tokio::spawn(async move {
        let held = listener.accept().await;
        tokio::time::sleep(LONG).await;
        drop(held);
    });
    let mut hanging = check("127.0.0.1", port, 200..=200, None);
    hanging.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let run = hanging.run().await;
    let took = started.elapsed();
    server.abort();
    assert!(!run.passed);
    assert_eq!(run.detail, "timed out after 300ms");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_closed_port_fails_with_the_connect_error() {
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let run = check("127.0.0.1", port, 200..=200, None).run().await;
    assert!(!run.passed);
    assert!(
        run.detail
            .starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
        "{}",
        run.detail
    );
}

#[tokio::test]
async fn an_ipv6_host_keeps_its_brackets_in_the_host_header_only() {
    // Not every test box has IPv6 on loopback.
    let Ok((address, request)) = serve_once_on("[::1]:0", b"HTTP/1.1 200 OK\r\n\r\n").await else {
        return;
    };
    let run = check("[::1]", address.port(), 200..=200, None).run().await;
    assert!(run.passed, "{run:?}");
    let request = request.await.unwrap();
    assert!(
        request.contains(&format!("\r\nHost: [::1]:{}\r\n", address.port())),
        "{request:?}"
    );
}

#[tokio::test]
async fn a_name_is_resolved_and_each_address_tried() {
    // localhost may resolve to ::1 first; the server listens on 127.0.0.1 only.
    let (address, request) = serve_once(b"HTTP/1.1 200 OK\r\n\r\n").await;
    let run = check("localhost", address.port(), 200..=200, None)
        .run()
        .await;
    assert!(run.passed, "{run:?}");
    assert!(
        request
            .await
            .unwrap()
            .contains(&format!("\r\nHost: localhost:{}\r\n", address.port()))
    );
}

#[tokio::test]
async fn garbage_from_the_server_is_named() {
    let (address, _request) = serve_once(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    let run = check("127.0.0.1", address.port(), 200..=200, None)
        .run()
        .await;
    assert!(!run.passed);
    assert_eq!(run.detail, "not an HTTP response: no HTTP/1.x status line");

    let (address, _request) = serve_once(b"HTTP/1.1 200 OK\r\nServer: x").await;
    let run = check("127.0.0.1", address.port(), 200..=200, None)
        .run()
        .await;
    assert_eq!(run.detail, "connection closed before the response");
}

#[test]
fn heads_parse_into_status_and_framing() {
    let parse = |text: &str| parse_head(text.as_bytes());
    let head = parse("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").unwrap();
    assert_eq!((head.status, head.framing), (200, Framing::Length(12)));
    let head = parse("HTTP/1.1 200 OK\nTransfer-Encoding: CHUNKED\nContent-Length: 3\n\n").unwrap();
    assert_eq!(head.framing, Framing::Chunked, "chunked wins over a length");
    let head = parse("HTTP/1.0 404\r\n\r\n").unwrap();
    assert_eq!((head.status, head.framing), (404, Framing::Close));
    let head = parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n").unwrap();
    assert_eq!(head.framing, Framing::Length(0));
    for bad in [
        "",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 abc\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "\u{fffd}\u{fffd}",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
    assert_eq!(head_end(b"HTTP/1.1 200 OK\n\nbody"), Some(17));
    assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n"), None);
}

#[test]
fn chunked_decoding_survives_any_split() {
    let wire =
        b"4\r\nWiki\r\n5;name=v\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nA: b\r\n\r\nextra";
    for split in 1..wire.len() {
        let mut decoder = Chunked::default();
        let mut out = Vec::new();
        for piece in wire.chunks(split) {
            decoder.feed(piece, &mut out, usize::MAX).unwrap();
        }
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.", "split {split}");
        assert_eq!(decoder.state, ChunkState::Done);
    }
    for bad in [&b"zz\r\n"[..], b"4\r\nWikiX\r\n", b"1234567890abcdef0\r\n"] {
        let mut out = Vec::new();
        assert!(
            Chunked::default().feed(bad, &mut out, usize::MAX).is_err(),
            "{bad:?}"
        );
    }
    let mut long = Chunked::default();
    let endless = vec![b'1'; MAX_CHUNK_LINE + 1];
    assert!(long.feed(&endless, &mut Vec::new(), usize::MAX).is_err());
}

#[test]
fn only_the_first_bytes_of_the_body_count() {
    let mut body = Body::new(Framing::Close);
    body.feed(&vec![b'.'; MAX_HTTP_BODY - 2]).unwrap();
    assert!(!body.find(b"ok"));
    assert!(!body.finished());
    body.feed(b"xok").unwrap();
    assert!(body.finished());
    assert!(!body.find(b"ok"), "the k is past the limit");

    // A match across two reads is found.
    let mut body = Body::new(Framing::Length(6));
    body.feed(b"sta").unwrap();
    assert!(!body.find(b"tatus"));
    body.feed(b"tus").unwrap();
    assert!(body.find(b"tatus"));
    assert!(body.finished());
}
