//! The async shell: sockets, netlink, processes and signals.

pub mod announce;
pub mod gateway;
pub mod hooks;
pub mod vip;
