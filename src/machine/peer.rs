//! What this node knows of one peer: its last reported state, and the liveness of
//! each heartbeat link to it, tracked apart so that one dead link while another is
//! alive is a warning, never a failover.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::event::{Event, Reject, Role};
use super::settings::PeerSettings;
use crate::config::Timing;
use crate::status::PeerState;
use crate::wire::heartbeat::{
    FLAG_CLAIMING, FLAG_FAILED, FLAG_MAINTENANCE, FLAG_STANDBY, FLAG_TAKEOVER, FLAG_YIELDING,
    Heartbeat, Standing, Votes,
};

/// Stale heartbeats that keep coming from a peer that is not alive are reported at
/// most this often.
const BURST_REPORT_EVERY: Duration = Duration::from_secs(60);

/// This node's side of the freshness rules, for one received heartbeat.
#[derive(Debug, Clone, Copy)]
pub(super) struct Freshness {
    /// When this node issued the nonce the heartbeat echoes, if that nonce still
    /// counts (see `nonce`).
    pub issued: Option<Instant>,
    pub dead: Duration,
    /// How long a handshake holds elections (`Settings::handshake_wait`).
    pub handshake: Duration,
}

/// Liveness of one link to one peer. Serialized as [`LinkState::as_str`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LinkState {
    /// Nothing heard on it yet.
    #[serde(rename = "unknown")]
    Unknown,
    /// Heard within `warn`.
    #[serde(rename = "ok")]
    Up,
    /// Silent for more than `warn`.
    #[serde(rename = "late")]
    Late,
    /// Silent for more than `dead`.
    #[serde(rename = "dead")]
    Down,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Unknown => "unknown",
            LinkState::Up => "ok",
            LinkState::Late => "late",
            LinkState::Down => "dead",
        }
    }

    /// A link's state once its peer is dead or gone: dead if it was ever heard,
    /// unknown if not, so that a link that never worked is reported again once the
    /// peer is back (see `Peer::age`).
    fn gone(last_rx: Option<Instant>) -> LinkState {
        match last_rx {
            Some(_) => LinkState::Down,
            None => LinkState::Unknown,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LinkView {
    /// The link's index in the file, as heartbeats carry it.
    pub link: usize,
    pub name: String,
    /// The peer's address on this link; datagrams from elsewhere are dropped.
    pub address: IpAddr,
    pub state: LinkState,
    pub last_rx: Option<Instant>,
    /// Reported as a link that never carried a heartbeat (`Event::LinkSilent`):
    /// its first one is reported too, whatever the peer did in between.
    silent_reported: bool,
    /// Highest sequence accepted on this link in the current incarnation.
    seq: Option<u64>,
    pub received: u64,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    /// The peer's place in the file's `[[node]]` list: its bit in the votes.
    pub index: usize,
    /// A witness votes and never holds the VIPs; it ranks nowhere.
    pub witness: bool,
    /// The links both ends are on, in file order.
    pub links: Vec<LinkView>,
    pub incarnation: Option<u64>,
    /// Sequence of the heartbeat the view below comes from (in this incarnation).
    newest: Option<u64>,
    /// The peer's latest nonce, echoed back in every heartbeat to it.
    pub heard_nonce: Option<u64>,
    /// Since when a peer that is not alive has been sending heartbeats that do not
    /// echo our nonce yet: it is about to count, so elections wait a moment for it.
    pub handshake_since: Option<Instant>,
    /// When the latest handshake began, answered or not: the next may begin only a
    /// handshake and `dead` later (see [`Peer::accept`]).
    last_handshake: Option<Instant>,
    /// Stale heartbeats since `stale_since` (the latest handshake or report), and
    /// when they were last reported.
    stale_count: u64,
    stale_since: Option<Instant>,
    burst_reported: Option<Instant>,
    pub role: Role,
    pub releasing: bool,
    pub leaving: bool,
    /// The peer is in maintenance: nobody moves anything while it is alive.
    pub maintenance: bool,
    /// An operator asked the peer to take over.
    pub takeover: bool,
    /// An operator asked the peer to stand by.
    pub standby: bool,
    /// The peer resumed after a stall and is about to yield.
    pub yielding: bool,
    /// The peer has a sticky check failure: it takes the VIPs only if nobody else can.
    pub failed: bool,
    /// The peer says "active" but is still waiting for its claim to be confirmed.
    pub claiming: bool,
    /// The peer said its next heartbeat may take `standby_interval` (see `pace`):
    /// its silence counts as late or dead that much later.
    pub quiet: bool,
    /// This run of the peer echoed a nonce of this node that went out in quiet
    /// heartbeats only: it takes them, and no echo it misses later counts.
    pub takes_quiet: bool,
    /// Nonces of this node, one after another, that went out in quiet heartbeats
    /// only and that this active peer did not echo in time: at [`QUIET_MISSES`] it
    /// is taken for a node that refuses quiet heartbeats (see `pace`).
    pub quiet_misses: u8,
    /// When the misses reached [`QUIET_MISSES`]: this node is not quiet toward the
    /// peer until it restarts, or [`QUIET_RETRY`] later (then three misses again
    /// make another refusal).
    pub quiet_refused_at: Option<Instant>,
    /// The peer is active and waits for this node to beat every interval before
    /// it hands the VIPs over (see `Handover`): this node is not quiet meanwhile.
    pub wake: bool,
    /// The epoch of this node's nonce that the peer's latest heartbeat echoed, if
    /// it still counts (see `pace`).
    pub echoed: Option<u64>,
    /// The flags byte of the newest heartbeat, whose bits the fields above spell out.
    pub flags: u8,
    pub health: u8,
    pub priority: u16,
    /// What the peer last said for the majority rule (clusters of three or more).
    pub votes: Option<Votes>,
    /// When this node last sent votes that did not hear this peer: a peer that took
    /// those votes as leave to take the VIPs may act on them until it hears newer
    /// ones, so this node backs this peer's lease only `dead` later (see `quorum`).
    pub disowned_at: Option<Instant>,
    pub fingerprint: Option<[u8; 8]>,
    pub alive: bool,
    late: bool,
    /// Since when the peer has been alive in its current incarnation.
    pub up_since: Option<Instant>,
}

/// What a received heartbeat changed, for the election to act on.
#[derive(Debug, Default, Clone, Copy)]
pub struct Update {
    pub came_up: bool,
    pub link_healed: bool,
    pub restarted: bool,
    pub stopped_being_active: bool,
    /// The peer has just begun to claim the VIPs: it waits for our echo.
    pub started_claiming: bool,
}

/// Nonces that went out quiet and were not echoed, one after another, after which
/// a peer that never echoed one counts as refusing quiet heartbeats. One or two can
/// be lost packets or a peer that did not run for a moment; three in a row, a
/// second or more apart, is a node that refuses them.
pub const QUIET_MISSES: u8 = 3;

/// How long a peer that refused quiet heartbeats is beaten to every interval
/// before this node tries quiet again, in case the refusals were bad luck.
pub const QUIET_RETRY: Duration = Duration::from_secs(600);

impl Peer {
    /// The standing the peer's newest heartbeat gave: the header its next
    /// heartbeats repeat while nothing changes for it.
    pub fn standing(&self) -> Standing {
        Standing {
            state: self.role.wire(),
            flags: self.flags,
            health: self.health,
            quiet: self.quiet,
            wake: self.wake,
            priority: self.priority,
        }
    }

    /// A peer as `settings` describe it, joined to this node by the links both are on
    /// (`mine` are this node's addresses, link by link).
    pub(super) fn new(settings: &PeerSettings, links: &[String], mine: &[Option<IpAddr>]) -> Peer {
        let links = links
            .iter()
            .zip(&settings.addresses)
            .zip(mine)
            .enumerate()
            .filter_map(|(link, ((name, theirs), ours))| Some((link, name, (*theirs)?, (*ours)?)))
            .map(|(link, name, address, _)| LinkView {
                link,
                name: name.clone(),
                address,
                state: LinkState::Unknown,
                last_rx: None,
                silent_reported: false,
                seq: None,
                received: 0,
            })
            .collect();
        Peer {
            name: settings.name.clone(),
            index: settings.index,
            witness: settings.witness,
            links,
            incarnation: None,
            newest: None,
            heard_nonce: None,
            handshake_since: None,
            last_handshake: None,
            stale_count: 0,
            stale_since: None,
            burst_reported: None,
            role: Role::Starting,
            releasing: false,
            leaving: false,
            maintenance: false,
            takeover: false,
            standby: false,
            yielding: false,
            failed: false,
            claiming: false,
            quiet: false,
            takes_quiet: false,
            quiet_misses: 0,
            quiet_refused_at: None,
            wake: false,
            echoed: None,
            flags: 0,
            health: 0,
            priority: settings.priority,
            votes: None,
            disowned_at: None,
            fingerprint: None,
            alive: false,
            late: false,
            up_since: None,
        }
    }

    /// A live peer that is, or is about to stop being, the holder of the VIPs.
    pub fn holds(&self) -> bool {
        self.alive && self.role == Role::Active
    }

    /// Alive and heard within `warn`.
    pub fn on_time(&self) -> bool {
        self.alive && !self.late
    }

    /// The peer's state as the status reports it: the role it last reported while
    /// alive, or why there is none.
    pub fn state(&self) -> PeerState {
        if self.alive {
            PeerState::from(self.role)
        } else if self.leaving {
            PeerState::Stopped
        } else if self.incarnation.is_none() {
            PeerState::Unknown
        } else {
            PeerState::Dead
        }
    }

    /// Whether this peer counts in the election at all.
    pub fn present(&self) -> bool {
        self.alive && !self.leaving
    }

    /// Whether this peer may take over, for the ranking: present, not a witness, and
    /// not holding already.
    pub fn candidate(&self) -> bool {
        self.present() && !self.witness && self.role != Role::Active
    }

    /// A candidate not held back by its split-brain guard (it said so in its votes).
    /// A node that waited for a held peer that ranks first would wait as long as the
    /// hold lasts, which a partition that one voter straddles makes for ever.
    pub fn in_the_running(&self) -> bool {
        self.candidate() && !self.held()
    }

    /// The peer's votes say the split-brain guard holds its takeover back.
    pub fn held(&self) -> bool {
        self.votes.is_some_and(|v| v.held)
    }

    /// Checks freshness, the incarnation and the replay window, then updates the
    /// view. The datagram already passed authentication, the cluster check and the
    /// source check. `view` is the position in [`Peer::links`] of the link it came on.
    ///
    /// A heartbeat that echoes no nonce of ours that still counts (`fresh.issued`
    /// is `None`) was made before its sender heard this node recently: a recording,
    /// or the first packet of a handshake (see [`Peer::stale`]).
    ///
    /// Incarnations only grow: a fresh heartbeat of a later one means the peer
    /// restarted, and one of an earlier one is a recording, with one exception. A
    /// peer whose clock went back between two starts (no RTC, NTP stepping it) comes
    /// back with an older incarnation; it is heard once the incarnation this node
    /// knows is dead to it (silent for `dead`), in a heartbeat that echoes a nonce
    /// this node issued after it last heard that incarnation, which no recording can
    /// echo. It comes up as a new peer, never as a restart.
    pub(super) fn accept(
        &mut self,
        view: usize,
        hb: &Heartbeat,
        fresh: &Freshness,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<Update, Reject> {
        let mut update = Update::default();
        let Some(issued) = fresh.issued else {
            return Err(self.stale(view, hb, fresh, now, events));
        };
        match self.incarnation {
            Some(current) if hb.incarnation == current => {
                if self.links[view].seq.is_some_and(|seq| hb.sequence <= seq) {
                    return Err(Reject::Replay);
                }
            }
            Some(current) if hb.incarnation < current && !self.went_back(issued, fresh, now) => {
                return Err(Reject::OldIncarnation);
            }
            previous => {
                // A new incarnation: the peer restarted. Sequence windows start over
                // and so does `up_since`, which any failback wait counts from, so a
                // node that restarts again and again never pulls the VIPs after it.
                if previous.is_some() && self.alive {
                    update.restarted = true;
                    events.push(Event::PeerRestarted {
                        peer: self.name.clone(),
                    });
                }
                self.incarnation = Some(hb.incarnation);
                self.newest = None;
                self.leaving = false;
                // Another run of the peer, perhaps another version.
                self.takes_quiet = false;
                self.quiet_misses = 0;
                self.quiet_refused_at = None;
                for l in &mut self.links {
                    l.seq = None;
                }
                self.up_since = Some(now);
            }
        }
        self.handshake_since = None;
        self.stale_since = None;
        self.stale_count = 0;
        self.heard_nonce = Some(hb.nonce);
        let role = self.role_of(hb);
        let view = &mut self.links[view];
        view.seq = Some(hb.sequence);
        view.received += 1;
        if hb.leaving() && role != Role::Active {
            // Gone for good: it holds nothing and said so, so nobody needs to wait
            // `dead` for it. Later copies of its farewell change nothing.
            update.stopped_being_active = self.alive && self.role == Role::Active;
            if !self.leaving && self.alive {
                events.push(Event::PeerLeaving {
                    peer: self.name.clone(),
                });
            }
            self.role = role;
            self.releasing = false;
            self.leaving = true;
            self.newest = self.newest.max(Some(hb.sequence));
            self.forget();
            return Ok(update);
        }
        // A heartbeat sent before the farewell, late on another link: the peer has
        // gone all the same, and this one must not bring it back.
        if self.leaving && !self.alive && self.newest.is_some_and(|newest| hb.sequence < newest) {
            return Ok(update);
        }
        let first = view.last_rx.is_none();
        let reported = std::mem::take(&mut view.silent_reported);
        view.last_rx = Some(now);
        let was = view.state;
        view.state = LinkState::Up;
        if !self.alive {
            self.alive = true;
            self.late = false;
            update.came_up = true;
            if self.up_since.is_none() {
                self.up_since = Some(now);
            }
            events.push(Event::PeerUp {
                peer: self.name.clone(),
                link: view.name.clone(),
            });
            if reported {
                events.push(Event::LinkUp {
                    peer: self.name.clone(),
                    link: view.name.clone(),
                    first,
                });
            }
        } else if was == LinkState::Down || reported {
            update.link_healed = true;
            events.push(Event::LinkUp {
                peer: self.name.clone(),
                link: view.name.clone(),
                first,
            });
        }
        self.late = false;
        if self.newest.is_none_or(|newest| hb.sequence > newest) {
            self.newest = Some(hb.sequence);
            update.stopped_being_active = self.role == Role::Active && role != Role::Active;
            self.role = role;
            self.releasing = hb.releasing();
            if hb.leaving() && !self.leaving {
                events.push(Event::PeerLeaving {
                    peer: self.name.clone(),
                });
            }
            self.leaving = hb.leaving();
            self.maintenance = hb.flags & FLAG_MAINTENANCE != 0;
            self.takeover = hb.flags & FLAG_TAKEOVER != 0;
            self.standby = hb.flags & FLAG_STANDBY != 0;
            self.yielding = hb.flags & FLAG_YIELDING != 0;
            self.failed = hb.flags & FLAG_FAILED != 0;
            self.flags = hb.flags;
            let claiming = hb.flags & FLAG_CLAIMING != 0;
            update.started_claiming = claiming && !self.claiming;
            self.claiming = claiming;
            self.quiet = hb.quiet;
            self.wake = hb.wake;
            self.health = hb.health;
            self.priority = hb.priority;
            self.votes = hb.votes;
        }
        Ok(update)
    }

    /// A heartbeat that echoes no recent nonce of ours. While the peer is alive it
    /// changes nothing, so a flood of recordings cannot disturb a live exchange.
    ///
    /// While it is not, it may be the first packet of a handshake (the peer started,
    /// or a partition healed): its nonce is the one to echo, and elections wait
    /// `handshake` for the peer, which may rank first. Nothing tells such a packet
    /// from a recording made by someone on the LAN, except what this node already
    /// heard: an incarnation older than the one it knows, or a sequence number it
    /// already accepted on that link, is a recording and opens nothing. For the rest,
    /// a peer opens at most one handshake per `handshake` and `dead`: a replay can
    /// delay a takeover by one handshake, never hold it off. Stale heartbeats that
    /// keep coming once a handshake is over (recordings, or a peer that does not hear
    /// this node) are reported at most once a minute.
    fn stale(
        &mut self,
        view: usize,
        hb: &Heartbeat,
        fresh: &Freshness,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Reject {
        if self.alive {
            return Reject::Stale;
        }
        if let Some(current) = self.incarnation {
            if hb.incarnation < current {
                return Reject::OldIncarnation;
            }
            if hb.incarnation == current && self.links[view].seq.is_some_and(|s| hb.sequence <= s) {
                return Reject::Replay;
            }
        }
        self.heard_nonce = Some(hb.nonce);
        let since = self
            .last_handshake
            .map(|t| now.saturating_duration_since(t));
        if since.is_none_or(|since| since >= fresh.handshake + fresh.dead) {
            self.handshake_since = Some(now);
            self.last_handshake = Some(now);
            if self.stale_since.is_none() {
                self.stale_since = Some(now);
            }
            self.stale_count += 1;
            return Reject::Stale;
        }
        self.stale_count += 1;
        let due = self
            .burst_reported
            .is_none_or(|t| now.saturating_duration_since(t) >= BURST_REPORT_EVERY);
        if since.is_some_and(|since| since >= fresh.handshake)
            && due
            && let Some(from) = self.stale_since
        {
            events.push(Event::StaleBurst {
                peer: self.name.clone(),
                count: self.stale_count,
                over: now.saturating_duration_since(from),
            });
            self.burst_reported = Some(now);
            self.stale_since = Some(now);
            self.stale_count = 0;
        }
        Reject::Stale
    }

    /// Whether a fresh heartbeat of an older incarnation than the one known comes
    /// from a peer whose clock went back (see [`Peer::accept`]): the known one is
    /// dead to this node, and the echoed nonce was issued after it was last heard.
    fn went_back(&self, issued: Instant, fresh: &Freshness, now: Instant) -> bool {
        !self.alive
            && self.last_heard().is_none_or(|last| {
                now.saturating_duration_since(last) >= fresh.dead && issued > last
            })
    }

    /// When anything was last heard from the peer, on any link.
    pub fn last_heard(&self) -> Option<Instant> {
        self.links.iter().filter_map(|l| l.last_rx).max()
    }

    /// The sequence of the peer's newest heartbeat accepted, for the votes' ack.
    pub fn newest(&self) -> Option<u64> {
        self.newest
    }

    /// A witness says "standby" on the wire; it is a witness whatever it says.
    fn role_of(&self, hb: &Heartbeat) -> Role {
        if self.witness {
            Role::Witness
        } else {
            Role::from(hb.state)
        }
    }

    /// Ages every link; returns true when the peer has just died.
    pub fn age(&mut self, now: Instant, timing: &Timing, events: &mut Vec<Event>) -> bool {
        if !self.alive {
            return false;
        }
        let timing = &self.judged_by(timing);
        let mut newest: Option<Instant> = None;
        let up_for = self.up_since.map(|up| now.saturating_duration_since(up));
        let first_wait = first_wait(timing);
        for view in &mut self.links {
            let Some(last) = view.last_rx else {
                // Alive on another link and never heard on this one: a link that
                // does not work, which the status would show only as `unknown`.
                if view.state == LinkState::Unknown
                    && let Some(since) = up_for.filter(|up| *up >= first_wait)
                {
                    view.state = LinkState::Down;
                    view.silent_reported = true;
                    events.push(Event::LinkSilent {
                        peer: self.name.clone(),
                        link: view.name.clone(),
                        since,
                    });
                }
                continue;
            };
            newest = Some(newest.map_or(last, |n| n.max(last)));
            let silent = now.saturating_duration_since(last);
            let state = if silent >= timing.dead {
                LinkState::Down
            } else if silent >= timing.warn {
                LinkState::Late
            } else {
                LinkState::Up
            };
            if state == view.state {
                continue;
            }
            match state {
                LinkState::Late if view.state == LinkState::Up => events.push(Event::LinkLate {
                    peer: self.name.clone(),
                    link: view.name.clone(),
                    silent,
                }),
                LinkState::Down => events.push(Event::LinkDown {
                    peer: self.name.clone(),
                    link: view.name.clone(),
                }),
                _ => {}
            }
            view.state = state;
        }
        let silent = newest.map_or(Duration::MAX, |n| now.saturating_duration_since(n));
        if silent >= timing.dead {
            self.alive = false;
            self.late = false;
            self.quiet = false;
            self.up_since = None;
            for view in &mut self.links {
                view.state = LinkState::gone(view.last_rx);
            }
            // The last LinkDown said "still alive on another link"; it was not.
            events.retain(|e| {
                !matches!(e, Event::LinkDown { peer, .. } | Event::LinkSilent { peer, .. }
                    if *peer == self.name)
            });
            events.push(Event::PeerDead {
                peer: self.name.clone(),
            });
            return true;
        }
        if silent >= timing.warn && !self.late {
            self.late = true;
            events.push(Event::PeerLate {
                peer: self.name.clone(),
                silent,
            });
        }
        false
    }

    /// The earliest instant at which [`Peer::age`] has something to do.
    pub fn deadline(&self, timing: &Timing) -> Option<Instant> {
        if !self.alive {
            return None;
        }
        let timing = &self.judged_by(timing);
        self.links
            .iter()
            .filter_map(|view| {
                let Some(last) = view.last_rx else {
                    return (view.state == LinkState::Unknown)
                        .then(|| self.up_since.map(|up| up + first_wait(timing)))
                        .flatten();
                };
                match view.state {
                    LinkState::Up => Some(last + timing.warn),
                    LinkState::Late => Some(last + timing.dead),
                    LinkState::Unknown | LinkState::Down => None,
                }
            })
            .min()
    }

    /// The times this peer's silence is judged by: `warn` and `dead` of the file,
    /// longer by what a quiet peer may leave out between two heartbeats
    /// (`standby_interval` − `interval`) and by what one of them lost on every link
    /// adds: the two intervals it takes the standby to find it lost (see `pace`),
    /// and one more when its next heartbeat was due within an interval of that
    /// moment anyway, so it waits for it. A quiet heartbeat lost is then late only
    /// where one lost heartbeat of a peer that is not quiet is too (`warn` =
    /// `interval`), and never dead.
    fn judged_by(&self, timing: &Timing) -> Timing {
        if !self.quiet {
            return *timing;
        }
        let grace = timing.standby_interval + timing.interval * 2;
        Timing {
            warn: timing.warn + grace,
            dead: timing.dead + grace,
            ..*timing
        }
    }

    /// How long a silence of this peer lasts before it counts as dead: `dead`, or
    /// longer for a quiet peer (see `judged_by`).
    pub fn dead_after(&self, timing: &Timing) -> Duration {
        self.judged_by(timing).dead
    }

    /// Whether `sequence` is the newest heartbeat accepted from this peer.
    pub fn is_newest(&self, sequence: u64) -> bool {
        self.newest == Some(sequence)
    }

    /// Drops a peer that said it is leaving; it no longer counts as alive.
    pub fn forget(&mut self) {
        self.alive = false;
        self.quiet = false;
        self.up_since = None;
        for view in &mut self.links {
            view.state = LinkState::gone(view.last_rx);
        }
    }
}

/// How long a link may carry nothing after the peer came up on another before it
/// counts as a link that does not work. A link may come up later than another (a
/// switch port still in spanning tree after a power cut): `init_dead` is the
/// file's allowance for that, and never less than `dead` (longer for a quiet peer).
fn first_wait(timing: &Timing) -> Duration {
    timing.init_dead.max(timing.dead)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::heartbeat::{FLAG_LEAVING, WireState};

    const DEAD: Duration = Duration::from_secs(3);
    const HANDSHAKE: Duration = Duration::from_secs(3);

    fn peer() -> Peer {
        let address = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
        let settings = PeerSettings {
            name: "alpha".into(),
            index: 0,
            witness: false,
            priority: 200,
            addresses: vec![Some(address)],
        };
        let mine = [Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3)))];
        Peer::new(&settings, &["lan".into()], &mine)
    }

    fn hb(incarnation: u64, sequence: u64) -> Heartbeat<'static> {
        Heartbeat {
            link: 0,
            state: WireState::Active,
            flags: 0,
            health: 0,
            priority: 200,
            incarnation,
            sequence,
            fingerprint: [0; 8],
            nonce: 42,
            echo: 7,
            votes: None,
            quiet: false,
            wake: false,
            cluster: "c".into(),
            node: "alpha".into(),
        }
    }

    /// Our nonce as echoed, issued at `issued`, or none that counts.
    fn fresh(issued: Option<Instant>) -> Freshness {
        Freshness {
            issued,
            dead: DEAD,
            handshake: HANDSHAKE,
        }
    }

    fn timing() -> Timing {
        Timing {
            interval: Duration::from_secs(1),
            warn: Duration::from_secs(2),
            dead: DEAD,
            init_dead: DEAD,
            standby_interval: Duration::from_secs(1),
        }
    }

    /// The farewell came first on one link; a heartbeat sent before it comes late
    /// on the other: the peer stays gone, and no "up" is logged for it.
    #[test]
    fn a_heartbeat_older_than_the_farewell_does_not_bring_the_peer_back() {
        let t0 = Instant::now();
        let settings = PeerSettings {
            name: "alpha".into(),
            index: 0,
            witness: false,
            priority: 200,
            addresses: vec![
                Some(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2))),
                Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))),
            ],
        };
        let mine = [
            Some(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 3))),
            Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3))),
        ];
        let mut p = Peer::new(&settings, &["crossover".into(), "lan".into()], &mine);
        let on = |link: u8, sequence: u64, flags: u8| Heartbeat {
            link,
            state: WireState::Standby,
            flags,
            ..hb(5, sequence)
        };
        let fresh = fresh(Some(t0));
        let mut events = Vec::new();
        p.accept(0, &on(0, 8, 0), &fresh, t0, &mut events).unwrap();
        p.accept(1, &on(1, 8, 0), &fresh, t0, &mut events).unwrap();
        p.accept(0, &on(0, 10, FLAG_LEAVING), &fresh, t0, &mut events)
            .unwrap();
        assert!(!p.alive && p.leaving);
        events.clear();
        let late = t0 + Duration::from_millis(5);
        let update = p
            .accept(1, &on(1, 9, 0), &fresh, late, &mut events)
            .unwrap();
        assert!(!update.came_up && !p.present(), "{events:?}");
        assert!(events.is_empty(), "{events:?}");
        // Its next run is heard as any restart.
        let back = p.accept(0, &hb(6, 1), &fresh, late, &mut events).unwrap();
        assert!(back.came_up && p.present());
    }

    #[test]
    fn a_peer_opens_one_handshake_per_handshake_and_dead() {
        let t0 = Instant::now();
        let mut p = peer();
        let mut events = Vec::new();
        let stale = fresh(None);
        let at = |s: u64| t0 + Duration::from_millis(s);
        assert_eq!(
            p.accept(0, &hb(5, 1), &stale, t0, &mut events).err(),
            Some(Reject::Stale)
        );
        assert_eq!(p.handshake_since, Some(t0));
        // Stale packets every 1.5 s: none opens another until handshake + dead.
        for (i, ms) in (1500..6000).step_by(1500).enumerate() {
            let _ = p.accept(0, &hb(5, 2 + i as u64), &stale, at(ms), &mut events);
            assert_eq!(p.handshake_since, Some(t0), "at {ms} ms");
        }
        assert!(matches!(events.as_slice(), [Event::StaleBurst { .. }]));
        let _ = p.accept(0, &hb(5, 9), &stale, at(6000), &mut events);
        assert_eq!(p.handshake_since, Some(at(6000)));
    }

    #[test]
    fn a_stale_recording_of_what_was_heard_opens_no_handshake() {
        let t0 = Instant::now();
        let mut p = peer();
        let mut events = Vec::new();
        p.accept(0, &hb(5, 10), &fresh(Some(t0)), t0, &mut events)
            .expect("fresh");
        let later = t0 + DEAD * 2;
        assert!(p.age(later, &timing(), &mut events));
        let stale = fresh(None);
        let replayed = p.accept(0, &hb(5, 10), &stale, later, &mut events);
        assert_eq!(replayed.err(), Some(Reject::Replay));
        let older = p.accept(0, &hb(4, 99), &stale, later, &mut events);
        assert_eq!(older.err(), Some(Reject::OldIncarnation));
        assert_eq!(p.handshake_since, None);
        // A later sequence may be a partition healing: that one opens a handshake.
        let _ = p.accept(0, &hb(5, 11), &stale, later, &mut events);
        assert_eq!(p.handshake_since, Some(later));
    }

    #[test]
    fn an_older_incarnation_is_heard_only_once_the_known_one_is_dead_and_in_a_newer_echo() {
        let t0 = Instant::now();
        let mut p = peer();
        let mut events = Vec::new();
        p.accept(0, &hb(5, 1), &fresh(Some(t0)), t0, &mut events)
            .expect("fresh");
        let t1 = t0 + Duration::from_secs(1);
        // Alive: an older incarnation is a recording, whatever it echoes.
        let alive = p.accept(0, &hb(4, 1), &fresh(Some(t1)), t1, &mut events);
        assert_eq!(alive.err(), Some(Reject::OldIncarnation));
        let t2 = t0 + DEAD;
        assert!(p.age(t2, &timing(), &mut events));
        // Dead, but the echo is of a nonce issued before the peer was last heard.
        let early = p.accept(0, &hb(4, 2), &fresh(Some(t0)), t2, &mut events);
        assert_eq!(early.err(), Some(Reject::OldIncarnation));
        let update = p
            .accept(0, &hb(4, 3), &fresh(Some(t1)), t2, &mut events)
            .expect("a clock that went back");
        assert!(update.came_up && !update.restarted);
        assert_eq!(p.incarnation, Some(4));
    }
}
