//! Pure views of the status, no I/O: each turns a [`Status`] snapshot (and the time,
//! where ages show) into text, and reads no clock, socket or file.
//!
//! - [`html`]: the status page that `daemon::http` serves at `/`.
//! - [`metrics`]: the Prometheus and OpenMetrics text that it serves at `/metrics`.
//! - [`text`]: `failoverd status` and `failoverd events` for people at a terminal.
//!
//! Their tests read one sample status, `tests/fixtures/status.json`, which
//! `examples/render_status.rs` also renders for `scripts/check-status-page.sh`.
//!
//! [`Status`]: crate::status::Status

pub mod html;
pub mod metrics;
pub mod text;
