//! ICMP echo (ping) messages for the gateway probe, and the Internet checksum.
//!
//! Owns the byte layout of echo requests and replies for ICMPv4 and ICMPv6 and
//! the identifier/sequence pair that ties a reply to its request. Sockets,
//! timing and the choice of identifier belong to `daemon::gateway`.

/// ICMPv4 echo reply type.
const V4_ECHO_REPLY: u8 = 0;
/// ICMPv4 echo request type.
const V4_ECHO_REQUEST: u8 = 8;
/// ICMPv6 echo request type.
const V6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 echo reply type.
const V6_ECHO_REPLY: u8 = 129;
/// IP protocol number of ICMPv4.
const PROTO_ICMP: u8 = 1;
/// Type, code, checksum, identifier and sequence.
const ECHO_HEADER_LEN: usize = 8;

/// What ties an echo reply to the request that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EchoId {
    /// Chosen per prober so replies meant for other programs are ignored.
    pub ident: u16,
    /// Distinguishes probes of one prober.
    pub seq: u16,
}

/// Builds an ICMPv4 echo request carrying `payload`, checksum filled in.
pub fn echo_request_v4(id: EchoId, payload: &[u8]) -> Vec<u8> {
    let mut message = echo_message(V4_ECHO_REQUEST, id, payload);
    let sum = checksum(&[&message]);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    message
}

/// Builds an ICMPv6 echo request carrying `payload`.
///
/// The checksum is left zero: it covers a pseudo-header with the source
/// address, which only the kernel knows, and Linux always computes it for raw
/// ICMPv6 sockets (RFC 3542, section 3.1).
pub fn echo_request_v6(id: EchoId, payload: &[u8]) -> Vec<u8> {
    echo_message(V6_ECHO_REQUEST, id, payload)
}

/// Parses what a raw ICMPv4 socket returns: an IPv4 header followed by the
/// ICMP message. Returns the echo id if it is a well-formed echo reply with a
/// valid checksum; `None` for anything else, including other ICMP types.
pub fn parse_echo_reply_v4(datagram: &[u8]) -> Option<EchoId> {
    let first = *datagram.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 || datagram.get(9) != Some(&PROTO_ICMP) {
        return None;
    }
    // The total-length field is not used to trim: the socket hands over
    // exactly one datagram, and some stacks rewrite that field on receive.
    let message = datagram.get(header_len..)?;
    if checksum(&[message]) != 0 {
        return None;
    }
    parse_echo(message, V4_ECHO_REPLY)
}

/// Parses what a raw ICMPv6 socket returns: the ICMPv6 message alone. Returns
/// the echo id if it is an echo reply.
///
/// The checksum is not checked here: the kernel verifies it before a raw
/// ICMPv6 socket sees the message, and checking again would need our own
/// address for the pseudo-header.
pub fn parse_echo_reply_v6(message: &[u8]) -> Option<EchoId> {
    parse_echo(message, V6_ECHO_REPLY)
}

/// Internet checksum (RFC 1071) over the concatenation of `parts`.
///
/// Over a message whose checksum field is already filled in, a correct
/// checksum yields zero.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    // Byte-wise, so parts of odd length join up as if they were one buffer.
    // u64 cannot overflow for any buffer that fits in memory.
    let mut sum: u64 = 0;
    let mut high = true;
    for &byte in parts.iter().flat_map(|part| part.iter()) {
        sum += if high {
            u64::from(byte) << 8
        } else {
            u64::from(byte)
        };
        high = !high;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves sum <= 0xffff, so the cast keeps every bit.
    !(sum as u16)
}

fn echo_message(kind: u8, id: EchoId, payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(ECHO_HEADER_LEN + payload.len());
    message.extend_from_slice(&[kind, 0, 0, 0]);
    message.extend_from_slice(&id.ident.to_be_bytes());
    message.extend_from_slice(&id.seq.to_be_bytes());
    message.extend_from_slice(payload);
    message
}

fn parse_echo(message: &[u8], want_type: u8) -> Option<EchoId> {
    let header = message.get(..ECHO_HEADER_LEN)?;
    if header[0] != want_type || header[1] != 0 {
        return None;
    }
    Some(EchoId {
        ident: u16::from_be_bytes([header[4], header[5]]),
        seq: u16::from_be_bytes([header[6], header[7]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: EchoId = EchoId {
        ident: 0x1234,
        seq: 0x0001,
    };

    /// A minimal IPv4 header (no options) in front of `message`, as a raw
    /// socket delivers it. The IP header checksum is left zero: the parser
    /// does not look at it, the kernel already did.
    fn with_ipv4_header(message: &[u8], header_len: usize) -> Vec<u8> {
        let mut datagram = vec![0u8; header_len];
        datagram[0] = 0x40 | (header_len / 4) as u8;
        datagram[9] = PROTO_ICMP;
        datagram.extend_from_slice(message);
        datagram
    }

    /// Turns a request into the reply a peer would send: new type, new
    /// checksum, same id and payload.
    fn reply_from(request: &[u8]) -> Vec<u8> {
        let mut reply = request.to_vec();
        reply[0] = V4_ECHO_REPLY;
        reply[2..4].fill(0);
        let sum = checksum(&[&reply]);
        reply[2..4].copy_from_slice(&sum.to_be_bytes());
        reply
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: these bytes sum to 0xddf2, checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&[&data]), 0x220d);
        // Split at odd offsets, the parts must sum as one buffer.
        assert_eq!(checksum(&[&data[..3], &data[3..5], &data[5..]]), 0x220d);
    }

    #[test]
    fn checksum_of_odd_length_pads_with_zero() {
        assert_eq!(checksum(&[&[0xab]]), !0xab00);
    }

    #[test]
    fn v4_request_matches_known_bytes() {
        // Type 8, id 0x1234, seq 1, payload "ab": the words are
        // 0x0800 + 0x1234 + 0x0001 + 0x6162 = 0x7b97, complement 0x8468.
        let request = echo_request_v4(ID, b"ab");
        assert_eq!(
            request,
            [0x08, 0x00, 0x84, 0x68, 0x12, 0x34, 0x00, 0x01, b'a', b'b']
        );
        assert_eq!(checksum(&[&request]), 0);
    }

    #[test]
    fn v4_reply_round_trip_skips_ip_header() {
        let reply = reply_from(&echo_request_v4(ID, b"failoverd"));
        assert_eq!(parse_echo_reply_v4(&with_ipv4_header(&reply, 20)), Some(ID));
        // IP options make the header longer; IHL says by how much.
        assert_eq!(parse_echo_reply_v4(&with_ipv4_header(&reply, 24)), Some(ID));
    }

    #[test]
    fn v4_parse_rejects_requests_bad_checksums_and_other_protocols() {
        let request = echo_request_v4(ID, b"x");
        assert_eq!(parse_echo_reply_v4(&with_ipv4_header(&request, 20)), None);

        let mut reply = reply_from(&request);
        reply[8] ^= 0xff;
        assert_eq!(parse_echo_reply_v4(&with_ipv4_header(&reply, 20)), None);

        let mut udp = with_ipv4_header(&reply_from(&request), 20);
        udp[9] = 17;
        assert_eq!(parse_echo_reply_v4(&udp), None);
    }

    #[test]
    fn v4_parse_survives_garbage() {
        let reply = with_ipv4_header(&reply_from(&echo_request_v4(ID, b"abc")), 20);
        for len in 0..reply.len() {
            // Shorter than IP header + echo header must fail; longer ones
            // only fail the checksum, never panic.
            let parsed = parse_echo_reply_v4(&reply[..len]);
            assert!(parsed.is_none(), "truncated to {len} parsed");
        }
        // IHL larger than the buffer, IHL below the minimum, version 6.
        assert_eq!(parse_echo_reply_v4(&[0x4f, 0, 0, 0]), None);
        assert_eq!(parse_echo_reply_v4(&[0x41; 40]), None);
        assert_eq!(parse_echo_reply_v4(&[0x65; 40]), None);
        for seed in 0u8..=255 {
            let junk: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(seed) ^ seed).collect();
            let _ = parse_echo_reply_v4(&junk);
        }
    }

    #[test]
    fn v6_request_leaves_checksum_to_kernel() {
        let request = echo_request_v6(ID, b"ab");
        assert_eq!(
            request,
            [128, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01, b'a', b'b']
        );
    }

    #[test]
    fn v6_reply_round_trip() {
        let mut reply = echo_request_v6(ID, b"payload");
        reply[0] = V6_ECHO_REPLY;
        assert_eq!(parse_echo_reply_v6(&reply), Some(ID));
        assert_eq!(parse_echo_reply_v6(&reply[..ECHO_HEADER_LEN]), Some(ID));
    }

    #[test]
    fn v6_parse_rejects_other_types_and_short_input() {
        let request = echo_request_v6(ID, b"");
        assert_eq!(parse_echo_reply_v6(&request), None);
        let mut reply = request.clone();
        reply[0] = V6_ECHO_REPLY;
        reply[1] = 1;
        assert_eq!(parse_echo_reply_v6(&reply), None);
        for len in 0..ECHO_HEADER_LEN {
            assert_eq!(parse_echo_reply_v6(&[V6_ECHO_REPLY; 8][..len]), None);
        }
    }
}
