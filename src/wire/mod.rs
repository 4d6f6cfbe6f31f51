//! Pure packet codecs. Nothing here does I/O; parsing untrusted input never panics.

pub mod arp;
pub mod heartbeat;
pub mod icmp;
pub mod udp4;
