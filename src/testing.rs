//! Helpers that unit tests share: a runtime to run one future on, and a tracing
//! writer that keeps what is logged. Test builds only.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

/// Runs `future` to completion on a new single-threaded runtime with every driver.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(future)
}

/// A tracing writer that appends each line logged to a shared string.
#[derive(Clone)]
pub(crate) struct Captured(Arc<Mutex<String>>);

impl Captured {
    /// A dispatch that writes to a new, empty capture, for
    /// `tracing::dispatcher::with_default`, and that capture.
    pub(crate) fn dispatch() -> (tracing::Dispatch, Captured) {
        let captured = Captured(Arc::default());
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        (tracing::Dispatch::new(subscriber), captured)
    }

    /// What was logged so far.
    pub(crate) fn text(&self) -> String {
        self.0.lock().map(|text| text.clone()).unwrap_or_default()
    }

    /// The logged lines that contain `needle`.
    pub(crate) fn lines_with(&self, needle: &str) -> Vec<String> {
        (self.text().lines())
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut text = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
        text.push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
