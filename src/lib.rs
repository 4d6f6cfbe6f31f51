//! failoverd keeps a service reachable when one of two Linux servers dies.
//!
//! The election is a pure state machine ([`machine`]): inputs carry the time they
//! happened, actions come out, every deadline sits in one timer table, and it never
//! reads the clock, opens a socket or spawns a task. A thin async shell ([`daemon`])
//! turns sockets, signals, timers and finished effects into inputs and carries out the
//! actions, the slow ones in order on an executor so heartbeats never wait. What the
//! daemon reports is one [`status::Status`] document, and every way of showing it is a
//! pure function of it ([`view`]). docs/architecture.md walks one heartbeat through.
//!
//! # Layout
//! - [`config`]: the TOML file, parsed into a typed, checked [`config::Config`].
//! - [`duration`]: durations as the file and the logs write them ("200ms", "1.5s").
//! - [`wire`]: pure codecs: the heartbeat packet, ARP/NA announcements, ICMP echo.
//! - [`machine`]: the election state machine, free of I/O and clocks.
//! - [`daemon`]: the async shell that feeds the machine and carries out its actions.
//! - [`control`]: the control socket's protocol and its client.
//! - [`status`]: the status document that the daemon reports and clients read.
//! - [`view`]: pure views of the status: the HTML page, the metrics text, the terminal.
//! - [`import`]: `failoverd import`: Heartbeat and keepalived configurations translated.
//! - [`cli`]: what the client commands wait for and conclude; `main.rs` parses arguments.
//! - [`manual`]: the configuration reference as the manual page failoverd.toml(5).

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod duration;
pub mod import;
pub mod machine;
pub mod manual;
#[cfg(test)]
mod scratch;
pub mod status;
#[cfg(test)]
mod testing;
pub mod view;
pub mod wire;
