//! Arbitrary frames into the ARP, Neighbor Advertisement and Neighbor Solicitation
//! parsers, and build and parse round trips with a MAC and addresses taken from the
//! input.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use failoverd::wire::arp::{
    ARP_FRAME_LEN, ArpOp, arp_probe, dad_solicitation, gratuitous_arp, parse_arp, parse_na,
    parse_ns, solicited_node, unsolicited_na,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(arp) = parse_arp(data) {
        // Only the first ARP_FRAME_LEN bytes count; the rest is Ethernet padding.
        assert_eq!(parse_arp(&data[..ARP_FRAME_LEN]), Some(arp));
    }
    let _ = parse_na(data);
    if let Some(ns) = parse_ns(data) {
        // What parse_ns promises about solicitations from the unspecified address.
        if ns.src_ip.is_unspecified() {
            assert_eq!(ns.source_mac, None);
            assert_eq!(solicited_node(ns.dst_ip), ns.dst_ip);
        }
        assert!(!ns.target.is_multicast());
    }

    let Some((mac, rest)) = data.split_first_chunk::<6>() else {
        return;
    };
    let Some((v6, rest)) = rest.split_first_chunk::<16>() else {
        return;
    };
    let v4 = Ipv4Addr::new(v6[0], v6[1], v6[2], v6[3]);
    let v6 = Ipv6Addr::from(*v6);
    let op = match rest.first() {
        Some(byte) if byte & 1 == 1 => ArpOp::Reply,
        _ => ArpOp::Request,
    };

    let arp = parse_arp(&gratuitous_arp(*mac, v4, op)).expect("our own ARP frame parses");
    assert_eq!((arp.op, arp.eth_src, arp.sender_mac), (op, *mac, *mac));
    assert_eq!((arp.sender_ip, arp.target_ip), (v4, v4));
    assert_eq!(arp.eth_dst, [0xff; 6]);
    let target_mac = match op {
        ArpOp::Request => [0; 6],
        ArpOp::Reply => *mac,
    };
    assert_eq!(arp.target_mac, target_mac);

    let frame = unsolicited_na(*mac, v6);
    let na = parse_na(&frame).expect("our own NA frame parses");
    assert_eq!((na.eth_src, na.src_ip, na.target), (*mac, v6, v6));
    assert_eq!(na.target_mac, Some(*mac));
    assert!(na.override_flag && !na.solicited && !na.router);
    // Ethernet padding after the frame is ignored.
    let mut padded = frame.clone();
    padded.extend_from_slice(rest);
    assert_eq!(parse_na(&padded), Some(na));

    let probe = parse_arp(&arp_probe(*mac, v4)).expect("our own ARP probe parses");
    assert_eq!(
        (probe.op, probe.eth_src, probe.sender_mac),
        (ArpOp::Request, *mac, *mac)
    );
    assert_eq!(
        (probe.sender_ip, probe.target_ip),
        (Ipv4Addr::UNSPECIFIED, v4)
    );
    assert_eq!(probe.target_mac, [0; 6]);

    // A multicast target is no solicitation's; every other address makes one.
    let ns = parse_ns(&dad_solicitation(*mac, v6));
    if v6.is_multicast() {
        assert_eq!(ns, None);
    } else {
        let ns = ns.expect("our own solicitation parses");
        assert_eq!((ns.eth_src, ns.target, ns.source_mac), (*mac, v6, None));
        assert_eq!(
            (ns.src_ip, ns.dst_ip),
            (Ipv6Addr::UNSPECIFIED, solicited_node(v6))
        );
    }
});
