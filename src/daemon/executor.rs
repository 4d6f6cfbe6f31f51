//! Performs the machine's slow effects one at a time, in the order requested, and
//! reports each outcome back. Order is the point: "stop hook, then remove the VIP"
//! must never become the reverse because netlink happened to be faster.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::hooks::HookStatus;
use super::host::Host;
use crate::duration::format_duration;
use crate::machine::{Effect, EffectId, Outcome, VipTarget};
use crate::status::{HookRun, millis, rfc3339};

/// Hook runs kept for `failoverd status`.
const HOOK_HISTORY: usize = 20;

/// Announcements in flight stop when this changes: a VIP being removed must not be
/// announced again by rounds started while it was held.
#[derive(Clone, Default)]
pub struct Announcing(Arc<std::sync::atomic::AtomicU64>);

impl Announcing {
    fn epoch(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn cancel(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub struct Executor<H: Host> {
    announcing: Announcing,
    host: H,
    done: mpsc::UnboundedSender<(EffectId, Outcome)>,
    hook_runs: Arc<Mutex<Vec<HookRun>>>,
}

impl<H: Host> Executor<H> {
    pub fn new(host: H, done: mpsc::UnboundedSender<(EffectId, Outcome)>) -> Executor<H> {
        Executor {
            announcing: Announcing::default(),
            host,
            done,
            hook_runs: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The most recent hook runs, newest first, shared with the status report.
    pub fn hook_runs(&self) -> Arc<Mutex<Vec<HookRun>>> {
        Arc::clone(&self.hook_runs)
    }

    pub fn announcing(&self) -> Announcing {
        self.announcing.clone()
    }

    /// Starts the executor task; effects sent on the returned channel run in order.
    pub fn spawn(self) -> mpsc::UnboundedSender<(EffectId, Effect)> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(EffectId, Effect)>();
        tokio::spawn(async move {
            while let Some((id, effect)) = rx.recv().await {
                let outcome = self.perform(effect).await;
                if self.done.send((id, outcome)).is_err() {
                    return;
                }
            }
        });
        tx
    }

    async fn perform(&self, effect: Effect) -> Outcome {
        match effect {
            Effect::FindStale { vips } => {
                let mut present = Vec::new();
                for (i, vip) in vips.iter().enumerate() {
                    match self.host.has_vip(vip).await {
                        Ok(true) => present.push(i),
                        Ok(false) => {}
                        Err(err) => warn!("checking for a stale VIP: {err}"),
                    }
                }
                Outcome::Present(present)
            }
            Effect::AddVip(vip) => {
                let result = self.host.add_vip(&vip).await;
                debug!(vip = %vip, ?result, "add");
                Outcome::Vip(result)
            }
            Effect::RemoveVip(vip) => {
                self.announcing.cancel();
                let result = self.host.remove_vip(&vip).await;
                debug!(vip = %vip, ?result, "remove");
                Outcome::Vip(result)
            }
            Effect::Announce {
                vips,
                rounds,
                interval,
            } => {
                spawn_announce(
                    self.host.clone(),
                    vips,
                    rounds,
                    interval,
                    self.announcing.clone(),
                );
                Outcome::Done
            }
            Effect::RunHook {
                hook,
                program,
                env,
                timeout,
            } => {
                let started = SystemTime::now();
                let outcome = self.host.run_hook(hook, &program, &env, timeout).await;
                let took = format_duration(outcome.duration);
                let summary = match &outcome.status {
                    HookStatus::Exited(code) => format!("exited {code} after {took}"),
                    HookStatus::Signaled(sig) => format!("killed by signal {sig} after {took}"),
                    HookStatus::TimedOut => format!(
                        "timed out after {} and was killed",
                        format_duration(timeout)
                    ),
                    HookStatus::SpawnFailed(err) => format!("could not start: {err}"),
                };
                let run = HookRun {
                    hook: hook.as_str().to_string(),
                    started: rfc3339(started),
                    duration_ms: millis(outcome.duration),
                    outcome: summary.clone(),
                    success: outcome.is_success(),
                };
                if let Ok(mut runs) = self.hook_runs.lock() {
                    runs.insert(0, run);
                    runs.truncate(HOOK_HISTORY);
                }
                Outcome::Hook {
                    success: outcome.is_success(),
                    summary,
                }
            }
        }
    }
}

/// Announces the VIPs `rounds` times, `interval` apart, without holding up the
/// caller: the first round goes out at once.
pub fn spawn_announce<H: Host>(
    host: H,
    vips: Vec<VipTarget>,
    rounds: u32,
    interval: Duration,
    announcing: Announcing,
) {
    if vips.is_empty() || rounds == 0 {
        return;
    }
    let epoch = announcing.epoch();
    tokio::spawn(async move {
        let mut by_interface: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for vip in &vips {
            by_interface
                .entry(vip.interface.clone())
                .or_default()
                .push(vip.address);
        }
        let mut targets = Vec::new();
        for (interface, addresses) in by_interface {
            match host.link(&interface).await {
                Ok(info) => targets.push((info, addresses)),
                Err(err) => warn!("cannot announce on {interface}: {err}"),
            }
        }
        for round in 0..rounds {
            if round > 0 {
                tokio::time::sleep(interval).await;
            }
            if announcing.epoch() != epoch {
                return;
            }
            for (info, addresses) in &targets {
                if let Err(err) = host.announce(info, addresses) {
                    warn!("announcing VIPs: {err}");
                }
            }
        }
    });
}
