//! Arbitrary bytes into `Heartbeat::decode` with a fixed key.
//!
//! Each input is tried twice: as it comes, and with its last 32 bytes replaced by the
//! right tag. Without the second try almost nothing gets past the tag check, and the
//! field parser behind it would never be fuzzed. Whenever a packet decodes, encoding
//! the result must give the same packet back.
#![no_main]

use failoverd::wire::heartbeat::{
    Heartbeat, QUIET, Signer, TAG_LEN, VERSION_VOTES, VOTE_HELD, WAKE,
};
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

/// The key of every heartbeat seed; examples/fuzz_seeds.rs signs with the same bytes.
const KEY: &[u8] = b"failoverd fuzzing key, not secret";

/// Offsets of the version and of byte 9: at most `QUIET | WAKE` in version 1, at
/// most `QUIET | WAKE | VOTE_HELD` in version 2; a packet with anything else there is
/// refused as malformed.
const VERSION_AT: usize = 4;
const VOTE_FLAGS: usize = 9;

fuzz_target!(|data: &[u8]| {
    let signer = Signer::new(KEY);
    check(data, &signer);
    if let Some(signed) = resign(data) {
        check(&signed, &signer);
    }
});

fn check(packet: &[u8], signer: &Signer) {
    let Ok(heartbeat) = Heartbeat::decode(packet, signer) else {
        return;
    };
    let mut again = Vec::new();
    heartbeat.encode(signer, &mut again);
    let known = if packet[VERSION_AT] == VERSION_VOTES {
        QUIET | WAKE | VOTE_HELD
    } else {
        QUIET | WAKE
    };
    assert_eq!(packet[VOTE_FLAGS] & !known, 0, "an unknown flag of byte 9 was accepted");
    assert_eq!(again, packet, "re-encoding {heartbeat:?}");
}

/// The input with its last `TAG_LEN` bytes replaced by the HMAC of the bytes before.
fn resign(data: &[u8]) -> Option<Vec<u8>> {
    let body = data.len().checked_sub(TAG_LEN)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(KEY).ok()?;
    mac.update(&data[..body]);
    let mut signed = data[..body].to_vec();
    signed.extend_from_slice(&mac.finalize().into_bytes());
    Some(signed)
}
