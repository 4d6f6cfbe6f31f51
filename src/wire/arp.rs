//! Ethernet frames that tell a LAN where a virtual IP now lives, and that ask
//! whether anyone else has it.
//!
//! Owns the layout of gratuitous ARP (IPv4) and unsolicited Neighbor
//! Advertisement (IPv6, RFC 4861) frames, of ARP probes (RFC 5227) and
//! duplicate address detection Neighbor Solicitations (RFC 4862), and checked
//! parsers for ARP, advertisements and solicitations. Sending them is
//! `daemon::announce`'s and `daemon::probe`'s job. The parsers accept only what
//! this module emits the shape of: Ethernet II, no VLAN tag, no IPv6 extension
//! headers.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::icmp::checksum;

/// Length of a gratuitous ARP frame: Ethernet header plus ARP for IPv4.
pub const ARP_FRAME_LEN: usize = ETH_HEADER_LEN + 28;

const ETH_HEADER_LEN: usize = 14;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETH_BROADCAST: [u8; 6] = [0xff; 6];
/// Ethernet multicast address for ff02::1 (RFC 2464, section 7).
const ETH_ALL_NODES: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];
const ARP_HTYPE_ETHERNET: u16 = 1;
const ARP_PTYPE_IPV4: u16 = 0x0800;

const IPV6_HEADER_LEN: usize = 40;
const NEXT_HEADER_ICMPV6: u8 = 58;
/// RFC 4861 makes receivers drop neighbor discovery messages with any other
/// hop limit, which proves they were not forwarded by a router.
const ND_HOP_LIMIT: u8 = 255;
const ICMPV6_NEIGHBOR_SOLICITATION: u8 = 135;
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Type, code, checksum, flags and target address.
const NA_LEN: usize = 24;
/// Type, code, checksum, reserved word and target address.
const NS_LEN: usize = 24;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_SOLICITED: u8 = 0x40;
const NA_FLAG_OVERRIDE: u8 = 0x20;
const OPTION_SOURCE_LINK_ADDRESS: u8 = 1;
const OPTION_TARGET_LINK_ADDRESS: u8 = 2;
/// Options are measured in units of 8 bytes.
const OPTION_UNIT: usize = 8;
const NA_FRAME_LEN: usize = ETH_HEADER_LEN + IPV6_HEADER_LEN + NA_LEN + OPTION_UNIT;
/// A duplicate address detection solicitation carries no option.
const NS_FRAME_LEN: usize = ETH_HEADER_LEN + IPV6_HEADER_LEN + NS_LEN;

/// The ARP operation. Gratuitous ARP is sent both ways because some switches
/// and hosts update their tables only from requests, others only from replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

/// An Ethernet/IPv4 ARP packet as found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub op: ArpOp,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

/// A Neighbor Advertisement as found in a frame whose checksum was correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaPacket {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub src_ip: Ipv6Addr,
    pub dst_ip: Ipv6Addr,
    pub router: bool,
    pub solicited: bool,
    /// Receivers replace a cached link-layer address instead of keeping it.
    pub override_flag: bool,
    pub target: Ipv6Addr,
    /// The target link-layer address option, if the packet carries one.
    pub target_mac: Option<[u8; 6]>,
}

/// A Neighbor Solicitation as found in a frame whose checksum was correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsPacket {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    /// Unspecified (::) when the sender runs duplicate address detection.
    pub src_ip: Ipv6Addr,
    pub dst_ip: Ipv6Addr,
    pub target: Ipv6Addr,
    /// The source link-layer address option, if the packet carries one.
    pub source_mac: Option<[u8; 6]>,
}

/// Builds a broadcast gratuitous ARP frame announcing that `ip` is at `mac`.
///
/// Sender and target protocol address are both `ip`. A request leaves the
/// target hardware address zero (RFC 5227 style); a reply repeats `mac` there,
/// as `arping -A` does.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr, op: ArpOp) -> [u8; ARP_FRAME_LEN] {
    let target_mac = match op {
        ArpOp::Request => [0u8; 6],
        ArpOp::Reply => mac,
    };
    arp_frame(op, mac, ip, target_mac, ip)
}

/// Builds an unsolicited Neighbor Advertisement frame announcing that `ip` is
/// at `mac`, sent from `ip` to all nodes (ff02::1).
///
/// Override is set so neighbors replace the old node's MAC at once; Solicited
/// is clear because nobody asked; Router is clear because a VIP is a host.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let icmp_len = NA_LEN + OPTION_UNIT;

    let mut frame = Vec::with_capacity(NA_FRAME_LEN);
    frame.extend_from_slice(&ETH_ALL_NODES);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());

    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    // icmp_len is a small constant, far below u16::MAX.
    frame.extend_from_slice(&(icmp_len as u16).to_be_bytes());
    frame.extend_from_slice(&[NEXT_HEADER_ICMPV6, ND_HOP_LIMIT]);
    frame.extend_from_slice(&ip.octets());
    frame.extend_from_slice(&all_nodes.octets());

    let icmp_start = frame.len();
    frame.extend_from_slice(&[ICMPV6_NEIGHBOR_ADVERTISEMENT, 0, 0, 0]);
    frame.extend_from_slice(&[NA_FLAG_OVERRIDE, 0, 0, 0]);
    frame.extend_from_slice(&ip.octets());
    frame.extend_from_slice(&[OPTION_TARGET_LINK_ADDRESS, 1]);
    frame.extend_from_slice(&mac);

    let sum = checksum(&[
        &pseudo_header(ip, all_nodes, icmp_len),
        &frame[icmp_start..],
    ]);
    frame[icmp_start + 2..icmp_start + 4].copy_from_slice(&sum.to_be_bytes());
    frame
}

/// Builds a broadcast ARP probe (RFC 5227, section 2.1.1) from `mac` asking
/// who has `ip`.
///
/// The sender protocol address is 0.0.0.0, so no neighbour learns anything
/// from it, and a host that has `ip` answers with a reply to `mac`.
pub fn arp_probe(mac: [u8; 6], ip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    arp_frame(ArpOp::Request, mac, Ipv4Addr::UNSPECIFIED, [0; 6], ip)
}

/// Builds a Neighbor Solicitation for duplicate address detection of
/// `target` (RFC 4862, section 5.4.2), sent from `mac`.
///
/// The source is the unspecified address and there is no source link-layer
/// option; the destination is the target's solicited-node multicast group. A
/// host that has `target` answers with an advertisement to all nodes.
pub fn dad_solicitation(mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    let g = group.octets();
    // RFC 2464, section 7: 33:33 and the group's last four bytes.
    let eth_dst = [0x33, 0x33, g[12], g[13], g[14], g[15]];

    let mut frame = Vec::with_capacity(NS_FRAME_LEN);
    frame.extend_from_slice(&eth_dst);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());

    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    // NS_LEN is a small constant, far below u16::MAX.
    frame.extend_from_slice(&(NS_LEN as u16).to_be_bytes());
    frame.extend_from_slice(&[NEXT_HEADER_ICMPV6, ND_HOP_LIMIT]);
    frame.extend_from_slice(&Ipv6Addr::UNSPECIFIED.octets());
    frame.extend_from_slice(&group.octets());

    let icmp_start = frame.len();
    frame.extend_from_slice(&[ICMPV6_NEIGHBOR_SOLICITATION, 0, 0, 0]);
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&target.octets());

    let sum = checksum(&[
        &pseudo_header(Ipv6Addr::UNSPECIFIED, group, NS_LEN),
        &frame[icmp_start..],
    ]);
    frame[icmp_start + 2..icmp_start + 4].copy_from_slice(&sum.to_be_bytes());
    frame
}

/// The solicited-node multicast group of `address`: ff02::1:ff00:0/104 and
/// the address's last three bytes (RFC 4291, section 2.7.1).
pub fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    let a = address.octets();
    let mut group = [0u8; 16];
    group[0] = 0xff;
    group[1] = 0x02;
    group[11] = 0x01;
    group[12] = 0xff;
    group[13..16].copy_from_slice(&a[13..16]);
    Ipv6Addr::from(group)
}

/// Parses an Ethernet frame carrying an Ethernet/IPv4 ARP request or reply.
/// Trailing bytes (Ethernet padding) are ignored.
pub fn parse_arp(frame: &[u8]) -> Option<ArpPacket> {
    let frame = frame.get(..ARP_FRAME_LEN)?;
    if be16(frame, 12)? != ETHERTYPE_ARP
        || be16(frame, 14)? != ARP_HTYPE_ETHERNET
        || be16(frame, 16)? != ARP_PTYPE_IPV4
        || frame[18] != 6
        || frame[19] != 4
    {
        return None;
    }
    let op = match be16(frame, 20)? {
        1 => ArpOp::Request,
        2 => ArpOp::Reply,
        _ => return None,
    };
    Some(ArpPacket {
        eth_dst: mac_at(frame, 0)?,
        eth_src: mac_at(frame, 6)?,
        op,
        sender_mac: mac_at(frame, 22)?,
        sender_ip: ipv4_at(frame, 28)?,
        target_mac: mac_at(frame, 32)?,
        target_ip: ipv4_at(frame, 38)?,
    })
}

/// Parses an Ethernet frame carrying an ICMPv6 Neighbor Advertisement.
///
/// Applies the receiver checks of RFC 4861 section 7.1.2 that need nothing but
/// the packet: hop limit 255, code 0, length, a valid checksum, no
/// zero-length option. Trailing bytes past the IPv6 payload are ignored.
pub fn parse_na(frame: &[u8]) -> Option<NaPacket> {
    let nd = parse_nd(frame, ICMPV6_NEIGHBOR_ADVERTISEMENT, NA_LEN)?;
    let target_mac = link_address_option(&nd.icmp[NA_LEN..], OPTION_TARGET_LINK_ADDRESS)?;
    let flags = nd.icmp[4];
    Some(NaPacket {
        eth_dst: nd.eth_dst,
        eth_src: nd.eth_src,
        src_ip: nd.src_ip,
        dst_ip: nd.dst_ip,
        router: flags & NA_FLAG_ROUTER != 0,
        solicited: flags & NA_FLAG_SOLICITED != 0,
        override_flag: flags & NA_FLAG_OVERRIDE != 0,
        target: ipv6_at(nd.icmp, 8)?,
        target_mac,
    })
}

/// Parses an Ethernet frame carrying an ICMPv6 Neighbor Solicitation.
///
/// Applies the receiver checks of RFC 4861 section 7.1.1 that need nothing but
/// the packet: hop limit 255, code 0, length, a valid checksum, a target that
/// is not multicast, no zero-length option, and from the unspecified address
/// only to a solicited-node group and without a source link-layer option.
/// Trailing bytes past the IPv6 payload are ignored.
pub fn parse_ns(frame: &[u8]) -> Option<NsPacket> {
    let nd = parse_nd(frame, ICMPV6_NEIGHBOR_SOLICITATION, NS_LEN)?;
    let target = ipv6_at(nd.icmp, 8)?;
    if target.is_multicast() {
        return None;
    }
    let source_mac = link_address_option(&nd.icmp[NS_LEN..], OPTION_SOURCE_LINK_ADDRESS)?;
    if nd.src_ip.is_unspecified() && (source_mac.is_some() || !is_solicited_node(nd.dst_ip)) {
        return None;
    }
    Some(NsPacket {
        eth_dst: nd.eth_dst,
        eth_src: nd.eth_src,
        src_ip: nd.src_ip,
        dst_ip: nd.dst_ip,
        target,
        source_mac,
    })
}

/// Whether `address` is a solicited-node multicast group: its own group is
/// itself.
fn is_solicited_node(address: Ipv6Addr) -> bool {
    solicited_node(address) == address
}

/// A neighbor discovery message that passed the checks common to all kinds.
struct NdMessage<'a> {
    eth_dst: [u8; 6],
    eth_src: [u8; 6],
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    /// The whole ICMPv6 message, at least as long as asked for.
    icmp: &'a [u8],
}

/// Checks the Ethernet and IPv6 headers and the ICMPv6 type, code, length
/// and checksum of a neighbor discovery message of type `kind`.
fn parse_nd(frame: &[u8], kind: u8, min_len: usize) -> Option<NdMessage<'_>> {
    if be16(frame, 12)? != ETHERTYPE_IPV6 {
        return None;
    }
    let ip = frame.get(ETH_HEADER_LEN..ETH_HEADER_LEN + IPV6_HEADER_LEN)?;
    if ip[0] >> 4 != 6 || ip[6] != NEXT_HEADER_ICMPV6 || ip[7] != ND_HOP_LIMIT {
        return None;
    }
    let payload_len = usize::from(be16(ip, 4)?);
    let icmp_start = ETH_HEADER_LEN + IPV6_HEADER_LEN;
    let icmp = frame.get(icmp_start..icmp_start + payload_len)?;
    if icmp.len() < min_len || icmp[0] != kind || icmp[1] != 0 {
        return None;
    }
    let src_ip = ipv6_at(ip, 8)?;
    let dst_ip = ipv6_at(ip, 24)?;
    if checksum(&[&pseudo_header(src_ip, dst_ip, icmp.len()), icmp]) != 0 {
        return None;
    }
    Some(NdMessage {
        eth_dst: mac_at(frame, 0)?,
        eth_src: mac_at(frame, 6)?,
        src_ip,
        dst_ip,
        icmp,
    })
}

/// The Ethernet address in the last link-layer address option of type
/// `kind`, if there is one; `None` if any option is malformed.
fn link_address_option(mut options: &[u8], kind: u8) -> Option<Option<[u8; 6]>> {
    let mut found = None;
    while !options.is_empty() {
        let option_kind = *options.first()?;
        let len = usize::from(*options.get(1)?) * OPTION_UNIT;
        if len == 0 {
            return None;
        }
        let option = options.get(..len)?;
        // Any other length would not be an Ethernet address (RFC 2464).
        if option_kind == kind && len == OPTION_UNIT {
            found = mac_at(option, 2);
        }
        options = &options[len..];
    }
    Some(found)
}

fn arp_frame(
    op: ArpOp,
    sender_mac: [u8; 6],
    sender_ip: Ipv4Addr,
    target_mac: [u8; 6],
    target_ip: Ipv4Addr,
) -> [u8; ARP_FRAME_LEN] {
    let code: u16 = match op {
        ArpOp::Request => 1,
        ArpOp::Reply => 2,
    };
    let mut frame = [0u8; ARP_FRAME_LEN];
    frame[0..6].copy_from_slice(&ETH_BROADCAST);
    frame[6..12].copy_from_slice(&sender_mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    frame[14..16].copy_from_slice(&ARP_HTYPE_ETHERNET.to_be_bytes());
    frame[16..18].copy_from_slice(&ARP_PTYPE_IPV4.to_be_bytes());
    frame[18] = 6;
    frame[19] = 4;
    frame[20..22].copy_from_slice(&code.to_be_bytes());
    frame[22..28].copy_from_slice(&sender_mac);
    frame[28..32].copy_from_slice(&sender_ip.octets());
    frame[32..38].copy_from_slice(&target_mac);
    frame[38..42].copy_from_slice(&target_ip.octets());
    frame
}

/// The IPv6 pseudo-header that the ICMPv6 checksum covers (RFC 8200, 8.1).
fn pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, upper_len: usize) -> [u8; 40] {
    let mut header = [0u8; 40];
    header[0..16].copy_from_slice(&src.octets());
    header[16..32].copy_from_slice(&dst.octets());
    // Callers pass a length read from a 16-bit field or a small constant.
    header[32..36].copy_from_slice(&(upper_len as u32).to_be_bytes());
    header[39] = NEXT_HEADER_ICMPV6;
    header
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn mac_at(buf: &[u8], at: usize) -> Option<[u8; 6]> {
    buf.get(at..at + 6)?.try_into().ok()
}

fn ipv4_at(buf: &[u8], at: usize) -> Option<Ipv4Addr> {
    let octets: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(octets))
}

fn ipv6_at(buf: &[u8], at: usize) -> Option<Ipv6Addr> {
    let octets: [u8; 16] = buf.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    const V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
    const V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10);

    /// Deterministic junk without a random number dependency.
    fn junk(seed: u32, len: usize) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state.to_be_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn arp_request_has_expected_bytes() {
        let frame = gratuitous_arp(MAC, V4, ArpOp::Request);
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, // our mac
            0x08, 0x06, // ARP
            0x00, 0x01, 0x08, 0x00, 6, 4, // Ethernet, IPv4
            0x00, 0x01, // request
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 198, 18, 0, 10, // sender
            0, 0, 0, 0, 0, 0, 198, 18, 0, 10, // target
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn arp_round_trip_both_ops() {
        let request = parse_arp(&gratuitous_arp(MAC, V4, ArpOp::Request)).unwrap();
        assert_eq!(
            request,
            ArpPacket {
                eth_dst: [0xff; 6],
                eth_src: MAC,
                op: ArpOp::Request,
                sender_mac: MAC,
                sender_ip: V4,
                target_mac: [0; 6],
                target_ip: V4,
            }
        );
        let reply = parse_arp(&gratuitous_arp(MAC, V4, ArpOp::Reply)).unwrap();
        assert_eq!(reply.op, ArpOp::Reply);
        assert_eq!(reply.target_mac, MAC);
        assert_eq!((reply.sender_ip, reply.target_ip), (V4, V4));
    }

    #[test]
    fn arp_parse_ignores_ethernet_padding() {
        let mut frame = gratuitous_arp(MAC, V4, ArpOp::Request).to_vec();
        frame.resize(60, 0);
        assert!(parse_arp(&frame).is_some());
    }

    #[test]
    fn arp_parse_rejects_truncated_and_foreign_frames() {
        let frame = gratuitous_arp(MAC, V4, ArpOp::Reply);
        for len in 0..frame.len() {
            assert_eq!(parse_arp(&frame[..len]), None, "truncated to {len}");
        }
        // Wrong ethertype, hardware type, protocol type, lengths, operation.
        for (at, value) in [(13, 0x00), (15, 6), (16, 0x86), (18, 8), (19, 16), (21, 3)] {
            let mut bad = frame;
            bad[at] = value;
            assert_eq!(parse_arp(&bad), None, "byte {at} = {value}");
        }
        assert_eq!(parse_arp(&unsolicited_na(MAC, V6)), None);
    }

    #[test]
    fn na_checksum_matches_hand_computed_value() {
        // Pseudo-header: fd00 0010 (src, rest zero) + ff02 0001 (dst)
        //   + 0020 (length 32) + 003a (next header) = 0x1fc6d
        // ICMPv6: 8800 (type, code) + 2000 (flags) + fd00 0010 (target)
        //   + 0201 (option) + 0211 2233 4455 (mac) = 0x40c17 in total
        // Fold: 0x0c17 + 0x4 = 0x0c1b; complement = 0xf3e4.
        let frame = unsolicited_na(MAC, V6);
        assert_eq!(&frame[56..58], &[0xf3, 0xe4]);
    }

    #[test]
    fn na_has_expected_layout() {
        let frame = unsolicited_na(MAC, V6);
        assert_eq!(frame.len(), NA_FRAME_LEN);
        assert_eq!(&frame[0..6], &ETH_ALL_NODES);
        assert_eq!(&frame[6..12], &MAC);
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        assert_eq!(&frame[14..22], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
        assert_eq!(&frame[54..56], &[136, 0]);
        assert_eq!(&frame[58..62], &[0x20, 0, 0, 0]);
        assert_eq!(&frame[78..86], &[2, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
    }

    #[test]
    fn na_round_trip() {
        let na = parse_na(&unsolicited_na(MAC, V6)).unwrap();
        assert_eq!(
            na,
            NaPacket {
                eth_dst: ETH_ALL_NODES,
                eth_src: MAC,
                src_ip: V6,
                dst_ip: "ff02::1".parse().unwrap(),
                router: false,
                solicited: false,
                override_flag: true,
                target: V6,
                target_mac: Some(MAC),
            }
        );
    }

    #[test]
    fn na_parse_rejects_corruption_and_truncation() {
        let frame = unsolicited_na(MAC, V6);
        for len in 0..frame.len() {
            assert_eq!(parse_na(&frame[..len]), None, "truncated to {len}");
        }
        // Every single-bit flip in the ethertype, the IPv6 header from the
        // payload length on, or the ICMPv6 message must be caught, by a field
        // check or by the checksum. (Traffic class and flow label are not
        // covered by either, and need not be.)
        for byte in (12..14).chain(ETH_HEADER_LEN + 4..frame.len()) {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[byte] ^= 1 << bit;
                assert_eq!(parse_na(&bad), None, "bit {bit} of byte {byte}");
            }
        }
    }

    #[test]
    fn na_parse_rejects_zero_length_option() {
        let mut frame = unsolicited_na(MAC, V6);
        // Lower the option length word by one and raise the checksum field
        // by one: the sum stays valid and only the option length is wrong.
        frame[79] = 0;
        let sum = u16::from_be_bytes([frame[56], frame[57]]) + 1;
        frame[56..58].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse_na(&frame), None);
    }

    /// Sets the IPv6 payload length and the ICMPv6 checksum of a hand-edited
    /// neighbor discovery frame, so that only the edit itself is wrong.
    fn reseal(frame: &mut [u8]) {
        let icmp_start = ETH_HEADER_LEN + IPV6_HEADER_LEN;
        let len = frame.len() - icmp_start;
        frame[18..20].copy_from_slice(&(len as u16).to_be_bytes());
        frame[icmp_start + 2..icmp_start + 4].fill(0);
        let src = ipv6_at(frame, 22).unwrap();
        let dst = ipv6_at(frame, 38).unwrap();
        let sum = checksum(&[&pseudo_header(src, dst, len), &frame[icmp_start..]]);
        frame[icmp_start + 2..icmp_start + 4].copy_from_slice(&sum.to_be_bytes());
    }

    #[test]
    fn arp_probe_has_expected_bytes() {
        // RFC 5227, section 2.1.1: sender IP zero, target hardware zero.
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, // our mac
            0x08, 0x06, // ARP
            0x00, 0x01, 0x08, 0x00, 6, 4, // Ethernet, IPv4
            0x00, 0x01, // request
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0, 0, 0, // sender
            0, 0, 0, 0, 0, 0, 198, 18, 0, 10, // target
        ];
        assert_eq!(arp_probe(MAC, V4), expected);
        let probe = parse_arp(&arp_probe(MAC, V4)).unwrap();
        assert_eq!(probe.op, ArpOp::Request);
        assert_eq!(probe.sender_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!((probe.target_mac, probe.target_ip), ([0; 6], V4));
    }

    #[test]
    fn solicited_node_group_keeps_the_last_three_bytes() {
        let address: Ipv6Addr = "fd00:198:18::abcd:12:3456".parse().unwrap();
        let group: Ipv6Addr = "ff02::1:ff12:3456".parse().unwrap();
        assert_eq!(solicited_node(address), group);
        assert!(is_solicited_node(group));
        assert!(!is_solicited_node("ff02::1".parse().unwrap()));
        assert!(!is_solicited_node(address));
    }

    #[test]
    fn dad_solicitation_has_expected_layout() {
        let frame = dad_solicitation(MAC, V6);
        assert_eq!(frame.len(), NS_FRAME_LEN);
        assert_eq!(&frame[0..6], &[0x33, 0x33, 0xff, 0x00, 0x00, 0x10]);
        assert_eq!(&frame[6..12], &MAC);
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        assert_eq!(&frame[14..22], &[0x60, 0, 0, 0, 0, 24, 58, 255]);
        assert_eq!(&frame[22..38], &[0; 16], "source is ::");
        let group: Ipv6Addr = "ff02::1:ff00:10".parse().unwrap();
        assert_eq!(&frame[38..54], &group.octets());
        assert_eq!(&frame[54..56], &[135, 0]);
        assert_eq!(&frame[58..62], &[0; 4]);
        assert_eq!(&frame[62..78], &V6.octets());
    }

    #[test]
    fn dad_solicitation_checksum_matches_hand_computed_value() {
        // Pseudo-header: (src zero) + ff02 0001 ff00 0010 (dst)
        //   + 0018 (length 24) + 003a (next header) = 0x1fe65
        // ICMPv6: 8700 (type, code) + fd00 0010 (target) = 0x18410
        // Total 0x38275; fold: 0x8275 + 0x3 = 0x8278; complement = 0x7d87.
        let frame = dad_solicitation(MAC, V6);
        assert_eq!(&frame[56..58], &[0x7d, 0x87]);
    }

    #[test]
    fn ns_round_trip() {
        let ns = parse_ns(&dad_solicitation(MAC, V6)).unwrap();
        assert_eq!(
            ns,
            NsPacket {
                eth_dst: [0x33, 0x33, 0xff, 0x00, 0x00, 0x10],
                eth_src: MAC,
                src_ip: Ipv6Addr::UNSPECIFIED,
                dst_ip: "ff02::1:ff00:10".parse().unwrap(),
                target: V6,
                source_mac: None,
            }
        );
    }

    #[test]
    fn ns_and_na_parsers_keep_to_their_kind() {
        assert_eq!(parse_na(&dad_solicitation(MAC, V6)), None);
        assert_eq!(parse_ns(&unsolicited_na(MAC, V6)), None);
        assert_eq!(parse_arp(&dad_solicitation(MAC, V6)), None);
    }

    #[test]
    fn ns_parse_rejects_corruption_and_truncation() {
        let frame = dad_solicitation(MAC, V6);
        for len in 0..frame.len() {
            assert_eq!(parse_ns(&frame[..len]), None, "truncated to {len}");
        }
        for byte in (12..14).chain(ETH_HEADER_LEN + 4..frame.len()) {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[byte] ^= 1 << bit;
                assert_eq!(parse_ns(&bad), None, "bit {bit} of byte {byte}");
            }
        }
        let mut padded = frame.clone();
        padded.resize(90, 0);
        assert!(parse_ns(&padded).is_some(), "padding is ignored");
    }

    #[test]
    fn ns_parse_applies_the_unspecified_source_rules() {
        let option = [
            OPTION_SOURCE_LINK_ADDRESS,
            1,
            2,
            0x11,
            0x22,
            0x33,
            0x44,
            0x55,
        ];

        // RFC 4861, 7.1.1: from :: there is no source link-layer option ...
        let mut with_option = dad_solicitation(MAC, V6);
        with_option.extend_from_slice(&option);
        reseal(&mut with_option);
        assert_eq!(parse_ns(&with_option), None);

        // ... which an ordinary solicitation from an address may carry.
        let mut ordinary = with_option.clone();
        ordinary[22..38].copy_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        reseal(&mut ordinary);
        assert_eq!(parse_ns(&ordinary).unwrap().source_mac, Some(MAC));

        // From :: only to a solicited-node group.
        let mut to_all_nodes = dad_solicitation(MAC, V6);
        to_all_nodes[38..54].copy_from_slice(&"ff02::1".parse::<Ipv6Addr>().unwrap().octets());
        reseal(&mut to_all_nodes);
        assert_eq!(parse_ns(&to_all_nodes), None);

        // Never for a multicast target.
        let mut multicast_target = dad_solicitation(MAC, V6);
        multicast_target[62] = 0xff;
        reseal(&mut multicast_target);
        assert_eq!(parse_ns(&multicast_target), None);

        // The control: resealing an unedited frame keeps it valid.
        let mut unchanged = dad_solicitation(MAC, V6);
        reseal(&mut unchanged);
        assert_eq!(unchanged, dad_solicitation(MAC, V6));
    }

    #[test]
    fn parsers_survive_garbage() {
        for seed in 0..2000 {
            let len = (seed as usize * 7) % 128;
            let mut bytes = junk(seed, len);
            let _ = parse_arp(&bytes);
            let _ = parse_na(&bytes);
            let _ = parse_ns(&bytes);
            // Also junk behind a plausible header, to get past the first checks.
            if bytes.len() > 22 {
                bytes[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
                bytes[14] = 0x60;
                bytes[20] = NEXT_HEADER_ICMPV6;
                bytes[21] = ND_HOP_LIMIT;
                let _ = parse_na(&bytes);
                let _ = parse_ns(&bytes);
            }
        }
    }
}
