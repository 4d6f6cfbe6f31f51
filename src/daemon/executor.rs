//! Performs the machine's slow effects one at a time, in the order requested, and
//! reports each outcome back. Order is the point: "stop hook, then remove the VIP"
//! must never become the reverse because netlink happened to be faster.
//!
//! What the machine asks for beside the order ([`Jobs::beside`]: a withdrawal, a
//! hook that only notifies) runs at once in a task of its own, and reports back
//! the same way.

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

#[derive(Clone)]
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

    /// Starts the executor task; effects queued on the returned [`Jobs`] run in
    /// order.
    pub fn spawn(self) -> Jobs<H> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(EffectId, Effect)>();
        let executor = self.clone();
        tokio::spawn(async move {
            while let Some((id, effect)) = rx.recv().await {
                let outcome = self.perform(effect).await;
                if self.done.send((id, outcome)).is_err() {
                    return;
                }
            }
        });
        Jobs {
            queue: tx,
            executor,
        }
    }

    async fn perform(&self, effect: Effect) -> Outcome {
        match effect {
            Effect::FindStale { vips } => Outcome::Present(find_stale(&self.host, &vips).await),
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

/// The indexes of `vips` that may be on this node. A VIP that cannot be looked up
/// counts as present: taken for absent, it could stay in the kernel unmanaged
/// while a peer takes it; taken for present, it is adopted (and added again, which
/// is harmless) or removed (harmless too, if it was not there).
async fn find_stale<H: Host>(host: &H, vips: &[VipTarget]) -> Vec<usize> {
    let mut present = Vec::new();
    for (i, vip) in vips.iter().enumerate() {
        match host.has_vip(vip).await {
            Ok(true) => present.push(i),
            Ok(false) => {}
            Err(err) => {
                warn!(
                    "cannot tell whether VIP {vip} is on this node, so taking it as there: {err}"
                );
                present.push(i);
            }
        }
    }
    present
}

/// Where the shell hands effects to the executor.
pub struct Jobs<H: Host> {
    queue: mpsc::UnboundedSender<(EffectId, Effect)>,
    executor: Executor<H>,
}

impl<H: Host> Jobs<H> {
    /// Queues `effect`: it runs after every effect queued before it. False once the
    /// executor task is gone.
    pub fn queue(&self, id: EffectId, effect: Effect) -> bool {
        self.queue.send((id, effect)).is_ok()
    }

    /// Runs `effect` now, beside the queue, and reports it like a queued one.
    pub fn beside(&self, id: EffectId, effect: Effect) {
        let executor = self.executor.clone();
        tokio::spawn(async move {
            let outcome = executor.perform(effect).await;
            let _ = executor.done.send((id, outcome));
        });
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio::sync::mpsc;

    use super::super::announce::AnnounceError;
    use super::super::hooks::HookOutcome;
    use super::super::probe::ProbeError;
    use super::super::vip::{LinkInfo, VipError};
    use super::*;
    use crate::machine::{Hook, Sighting, VipFailure, VipFailureKind};

    /// A host whose lookups fail for addresses ending in .66, whose fault hook
    /// hangs, and whose other requests succeed at once.
    #[derive(Clone)]
    struct Stubborn;

    impl Host for Stubborn {
        async fn add_vip(&self, _vip: &VipTarget) -> Result<(), VipFailure> {
            Ok(())
        }

        async fn remove_vip(&self, _vip: &VipTarget) -> Result<(), VipFailure> {
            Ok(())
        }

        async fn has_vip(&self, vip: &VipTarget) -> Result<bool, VipFailure> {
            if vip.address.to_string().ends_with(".66") {
                return Err(VipFailure {
                    kind: VipFailureKind::Transient,
                    message: format!("looking for {vip}: no answer from netlink within 5s"),
                });
            }
            Ok(false)
        }

        async fn link(&self, interface: &str) -> Result<LinkInfo, VipError> {
            Err(VipError::InterfaceNotFound {
                interface: interface.to_owned(),
            })
        }

        fn announce(&self, _link: &LinkInfo, _addresses: &[IpAddr]) -> Result<(), AnnounceError> {
            Ok(())
        }

        async fn probe(
            &self,
            _vips: &[VipTarget],
            _window: Duration,
        ) -> Result<Vec<Sighting>, ProbeError> {
            Ok(Vec::new())
        }

        async fn watch(
            &self,
            _vips: Vec<VipTarget>,
            _tx: mpsc::Sender<Sighting>,
        ) -> Result<(), ProbeError> {
            std::future::pending().await
        }

        async fn run_hook(
            &self,
            hook: Hook,
            _program: &Path,
            _env: &[(String, String)],
            timeout: Duration,
        ) -> HookOutcome {
            if hook == Hook::Fault {
                tokio::time::sleep(timeout).await;
            }
            HookOutcome {
                status: HookStatus::Exited(0),
                duration: Duration::ZERO,
            }
        }
    }

    fn vip(address: &str) -> VipTarget {
        VipTarget {
            address: address.parse().unwrap(),
            prefix_len: 24,
            interface: "eth0".into(),
            label: None,
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_vip_that_cannot_be_looked_up_counts_as_present() {
        block_on(async {
            let (done, mut outcomes) = mpsc::unbounded_channel();
            let jobs = Executor::new(Stubborn, done).spawn();
            let vips = vec![vip("198.18.0.66"), vip("198.18.0.10")];
            assert!(jobs.queue(EffectId(1), Effect::FindStale { vips }));
            let (id, outcome) = outcomes.recv().await.unwrap();
            assert_eq!(id, EffectId(1));
            assert_eq!(outcome, Outcome::Present(vec![0]));
        });
    }

    #[test]
    fn a_hung_hook_beside_the_queue_holds_up_no_vip() {
        block_on(async {
            let (done, mut outcomes) = mpsc::unbounded_channel();
            let jobs = Executor::new(Stubborn, done).spawn();
            let hook = Effect::RunHook {
                hook: Hook::Fault,
                program: "/fault".into(),
                env: Vec::new(),
                timeout: Duration::from_secs(30),
            };
            jobs.beside(EffectId(1), hook);
            assert!(jobs.queue(EffectId(2), Effect::AddVip(vip("198.18.0.10"))));
            let first = tokio::time::timeout(Duration::from_secs(5), outcomes.recv()).await;
            let (id, outcome) = first.expect("the add waited").unwrap();
            assert_eq!(id, EffectId(2));
            assert_eq!(outcome, Outcome::Vip(Ok(())));
        });
    }
}
