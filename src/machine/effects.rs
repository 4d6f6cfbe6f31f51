//! The election's slow effects and what their outcomes mean: VIPs added, retried
//! and removed (and the stale ones found at start), and hook runs with the
//! environment they get. The effects themselves are the shell's; the machine only
//! asks for them, in order, and decides on what comes back.
//!
//! A VIP counts as held from the moment its add succeeded until a removal
//! succeeded. A failed removal leaves it [`Unremoved`]: it is tried again (bounded
//! backoff, for as long as it takes), reported each time, and a release does not
//! end, nor does the node tell its peers it let go, while one may still be in the
//! kernel.

use std::time::{Duration, Instant};

use super::election::{Active, After, Election, Lifecycle, Phase, VipState};
use super::health::{Kind, Run};
use super::timer::Timer;
use super::{
    Action, Effect, EffectId, Event, Hook, Machine, Reason, Role, Sighting, VipFailure, VipTarget,
};
use crate::config::LiveVip;

/// A VIP that could not be added is tried again after this long.
const VIP_RETRY: Duration = Duration::from_secs(1);
/// The first retry of a failed removal; each failure after it doubles the wait.
/// Short, since a release (and the peer that waits for it) is held up meanwhile.
const REMOVE_RETRY_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between two tries of a removal: a netlink that stays broken is
/// not hammered, and one that recovers is noticed within this.
const REMOVE_RETRY_MAX: Duration = Duration::from_secs(8);

/// A VIP whose removal failed: until a removal succeeds it may still be on the
/// node's interface, so it is not counted as gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unremoved {
    /// The try in flight, if one is.
    pub retrying: Option<EffectId>,
    /// When the next try is due, while none is in flight.
    pub retry_at: Instant,
    /// Failed tries in a row.
    pub failures: u32,
    /// Where the tries go: a removal made beside the queue (a withdrawal) is tried
    /// again beside it, so that a hook in the queue cannot hold it up; a queued one
    /// in the queue, so that it keeps its place before any later add.
    pub lane: Lane,
}

/// A VIP that a reload took out of the file while it was on this node: removed,
/// and tried again until that works, like a configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Retired {
    pub vip: VipTarget,
    /// `Removing` or `Unremoved`; the entry goes once the removal worked.
    pub state: VipState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    Queue,
    Beside,
}

/// How long to wait before the next try of a removal that failed `failures` times
/// in a row: doubling from [`REMOVE_RETRY_FIRST`], never more than
/// [`REMOVE_RETRY_MAX`].
pub(super) fn remove_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    REMOVE_RETRY_FIRST
        .saturating_mul(1 << doublings)
        .min(REMOVE_RETRY_MAX)
}

/// Hooks that only tell someone (a mail, a page) and that nothing waits for run
/// beside the queue, in an order of their own: a fault hook hung on a mail server
/// must not hold up the VIPs of a takeover decided after it, nor the start hook,
/// but the standby hook after it waits for it. Start and stop
/// stay in the queue, in their order with the VIP changes; the fence hook too,
/// as the takeover waits for it.
fn notifies_only(hook: Hook) -> bool {
    matches!(hook, Hook::Fault | Hook::Standby)
}

/// Whether a VIP in `state` waits for the outcome of effect `id`.
fn waits_for(state: &VipState, id: EffectId) -> bool {
    match state {
        VipState::Adding(x) | VipState::Removing(x) => *x == id,
        VipState::Unremoved(u) => u.retrying == Some(id),
        _ => false,
    }
}

impl Election {
    /// Whether a VIP is still being removed, or waits to be tried again: one of
    /// the election's, or one a reload took out of the file.
    pub(super) fn removing(&self) -> bool {
        let retired = self.retired.iter().map(|r| &r.state);
        self.vips
            .iter()
            .chain(retired)
            .any(|s| matches!(s, VipState::Removing(_) | VipState::Unremoved(_)))
    }
}

impl Machine {
    pub(super) fn on_vip_done(
        &mut self,
        now: Instant,
        id: EffectId,
        result: &Result<(), VipFailure>,
    ) {
        let lane = if self.election.withdrawals.remove(&id) {
            Lane::Beside
        } else {
            Lane::Queue
        };
        if let Some(r) = self
            .election
            .retired
            .iter()
            .position(|r| waits_for(&r.state, id))
        {
            let vip = self.election.retired[r].vip.to_string();
            match self.removal_done(now, &vip, self.election.retired[r].state, lane, result) {
                VipState::Absent => {
                    self.election.retired.remove(r);
                }
                state => self.election.retired[r].state = state,
            }
            return self.arm_vip_retry();
        }
        let Some(i) = self.election.vips.iter().position(|s| waits_for(s, id)) else {
            return;
        };
        let vip = self.settings.vips[i].to_string();
        match (self.election.vips[i], result) {
            (VipState::Adding(_), Ok(())) => {
                self.election.vips[i] = VipState::Held;
                self.vip_check(now, Ok(()));
                self.start_when_held(now);
            }
            (VipState::Adding(_), Err(failure)) => {
                // Whatever the kind, another try may work: an interface can appear
                // and an administrator can fix a permission while we wait.
                self.events.push(Event::VipFailed {
                    vip,
                    action: "add",
                    error: failure.message.clone(),
                });
                self.election.vips[i] = VipState::Failed {
                    retry_at: now + VIP_RETRY,
                };
                self.arm_vip_retry();
                self.vip_check(now, Err(failure));
            }
            (state @ (VipState::Removing(_) | VipState::Unremoved(_)), _) => {
                self.election.vips[i] = self.removal_done(now, &vip, state, lane, result);
                self.arm_vip_retry();
            }
            _ => {}
        }
    }

    /// What a removal's outcome leaves of a VIP that was being removed (`state`):
    /// gone, or, whatever the kind of failure, [`Unremoved`] with its next try
    /// scheduled and the failure reported. A missing interface or an address already
    /// gone count as successes, so what fails here may well still hold the address.
    fn removal_done(
        &mut self,
        now: Instant,
        vip: &str,
        state: VipState,
        lane: Lane,
        result: &Result<(), VipFailure>,
    ) -> VipState {
        let Err(failure) = result else {
            return VipState::Absent;
        };
        let failures = match state {
            VipState::Unremoved(u) => u.failures + 1,
            _ => 1,
        };
        let retry_in = remove_backoff(failures);
        self.events.push(Event::VipRemoveFailed {
            vip: vip.to_string(),
            error: failure.message.clone(),
            failures,
            retry_in,
        });
        VipState::Unremoved(Unremoved {
            retrying: None,
            retry_at: now + retry_in,
            failures,
            lane,
        })
    }

    /// Feeds the built-in `vip` check: a node that cannot add its VIPs (its add
    /// and the retry a second later both failed) hands over to a healthy peer.
    fn vip_check(&mut self, now: Instant, result: Result<(), &VipFailure>) {
        let Some(index) = self.builtin(&Kind::Vip) else {
            return;
        };
        let run = Run {
            passed: result.is_ok(),
            took: Duration::ZERO,
            detail: result.err().map(|f| f.message.clone()).unwrap_or_default(),
        };
        self.record_check(now, index, run);
    }

    /// Tries again what failed and is due: removals whatever the role (a VIP that
    /// may still be here must go), additions only while active and not releasing.
    ///
    /// An add tried again after an unplanned takeover first asks the LAN, as the
    /// takeover did (see `guard`): the takeover was decided when the old holder
    /// could not be heard, but the network may have healed since, with the old
    /// holder's kernel still answering for the VIP (its daemon stopped or paused),
    /// and adding it then would put it on two machines.
    pub(super) fn retry_vips(&mut self, now: Instant) {
        let adding = self.role() == Role::Active && !self.releasing();
        let due: Vec<usize> = (0..self.settings.vips.len())
            .filter(|&i| {
                matches!(self.election.vips[i], VipState::Failed { retry_at } if now >= retry_at)
            })
            .collect();
        if adding && !due.is_empty() {
            if self.unplanned_hold() && self.settings.split_brain.live_vip == LiveVip::Wait {
                if self.election.add_probe.is_none() {
                    self.probe_before_adding(&due);
                }
            } else {
                self.add_again(&due);
            }
        }
        for i in 0..self.settings.vips.len() {
            match self.election.vips[i] {
                VipState::Unremoved(u) if u.retrying.is_none() && now >= u.retry_at => {
                    let vip = self.settings.vips[i].clone();
                    self.election.vips[i] = self.remove_again(vip, u);
                }
                _ => {}
            }
        }
        for r in 0..self.election.retired.len() {
            if let VipState::Unremoved(u) = self.election.retired[r].state
                && u.retrying.is_none()
                && now >= u.retry_at
            {
                let vip = self.election.retired[r].vip.clone();
                self.election.retired[r].state = self.remove_again(vip, u);
            }
        }
        self.arm_vip_retry();
    }

    /// Adds again the VIPs of `due` that still failed.
    fn add_again(&mut self, due: &[usize]) {
        let mut added = false;
        for &i in due {
            if matches!(self.election.vips[i], VipState::Failed { .. }) {
                let id = self.add_effect(i);
                self.election.vips[i] = VipState::Adding(id);
                added = true;
            }
        }
        if added {
            self.announce_after_adds();
        }
    }

    /// Whether this node holds the VIPs after a takeover that no release made room
    /// for.
    fn unplanned_hold(&self) -> bool {
        !matches!(
            self.election.reason,
            Reason::PeerReleased { .. } | Reason::PeerLeft { .. } | Reason::OperatorTakeover
        )
    }

    /// Asks the LAN whether another host answers for the VIPs of `due`; the adds
    /// wait for its answer ([`Machine::on_add_probed`]).
    fn probe_before_adding(&mut self, due: &[usize]) {
        let id = self.election.guard.next_id();
        self.election.add_probe = Some((id, due.to_vec()));
        let vips = due.iter().map(|&i| self.settings.vips[i].clone()).collect();
        let window = self.probe_window();
        self.actions.push_back(Action::Probe { id, vips, window });
    }

    /// The answer to [`Machine::probe_before_adding`]. Any answer from another host
    /// puts off every VIP the probe asked about, as it holds back a takeover: a
    /// probe ends at the first answer, so silence about one VIP says nothing when
    /// another answered. Silence (or a probe that could not be sent: the guard
    /// cannot tell, so the node does what it would without it) lets the adds go.
    pub(super) fn on_add_probed(&mut self, now: Instant, result: &Result<Vec<Sighting>, String>) {
        let Some((_, probed)) = self.election.add_probe.take() else {
            return;
        };
        let still: Vec<usize> = probed
            .into_iter()
            .filter(|&i| matches!(self.election.vips.get(i), Some(VipState::Failed { .. })))
            .collect();
        match result {
            Ok(answers) if !answers.is_empty() => {
                if let Some(&first) = still.first() {
                    let more = match still.len() {
                        1 => String::new(),
                        n => format!(" and {} more", n - 1),
                    };
                    self.events.push(Event::VipFailed {
                        vip: format!("{}{more}", self.settings.vips[first]),
                        action: "add",
                        error: format!(
                            "another host answers ({}); not adding while it does",
                            answers[0]
                        ),
                    });
                }
                for &i in &still {
                    self.election.vips[i] = VipState::Failed {
                        retry_at: now + VIP_RETRY,
                    };
                }
            }
            _ if self.role() == Role::Active && !self.releasing() => self.add_again(&still),
            _ => {}
        }
        self.arm_vip_retry();
    }

    /// Tries the removal of `vip` again, the way it went the first time.
    pub(super) fn remove_again(&mut self, vip: VipTarget, u: Unremoved) -> VipState {
        let id = match u.lane {
            Lane::Queue => self.effect(Effect::RemoveVip(vip)),
            Lane::Beside => self.withdraw(vip),
        };
        VipState::Unremoved(Unremoved {
            retrying: Some(id),
            ..u
        })
    }

    fn arm_vip_retry(&mut self) {
        // While a probe is out, its answer tries the adds again, not a timer.
        let adding =
            self.role() == Role::Active && !self.releasing() && self.election.add_probe.is_none();
        let retired = self.election.retired.iter().map(|r| &r.state);
        let next = self
            .election
            .vips
            .iter()
            .chain(retired)
            .filter_map(|s| match s {
                VipState::Failed { retry_at } if adding => Some(*retry_at),
                VipState::Unremoved(u) if u.retrying.is_none() => Some(u.retry_at),
                _ => None,
            })
            .min();
        self.timers.set_or_stop(Timer::VipRetry, next);
    }

    /// The failed removals in a row of VIP `i`: 0 unless its removal keeps failing.
    pub(super) fn removal_failures(&self, i: usize) -> u32 {
        match self.election.vips.get(i) {
            Some(VipState::Unremoved(u)) => u.failures,
            _ => 0,
        }
    }

    /// VIPs found on this node at start were left by the daemon before (a crash, a
    /// SIGKILL, a restart). A starting node keeps them while it listens: if no live
    /// peer holds the VIPs when the wait is over, it adopts them and clients lose
    /// nothing (`Reason::Adopted`); otherwise they go at once (see `drop_found`). In
    /// this node's own maintenance they are adopted at once, as maintenance leaves
    /// everything where it is, across a restart too. Found later, by a node that has
    /// moved on, they are removed, with the stop hook first since the service may
    /// have survived too.
    pub(super) fn remove_stale(&mut self, now: Instant, found: &[usize]) {
        if matches!(self.election.phase, Phase::Active(_) | Phase::Releasing(_)) {
            return;
        }
        // Killed during a release, the daemon may have stopped the service (the
        // stop hook runs first) and not yet removed the VIPs: adopted, they would
        // lead clients to a stopped service. They go, and the election decides.
        let unfinished = self.release_noted && !self.maintenance && self.role() == Role::Starting;
        for &i in found {
            if self.election.vips.get(i) == Some(&VipState::Absent) {
                self.election.vips[i] = VipState::Held;
                if !unfinished {
                    self.events.push(Event::VipFound {
                        vip: self.settings.vips[i].to_string(),
                    });
                }
            }
        }
        if unfinished {
            // Nothing found: the note goes at once (see `settle_note`).
            self.drop_found();
            return;
        }
        if self.maintenance {
            if self.role() == Role::Starting && self.adopting() {
                let by = self.settings.name.clone();
                self.transition(
                    now,
                    Phase::Active(Active::default()),
                    Reason::Maintenance { by },
                );
                // The service runs on (maintenance left it alone): so do its checks.
                // One whose start hook the last daemon did not see end is told of:
                // in maintenance no hook runs, so nothing starts it again.
                if self.start_noted {
                    self.events.push(Event::UnfinishedStart { rerun: false });
                }
                self.service_started(now);
                // Held again: a release noted before the restart is over.
                self.note_release(false);
                self.watch(true);
            }
            return;
        }
        if self.role() != Role::Starting {
            self.drop_found();
        }
    }

    /// A note of a release that did not finish goes once nothing it is about is
    /// left: the VIPs found at start were looked for, and no VIP is held, found or
    /// being removed, by a node that is neither active, claiming nor releasing. Not
    /// before the removals worked: a note gone with a VIP still in the kernel would
    /// let the next start adopt it.
    pub(super) fn settle_note(&mut self) {
        let idle = matches!(
            self.election.phase,
            Phase::Starting | Phase::Standby | Phase::Fault
        );
        let settled = idle
            && self.election.stale_probe.is_none()
            && self.election.vips.iter().all(|s| *s == VipState::Absent)
            && self.election.retired.is_empty();
        if self.release_noted && settled {
            self.note_release(false);
        }
        // A start that did not finish is over once nothing of it is left: the VIPs
        // it found went, with the stop hook for the service.
        if self.start_noted && settled && !self.hook_running(Hook::Stop) {
            self.note_start(false);
        }
    }

    /// Notes in the state directory whether the start hook runs, when that
    /// changes: noted just before it runs, in the effects' order, and cleared once
    /// it ended. A daemon killed meanwhile finds the note at its next start and
    /// runs the start hook again if it adopts the VIPs (see `become_active`): the
    /// service may have been left half started.
    pub(super) fn note_start(&mut self, under_way: bool) {
        if self.start_noted == under_way {
            return;
        }
        self.start_noted = under_way;
        let state_dir = self.settings.state_dir.clone();
        self.effect(Effect::NoteStart {
            state_dir,
            under_way,
        });
    }

    /// Whether `hook` runs now.
    fn hook_running(&self, hook: Hook) -> bool {
        self.election.hooks_running.values().any(|h| *h == hook)
    }

    /// Notes in the state directory whether a release is under way, when that
    /// changes. Noted when a release begins, before its stop hook; cleared when it
    /// ends and when this node takes the VIPs again, in the effects' order. So a
    /// daemon that finds the VIPs at start and the note says the last holding
    /// ended in a release that did not finish (see `remove_stale`).
    pub(super) fn note_release(&mut self, under_way: bool) {
        if self.release_noted == under_way {
            return;
        }
        self.release_noted = under_way;
        let state_dir = self.settings.state_dir.clone();
        self.effect(Effect::NoteRelease {
            state_dir,
            under_way,
        });
    }

    /// Starting with VIPs found on this node, not yet adopted or dropped.
    pub(super) fn adopting(&self) -> bool {
        matches!(self.election.phase, Phase::Starting)
            && self.election.vips.contains(&VipState::Held)
    }

    /// Drops the VIPs found at start (held, not adopted): the removal first, since
    /// a live peer may hold them too, then the stop hook for the service that may
    /// have survived. Nothing found, nothing to drop: a standby restarted next to
    /// an active peer leaves its service alone (it may run on both nodes).
    pub(super) fn drop_found(&mut self) {
        if !self.election.vips.contains(&VipState::Held) {
            return;
        }
        let why = if self.release_noted {
            self.events.push(Event::UnfinishedRelease);
            Reason::UnfinishedRelease
        } else {
            Reason::StaleVip
        };
        for i in 0..self.settings.vips.len() {
            if self.election.vips[i] == VipState::Held {
                self.events.push(Event::StaleVip {
                    vip: self.settings.vips[i].to_string(),
                });
                let id = self.effect(Effect::RemoveVip(self.settings.vips[i].clone()));
                self.election.vips[i] = VipState::Removing(id);
            }
        }
        let role = self.role().as_str();
        self.run_hook_as(Hook::Stop, (role, role, why.to_string()));
    }

    /// Starts or stops watching the VIPs for other hosts that claim them.
    pub(super) fn watch(&mut self, on: bool) {
        let vips = if on {
            self.settings.vips.clone()
        } else {
            Vec::new()
        };
        if on && vips.is_empty() {
            return;
        }
        self.actions.push_back(super::Action::Watch(vips));
    }

    /// Active with every VIP in place and nothing being released.
    pub(super) fn holding(&self) -> bool {
        matches!(self.election.phase, Phase::Active(_))
            && !self.settings.vips.is_empty()
            && self.election.vips.iter().all(|s| *s == VipState::Held)
    }

    // --- hooks --------------------------------------------------------------

    pub(super) fn run_hook(&mut self, hook: Hook) -> Option<EffectId> {
        let context = self.hook_context(hook);
        self.run_hook_as(hook, context)
    }

    /// Runs `hook` with the given (new state, previous state, reason).
    pub(super) fn run_hook_as(
        &mut self,
        hook: Hook,
        (state, previous, reason): (&'static str, &'static str, String),
    ) -> Option<EffectId> {
        let program = self.settings.hooks.program(hook)?.clone();
        let env = self.hook_env(hook, state, previous, reason);
        let effect = Effect::RunHook {
            hook,
            program,
            env,
            timeout: self.settings.hooks.timeout,
        };
        let id = if notifies_only(hook) {
            let id = EffectId(self.next_effect);
            self.next_effect += 1;
            self.actions.push_back(Action::Notify { id, effect });
            id
        } else {
            self.effect(effect)
        };
        self.election.hooks_running.insert(id, hook);
        Some(id)
    }

    /// What a hook run now is about: the new state, the previous one, and why. A
    /// stop hook during a release speaks of where the release ends.
    fn hook_context(&self, hook: Hook) -> (&'static str, &'static str, String) {
        match (&self.election.phase, hook) {
            (Phase::Releasing(release), Hook::Stop) => (
                match (self.lifecycle, release.after) {
                    (Lifecycle::Stopping | Lifecycle::Exited, _) => "stopped",
                    (Lifecycle::Running, After::Standby) => "standby",
                    (Lifecycle::Running, After::Fault) => "fault",
                },
                release.from.as_str(),
                release.reason.to_string(),
            ),
            _ => (
                self.role().as_str(),
                self.election.previous.as_str(),
                self.election.reason.to_string(),
            ),
        }
    }

    /// The environment every hook sees; docs/checks-and-hooks.md documents it.
    pub(super) fn hook_env(
        &self,
        hook: Hook,
        state: &str,
        previous: &str,
        reason: String,
    ) -> Vec<(String, String)> {
        // The nodes a service may move to or from; a witness is none of them, and a
        // hook written for two nodes takes FAILOVERD_PEER for one host name.
        let peers: Vec<&str> = self
            .peers
            .iter()
            .filter(|p| !p.witness)
            .map(|p| p.name.as_str())
            .collect();
        let vips: Vec<String> = self.settings.vips.iter().map(ToString::to_string).collect();
        vec![
            ("FAILOVERD_HOOK".into(), hook.as_str().into()),
            ("FAILOVERD_STATE".into(), state.into()),
            ("FAILOVERD_PREVIOUS_STATE".into(), previous.into()),
            ("FAILOVERD_REASON".into(), reason),
            ("FAILOVERD_NODE".into(), self.settings.name.clone()),
            ("FAILOVERD_PEER".into(), peers.join(" ")),
            ("FAILOVERD_CLUSTER".into(), self.settings.cluster.clone()),
            ("FAILOVERD_VIPS".into(), vips.join(" ")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::super::{Input, Kept, Outcome, VipFailureKind};
    use super::*;
    use crate::config::Config;
    use crate::config::sample::Sample;
    use crate::scratch::Scratch;

    /// The sample with fast timers, no hooks and `vips` (IPv4 addresses on eth0).
    fn config(vips: &[&str]) -> Config {
        let dir = Scratch::new("effects");
        let key = dir.join("authkey");
        fs::write(&key, "effects-test-key-0123456789\n").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let mut sample = Sample::new()
            .set("cluster.key_file", "authkey")
            .set("timing.interval", "100ms")
            .set("timing.warn", "300ms")
            .set("timing.dead", "500ms")
            .set("timing.init_dead", "1s")
            .set("health.gateways", "[]")
            .set("health.link_state", false)
            .remove("hooks")
            .remove("vip");
        for vip in vips {
            sample = sample.append(&format!(
                "[[vip]]\naddress = \"{vip}/24\"\ninterface = \"eth0\""
            ));
        }
        Config::parse(&sample.to_string(), dir.path()).expect("a valid configuration")
    }

    /// Plays the shell for a node alone (its peer never answers) from `from` for
    /// `how_long`, 10 ms at a time: every effect and probe is answered at once, and
    /// the removals of the VIPs in `failing` fail. Returns the removals asked for (the
    /// VIP) and the exit ("exit"), with the time they were.
    fn run(
        machine: &mut Machine,
        from: Instant,
        how_long: Duration,
        failing: &[&str],
    ) -> Vec<(Instant, String)> {
        let mut removals = Vec::new();
        let mut probes = Vec::new();
        let mut now = from;
        while now < from + how_long {
            if machine.poll_timeout().is_some_and(|t| t <= now) {
                machine.handle_timeout(now);
            }
            // Probes are answered a step later, as the LAN would.
            for id in std::mem::take(&mut probes) {
                let result = Ok(Vec::new());
                machine.handle(
                    now,
                    Input::Probed {
                        id,
                        result: &result,
                    },
                );
            }
            while let Some(action) = machine.poll_action() {
                let (id, outcome) = match action {
                    Action::Effect { id, effect } | Action::Notify { id, effect } => {
                        let outcome = match effect {
                            Effect::FindStale { .. } => Outcome::Present(Vec::new()),
                            Effect::AddVip { .. } => Outcome::Vip(Ok(())),
                            Effect::RemoveVip(vip) => {
                                let vip = vip.to_string();
                                let fails = failing.contains(&vip.as_str());
                                removals.push((now, vip));
                                Outcome::Vip(if fails {
                                    Err(VipFailure {
                                        kind: VipFailureKind::Transient,
                                        message: "no answer from netlink within 5s".into(),
                                    })
                                } else {
                                    Ok(())
                                })
                            }
                            Effect::Announce { .. }
                            | Effect::NoteRelease { .. }
                            | Effect::NoteStart { .. } => Outcome::Done,
                            Effect::RunHook { .. } => Outcome::Hook {
                                success: true,
                                summary: "exited 0 after 1ms".into(),
                            },
                        };
                        (id, outcome)
                    }
                    Action::Probe { id, .. } => {
                        probes.push(id);
                        continue;
                    }
                    Action::Exit => {
                        removals.push((now, "exit".into()));
                        continue;
                    }
                    _ => continue,
                };
                machine.handle(
                    now,
                    Input::Done {
                        id,
                        outcome: &outcome,
                    },
                );
            }
            now += Duration::from_millis(10);
        }
        removals
    }

    /// A reload that takes a VIP out of the file removes it from the node; when
    /// that fails, the VIP is no longer the election's, but its removal is still
    /// tried again until it works.
    #[test]
    fn a_vip_a_reload_took_out_is_removed_until_that_works() {
        let (mut machine, t2, removals) = retired_and_unremoved(Duration::from_secs(4));
        assert!(removals.len() >= 3, "{removals:?}");
        assert!(removals.iter().all(|(_, vip)| vip == RETIRED));
        assert_eq!(
            removals[2].0 - removals[1].0,
            2 * (removals[1].0 - removals[0].0),
            "the wait doubles"
        );
        let removals = run(&mut machine, t2, Duration::from_secs(10), &[]);
        assert_eq!(removals.len(), 1, "{removals:?}");
        assert!(machine.election.retired.is_empty());
        assert!(machine.holding(), "the VIP that stays is held");
    }

    /// The VIP the tests' reloads take out of the file.
    const RETIRED: &str = "198.18.0.20/24";

    /// Alpha alone holding .10 and .20, after a reload that took .20 out of the
    /// file and whose removal of it keeps failing for `failing`; with the time
    /// that ends, and the removals tried.
    fn retired_and_unremoved(failing: Duration) -> (Machine, Instant, Vec<(Instant, String)>) {
        let t0 = Instant::now();
        let mut machine = Machine::new(&config(&["198.18.0.10", "198.18.0.20"]), 0, 1, 1, t0);
        run(&mut machine, t0, Duration::from_secs(3), &[]);
        assert!(machine.holding(), "alone, alpha took the VIPs");
        let t1 = t0 + Duration::from_secs(3);
        machine
            .reconfigure(t1, &config(&["198.18.0.10"]))
            .expect("the reload applies");
        let removals = run(&mut machine, t1, failing, &[RETIRED]);
        assert!(!removals.is_empty(), "the removal was tried");
        assert_eq!(machine.election.retired.len(), 1);
        (machine, t1 + failing, removals)
    }

    /// A node does not exit, telling its peers it let go, while a VIP a reload
    /// took out of the file may still be on its interface.
    #[test]
    fn a_shutdown_waits_for_the_removal_of_a_vip_a_reload_took_out() {
        let (mut machine, t, _) = retired_and_unremoved(Duration::from_secs(2));
        machine.handle(t, Input::Shutdown);
        let played = run(&mut machine, t, Duration::from_secs(3), &[RETIRED]);
        assert!(
            played.iter().any(|(_, what)| what == RETIRED),
            "the release tries it again: {played:?}"
        );
        assert!(
            !played.iter().any(|(_, what)| what == "exit"),
            "exited with 198.18.0.20 perhaps still here: {played:?}"
        );
        let t = t + Duration::from_secs(3);
        let played = run(&mut machine, t, Duration::from_secs(10), &[]);
        let exit = played.iter().position(|(_, what)| what == "exit");
        let removed = played.iter().position(|(_, what)| what == RETIRED);
        assert!(
            matches!((removed, exit), (Some(r), Some(e)) if r < e),
            "{played:?}"
        );
        assert!(machine.election.retired.is_empty());
    }

    /// A release (here an operator's standby) ends, and the peers hear that this
    /// node let go, only once such a VIP is gone as well.
    #[test]
    fn a_release_waits_for_the_removal_of_a_vip_a_reload_took_out() {
        let (mut machine, t, _) = retired_and_unremoved(Duration::from_millis(700));
        release_waits_for_the_retired(&mut machine, t);
    }

    /// An operator's standby at `t` on `machine`, which fails to remove the VIP a
    /// reload took out: the release lasts while that fails, and ends once it works.
    fn release_waits_for_the_retired(machine: &mut Machine, t: Instant) {
        let after = super::super::election::After::Standby;
        machine.start_release(t, after, Reason::OperatorStandby);
        run(machine, t, Duration::from_secs(3), &[RETIRED]);
        assert!(
            machine.releasing(),
            "released with {RETIRED} perhaps still here"
        );
        let t = t + Duration::from_secs(3);
        run(machine, t, Duration::from_secs(10), &[]);
        // (Alone, it then takes the VIPs again, as nobody else holds them.)
        assert!(
            !machine.releasing(),
            "the removal worked, the release ended"
        );
        assert!(machine.election.retired.is_empty());
    }

    /// The same when the reload left no VIP in the file: the release has nothing
    /// of the election's to remove, and still waits.
    #[test]
    fn a_release_with_no_vip_left_waits_for_those_a_reload_took_out() {
        let t0 = Instant::now();
        let mut machine = Machine::new(&config(&["198.18.0.20"]), 0, 1, 1, t0);
        run(&mut machine, t0, Duration::from_secs(3), &[]);
        assert!(machine.holding(), "alone, alpha took the VIP");
        let t1 = t0 + Duration::from_secs(3);
        machine
            .reconfigure(t1, &config(&[]))
            .expect("the reload applies");
        run(&mut machine, t1, Duration::from_millis(700), &[RETIRED]);
        assert_eq!(machine.election.retired.len(), 1);
        release_waits_for_the_retired(&mut machine, t1 + Duration::from_millis(700));
    }

    /// A VIP put back in the file while a node that is not active still fails
    /// to remove it (taken out by an earlier reload) keeps being removed: nothing
    /// else would take it off the interface, and the active peer may hold it.
    #[test]
    fn a_vip_back_in_the_file_is_still_removed_from_a_node_that_is_not_active() {
        let (mut machine, t, _) = retired_and_unremoved(Duration::from_millis(700));
        machine.start_release(
            t,
            super::super::election::After::Standby,
            Reason::OperatorStandby,
        );
        run(&mut machine, t, Duration::from_millis(100), &[RETIRED]);
        assert!(machine.releasing());
        let t = t + Duration::from_millis(100);
        machine
            .reconfigure(t, &config(&["198.18.0.10", "198.18.0.20"]))
            .expect("the reload applies");
        assert!(machine.election.retired.is_empty(), "the election's again");
        let played = run(&mut machine, t, Duration::from_secs(10), &[RETIRED]);
        assert!(
            played.iter().any(|(_, what)| what == RETIRED),
            "no longer removed: {played:?}"
        );
        let t = t + Duration::from_secs(10);
        run(&mut machine, t, Duration::from_secs(10), &[]);
        assert!(
            !machine.releasing(),
            "the removal worked, the release ended"
        );
    }

    /// The note of a killed release goes once what it was about is gone: at once
    /// when nothing was found, and after the removal of what was, not before.
    #[test]
    fn the_note_of_a_killed_release_goes_once_its_vips_are_gone() {
        let t0 = Instant::now();
        let config = config(&["198.18.0.10"]);
        let noted = Kept {
            releasing: true,
            ..Kept::default()
        };
        let notes = |machine: &mut Machine| {
            let mut notes = Vec::new();
            let mut removals = Vec::new();
            while let Some(action) = machine.poll_action() {
                match action {
                    Action::Effect {
                        effect: Effect::NoteRelease { under_way, .. },
                        ..
                    } => notes.push(under_way),
                    Action::Effect {
                        id,
                        effect: Effect::RemoveVip(_),
                    } => removals.push(id),
                    _ => {}
                }
            }
            (notes, removals)
        };
        for found in [&[][..], &[0][..]] {
            let mut machine = Machine::with_kept(&config, 0, 1, 1, noted, t0);
            let probe = machine.election.stale_probe.expect("a look for stale VIPs");
            notes(&mut machine);
            // Heard an active peer first: standby before the answer came.
            machine.transition(t0, Phase::Standby, Reason::Elected);
            let present = Outcome::Present(found.to_vec());
            machine.handle(
                t0,
                Input::Done {
                    id: probe,
                    outcome: &present,
                },
            );
            let (noted, removals) = notes(&mut machine);
            if found.is_empty() {
                assert_eq!(noted, [false], "nothing found");
                continue;
            }
            assert_eq!(
                noted,
                Vec::<bool>::new(),
                "cleared before the removal worked"
            );
            let [removal] = removals[..] else {
                panic!("one removal: {removals:?}");
            };
            let failed = Outcome::Vip(Err(VipFailure {
                kind: VipFailureKind::Transient,
                message: "no answer".into(),
            }));
            machine.handle(
                t0,
                Input::Done {
                    id: removal,
                    outcome: &failed,
                },
            );
            assert_eq!(
                notes(&mut machine).0,
                Vec::<bool>::new(),
                "cleared on a failure"
            );
            assert!(machine.release_noted());
            let t1 = t0 + Duration::from_millis(600);
            machine.handle_timeout(t1);
            let (noted, removals) = notes(&mut machine);
            assert_eq!(noted, Vec::<bool>::new());
            let [retry] = removals[..] else {
                panic!("the removal tried again: {removals:?}");
            };
            machine.handle(
                t1,
                Input::Done {
                    id: retry,
                    outcome: &Outcome::Vip(Ok(())),
                },
            );
            assert_eq!(
                notes(&mut machine).0,
                [false],
                "the VIP is gone, so is the note"
            );
        }
    }

    /// A node that found no VIP at start has nothing to drop: it runs no stop hook,
    /// even when it heard an active peer before the lookup answered (its service
    /// may run on both nodes).
    #[test]
    fn nothing_found_at_start_runs_no_hook() {
        let t0 = Instant::now();
        let mut config = config(&["198.18.0.10"]);
        config.hooks.stop = Some("/bin/true".into());
        let mut machine = Machine::new(&config, 0, 1, 1, t0);
        while machine.poll_action().is_some() {}
        machine.transition(t0, Phase::Standby, Reason::Elected);
        machine.remove_stale(t0, &[]);
        let mut actions = Vec::new();
        while let Some(action) = machine.poll_action() {
            actions.push(action);
        }
        assert!(
            !actions.iter().any(|a| matches!(
                a,
                Action::Effect {
                    effect: Effect::RunHook { .. },
                    ..
                }
            )),
            "{actions:?}"
        );
    }

    #[test]
    fn a_failing_removal_waits_longer_each_time_up_to_a_cap() {
        let waits: Vec<u64> = (1..=8)
            .map(|n| remove_backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000]);
        // No overflow however long it fails.
        assert_eq!(remove_backoff(u32::MAX), REMOVE_RETRY_MAX);
        assert_eq!(remove_backoff(0), REMOVE_RETRY_FIRST);
    }

    #[test]
    fn only_hooks_that_notify_run_beside_the_queue() {
        assert!(notifies_only(Hook::Fault));
        assert!(notifies_only(Hook::Standby));
        // The start and stop hooks keep their order with the VIP changes, and a
        // takeover waits for the fence.
        assert!(!notifies_only(Hook::Start));
        assert!(!notifies_only(Hook::Stop));
        assert!(!notifies_only(Hook::Fence));
    }
}
