//! Structured heartbeats, any key: encode, then decode.
//!
//! The codec's contract, stated exactly: a heartbeat decodes to itself if and only if
//! both names are non-empty and, with the votes, fit in the largest packet (`MAX_LEN`);
//! anything else is refused, never mangled. A single flipped bit and a different key
//! are always refused.
#![no_main]

use arbitrary::Arbitrary;
use failoverd::wire::heartbeat::{
    DecodeError, Heartbeat, MAX_LEN, MIN_LEN, Signer, Votes, WireState,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    key: Vec<u8>,
    link: u8,
    state: State,
    flags: u8,
    health: u8,
    priority: u16,
    incarnation: u64,
    sequence: u64,
    fingerprint: [u8; 8],
    nonce: u64,
    echo: u64,
    votes: Option<(u64, u32, bool)>,
    quiet: bool,
    wake: bool,
    cluster: String,
    node: String,
    /// A bit of the packet to flip, counted modulo its length in bits.
    flip: Option<u16>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum State {
    Starting,
    Standby,
    Active,
    Fault,
}

/// Bytes of a packet besides the two names.
const OVERHEAD: usize = MIN_LEN - 2;

fuzz_target!(|input: Input| {
    let heartbeat = Heartbeat {
        link: input.link,
        state: match input.state {
            State::Starting => WireState::Starting,
            State::Standby => WireState::Standby,
            State::Active => WireState::Active,
            State::Fault => WireState::Fault,
        },
        flags: input.flags,
        health: input.health,
        priority: input.priority,
        incarnation: input.incarnation,
        sequence: input.sequence,
        fingerprint: input.fingerprint,
        nonce: input.nonce,
        echo: input.echo,
        votes: input.votes.map(|(ack, heard, held)| Votes { ack, heard, held }),
        quiet: input.quiet,
        wake: input.wake,
        cluster: input.cluster.into(),
        node: input.node.into(),
    };
    let signer = Signer::new(&input.key);
    let mut packet = vec![0xa5; 3];
    heartbeat.encode(&signer, &mut packet);
    // Encoding appends and leaves what was in the buffer alone.
    assert_eq!(packet.drain(..3).as_slice(), [0xa5; 3]);

    let votes = if heartbeat.votes.is_some() { 12 } else { 0 };
    let payload = heartbeat.cluster.len() + heartbeat.node.len() + votes;
    let fits = OVERHEAD + payload <= MAX_LEN;
    let valid = !heartbeat.cluster.is_empty() && !heartbeat.node.is_empty() && fits;
    let decoded = Heartbeat::decode(&packet, &signer);
    if valid {
        assert_eq!(packet.len(), OVERHEAD + payload);
        assert_eq!(decoded.as_ref(), Ok(&heartbeat));
    } else {
        assert!(decoded.is_err(), "{heartbeat:?} decoded from {packet:?}");
        if !fits {
            assert_eq!(decoded, Err(DecodeError::Length));
        }
    }

    if let Some(bit) = input.flip {
        let bit = usize::from(bit) % (packet.len() * 8);
        let mut flipped = packet.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            Heartbeat::decode(&flipped, &signer).is_err(),
            "bit {bit} flipped"
        );
    }

    // Keys up to a block long are padded with zeros, so only a changed byte, not an
    // appended zero, is sure to make another key.
    if let Some(first) = input.key.first() {
        let mut other = input.key.clone();
        other[0] = first ^ 1;
        let decoded = Heartbeat::decode(&packet, &Signer::new(&other));
        if valid {
            assert_eq!(decoded, Err(DecodeError::Tag), "another key");
        }
        assert!(decoded.is_err(), "another key");
    }
});
