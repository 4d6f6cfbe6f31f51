//! The election's slow effects and what their outcomes mean: VIPs added, retried
//! and removed (and the stale ones found at start), and hook runs with the
//! environment they get. The effects themselves are the shell's; the machine only
//! asks for them, in order, and decides on what comes back.

use std::time::{Duration, Instant};

use super::election::{Active, After, Lifecycle, Phase, VipState};
use super::health::{Kind, Run};
use super::timer::Timer;
use super::{Effect, EffectId, Event, Hook, Machine, Reason, Role, VipFailure};

/// A VIP that could not be added is tried again after this long.
const VIP_RETRY: Duration = Duration::from_secs(1);

impl Machine {
    pub(super) fn on_vip_done(
        &mut self,
        now: Instant,
        id: EffectId,
        result: &Result<(), VipFailure>,
    ) {
        let Some(i) = self
            .election
            .vips
            .iter()
            .position(|s| matches!(s, VipState::Adding(x) | VipState::Removing(x) if *x == id))
        else {
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
            (VipState::Removing(_), result) => {
                if let Err(failure) = result {
                    self.events.push(Event::VipFailed {
                        vip,
                        action: "remove",
                        error: failure.message.clone(),
                    });
                }
                self.election.vips[i] = VipState::Absent;
            }
            _ => {}
        }
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

    pub(super) fn retry_vips(&mut self, now: Instant) {
        if self.role() != Role::Active || self.releasing() {
            return;
        }
        let mut retried = false;
        for i in 0..self.settings.vips.len() {
            if let VipState::Failed { retry_at } = self.election.vips[i]
                && now >= retry_at
            {
                let id = self.effect(Effect::AddVip(self.settings.vips[i].clone()));
                self.election.vips[i] = VipState::Adding(id);
                retried = true;
            }
        }
        if retried {
            let effect = self.announce_effect(self.settings.announce.rounds);
            self.effect(effect);
        }
        self.arm_vip_retry();
    }

    fn arm_vip_retry(&mut self) {
        let next = self
            .election
            .vips
            .iter()
            .filter_map(|s| match s {
                VipState::Failed { retry_at } => Some(*retry_at),
                _ => None,
            })
            .min();
        self.timers.set_or_stop(Timer::VipRetry, next);
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
        for &i in found {
            if self.election.vips.get(i) == Some(&VipState::Absent) {
                self.election.vips[i] = VipState::Held;
                self.events.push(Event::VipFound {
                    vip: self.settings.vips[i].to_string(),
                });
            }
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
                self.service_started(now);
                self.watch(true);
            }
            return;
        }
        if self.role() != Role::Starting {
            self.drop_found();
        }
    }

    /// Starting with VIPs found on this node, not yet adopted or dropped.
    pub(super) fn adopting(&self) -> bool {
        matches!(self.election.phase, Phase::Starting)
            && self.election.vips.contains(&VipState::Held)
    }

    /// Drops the VIPs found at start (held, not adopted): the removal first, since
    /// a live peer may hold them too, then the stop hook for the service that may
    /// have survived.
    pub(super) fn drop_found(&mut self) {
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
        self.run_hook_as(Hook::Stop, (role, role, Reason::StaleVip.to_string()));
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
        let id = self.effect(Effect::RunHook {
            hook,
            program,
            env,
            timeout: self.settings.hooks.timeout,
        });
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

    /// The environment every hook sees; documented in the README.
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
