//! Arbitrary datagrams into the ICMP echo reply parsers and the Internet checksum,
//! and a request, reply and parse round trip with an id and payload from the input.
#![no_main]

use failoverd::wire::icmp::{
    EchoId, checksum, echo_request_v4, echo_request_v6, parse_echo_reply_v4, parse_echo_reply_v6,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_echo_reply_v4(data);
    let _ = parse_echo_reply_v6(data);

    // The checksum of the parts is that of the whole, wherever it is split.
    let whole = checksum(&[data]);
    if let Some(&first) = data.first() {
        let (a, b) = data.split_at(usize::from(first) % data.len());
        assert_eq!(checksum(&[a, b]), whole);
    }

    let Some((id, payload)) = data.split_first_chunk::<4>() else {
        return;
    };
    let id = EchoId {
        ident: u16::from_be_bytes([id[0], id[1]]),
        seq: u16::from_be_bytes([id[2], id[3]]),
    };

    let request = echo_request_v4(id, payload);
    assert_eq!(
        checksum(&[&request]),
        0,
        "a filled-in checksum sums to zero"
    );
    let mut datagram = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1];
    datagram.resize(20, 0);
    datagram.extend_from_slice(&request);
    assert_eq!(
        parse_echo_reply_v4(&datagram),
        None,
        "a request is no reply"
    );
    // The reply a peer sends: type 0, checksum made anew.
    let reply = &mut datagram[20..];
    reply[0] = 0;
    reply[2..4].fill(0);
    let sum = checksum(&[reply]);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(parse_echo_reply_v4(&datagram), Some(id));

    let mut request = echo_request_v6(id, payload);
    assert_eq!(parse_echo_reply_v6(&request), None, "a request is no reply");
    request[0] = 129;
    assert_eq!(parse_echo_reply_v6(&request), Some(id));
});
