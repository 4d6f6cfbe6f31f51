//! How a configuration fits the host it runs on: this node's heartbeat addresses,
//! and its VIPs' interfaces and subnets, against the host's interfaces, which the
//! caller lists (see `daemon::listen::local_interfaces`). `failoverd check` prints
//! every misfit as a warning; a reload refuses to add a VIP on an interface the
//! host does not have, which would fail its add and its link check and move the
//! VIPs away (see `daemon`), and tells of the rest.

use std::fmt;
use std::net::IpAddr;

use super::{Config, Vip};

/// One of this host's interfaces: its name, and each IP address on it with its
/// prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub addresses: Vec<(IpAddr, u8)>,
}

/// Something of node `me`'s configuration that the host does not have.
#[derive(Debug, Clone, PartialEq)]
pub enum Misfit {
    /// A heartbeat address of this node that no interface has (yet): the daemon
    /// listens on it anyway.
    AddressMissing {
        me: usize,
        link: String,
        address: IpAddr,
    },
    /// VIP `index` names an interface (`name`, after `[[node]] interfaces`) that
    /// the host does not have: it cannot be added here.
    NoInterface {
        me: usize,
        index: usize,
        vip: Vip,
        name: String,
    },
    /// VIP `index` is in no subnet of its interface, whose addresses of the VIP's
    /// family are `subnets`.
    OutsideSubnet {
        index: usize,
        vip: Vip,
        name: String,
        subnets: Vec<String>,
    },
}

impl Misfit {
    /// Whether the VIP it is about cannot be held here at all.
    pub fn unholdable(&self) -> bool {
        matches!(self, Misfit::NoInterface { .. })
    }

    /// The VIP it is about, if any.
    pub fn vip(&self) -> Option<&Vip> {
        match self {
            Misfit::AddressMissing { .. } => None,
            Misfit::NoInterface { vip, .. } | Misfit::OutsideSubnet { vip, .. } => Some(vip),
        }
    }
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfit::AddressMissing { me, link, address } => write!(
                f,
                "node[{me}].addresses.{link}: {address} is not configured on this host: \
                 failoverd listens on it anyway, and link {link} carries no heartbeat until \
                 it appears (configure it on its interface, or correct the address)"
            ),
            Misfit::NoInterface {
                me,
                index,
                vip,
                name,
            } => write!(
                f,
                "vip[{index}]: interface {name} does not exist on this host: {vip} cannot \
                 be added here (correct vip[{index}].interface, or name this node's \
                 interface in node[{me}].interfaces)"
            ),
            Misfit::OutsideSubnet {
                index,
                vip,
                name,
                subnets,
            } => {
                let on = match subnets.is_empty() {
                    true => {
                        let family = if vip.address.is_ipv4() {
                            "IPv4"
                        } else {
                            "IPv6"
                        };
                        format!("{name} has no {family} address")
                    }
                    false => format!("{name} has {}", subnets.join(", ")),
                };
                write!(
                    f,
                    "vip[{index}]: {vip} is in no subnet of {name} ({on}): clients on that \
                     link reach it only through a route to it (correct the VIP, or add an \
                     address of its subnet to {name})"
                )
            }
        }
    }
}

/// What of node `me`'s configuration `local`, the host's interfaces, lacks: each
/// heartbeat address that is not on the host, then each VIP whose interface is not
/// there or has no address of the VIP's subnet. A witness holds no VIP.
pub fn misfits(config: &Config, me: usize, local: &[Interface]) -> Vec<Misfit> {
    let mut found = Vec::new();
    let node = &config.nodes[me];
    let addresses: Vec<IpAddr> = (local.iter())
        .flat_map(|i| i.addresses.iter().map(|(address, _)| *address))
        .collect();
    for (link, address) in node.link_addresses() {
        if !addresses.contains(&address) {
            found.push(Misfit::AddressMissing {
                me,
                link: config.links[link].clone(),
                address,
            });
        }
    }
    for (index, vip) in config.vips.iter().enumerate().filter(|_| !node.witness) {
        let name = node.interface(&vip.interface).to_owned();
        let Some(interface) = local.iter().find(|l| l.name == name) else {
            found.push(Misfit::NoInterface {
                me,
                index,
                vip: vip.clone(),
                name,
            });
            continue;
        };
        let within = |&(address, len): &(IpAddr, u8)| same_subnet(vip.address, address, len);
        if !interface.addresses.iter().any(within) {
            let subnets = (interface.addresses.iter())
                .filter(|(address, _)| address.is_ipv4() == vip.address.is_ipv4())
                .map(|(address, len)| format!("{address}/{len}"))
                .collect();
            found.push(Misfit::OutsideSubnet {
                index,
                vip: vip.clone(),
                name,
                subnets,
            });
        }
    }
    found
}

/// Whether `a` lies in the subnet of `b` with prefix length `len`.
fn same_subnet(a: IpAddr, b: IpAddr, len: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_compare_by_family_and_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(same_subnet(ip("fd00::10"), ip("fd00::1"), 64));
        assert!(!same_subnet(ip("fd00::10"), ip("fe80::1"), 64));
        assert!(same_subnet(ip("198.18.0.10"), ip("10.0.0.1"), 0));
        assert!(!same_subnet(ip("198.18.0.10"), ip("fd00::1"), 0));
        assert!(same_subnet(ip("198.18.0.10"), ip("198.18.0.1"), 24));
        assert!(!same_subnet(ip("198.18.1.10"), ip("198.18.0.1"), 24));
    }
}
