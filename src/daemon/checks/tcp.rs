//! `tcp` checks: a connection to the address within the timeout passes. Nothing is
//! sent; the connection is closed at once.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::bounded_line;
use crate::duration::format_duration;
use crate::machine::health::Run;

/// Connects to `address` once, within `limit`.
pub async fn run(address: SocketAddr, limit: Duration) -> Run {
    let started = Instant::now();
    let (passed, detail) = match timeout(limit, TcpStream::connect(address)).await {
        Ok(Ok(_stream)) => (true, String::new()),
        Ok(Err(err)) => (false, bounded_line(err.to_string().as_bytes())),
        Err(_) => (false, format!("timed out after {}", format_duration(limit))),
    };
    Run {
        passed,
        took: started.elapsed(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_open_port_passes_and_a_closed_one_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let run_open = run(open, Duration::from_secs(5)).await;
        assert!(run_open.passed, "{run_open:?}");
        assert_eq!(run_open.detail, "");

        // A port just freed: nothing listens there.
        let closed = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            socket.local_addr().unwrap()
        };
        let run_closed = run(closed, Duration::from_secs(5)).await;
        assert!(!run_closed.passed);
        assert!(
            run_closed.detail.to_lowercase().contains("refused"),
            "{}",
            run_closed.detail
        );
    }
}
