//! The kernel sorts each link's datagrams by source address before they are queued:
//! those from a peer's address on the link go to one socket, all others to a second
//! one. Both sockets share the link's address and port (SO_REUSEPORT), and a
//! classic BPF program attached to the pair (SO_ATTACH_REUSEPORT_CBPF) picks the
//! socket. So a flood from addresses that are no peer's fills the second socket's
//! buffer and never the first: the peers' heartbeats on a flooded link still get
//! through, where with one socket they were dropped with the junk once its buffer
//! was full. A flood that forges a peer's address is not sorted out; the tag check
//! rejects it, with the link's budget (see `receive`).
//!
//! While this node is a quiet standby, the program also sorts its active peer's
//! routine heartbeats, those whose first bytes repeat the peer's standing, to a
//! third socket, which the loop reads only when something else wakes it (see
//! `receive`).
//!
//! This module builds and attaches the program; binding is `listen`'s.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;

use libc::sock_filter;

use nix::{setsockopt_impl, sockopt_impl};

use crate::wire::heartbeat::HEADER_LEN;

/// The position in the group of the socket for the peers' datagrams: bound first.
pub const PEERS: u32 = 0;
/// The position of the socket for everyone else's: bound second.
pub const STRANGERS: u32 = 1;
/// The position of the socket for a quiet standby's routine heartbeats: bound
/// third, and read only when the loop wakes for something else (see `receive`).
pub const ROUTINE: u32 = 2;

/// Which of the peers' datagrams are routine: those from `from` whose first bytes
/// are `header` (an active peer repeating its standing, see
/// `heartbeat::Standing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routine {
    pub from: IpAddr,
    pub header: [u8; HEADER_LEN],
}

/// Where the source address starts in the IP header, as an offset the program can
/// load from: classic BPF reaches the network header at `SKF_NET_OFF`, whatever the
/// protocol headers the kernel has pulled.
fn source_offset(address: IpAddr) -> i32 {
    libc::SKF_NET_OFF
        + match address {
            IpAddr::V4(_) => 12,
            IpAddr::V6(_) => 8,
        }
}

/// The source address as the 32-bit words the program compares, in the order of
/// the header (classic BPF loads words in network byte order).
fn words(address: IpAddr) -> Vec<u32> {
    match address {
        IpAddr::V4(v4) => vec![u32::from(v4)],
        IpAddr::V6(v6) => v6
            .octets()
            .chunks_exact(4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
            .collect(),
    }
}

/// The program: [`PEERS`] for a datagram from one of `peers`, [`STRANGERS`] for any
/// other, and [`ROUTINE`] for the peers' datagrams that `routine` names. One block
/// per peer: load each word of the source address and compare it, on to the next
/// peer at the first that differs. The routine peer's block then compares the
/// payload's first words with the header, [`PEERS`] at the first that differs.
pub fn program(peers: &[IpAddr], routine: Option<&Routine>) -> Vec<sock_filter> {
    let mut code = Vec::new();
    for &peer in peers {
        let tail = match routine {
            Some(routine) if routine.from == peer => routine_tail(&routine.header),
            _ => vec![instruction(RETURN, 0, 0, PEERS)],
        };
        let words = words(peer);
        let n = words.len();
        for (i, word) in words.into_iter().enumerate() {
            let offset = source_offset(peer) + 4 * i as i32;
            // The program reads the negative offset as the kernel does: as a u32.
            code.push(instruction(LOAD_WORD, 0, 0, offset as u32));
            // On a mismatch, skip this peer's remaining loads and compares and its
            // tail: one jump lands on the next peer's first load.
            let rest = u8::try_from(2 * (n - 1 - i) + tail.len())
                .expect("at most four words and a tail of eight: a jump of at most 14");
            code.push(instruction(JUMP_IF_EQUAL, 0, rest, word));
        }
        code.extend(tail);
    }
    code.push(instruction(RETURN, 0, 0, STRANGERS));
    code
}

const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JUMP_IF_EQUAL: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The end of the routine peer's block: [`ROUTINE`] if the payload starts with
/// `header`, else [`PEERS`]. The kernel runs a reuseport program with the packet's
/// data at the UDP payload, so offset 0 is the payload's first byte; a load past
/// the end of a shorter datagram ends the program with 0, which is [`PEERS`].
fn routine_tail(header: &[u8; HEADER_LEN]) -> Vec<sock_filter> {
    let mut tail = Vec::new();
    let words: Vec<u32> = (header.chunks_exact(4))
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    let n = words.len();
    for (i, word) in words.into_iter().enumerate() {
        tail.push(instruction(LOAD_WORD, 0, 0, 4 * i as u32));
        // A mismatch skips the remaining loads and compares and the ROUTINE return.
        let rest = u8::try_from(2 * (n - 1 - i) + 1).expect("three words: a jump of at most 5");
        tail.push(instruction(JUMP_IF_EQUAL, 0, rest, word));
    }
    tail.push(instruction(RETURN, 0, 0, ROUTINE));
    tail.push(instruction(RETURN, 0, 0, PEERS));
    tail
}

fn instruction(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Attaches `program` to the reuseport group of `socket`: every socket bound to the
/// same address and port with SO_REUSEPORT, in the order they were bound.
pub fn attach(socket: &impl AsFd, program: &[sock_filter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .ok()
        .filter(|&len| i32::from(len) <= libc::BPF_MAXINSNS)
        .ok_or_else(|| io::Error::other("too many peers on the link for a BPF program"))?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // The kernel copies the program and keeps no pointer into it.
    nix::sys::socket::setsockopt(socket, AttachReuseportCbpf, &fprog).map_err(io::Error::from)
}

sockopt_impl!(
    /// SO_ATTACH_REUSEPORT_CBPF (Linux 4.5 and later), which nix does not name.
    AttachReuseportCbpf,
    SetOnly,
    libc::SOL_SOCKET,
    libc::SO_ATTACH_REUSEPORT_CBPF,
    libc::sock_fprog
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_is_a_block_of_loads_and_compares_that_falls_through_to_the_next() {
        let peers: Vec<IpAddr> = vec![
            "198.18.0.11".parse().unwrap(),
            "198.18.0.13".parse().unwrap(),
        ];
        let code = program(&peers, None);
        assert_eq!(code.len(), 7);
        // First peer: load, compare (mismatch skips the return), return PEERS.
        assert_eq!(code[0].k, (libc::SKF_NET_OFF + 12) as u32);
        assert_eq!((code[1].k, code[1].jt, code[1].jf), (0xc612_000b, 0, 1));
        assert_eq!(code[2].k, PEERS);
        assert_eq!(code[4].k, 0xc612_000d);
        assert_eq!(code[6].k, STRANGERS);
    }

    #[test]
    fn an_ipv6_peer_is_compared_word_by_word_and_any_mismatch_skips_it_whole() {
        let peer: IpAddr = "2001:db8::1:2".parse().unwrap();
        let code = program(&[peer], None);
        // Four loads and compares, the return for the peer, the one for strangers.
        assert_eq!(code.len(), 10);
        let compares: Vec<(u32, u8)> = code
            .iter()
            .skip(1)
            .step_by(2)
            .take(4)
            .map(|c| (c.k, c.jf))
            .collect();
        assert_eq!(
            compares,
            [(0x2001_0db8, 7), (0, 5), (0, 3), (0x0001_0002, 1)]
        );
        for (i, load) in code.iter().step_by(2).take(4).enumerate() {
            assert_eq!(load.k, (libc::SKF_NET_OFF + 8 + 4 * i as i32) as u32);
        }
        assert_eq!((code[8].k, code[9].k), (PEERS, STRANGERS));
    }

    #[test]
    fn the_routine_peer_s_block_ends_in_a_comparison_of_the_payload_s_first_words() {
        let peers: Vec<IpAddr> = vec![
            "198.18.0.11".parse().unwrap(),
            "198.18.0.13".parse().unwrap(),
        ];
        let header = *b"FOHB\x01\x00\x02\x00\x00\x00\x00\xc8";
        let routine = Routine {
            from: peers[1],
            header,
        };
        let code = program(&peers, Some(&routine));
        // The first peer as without a routine: load, compare, return PEERS.
        assert_eq!(code[2].k, PEERS);
        // The second: its address, then the header word by word, a mismatch
        // landing on the PEERS return after the ROUTINE one.
        assert_eq!((code[4].k, code[4].jf), (0xc612_000d, 8));
        let tail = &code[5..13];
        let compares: Vec<(u32, u32, u8)> = tail
            .chunks_exact(2)
            .take(3)
            .map(|pair| (pair[0].k, pair[1].k, pair[1].jf))
            .collect();
        assert_eq!(
            compares,
            [
                (0, 0x464f_4842, 5),
                (4, 0x0100_0200, 3),
                (8, 0x0000_00c8, 1)
            ]
        );
        assert_eq!((tail[6].k, tail[7].k), (ROUTINE, PEERS));
        assert_eq!(code[13].k, STRANGERS);
        assert_eq!(code.len(), 14);
    }

    #[test]
    fn without_peers_everything_goes_to_the_strangers() {
        let code = program(&[], None);
        assert_eq!(code.len(), 1);
        assert_eq!(code[0].k, STRANGERS);
    }
}
