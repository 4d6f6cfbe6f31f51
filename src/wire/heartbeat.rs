//! The heartbeat packet: a fixed, versioned binary layout signed with HMAC-SHA256.
//!
//! Layout (all integers big-endian; docs/wire-format.md carries the same table):
//!
//! | offset | size | field                                             |
//! |--------|------|---------------------------------------------------|
//! | 0      | 4    | magic `FOHB`                                      |
//! | 4      | 1    | version: 1, or 2 with votes (below)               |
//! | 5      | 1    | link index the copy was sent on                   |
//! | 6      | 1    | state (0 starting, 1 standby, 2 active, 3 fault)  |
//! | 7      | 1    | flags: see the `FLAG_*` constants                 |
//! | 8      | 1    | health: number of failing health checks           |
//! | 9      | 1    | pace and vote flags (below)                       |
//! | 10     | 2    | priority                                          |
//! | 12     | 8    | incarnation (start time of the sender, µs)        |
//! | 20     | 8    | sequence number within the incarnation            |
//! | 28     | 8    | configuration fingerprint                         |
//! | 36     | 8    | nonce: the sender's current freshness nonce       |
//! | 44     | 8    | echo: the receiver's nonce as last heard, or 0    |
//! | 52     | 1+n  | cluster name (length, bytes)                      |
//! |        | 1+m  | node name (length, bytes)                         |
//! |        | 32   | HMAC-SHA256 over every byte before it             |
//!
//! Version 2, sent only by clusters of three or more nodes (a witness, or three
//! nodes that may hold the VIPs), carries the votes the majority rule needs between
//! the echo and the names:
//!
//! | offset | size | field                                             |
//! |--------|------|---------------------------------------------------|
//! | 52     | 8    | ack: the receiver's latest sequence accepted, or 0 |
//! | 60     | 4    | heard: bit i set if the sender hears node i alive  |
//! | 64     | 1+n  | cluster name, then node name and tag as above     |
//!
//! and uses bit 0 of byte 9 (`VOTE_HELD`) to say the sender would take over but the
//! split-brain guard holds it back (the majority rule, a live VIP, a failed fence),
//! so its peers do not wait for it.
//!
//! Byte 9, bit 1 (`QUIET`), in either version: the sender is a standby that hears an
//! active node and sends its next heartbeats only `timing.standby_interval` after
//! these. Bit 2 (`WAKE`), in either version: the sender is active and a failback
//! ordered on it waits for a heartbeat from a standby that is not quiet, so a quiet
//! standby beats every interval again. Every other bit of byte 9 is 0.
//!
//! Node i is the i-th `[[node]]` of the file (from 0), which the fingerprint makes
//! the same on every node; the sender's own bit is not set. A witness says standby
//! (1) in the state byte; its peers know it is a witness from the file. A two-node
//! cluster keeps sending version 1, so the format it uses did not change; a node
//! decodes both.
//!
//! Decoding checks the tag before it trusts any field, and never panics.
//!
//! The echo is what makes a recorded packet useless later: a receiver trusts a
//! heartbeat only if it echoes one of the receiver's two latest nonces, which are
//! random and change every `dead` period, at every claim and at every start, so the
//! packet was made after the sender heard the receiver recently. The incarnation
//! only grows from one start of the sender to the next; what a receiver makes of an
//! older one, and of packets that echo nothing recent, is `machine::peer`'s.

use std::borrow::Cow;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const MAGIC: [u8; 4] = *b"FOHB";
pub const VERSION: u8 = 1;
/// The version that carries [`Votes`].
pub const VERSION_VOTES: u8 = 2;
pub const TAG_LEN: usize = 32;
const FIXED_LEN: usize = 52;
const VOTES_LEN: usize = 12;
/// Largest packet we ever send: votes and two 64-byte names.
pub const MAX_LEN: usize = FIXED_LEN + VOTES_LEN + 2 * (1 + 64) + TAG_LEN;
/// Nodes a cluster may have: one bit each in [`Votes::heard`].
pub const MAX_NODES: usize = 32;
/// Smallest well-formed packet: two 1-byte names.
pub const MIN_LEN: usize = FIXED_LEN + 2 * 2 + TAG_LEN;

/// The sender still holds the VIPs but is releasing them: wait for it.
pub const FLAG_RELEASING: u8 = 0b0_0001;
/// The sender is shutting down: do not wait `dead` for it once it holds nothing.
pub const FLAG_LEAVING: u8 = 0b0_0010;
/// The sender is in maintenance: nobody makes automatic moves while it is alive.
pub const FLAG_MAINTENANCE: u8 = 0b0_0100;
/// An operator asked the sender to take over: the holder releases to it.
pub const FLAG_TAKEOVER: u8 = 0b0_1000;
/// An operator asked the sender to stand by: it is nobody's first choice.
pub const FLAG_STANDBY: u8 = 0b1_0000;
/// The sender just resumed after a stall and yields to an active peer.
pub const FLAG_YIELDING: u8 = 0b10_0000;
/// The sender let the VIPs go while a check that runs only on the active node
/// failed: it will not take them back while another node can hold them.
pub const FLAG_FAILED: u8 = 0b100_0000;
/// The sender is claiming the VIPs (it says "active") but adds nothing until every
/// live peer that might claim them too has echoed the nonce of this claim.
pub const FLAG_CLAIMING: u8 = 0b1000_0000;

/// Version 2, byte 9: the sender's takeover is held back (see [`Votes::held`]).
pub const VOTE_HELD: u8 = 0b1;
/// Byte 9, either version: the sender is a standby that hears an active node and
/// beats only every `timing.standby_interval` (see [`Heartbeat::quiet`]).
pub const QUIET: u8 = 0b10;
/// Byte 9, either version: the sender asks a quiet standby to beat every interval
/// (see [`Heartbeat::wake`]).
pub const WAKE: u8 = 0b100;

/// A node's role as it travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireState {
    Starting,
    Standby,
    Active,
    Fault,
}

impl WireState {
    fn to_byte(self) -> u8 {
        match self {
            WireState::Starting => 0,
            WireState::Standby => 1,
            WireState::Active => 2,
            WireState::Fault => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<WireState> {
        Some(match byte {
            0 => WireState::Starting,
            1 => WireState::Standby,
            2 => WireState::Active,
            3 => WireState::Fault,
            _ => return None,
        })
    }
}

/// One heartbeat, as sent and as received after its tag checked out. The names
/// borrow from the packet when decoded and from the configuration when sent, so
/// that neither way allocates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat<'a> {
    pub link: u8,
    pub state: WireState,
    pub flags: u8,
    pub health: u8,
    pub priority: u16,
    pub incarnation: u64,
    pub sequence: u64,
    pub fingerprint: [u8; 8],
    pub nonce: u64,
    pub echo: u64,
    /// Present in clusters of three or more nodes (version 2).
    pub votes: Option<Votes>,
    /// The sender's next heartbeat may come `timing.standby_interval` after this
    /// one rather than `interval`: its silence counts as late or dead that much
    /// later. Byte 9, bit 1 ([`QUIET`]).
    pub quiet: bool,
    /// The sender is active and waits, to hand the VIPs back on an operator's
    /// failback, for a heartbeat from a standby that is not quiet: a quiet receiver
    /// beats every interval again. Byte 9, bit 2 ([`WAKE`]).
    pub wake: bool,
    pub cluster: Cow<'a, str>,
    pub node: Cow<'a, str>,
}

/// What a node of a cluster of three or more tells each peer for the majority rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Votes {
    /// The receiver's latest heartbeat sequence the sender accepted, or 0: the
    /// receiver knows when it sent that one, so it knows how long the sender will
    /// go on counting it alive.
    pub ack: u64,
    /// Bit i: the sender hears node i (file order) alive.
    pub heard: u32,
    /// The sender ranks first among the nodes it hears but the split-brain guard
    /// holds its takeover back: the others do not wait for it, or a node that one
    /// voter vetoes would keep the VIPs from a node that may take them.
    pub held: bool,
}

impl Votes {
    /// Whether the sender hears node `index` alive.
    pub fn hears(&self, index: usize) -> bool {
        self.heard & Votes::bit(index) != 0
    }

    /// Node `index`'s bit in [`Votes::heard`]; none beyond the last node.
    pub fn bit(index: usize) -> u32 {
        u32::try_from(index)
            .ok()
            .and_then(|i| 1u32.checked_shl(i))
            .unwrap_or(0)
    }
}

/// Why a datagram was not accepted as a heartbeat. Each reason is counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    #[error("too short or too long")]
    Length,
    #[error("not a failoverd heartbeat")]
    Magic,
    #[error("unsupported version")]
    Version,
    #[error("authentication failed")]
    Tag,
    #[error("malformed field")]
    Malformed,
}

/// The cluster key, prepared once so each packet costs two hash compressions less.
#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl Signer {
    pub fn new(key: &[u8]) -> Signer {
        // HMAC takes keys of any length; an error here would be a bug in the crate.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .expect("HMAC accepts keys of any length");
        Signer { mac }
    }

    fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    fn verify(&self, bytes: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        mac.verify_slice(tag).is_ok()
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

/// Bytes 0 to 11 of a version-1 heartbeat, the magic to the priority: what the
/// packet says of its sender's standing, before what changes with every packet
/// (sequence, nonces, tag).
pub const HEADER_LEN: usize = 12;

/// A sender's standing as the first [`HEADER_LEN`] bytes of its version-1
/// heartbeats carry it. A standby that hears an active peer repeat its standing
/// learns nothing from those heartbeats but that the peer is alive, and may read
/// them late (see `daemon::receive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub state: WireState,
    pub flags: u8,
    pub health: u8,
    pub quiet: bool,
    pub wake: bool,
    pub priority: u16,
}

impl Standing {
    /// The first [`HEADER_LEN`] bytes of a version-1 heartbeat with this standing,
    /// sent on `link`, as [`Heartbeat::encode`] writes them.
    pub fn header(&self, link: u8) -> [u8; HEADER_LEN] {
        let mut pace = if self.quiet { QUIET } else { 0 };
        if self.wake {
            pace |= WAKE;
        }
        let [high, low] = self.priority.to_be_bytes();
        let [m0, m1, m2, m3] = MAGIC;
        [
            m0,
            m1,
            m2,
            m3,
            VERSION,
            link,
            self.state.to_byte(),
            self.flags,
            self.health,
            pace,
            high,
            low,
        ]
    }
}

impl<'a> Heartbeat<'a> {
    /// The signed packet, held inline. Names are cut as [`Heartbeat::encode`] cuts
    /// them, and whatever would not fit in [`MAX_LEN`] is left off, which the
    /// receiver refuses: the configuration limits names to 64 bytes, so a node never
    /// sends one that long.
    pub fn packet(&self, signer: &Signer) -> Packet {
        let mut out = Packet::default();
        self.encode(signer, &mut out);
        out
    }

    /// Appends the signed packet to `out`. Names longer than 255 bytes are cut; the
    /// configuration already limits them to 64.
    pub fn encode(&self, signer: &Signer, out: &mut impl Out) {
        let start = out.written().len();
        let mut header = self.standing().header(self.link);
        if let Some(votes) = &self.votes {
            header[4] = VERSION_VOTES;
            if votes.held {
                header[9] |= VOTE_HELD;
            }
        }
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.incarnation.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&self.echo.to_be_bytes());
        if let Some(votes) = &self.votes {
            out.extend_from_slice(&votes.ack.to_be_bytes());
            out.extend_from_slice(&votes.heard.to_be_bytes());
        }
        for name in [&self.cluster, &self.node] {
            let bytes = &name.as_bytes()[..name.len().min(usize::from(u8::MAX))];
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
        let tag = signer.tag(&out.written()[start..]);
        out.extend_from_slice(&tag);
    }

    /// The sender's standing, as the packet's first [`HEADER_LEN`] bytes carry it.
    pub fn standing(&self) -> Standing {
        Standing {
            state: self.state,
            flags: self.flags,
            health: self.health,
            quiet: self.quiet,
            wake: self.wake,
            priority: self.priority,
        }
    }

    /// Checks the tag, then parses. Any byte string is safe to pass.
    pub fn decode(bytes: &'a [u8], signer: &Signer) -> Result<Heartbeat<'a>, DecodeError> {
        Heartbeat::parse(bytes, Some(signer))
    }

    /// Parses `bytes`, checking their tag with `signer` first when given; only
    /// [`Verified`] skips the check, for bytes whose tag it already checked.
    fn parse(bytes: &'a [u8], signer: Option<&Signer>) -> Result<Heartbeat<'a>, DecodeError> {
        if bytes.len() < MIN_LEN || bytes.len() > MAX_LEN {
            return Err(DecodeError::Length);
        }
        if bytes[..4] != MAGIC {
            return Err(DecodeError::Magic);
        }
        let version = bytes[4];
        if version != VERSION && version != VERSION_VOTES {
            return Err(DecodeError::Version);
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        if signer.is_some_and(|signer| !signer.verify(body, tag)) {
            return Err(DecodeError::Tag);
        }
        let mut r = Reader { bytes: body, at: 5 };
        let link = r.u8()?;
        let state = WireState::from_byte(r.u8()?).ok_or(DecodeError::Malformed)?;
        let flags = r.u8()?;
        let health = r.u8()?;
        // Vote flags in version 2, and the pace in either: a signed packet with a
        // bit this version does not know is malformed rather than half understood.
        let vote_flags = r.u8()?;
        let known = if version == VERSION_VOTES {
            VOTE_HELD | QUIET | WAKE
        } else {
            QUIET | WAKE
        };
        if vote_flags & !known != 0 {
            return Err(DecodeError::Malformed);
        }
        let priority = u16::from_be_bytes(r.array()?);
        let incarnation = u64::from_be_bytes(r.array()?);
        let sequence = u64::from_be_bytes(r.array()?);
        let fingerprint = r.array()?;
        let nonce = u64::from_be_bytes(r.array()?);
        let echo = u64::from_be_bytes(r.array()?);
        let votes = if version == VERSION_VOTES {
            Some(Votes {
                ack: u64::from_be_bytes(r.array()?),
                heard: u32::from_be_bytes(r.array()?),
                held: vote_flags & VOTE_HELD != 0,
            })
        } else {
            None
        };
        let cluster = r.name()?;
        let node = r.name()?;
        if r.at != body.len() {
            return Err(DecodeError::Malformed);
        }
        Ok(Heartbeat {
            link,
            state,
            flags,
            health,
            priority,
            incarnation,
            sequence,
            fingerprint,
            nonce,
            echo,
            votes,
            quiet: vote_flags & QUIET != 0,
            wake: vote_flags & WAKE != 0,
            cluster,
            node,
        })
    }

    pub fn releasing(&self) -> bool {
        self.flags & FLAG_RELEASING != 0
    }

    pub fn leaving(&self) -> bool {
        self.flags & FLAG_LEAVING != 0
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).ok_or(DecodeError::Malformed)?;
        let slice = self.bytes.get(self.at..end).ok_or(DecodeError::Malformed)?;
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn name(&mut self) -> Result<Cow<'a, str>, DecodeError> {
        let len = usize::from(self.u8()?);
        if len == 0 {
            return Err(DecodeError::Malformed);
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| DecodeError::Malformed)
    }
}

/// Where [`Heartbeat::encode`] writes: a `Vec`, or a [`Packet`].
pub trait Out {
    fn push(&mut self, byte: u8);
    fn extend_from_slice(&mut self, bytes: &[u8]);
    /// Everything written so far.
    fn written(&self) -> &[u8];
}

impl Out for Vec<u8> {
    fn push(&mut self, byte: u8) {
        Vec::push(self, byte);
    }

    fn extend_from_slice(&mut self, bytes: &[u8]) {
        Vec::extend_from_slice(self, bytes);
    }

    fn written(&self) -> &[u8] {
        self
    }
}

/// A datagram of at most [`MAX_LEN`] bytes, held inline, so that one sent or
/// received every interval costs no allocation. It reads as a `[u8]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    bytes: [u8; MAX_LEN],
    len: usize,
}

/// A packet whose tag checked out and whose fields parse. Only [`Verified::check`]
/// makes one, so whoever holds one reads it without checking the tag again: the
/// shell checks each datagram once as it reads it, and the machine trusts the
/// proof.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified(Packet);

impl Verified {
    /// `bytes` as a verified packet, or why they are not a heartbeat.
    pub fn check(bytes: &[u8], signer: &Signer) -> Result<Verified, DecodeError> {
        Heartbeat::decode(bytes, signer)?;
        // A decoded packet is at most MAX_LEN long, so it fits.
        Packet::from_slice(bytes)
            .map(Verified)
            .ok_or(DecodeError::Length)
    }

    /// The heartbeat the packet holds.
    pub fn heartbeat(&self) -> Heartbeat<'_> {
        Heartbeat::parse(&self.0, None)
            .expect("a verified packet parsed when it was checked, and parsing is pure")
    }
}

impl Default for Packet {
    fn default() -> Packet {
        Packet {
            bytes: [0; MAX_LEN],
            len: 0,
        }
    }
}

impl Packet {
    /// `bytes` as a packet, or None when they are longer than [`MAX_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Option<Packet> {
        let mut packet = Packet::default();
        packet.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        packet.len = bytes.len();
        Some(packet)
    }
}

impl Out for Packet {
    /// Past [`MAX_LEN`], bytes are dropped (see [`Heartbeat::packet`]).
    fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }

    fn extend_from_slice(&mut self, bytes: &[u8]) {
        let end = (self.len + bytes.len()).min(MAX_LEN);
        let n = end - self.len;
        self.bytes[self.len..end].copy_from_slice(&bytes[..n]);
        self.len = end;
    }

    fn written(&self) -> &[u8] {
        self
    }
}

impl std::ops::Deref for Packet {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Packet({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Heartbeat<'static> {
        Heartbeat {
            link: 1,
            state: WireState::Active,
            flags: FLAG_RELEASING,
            health: 2,
            priority: 200,
            incarnation: 1_700_000_000_000_000,
            sequence: 42,
            fingerprint: [1, 2, 3, 4, 5, 6, 7, 8],
            nonce: 0x1122_3344_5566_7788,
            echo: 9,
            votes: None,
            quiet: false,
            wake: false,
            cluster: "web".into(),
            node: "alpha".into(),
        }
    }

    fn encoded(hb: &Heartbeat, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        hb.encode(&Signer::new(key), &mut out);
        out
    }

    #[test]
    fn a_standing_s_header_is_the_documented_first_bytes_and_decodes_back() {
        let signer = Signer::new(b"0123456789abcdef");
        for (flags, quiet, wake, header) in [
            (
                FLAG_RELEASING,
                false,
                false,
                *b"FOHB\x01\x01\x02\x01\x02\x00\x00\xc8",
            ),
            (0, true, true, *b"FOHB\x01\x01\x02\x00\x02\x06\x00\xc8"),
        ] {
            let hb = Heartbeat {
                flags,
                quiet,
                wake,
                ..sample()
            };
            let bytes = encoded(&hb, b"0123456789abcdef");
            assert_eq!(hb.standing().header(hb.link), header);
            assert_eq!(bytes[..HEADER_LEN], header);
            let decoded = Heartbeat::decode(&bytes, &signer).unwrap();
            assert_eq!(decoded.standing(), hb.standing());
        }
    }

    #[test]
    fn round_trip() {
        let signer = Signer::new(b"0123456789abcdef");
        let bytes = encoded(&sample(), b"0123456789abcdef");
        assert_eq!(bytes.len(), FIXED_LEN + 4 + 6 + TAG_LEN);
        assert_eq!(Heartbeat::decode(&bytes, &signer), Ok(sample()));
    }

    #[test]
    fn a_packet_holds_what_encode_writes_up_to_the_largest_heartbeat() {
        let signer = Signer::new(b"k");
        let mut hb = sample();
        hb.votes = Some(Votes {
            ack: 1,
            heard: 3,
            held: true,
        });
        hb.cluster = "c".repeat(64).into();
        hb.node = "n".repeat(64).into();
        let packet = hb.packet(&signer);
        assert_eq!(&packet[..], &encoded(&hb, b"k")[..]);
        assert_eq!(packet.len(), MAX_LEN);
        assert_eq!(Heartbeat::decode(&packet, &signer), Ok(hb));
        assert!(Packet::from_slice(&[0; MAX_LEN + 1]).is_none());
    }

    #[test]
    fn layout_matches_the_documented_offsets() {
        let bytes = encoded(&sample(), b"k");
        assert_eq!(&bytes[0..4], b"FOHB");
        assert_eq!(bytes[4], VERSION);
        assert_eq!(bytes[5], 1, "link");
        assert_eq!(bytes[6], 2, "state active");
        assert_eq!(bytes[7], FLAG_RELEASING);
        assert_eq!(bytes[8], 2, "health");
        assert_eq!(&bytes[10..12], &200u16.to_be_bytes());
        assert_eq!(&bytes[20..28], &42u64.to_be_bytes());
        assert_eq!(&bytes[28..36], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[36..44], &0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(&bytes[44..52], &9u64.to_be_bytes());
        assert_eq!(bytes[52], 3);
        assert_eq!(&bytes[53..56], b"web");
    }

    #[test]
    fn votes_travel_in_version_2_at_the_documented_offsets() {
        let signer = Signer::new(b"k");
        let mut hb = sample();
        hb.votes = Some(Votes {
            ack: 41,
            heard: 0b101,
            held: true,
        });
        let bytes = encoded(&hb, b"k");
        assert_eq!(bytes[4], VERSION_VOTES);
        assert_eq!(bytes[9], VOTE_HELD);
        assert_eq!(&bytes[52..60], &41u64.to_be_bytes());
        assert_eq!(&bytes[60..64], &5u32.to_be_bytes());
        assert_eq!(bytes[64], 3);
        assert_eq!(bytes.len(), FIXED_LEN + VOTES_LEN + 4 + 6 + TAG_LEN);
        let decoded = Heartbeat::decode(&bytes, &signer).unwrap();
        assert_eq!(decoded, hb);
        let votes = decoded.votes.unwrap();
        assert!(votes.hears(0) && !votes.hears(1) && votes.hears(2));
        assert!(!votes.hears(MAX_NODES), "no bit beyond the last node");
        // A version 1 packet from the same sender decodes without votes.
        let v1 = encoded(&sample(), b"k");
        assert_eq!(Heartbeat::decode(&v1, &signer).unwrap().votes, None);
    }

    #[test]
    fn a_vote_flag_is_malformed_in_version_1_and_an_unknown_one_in_version_2() {
        let signer = Signer::new(b"k");
        let resigned = |mut bytes: Vec<u8>, flags: u8| {
            bytes[9] = flags;
            bytes.truncate(bytes.len() - TAG_LEN);
            let tag = signer.tag(&bytes);
            bytes.extend_from_slice(&tag);
            Heartbeat::decode(&bytes, &signer).map(|hb| hb.votes)
        };
        let v1 = encoded(&sample(), b"k");
        assert_eq!(resigned(v1.clone(), 0b1000), Err(DecodeError::Malformed));
        assert_eq!(resigned(v1, VOTE_HELD), Err(DecodeError::Malformed));
        let mut hb = sample();
        hb.votes = Some(Votes::default());
        let v2 = encoded(&hb, b"k");
        assert!(resigned(v2.clone(), VOTE_HELD).is_ok_and(|votes| votes.is_some_and(|v| v.held)));
        assert_eq!(resigned(v2, 0b1000), Err(DecodeError::Malformed));
    }

    /// The quiet flag travels in both versions and beside a vote.
    #[test]
    fn the_quiet_flag_round_trips_in_either_version() {
        let signer = Signer::new(b"k");
        let mut hb = sample();
        hb.quiet = true;
        let v1 = encoded(&hb, b"k");
        assert_eq!(v1[9], QUIET);
        assert!(Heartbeat::decode(&v1, &signer).unwrap().quiet);
        hb.votes = Some(Votes {
            held: true,
            ..Votes::default()
        });
        let v2 = encoded(&hb, b"k");
        assert_eq!(v2[9], QUIET | VOTE_HELD);
        let decoded = Heartbeat::decode(&v2, &signer).unwrap();
        assert!(decoded.quiet && decoded.votes.is_some_and(|v| v.held));
        assert!(
            !Heartbeat::decode(&encoded(&sample(), b"k"), &signer)
                .unwrap()
                .quiet
        );
    }

    /// The wake flag travels in both versions, beside the others.
    #[test]
    fn the_wake_flag_round_trips_in_either_version() {
        let signer = Signer::new(b"k");
        let mut hb = sample();
        hb.wake = true;
        let v1 = encoded(&hb, b"k");
        assert_eq!(v1[9], WAKE);
        let decoded = Heartbeat::decode(&v1, &signer).unwrap();
        assert!(decoded.wake && !decoded.quiet);
        hb.votes = Some(Votes {
            held: true,
            ..Votes::default()
        });
        let v2 = encoded(&hb, b"k");
        assert_eq!(v2[9], WAKE | VOTE_HELD);
        assert!(Heartbeat::decode(&v2, &signer).unwrap().wake);
        assert!(
            !Heartbeat::decode(&encoded(&sample(), b"k"), &signer)
                .unwrap()
                .wake
        );
    }

    #[test]
    fn a_verified_packet_reads_as_its_decode_and_only_a_good_tag_makes_one() {
        let signer = Signer::new(b"k");
        let bytes = encoded(&sample(), b"k");
        let packet = Verified::check(&bytes, &signer).expect("a good packet");
        assert_eq!(
            packet.heartbeat(),
            Heartbeat::decode(&bytes, &signer).unwrap()
        );
        let other = Signer::new(b"another key");
        assert_eq!(Verified::check(&bytes, &other), Err(DecodeError::Tag));
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let signer = Signer::new(b"secret-secret-secret");
        let bytes = encoded(&sample(), b"secret-secret-secret");
        for i in 0..bytes.len() * 8 {
            let mut copy = bytes.clone();
            copy[i / 8] ^= 1 << (i % 8);
            assert!(Heartbeat::decode(&copy, &signer).is_err(), "bit {i}");
        }
    }

    #[test]
    fn wrong_key_is_an_authentication_failure() {
        let bytes = encoded(&sample(), b"one key one key one key");
        let other = Signer::new(b"another key entirely");
        assert_eq!(Heartbeat::decode(&bytes, &other), Err(DecodeError::Tag));
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        let signer = Signer::new(b"k");
        assert_eq!(Heartbeat::decode(&[], &signer), Err(DecodeError::Length));
        assert_eq!(
            Heartbeat::decode(&[0u8; MIN_LEN], &signer),
            Err(DecodeError::Magic)
        );
        let mut wrong_version = encoded(&sample(), b"k");
        wrong_version[4] = 9;
        assert_eq!(
            Heartbeat::decode(&wrong_version, &signer),
            Err(DecodeError::Version)
        );
        // Every truncation of a valid packet.
        let bytes = encoded(&sample(), b"k");
        for len in 0..bytes.len() {
            assert!(Heartbeat::decode(&bytes[..len], &signer).is_err());
        }
        // Pseudo-random junk behind a valid magic and version.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 300) as usize;
            let mut junk: Vec<u8> = (0..len)
                .map(|i| (seed.rotate_left(i as u32) & 0xff) as u8)
                .collect();
            if junk.len() > 5 {
                junk[..4].copy_from_slice(&MAGIC);
                junk[4] = if seed & 1 == 0 {
                    VERSION
                } else {
                    VERSION_VOTES
                };
            }
            assert!(Heartbeat::decode(&junk, &signer).is_err());
        }
    }

    #[test]
    fn signed_but_malformed_fields_are_rejected() {
        let signer = Signer::new(b"k");
        let mut hb = sample();
        hb.node = "".into();
        let bytes = encoded(&hb, b"k");
        assert_eq!(
            Heartbeat::decode(&bytes, &signer),
            Err(DecodeError::Malformed)
        );
    }
}
