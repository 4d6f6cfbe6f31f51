//! IPv4 and UDP headers around a heartbeat, for sending it through a raw socket
//! (see `daemon::send`): the same datagram a UDP socket would send, headers
//! included, written here rather than by the kernel's UDP layer.

use std::net::SocketAddrV4;

use super::icmp::checksum;

/// The IPv4 header without options, then the UDP header.
pub const HEADERS_LEN: usize = 20 + 8;

/// IPv4's "Don't Fragment" flag, in the flags and fragment offset word.
const DONT_FRAGMENT: u16 = 0x4000;
const PROTOCOL_UDP: u8 = 17;

/// Writes into `out` the IPv4 datagram that carries `payload` from `from` to `to`
/// over UDP, as a heartbeat socket sends it: Don't Fragment set, IP ID 0 (RFC
/// 6864: a datagram that is never split needs no ID), type of service 0, time to
/// live `ttl`, both checksums. Returns its length, or `None` if `out` is too short
/// or the datagram would be longer than IPv4 allows.
pub fn emit(
    from: SocketAddrV4,
    to: SocketAddrV4,
    ttl: u8,
    payload: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let total = HEADERS_LEN + payload.len();
    let total_word = u16::try_from(total).ok()?;
    let udp_word = total_word - 20;
    let out = out.get_mut(..total)?;
    let (ip, rest) = out.split_at_mut(20);
    let (udp, body) = rest.split_at_mut(8);
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&total_word.to_be_bytes());
    ip[4..6].copy_from_slice(&[0, 0]);
    ip[6..8].copy_from_slice(&DONT_FRAGMENT.to_be_bytes());
    ip[8] = ttl;
    ip[9] = PROTOCOL_UDP;
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&from.ip().octets());
    ip[16..20].copy_from_slice(&to.ip().octets());
    let sum = checksum(&[ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    udp[0..2].copy_from_slice(&from.port().to_be_bytes());
    udp[2..4].copy_from_slice(&to.port().to_be_bytes());
    udp[4..6].copy_from_slice(&udp_word.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    body.copy_from_slice(payload);
    let pseudo = pseudo_header(from, to, udp_word);
    // A sum of zero is sent as all ones: zero says "no checksum" (RFC 768).
    let sum = match checksum(&[&pseudo, udp, body]) {
        0 => 0xffff,
        sum => sum,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    Some(total)
}

/// The pseudo-header the UDP checksum covers (RFC 768).
fn pseudo_header(from: SocketAddrV4, to: SocketAddrV4, udp_len: u16) -> [u8; 12] {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&from.ip().octets());
    pseudo[4..8].copy_from_slice(&to.ip().octets());
    pseudo[9] = PROTOCOL_UDP;
    pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
    pseudo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn a_datagram_has_the_headers_a_heartbeat_socket_gives_it() {
        let mut out = [0u8; 64];
        let len = emit(
            addr("198.19.0.1:694"),
            addr("198.19.0.2:694"),
            64,
            b"FOHB",
            &mut out,
        )
        .unwrap();
        // Written out by hand from RFC 791 and RFC 768, checksums included.
        let expected: [u8; 32] = [
            0x45, 0x00, 0x00, 0x20, // version, IHL, TOS, total length 32
            0x00, 0x00, 0x40, 0x00, // ID 0, Don't Fragment, offset 0
            0x40, 0x11, 0xae, 0xa3, // TTL 64, UDP, header checksum
            198, 19, 0, 1, // source
            198, 19, 0, 2, // destination
            0x02, 0xb6, 0x02, 0xb6, // ports 694
            0x00, 0x0c, 0xdf, 0xae, // UDP length 12, checksum
            b'F', b'O', b'H', b'B',
        ];
        assert_eq!(&out[..len], &expected);
    }

    #[test]
    fn both_checksums_verify_as_a_receiver_checks_them() {
        let payload: Vec<u8> = (0..=200).collect();
        let mut out = [0u8; 256];
        let (from, to) = (addr("198.18.0.11:694"), addr("198.18.0.12:40000"));
        let len = emit(from, to, 255, &payload, &mut out).unwrap();
        assert_eq!(len, HEADERS_LEN + payload.len());
        assert_eq!(checksum(&[&out[..20]]), 0, "IPv4 header");
        let udp = &out[20..len];
        let pseudo = pseudo_header(from, to, u16::try_from(udp.len()).unwrap());
        assert_eq!(checksum(&[&pseudo, udp]), 0, "UDP");
        assert_eq!(&out[HEADERS_LEN..len], &payload[..]);
    }

    #[test]
    fn a_udp_sum_of_zero_goes_out_as_all_ones() {
        // Look for a payload whose sum folds to zero, then check its field.
        let (from, to) = (addr("198.18.0.11:694"), addr("198.18.0.12:694"));
        let mut out = [0u8; 64];
        let found = (0..=u16::MAX).find_map(|word| {
            let payload = word.to_be_bytes();
            emit(from, to, 64, &payload, &mut out)?;
            let udp = &out[20..30];
            let zeroed = [&udp[..6], &[0, 0], &udp[8..]].concat();
            (checksum(&[&pseudo_header(from, to, 10), &zeroed]) == 0).then_some(())
        });
        assert!(found.is_some(), "some payload sums to zero");
        assert_eq!(&out[26..28], &[0xff, 0xff]);
    }

    #[test]
    fn a_buffer_too_short_is_refused_not_overrun() {
        let mut out = [0u8; HEADERS_LEN + 3];
        let (from, to) = (addr("198.18.0.11:694"), addr("198.18.0.12:694"));
        assert_eq!(emit(from, to, 64, b"four", &mut out), None);
        assert_eq!(emit(from, to, 64, b"two", &mut out), Some(HEADERS_LEN + 3));
        let huge = vec![0u8; 70_000];
        let mut big = vec![0u8; 80_000];
        assert_eq!(emit(from, to, 64, &huge, &mut big), None);
    }
}
