//! This node's freshness nonces: the numbers its peers must echo for a heartbeat to
//! count (see `wire::heartbeat`). A new one with the first heartbeat after each
//! `dead` (never between two heartbeats: see `pace`), at every start and at every
//! claim; the one before stays valid until the next.
//!
//! Nonces are random, drawn from a generator seeded by the shell (from getrandom(2)
//! in the daemon, from the run's seed in simulations) and keyed with the cluster's
//! key, so a node's nonces are unrelated from one start to the next, and the next
//! one cannot be told from those seen on the wire (see [`Draws`]). Being random,
//! they carry no order: what was issued when is the epoch, kept here.

use std::time::Instant;

use sha2::{Digest, Sha256};

/// A nonce of this node that peers may still echo, and when it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Issued {
    /// How many nonces this node issued before it, in this life.
    pub epoch: u64,
    pub at: Instant,
}

#[derive(Debug)]
pub(super) struct Nonces {
    current: u64,
    current_at: Instant,
    /// 0 until the first renewal: 0 on the wire means "nothing heard".
    previous: u64,
    previous_at: Instant,
    epoch: u64,
    rng: Draws,
}

impl Nonces {
    /// The nonces of a node of the cluster whose key is `key`, drawn from `seed`.
    pub fn new(key: &[u8], seed: u64, now: Instant) -> Nonces {
        let mut rng = Draws::new(key, seed);
        let current = rng.nonce(&[]);
        Nonces {
            current,
            current_at: now,
            previous: 0,
            previous_at: now,
            epoch: 0,
            rng,
        }
    }

    /// The nonce to send.
    pub fn current(&self) -> u64 {
        self.current
    }

    /// When the nonce to send was issued.
    pub fn issued_at(&self) -> Instant {
        self.current_at
    }

    /// The epoch of the nonce in use now; an echo of a nonce of this epoch or later
    /// was made after the sender heard of it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Issues a new nonce; the one before stays valid until the next renewal.
    pub fn renew(&mut self, now: Instant) {
        self.previous = self.current;
        self.previous_at = self.current_at;
        self.current = self.rng.nonce(&[self.current]);
        self.current_at = now;
        self.epoch += 1;
    }

    /// What `echo` is, if it is a nonce of this node that still counts: the current
    /// one or the one before. 0 never is.
    pub fn find(&self, echo: u64) -> Option<Issued> {
        if echo == 0 {
            None
        } else if echo == self.current {
            Some(Issued {
                epoch: self.epoch,
                at: self.current_at,
            })
        } else if echo == self.previous {
            Some(Issued {
                epoch: self.epoch - 1,
                at: self.previous_at,
            })
        } else {
            None
        }
    }
}

/// The nonces' generator: the first 8 bytes of SHA-256 over a secret of 32 bytes
/// and a count. The secret is itself a SHA-256, of the cluster's key and the seed,
/// so that what nonces show on the wire gives away neither it nor the next one: to
/// an outsider, who would have to find the cluster's key, and to a peer, who would
/// have to find the seed among 2^64; a generator whose output is its state passed
/// through a bijection (splitmix64, once) gave away both. A draw is one SHA-256
/// block, once per `dead` at most.
#[derive(Debug)]
struct Draws {
    secret: [u8; 32],
    count: u64,
}

impl Draws {
    fn new(key: &[u8], seed: u64) -> Draws {
        let digest = Sha256::new()
            .chain_update(b"failoverd nonce secret")
            .chain_update(key)
            .chain_update(seed.to_le_bytes())
            .finalize();
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&digest);
        Draws { secret, count: 0 }
    }

    fn next(&mut self) -> u64 {
        self.count = self.count.wrapping_add(1);
        let digest = Sha256::new()
            .chain_update(self.secret)
            .chain_update(self.count.to_le_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    /// A nonce that is neither 0 nor one of `avoid`, so two valid nonces never match.
    fn nonce(&mut self, avoid: &[u64]) -> u64 {
        loop {
            let n = self.next();
            if n != 0 && !avoid.contains(&n) {
                return n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn an_echo_counts_for_the_current_and_the_previous_nonce_only() {
        let t0 = Instant::now();
        let mut nonces = Nonces::new(KEY, 7, t0);
        let first = nonces.current();
        assert_eq!(nonces.find(0), None);
        assert_eq!(nonces.find(first), Some(Issued { epoch: 0, at: t0 }));
        let t1 = t0 + Duration::from_secs(1);
        nonces.renew(t1);
        let second = nonces.current();
        assert_ne!(first, second);
        assert_eq!(nonces.find(first), Some(Issued { epoch: 0, at: t0 }));
        assert_eq!(nonces.find(second), Some(Issued { epoch: 1, at: t1 }));
        nonces.renew(t1 + Duration::from_secs(1));
        assert_eq!(nonces.find(first), None);
        assert_eq!(nonces.find(second).map(|i| i.epoch), Some(1));
    }

    #[test]
    fn the_key_and_the_seed_decide_the_nonces_and_they_are_not_ordered() {
        let t0 = Instant::now();
        let draw_with = |key: &[u8], seed| {
            let mut nonces = Nonces::new(key, seed, t0);
            (0..16)
                .map(|_| {
                    nonces.renew(t0);
                    nonces.current()
                })
                .collect::<Vec<_>>()
        };
        let draw = |seed| draw_with(KEY, seed);
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        // Peers share the key, an outsider does not: with another key, the same
        // seed draws other nonces.
        assert_ne!(draw(1), draw_with(b"another key, another cluster....", 1));
        let a = draw(3);
        assert!(a.windows(2).any(|w| w[1] < w[0]), "{a:?}");
    }

    /// splitmix64, which drew the nonces once, passes its state through a bijection
    /// to make each output: undo the bijection and the state is known, and with it
    /// every nonce to come. The nonces must not fall to that.
    #[test]
    fn a_nonce_seen_on_the_wire_does_not_give_the_next() {
        /// Undoes `x ^ (x >> by)`.
        fn unshift(y: u64, by: u32) -> u64 {
            let mut x = y;
            for _ in 0..64 / by {
                x = y ^ (x >> by);
            }
            x
        }
        fn splitmix_state(output: u64) -> u64 {
            let z = unshift(output, 31).wrapping_mul(0x3196_42b2_d24d_8ec3);
            let z = unshift(z, 27).wrapping_mul(0x96de_1b17_3f11_9089);
            unshift(z, 30)
        }
        fn splitmix_after(state: u64) -> u64 {
            let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        // The inversion works: seen one output, it predicts the next.
        let state = 0x0123_4567_89ab_cdef_u64.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let seen = splitmix_after(state.wrapping_sub(0x9e37_79b9_7f4a_7c15));
        assert_eq!(
            splitmix_after(splitmix_state(seen)),
            splitmix_after(state),
            "the attack predicts splitmix64"
        );

        let t0 = Instant::now();
        for seed in [0, 1, 7, u64::MAX, 0x0123_4567_89ab_cdef] {
            let mut nonces = Nonces::new(KEY, seed, t0);
            for _ in 0..64 {
                let seen = nonces.current();
                nonces.renew(t0);
                assert_ne!(
                    splitmix_after(splitmix_state(seen)),
                    nonces.current(),
                    "seed {seed}: the next nonce follows from the one before"
                );
            }
        }
    }
}
