//! Performs the machine's slow effects one at a time, in the order requested, and
//! reports each outcome back. Order is the point: "stop hook, then remove the VIP"
//! must never become the reverse because netlink happened to be faster.
//!
//! One exception that keeps the order: a run of VIP adds queued one after another
//! (or of removals) is one lot, sent together ([`Host::add_vips`]), since nothing
//! orders one VIP before another and a thousand round trips one at a time would be
//! a takeover's slowest part. The lot ends at the first effect of another kind,
//! which waits for all of it; each VIP's outcome is still its own effect's. Adds
//! go out in the file's order and removals in the reverse, so the first VIP is
//! the first added and the last removed. Adds the machine marked `announce` are
//! announced a batch at a time as the kernel acknowledges them, within the lot.
//!
//! What the machine asks for beside the order runs apart from it and reports back
//! the same way: a withdrawal at once, in a task of its own ([`Jobs::beside`]); a
//! hook that only notifies in a second queue of its own ([`Jobs::notify`]), so that
//! a hung fault hook holds up no takeover, yet the hooks that tell someone what
//! happened still run in the order it happened (each waits up to [`NOTICE_WAIT`]
//! for the one before it). At exit the shell gives those still running or waiting
//! [`NOTICE_WAIT`] more ([`Jobs::settle_notices`]) and names the ones it cuts short.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::hooks::HookStatus;
use super::host::Host;
use super::vip::LinkInfo;
use crate::duration::format_duration;
use crate::machine::{Effect, EffectId, Hook, Outcome, VipFailure, VipFailureKind, VipTarget};
use crate::status::{HookRun, millis, rfc3339};

/// VIPs added between two announcements while a lot of adds is under way: small
/// enough that the first VIPs' clients hear of a takeover within a millisecond or
/// so, large enough that a thousand VIPs take few pauses (each waits for its
/// batch's last acknowledgement before the next batch goes out).
const ANNOUNCE_BATCH: usize = 32;

/// How long a notification waits for the one given before it to end before it
/// starts anyway: long enough for a mail or a page to go out in order, short enough
/// that a hook hung on a mail server delays the alerts behind it by this much, not
/// by its whole timeout.
pub const NOTICE_WAIT: Duration = Duration::from_secs(5);

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
    /// [`NOTICE_WAIT`], shorter in tests.
    notice_wait: Duration,
}

impl<H: Host> Executor<H> {
    pub fn new(host: H, done: mpsc::UnboundedSender<(EffectId, Outcome)>) -> Executor<H> {
        Executor {
            announcing: Announcing::default(),
            host,
            done,
            hook_runs: Arc::new(Mutex::new(Vec::new())),
            notice_wait: NOTICE_WAIT,
        }
    }

    /// The most recent hook runs, newest first, shared with the status report.
    pub fn hook_runs(&self) -> Arc<Mutex<Vec<HookRun>>> {
        Arc::clone(&self.hook_runs)
    }

    pub fn announcing(&self) -> Announcing {
        self.announcing.clone()
    }

    /// Performs `effect` in a task of its own and reports it like a queued one.
    fn start(&self, id: EffectId, effect: Effect) -> tokio::task::JoinHandle<()> {
        let executor = self.clone();
        tokio::spawn(async move {
            let outcome = executor.perform(effect).await;
            let _ = executor.done.send((id, outcome));
        })
    }

    /// Starts the executor's tasks; effects queued on the returned [`Jobs`] run in
    /// order, and so do notifications, in a queue of their own.
    pub fn spawn(self) -> Jobs<H> {
        let (notices, mut pending) = mpsc::unbounded_channel::<(EffectId, Effect)>();
        let open = Arc::new(tokio::sync::watch::Sender::new(Vec::new()));
        let executor = self.clone();
        let unfinished = Arc::clone(&open);
        tokio::spawn(async move {
            // The one started last, and when.
            let mut before: Option<(tokio::time::Instant, tokio::task::JoinHandle<()>)> = None;
            while let Some((id, effect)) = pending.recv().await {
                if let Some((started, mut running)) = before.take() {
                    // Ended, or hung past the wait from its start: it runs on beside
                    // this one (dropping the handle leaves the task running).
                    let until = started + executor.notice_wait;
                    let _ = tokio::time::timeout_at(until, &mut running).await;
                }
                let running = executor.start(id, effect);
                let unfinished = Arc::clone(&unfinished);
                let ended = tokio::spawn(async move {
                    let _ = running.await;
                    unfinished.send_modify(|open: &mut Vec<(EffectId, Hook)>| {
                        open.retain(|(given, _)| *given != id);
                    });
                });
                before = Some((tokio::time::Instant::now(), ended));
            }
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<(EffectId, Effect)>();
        let executor = self.clone();
        tokio::spawn(async move {
            let mut next = None;
            // The addresses whose adds just failed: the announcement queued behind
            // a lot of adds leaves them out (the machine learns of the failures
            // only as this lot's outcomes arrive, after it queued the rounds).
            let mut unadded: Vec<IpAddr> = Vec::new();
            loop {
                let (id, effect) = match next.take() {
                    Some(item) => item,
                    None => match rx.recv().await {
                        Some(item) => item,
                        None => return,
                    },
                };
                let outcomes = if let Some(kind) = VipKind::of(&effect) {
                    // A run of adds (or removals) already queued goes out as one lot:
                    // what follows it waits for all of it, as it waited for the last
                    // of them one at a time.
                    let mut run = vec![(id, effect)];
                    while let Ok(item) = rx.try_recv() {
                        if VipKind::of(&item.1) == Some(kind) {
                            run.push(item);
                        } else {
                            next = Some(item);
                            break;
                        }
                    }
                    let outcomes = self.perform_vips(kind, run.clone()).await;
                    unadded = run
                        .iter()
                        .zip(&outcomes)
                        .filter_map(|((_, effect), (_, outcome))| match (effect, outcome) {
                            (Effect::AddVip { vip, .. }, Outcome::Vip(Err(_))) => Some(vip.address),
                            _ => None,
                        })
                        .collect();
                    outcomes
                } else {
                    let effect = match effect {
                        Effect::Announce {
                            mut vips,
                            rounds,
                            interval,
                            delay,
                        } => {
                            vips.retain(|vip| !unadded.contains(&vip.address));
                            Effect::Announce {
                                vips,
                                rounds,
                                interval,
                                delay,
                            }
                        }
                        other => other,
                    };
                    unadded.clear();
                    vec![(id, self.perform(effect).await)]
                };
                for outcome in outcomes {
                    if self.done.send(outcome).is_err() {
                        return;
                    }
                }
            }
        });
        Jobs {
            queue: tx,
            notices,
            open,
            executor,
        }
    }

    /// Adds or removes the VIPs of `run`, all of the same `kind`, in one lot; each
    /// VIP's outcome is reported under its own effect, as if it had run alone.
    async fn perform_vips(
        &self,
        kind: VipKind,
        run: Vec<(EffectId, Effect)>,
    ) -> Vec<(EffectId, Outcome)> {
        let mut ids = Vec::with_capacity(run.len());
        let mut vips = Vec::with_capacity(run.len());
        let mut announce = Vec::with_capacity(run.len());
        for (id, effect) in run {
            let (vip, early) = match effect {
                Effect::AddVip { vip, announce } => (vip, announce),
                Effect::RemoveVip(vip) => (vip, false),
                _ => continue,
            };
            ids.push(id);
            vips.push(vip);
            announce.push(early);
        }
        let results = match kind {
            VipKind::Add => self.add_announcing(&vips, &announce).await,
            VipKind::Remove => {
                self.announcing.cancel();
                // Last in, first out: the first VIP of the file, added first, goes
                // last, so its clients are served until the rest of the lot is
                // through, and the silence they see in a handover is the new
                // holder's adds alone.
                let reversed: Vec<VipTarget> = vips.iter().rev().cloned().collect();
                let mut results = self.host.remove_vips(&reversed).await;
                results.reverse();
                results
            }
        };
        let verb = match kind {
            VipKind::Add => "add",
            VipKind::Remove => "remove",
        };
        debug!(vips = vips.len(), "{verb} as one lot");
        ids.into_iter()
            .zip(vips)
            .zip(results.into_iter().map(Some).chain(std::iter::repeat(None)))
            .map(|((id, vip), result)| {
                // A host that answered for fewer VIPs than it was given left the rest
                // undone; reported as failed, the core tries them again.
                let result = result.unwrap_or_else(|| {
                    Err(VipFailure {
                        kind: VipFailureKind::Transient,
                        message: format!("{verb} {vip}: no outcome reported"),
                    })
                });
                debug!(vip = %vip, ?result, "{verb}");
                (id, Outcome::Vip(result))
            })
            .collect()
    }

    /// Adds `vips` [`ANNOUNCE_BATCH`] at a time and, before the next batch goes
    /// out, sends one announcement round for the VIPs of the batch that were added
    /// and asked for it (`announce`, in step with `vips`): the clients of the first
    /// VIPs hear of a takeover while the kernel still works through the rest, which
    /// takes it about 25 ms for a thousand.
    async fn add_announcing(
        &self,
        vips: &[VipTarget],
        announce: &[bool],
    ) -> Vec<Result<(), VipFailure>> {
        // Nothing to announce: one lot, with every add in flight it allows.
        let size = if announce.contains(&true) {
            ANNOUNCE_BATCH
        } else {
            vips.len().max(1)
        };
        // A removal beside the queue meanwhile (a withdrawal) ends the announcing.
        let epoch = self.announcing.epoch();
        let mut results = Vec::with_capacity(vips.len());
        let mut links: BTreeMap<String, Option<LinkInfo>> = BTreeMap::new();
        let mut warned = false;
        for (batch, flags) in vips.chunks(size).zip(announce.chunks(size)) {
            let mut outcomes = self.host.add_vips(batch).await;
            // A host that answered for fewer VIPs than it was given left the rest
            // undone; padded here, each outcome stays with its own VIP.
            outcomes.resize_with(batch.len(), || {
                Err(VipFailure {
                    kind: VipFailureKind::Transient,
                    message: "add: no outcome reported".to_string(),
                })
            });
            if self.announcing.epoch() != epoch {
                results.extend(outcomes);
                continue;
            }
            let mut by_interface: BTreeMap<&str, Vec<IpAddr>> = BTreeMap::new();
            for ((vip, &early), outcome) in batch.iter().zip(flags).zip(&outcomes) {
                debug!(vip = %vip, result = ?outcome, "add");
                if early && outcome.is_ok() {
                    by_interface
                        .entry(vip.interface.as_str())
                        .or_default()
                        .push(vip.address);
                }
            }
            for (interface, addresses) in by_interface {
                if !links.contains_key(interface) {
                    let info = match self.host.link(interface).await {
                        Ok(info) => Some(info),
                        Err(err) => {
                            warn!("cannot announce on {interface}: {err}");
                            None
                        }
                    };
                    links.insert(interface.to_string(), info);
                }
                if let Some(Some(info)) = links.get(interface)
                    && let Err(err) = self.host.announce(info, &addresses)
                    && !std::mem::replace(&mut warned, true)
                {
                    warn!("announcing VIPs: {err}");
                }
            }
            results.extend(outcomes);
        }
        results
    }

    /// Writes (or removes) the note `name` in `state_dir`; one that cannot be
    /// written is logged with what a restart then risks, and the effects go on.
    async fn note(
        &self,
        state_dir: &Path,
        name: &'static str,
        under_way: bool,
        risk: &str,
    ) -> Outcome {
        if let Err(err) = self.host.write_note(state_dir, name, under_way).await {
            let verb = if under_way { "write" } else { "remove" };
            let note = state_dir.join(name);
            warn!("cannot {verb} {}: {err}; {risk}", note.display());
        }
        Outcome::Done
    }

    async fn perform(&self, effect: Effect) -> Outcome {
        match effect {
            Effect::FindStale { vips } => Outcome::Present(find_stale(&self.host, &vips).await),
            Effect::AddVip { vip, announce } => {
                let mut results = self.add_announcing(&[vip], &[announce]).await;
                Outcome::Vip(results.pop().unwrap_or_else(|| {
                    Err(VipFailure {
                        kind: VipFailureKind::Transient,
                        message: "add: no outcome reported".to_string(),
                    })
                }))
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
                delay,
            } => {
                spawn_announce(
                    self.host.clone(),
                    Rounds {
                        vips,
                        rounds,
                        interval,
                        delay,
                    },
                    self.announcing.clone(),
                );
                Outcome::Done
            }
            Effect::NoteRelease {
                state_dir,
                under_way,
            } => {
                let risk = match under_way {
                    true => {
                        "killed during this release, the daemon would adopt the VIPs it \
                             finds at its next start"
                    }
                    false => {
                        "the next start removes the VIPs it finds rather than adopting \
                              them"
                    }
                };
                let name = super::control::RELEASE_NOTE;
                self.note(&state_dir, name, under_way, risk).await
            }
            Effect::NoteStart {
                state_dir,
                under_way,
            } => {
                let risk = match under_way {
                    true => {
                        "killed while the start hook runs, the daemon would adopt the VIPs \
                             it finds at its next start without running the start hook again"
                    }
                    false => "the next start that adopts the VIPs runs the start hook again",
                };
                let name = super::control::START_NOTE;
                self.note(&state_dir, name, under_way, risk).await
            }
            Effect::RunHook {
                hook,
                program,
                env,
                timeout,
            } => {
                let started = SystemTime::now();
                let outcome = self.host.run_hook(hook, &program, &env, timeout).await;
                // The status keeps the time apart (`duration_ms`), so its outcome
                // does not say it twice; the log line says both.
                let result = match &outcome.status {
                    HookStatus::Exited(code) => format!("exited {code}"),
                    HookStatus::Signaled(sig) => format!("killed by signal {sig}"),
                    HookStatus::TimedOut => "timed out and was killed".to_string(),
                    HookStatus::SpawnFailed(err) => format!("could not start: {err}"),
                };
                let summary = match &outcome.status {
                    HookStatus::TimedOut => format!(
                        "timed out after {} and was killed",
                        format_duration(timeout)
                    ),
                    HookStatus::SpawnFailed(_) => result.clone(),
                    HookStatus::Exited(_) | HookStatus::Signaled(_) => {
                        format!("{result} after {}", format_duration(outcome.duration))
                    }
                };
                let run = HookRun {
                    hook: hook.as_str().to_string(),
                    started: rfc3339(started),
                    duration_ms: millis(outcome.duration),
                    outcome: result,
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

/// The effects run in lots: consecutive adds, or consecutive removals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VipKind {
    Add,
    Remove,
}

impl VipKind {
    fn of(effect: &Effect) -> Option<VipKind> {
        match effect {
            Effect::AddVip { .. } => Some(VipKind::Add),
            Effect::RemoveVip(_) => Some(VipKind::Remove),
            _ => None,
        }
    }
}

/// The indexes of `vips` that may be on this node. A VIP that cannot be looked up
/// counts as present: taken for absent, it could stay in the kernel unmanaged
/// while a peer takes it; taken for present, it is adopted (and added again, which
/// is harmless) or removed (harmless too, if it was not there).
async fn find_stale<H: Host>(host: &H, vips: &[VipTarget]) -> Vec<usize> {
    let answers = host.vips_present(vips).await;
    let mut present = Vec::new();
    for ((i, vip), answer) in vips.iter().enumerate().zip(answers) {
        match answer {
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
    notices: mpsc::UnboundedSender<(EffectId, Effect)>,
    /// The notifications given and not yet ended, running or waiting their turn.
    open: Arc<tokio::sync::watch::Sender<Vec<(EffectId, Hook)>>>,
    executor: Executor<H>,
}

impl<H: Host> Jobs<H> {
    /// Queues `effect`: it runs after every effect queued before it. False once the
    /// executor task is gone.
    pub fn queue(&self, id: EffectId, effect: Effect) -> bool {
        self.queue.send((id, effect)).is_ok()
    }

    /// Runs `effect`, a hook that only notifies, beside the queue, once the
    /// notification given before it has ended or has run for [`NOTICE_WAIT`].
    /// False once its task is gone.
    pub fn notify(&self, id: EffectId, effect: Effect) -> bool {
        // Counted open before it is given, so that it cannot end first.
        if let Effect::RunHook { hook, .. } = &effect {
            let hook = *hook;
            self.open.send_modify(|open| open.push((id, hook)));
        }
        let given = self.notices.send((id, effect)).is_ok();
        if !given {
            self.open
                .send_modify(|open| open.retain(|(open, _)| *open != id));
        }
        given
    }

    /// How long a notification waits for the one before it: [`NOTICE_WAIT`], shorter
    /// in tests. The exit's last wait is as long.
    pub fn notice_wait(&self) -> Duration {
        self.executor.notice_wait
    }

    /// Waits until every notification given has ended, for at most the wait each
    /// gives the one before it ([`NOTICE_WAIT`]), and returns the hooks of those
    /// still running or waiting then: at exit the runtime's end kills the ones
    /// running and never starts the others, so the shell names them. The future
    /// holds no borrow of `self`, so that the shell can log meanwhile.
    pub fn settle_notices(&self) -> impl Future<Output = Vec<Hook>> + use<H> {
        let mut open = self.open.subscribe();
        let bound = self.executor.notice_wait;
        async move {
            let _ = tokio::time::timeout(bound, open.wait_for(Vec::is_empty)).await;
            open.borrow().iter().map(|(_, hook)| *hook).collect()
        }
    }

    /// Runs `effect` now, beside the queue, and reports it like a queued one.
    pub fn beside(&self, id: EffectId, effect: Effect) {
        self.executor.start(id, effect);
    }
}

/// What [`spawn_announce`] sends: `vips`, `rounds` times, `interval` apart, the
/// first round `delay` from now.
pub struct Rounds {
    pub vips: Vec<VipTarget>,
    pub rounds: u32,
    pub interval: Duration,
    pub delay: Duration,
}

/// Announces the VIPs as `rounds` says without holding up the caller. A removal
/// (`announcing` cancelled) ends the rounds not yet sent.
pub fn spawn_announce<H: Host>(host: H, rounds: Rounds, announcing: Announcing) {
    let Rounds {
        vips,
        rounds,
        interval,
        delay,
    } = rounds;
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
            let wait = if round == 0 { delay } else { interval };
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
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
    use crate::testing::block_on;

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

        async fn vips_present(&self, vips: &[VipTarget]) -> Vec<Result<bool, VipFailure>> {
            let answer = |vip: &VipTarget| {
                if vip.address.to_string().ends_with(".66") {
                    return Err(VipFailure {
                        kind: VipFailureKind::Transient,
                        message: format!(
                            "looking up interface {}: no answer from netlink within 5s",
                            vip.interface
                        ),
                    });
                }
                Ok(false)
            };
            vips.iter().map(answer).collect()
        }

        async fn write_note(
            &self,
            _: &std::path::Path,
            _: &'static str,
            _: bool,
        ) -> std::io::Result<()> {
            Ok(())
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

    /// A host whose adds and removals each wait until `gate` of them are under way
    /// together, and which logs when each starts and ends, when it announces and
    /// when hooks run; it refuses to add the addresses in `refuse`.
    #[derive(Clone)]
    struct Gated {
        gate: Arc<tokio::sync::Barrier>,
        log: Arc<Mutex<Vec<String>>>,
        refuse: Vec<IpAddr>,
    }

    impl Gated {
        fn new(gate: usize) -> Gated {
            Gated {
                gate: Arc::new(tokio::sync::Barrier::new(gate)),
                log: Arc::default(),
                refuse: Vec::new(),
            }
        }

        fn note(&self, line: String) {
            self.log.lock().unwrap().push(line);
        }

        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }

        async fn change(&self, verb: &str, vip: &VipTarget) -> Result<(), VipFailure> {
            self.note(format!("{verb} {} sent", vip.address));
            self.gate.wait().await;
            self.note(format!("{verb} {} done", vip.address));
            if verb == "add" && self.refuse.contains(&vip.address) {
                return Err(VipFailure {
                    kind: VipFailureKind::Refused,
                    message: format!("adding {vip}: refused"),
                });
            }
            Ok(())
        }
    }

    impl Host for Gated {
        async fn add_vip(&self, vip: &VipTarget) -> Result<(), VipFailure> {
            self.change("add", vip).await
        }

        async fn remove_vip(&self, vip: &VipTarget) -> Result<(), VipFailure> {
            self.change("remove", vip).await
        }

        async fn vips_present(&self, vips: &[VipTarget]) -> Vec<Result<bool, VipFailure>> {
            vips.iter().map(|_| Ok(false)).collect()
        }

        async fn write_note(
            &self,
            _: &std::path::Path,
            name: &'static str,
            under_way: bool,
        ) -> std::io::Result<()> {
            let what = if name == super::super::control::RELEASE_NOTE {
                "release"
            } else {
                name
            };
            self.note(format!("note {what} {under_way}"));
            Ok(())
        }

        async fn link(&self, _interface: &str) -> Result<LinkInfo, VipError> {
            Ok(LinkInfo {
                index: 2,
                mac: [2, 0, 0, 0, 0, 1],
                up: true,
            })
        }

        fn announce(&self, _link: &LinkInfo, addresses: &[IpAddr]) -> Result<(), AnnounceError> {
            let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
            self.note(format!("announce {}", list.join(" ")));
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
            _timeout: Duration,
        ) -> HookOutcome {
            self.note(format!("hook {}", hook.as_str()));
            HookOutcome {
                status: HookStatus::Exited(0),
                duration: Duration::ZERO,
            }
        }
    }

    fn hook(hook: Hook) -> Effect {
        Effect::RunHook {
            hook,
            program: "/hook".into(),
            env: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Three adds, each of which can only finish once all three were sent: one at
    /// a time, the first would wait for ever. The start hook queued after them runs
    /// once all three are done, and a stop hook queued before the removals runs
    /// before any of them is sent. Adds go in the file's order, removals in the
    /// reverse.
    #[test]
    fn a_run_of_vip_changes_is_sent_as_one_lot_in_its_place_in_the_queue() {
        block_on(async {
            let host = Gated::new(3);
            let (done, mut outcomes) = mpsc::unbounded_channel();
            let jobs = Executor::new(host.clone(), done).spawn();
            let vips = [vip("198.18.1.1"), vip("198.18.1.2"), vip("198.18.1.3")];
            let mut queue = Vec::new();
            queue.extend(vips.iter().cloned().map(|vip| Effect::AddVip {
                vip,
                announce: false,
            }));
            queue.push(hook(Hook::Start));
            queue.push(hook(Hook::Stop));
            queue.extend(vips.iter().cloned().map(Effect::RemoveVip));
            for (i, effect) in queue.into_iter().enumerate() {
                assert!(jobs.queue(EffectId(i as u64), effect));
            }
            let mut ids = Vec::new();
            for _ in 0..8 {
                let next = tokio::time::timeout(Duration::from_secs(5), outcomes.recv()).await;
                let next = next.expect("a VIP change waited for the one before it");
                let (id, outcome) = next.expect("the executor stopped");
                if id.0 != 3 && id.0 != 4 {
                    assert_eq!(outcome, Outcome::Vip(Ok(())), "effect {id:?}");
                }
                ids.push(id.0);
            }
            // Each VIP's outcome comes back under its own effect, in queue order.
            assert_eq!(ids, (0..8).collect::<Vec<u64>>());
            let log = host.log();
            let expected: Vec<String> = [
                "add 198.18.1.1 sent",
                "add 198.18.1.2 sent",
                "add 198.18.1.3 sent",
            ]
            .into_iter()
            .map(String::from)
            .collect();
            assert_eq!(log[..3], expected[..], "{log:#?}");
            assert!(
                log[3..6]
                    .iter()
                    .all(|l| l.starts_with("add") && l.ends_with("done"))
            );
            assert_eq!(log[6..8], ["hook start", "hook stop"], "{log:#?}");
            // Removals go in the reverse order: the first VIP is the last removed.
            assert_eq!(
                log[8..11],
                [
                    "remove 198.18.1.3 sent",
                    "remove 198.18.1.2 sent",
                    "remove 198.18.1.1 sent"
                ],
                "{log:#?}"
            );
            assert!(
                log[11..]
                    .iter()
                    .all(|l| l.starts_with("remove") && l.ends_with("done"))
            );
            assert_eq!(log.len(), 14);
        });
    }

    fn vip(address: &str) -> VipTarget {
        VipTarget {
            address: address.parse().unwrap(),
            prefix_len: 24,
            interface: "eth0".into(),
            label: None,
        }
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

    /// The log line says how long a hook ran; the status keeps that apart, so its
    /// outcome does not say it a second time.
    #[test]
    fn a_hook_run_says_its_time_once_in_the_status() {
        block_on(async {
            let (done, mut outcomes) = mpsc::unbounded_channel();
            let executor = Executor::new(Stubborn, done);
            let runs = executor.hook_runs();
            let jobs = executor.spawn();
            assert!(jobs.queue(EffectId(1), hook(Hook::Start)));
            let (_, outcome) = outcomes.recv().await.unwrap();
            let Outcome::Hook { success, summary } = outcome else {
                panic!("not a hook's outcome: {outcome:?}");
            };
            assert!(success);
            assert!(summary.starts_with("exited 0 after "), "{summary}");
            let runs = runs.lock().unwrap();
            assert_eq!(
                (runs[0].hook.as_str(), runs[0].outcome.as_str()),
                ("start", "exited 0")
            );
        });
    }

    /// A notification that runs `timeout` on `Stubborn` (a fault hook hangs that
    /// long; any other ends at once).
    fn notice(hook: Hook, timeout: Duration) -> Effect {
        Effect::RunHook {
            hook,
            program: "/notify".into(),
            env: Vec::new(),
            timeout,
        }
    }

    /// `Stubborn`'s jobs, each notification waiting `wait` for the one before it,
    /// and their outcomes.
    fn stubborn_jobs(
        wait: Duration,
    ) -> (Jobs<Stubborn>, mpsc::UnboundedReceiver<(EffectId, Outcome)>) {
        let (done, outcomes) = mpsc::unbounded_channel();
        let executor = Executor {
            notice_wait: wait,
            ..Executor::new(Stubborn, done)
        };
        (executor.spawn(), outcomes)
    }

    /// One that hangs past the wait holds up the next no longer than that: an
    /// alert that the VIPs are on no node goes out while a mail hook still hangs.
    #[test]
    fn a_hung_notification_holds_up_the_next_one_only_for_the_wait() {
        block_on(async {
            let (jobs, mut outcomes) = stubborn_jobs(Duration::from_millis(100));
            assert!(jobs.notify(EffectId(1), notice(Hook::Fault, Duration::from_secs(30))));
            assert!(jobs.notify(EffectId(2), notice(Hook::Fault, Duration::ZERO)));
            let next = tokio::time::timeout(Duration::from_secs(5), outcomes.recv()).await;
            let (id, _) = next.expect("the second waited for the hung one").unwrap();
            assert_eq!(id, EffectId(2));
        });
    }

    /// The wait runs from the start of the one before, not from when the next was
    /// given: one given 0.8 s into a hung one's 1 s waits 0.2 s, not 1 s. The
    /// margins (0.4 s either way) are for a busy machine, not a measurement.
    #[test]
    fn the_wait_for_a_hung_notification_counts_from_its_start() {
        block_on(async {
            let (jobs, mut outcomes) = stubborn_jobs(Duration::from_secs(1));
            assert!(jobs.notify(EffectId(1), notice(Hook::Fault, Duration::from_secs(30))));
            tokio::time::sleep(Duration::from_millis(800)).await;
            assert!(jobs.notify(EffectId(2), notice(Hook::Fault, Duration::ZERO)));
            let next = tokio::time::timeout(Duration::from_millis(600), outcomes.recv()).await;
            let (id, _) = next
                .expect("the wait began when the second was given")
                .unwrap();
            assert_eq!(id, EffectId(2));
        });
    }

    /// A fault hook that hangs (`Stubborn`'s runs to its timeout) holds up no VIP,
    /// while the standby hook given after it waits for it: notifications run in
    /// the order of what they tell.
    #[test]
    fn a_hung_notification_holds_up_no_vip_and_the_next_one_waits_for_it() {
        block_on(async {
            let (jobs, mut outcomes) = stubborn_jobs(NOTICE_WAIT);
            assert!(jobs.notify(EffectId(1), notice(Hook::Fault, Duration::from_secs(1))));
            assert!(jobs.notify(EffectId(2), notice(Hook::Standby, Duration::ZERO)));
            let add = Effect::AddVip {
                vip: vip("198.18.0.10"),
                announce: true,
            };
            assert!(jobs.queue(EffectId(3), add));
            let mut order = Vec::new();
            for _ in 0..3 {
                let next = tokio::time::timeout(Duration::from_secs(5), outcomes.recv()).await;
                let (id, _) = next.expect("an effect never finished").unwrap();
                order.push(id.0);
            }
            assert_eq!(order, [3, 1, 2]);
        });
    }

    /// At exit the notifications still open are waited for, within the bound, and
    /// those it cuts short named: the one hung past it, and the one waiting behind.
    #[test]
    fn notifications_still_open_at_exit_are_waited_for_and_named() {
        block_on(async {
            // Ended: nothing open, and no wait for the bound.
            let (jobs, _outcomes) = stubborn_jobs(Duration::from_secs(30));
            assert!(jobs.notify(EffectId(1), notice(Hook::Standby, Duration::ZERO)));
            let settled = tokio::time::timeout(Duration::from_secs(5), jobs.settle_notices());
            let left = settled
                .await
                .expect("waited for the bound, not for the end");
            assert!(left.is_empty(), "an ended one is still open: {left:?}");

            // Two hung past the bound and one waiting behind the second: the
            // first runs, the second starts about when the wait ends (running or
            // waiting, it is open), the third is a whole wait from starting.
            let (jobs, _outcomes) = stubborn_jobs(Duration::from_millis(300));
            assert!(jobs.notify(EffectId(2), notice(Hook::Fault, Duration::from_secs(1))));
            assert!(jobs.notify(EffectId(3), notice(Hook::Fault, Duration::from_secs(1))));
            assert!(jobs.notify(EffectId(4), notice(Hook::Standby, Duration::ZERO)));
            let left = jobs.settle_notices().await;
            assert_eq!(left, [Hook::Fault, Hook::Fault, Hook::Standby]);
            // All ended a second later; the margin is for a busy machine.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let left = jobs.settle_notices().await;
            assert!(left.is_empty(), "ended since: {left:?}");
        });
    }

    /// A notification that cannot be given (its task is gone) is not left open,
    /// or every exit would wait for it.
    #[test]
    fn a_notification_that_cannot_be_given_is_not_left_open() {
        block_on(async {
            let (jobs, _outcomes) = stubborn_jobs(Duration::from_secs(30));
            let (closed, _) = mpsc::unbounded_channel();
            let jobs = Jobs {
                notices: closed,
                ..jobs
            };
            assert!(!jobs.notify(EffectId(1), notice(Hook::Fault, Duration::ZERO)));
            let settled = tokio::time::timeout(Duration::from_secs(5), jobs.settle_notices());
            let left = settled.await.expect("waited for the bound");
            assert!(left.is_empty(), "{left:?}");
        });
    }

    /// With many VIPs the first ones' clients must not wait for the last add: each
    /// batch is announced before the next goes out, and only what was added and
    /// asked for it is announced.
    #[test]
    fn a_lot_of_adds_announces_each_batch_before_the_next() {
        block_on(async {
            let address = |n: usize| -> IpAddr { format!("198.18.4.{n}").parse().unwrap() };
            let host = Gated {
                refuse: vec![address(3)],
                ..Gated::new(1)
            };
            let (done, mut outcomes) = mpsc::unbounded_channel();
            let jobs = Executor::new(host.clone(), done).spawn();
            let count = 2 * ANNOUNCE_BATCH + 6;
            for n in 1..=count {
                let effect = Effect::AddVip {
                    vip: vip(&address(n).to_string()),
                    announce: n != 5,
                };
                assert!(jobs.queue(EffectId(n as u64), effect));
            }
            // The rounds queued behind the lot leave out the add that just failed.
            let everything: Vec<VipTarget> =
                (1..=count).map(|n| vip(&address(n).to_string())).collect();
            let rounds = Effect::Announce {
                vips: everything,
                rounds: 1,
                interval: Duration::from_millis(100),
                delay: Duration::ZERO,
            };
            assert!(jobs.queue(EffectId(count as u64 + 1), rounds));
            for _ in 0..=count {
                let next = tokio::time::timeout(Duration::from_secs(5), outcomes.recv()).await;
                next.expect("the adds stalled")
                    .expect("the executor stopped");
            }
            // One announcement per batch, then the rounds', from a task of its own.
            let announcements = count.div_ceil(ANNOUNCE_BATCH) + 1;
            for _ in 0..100 {
                let log = host.log();
                if log.iter().filter(|l| l.starts_with("announce")).count() >= announcements {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let last = host
                .log
                .lock()
                .unwrap()
                .pop()
                .expect("the rounds announced");
            let expected: Vec<String> = (1..=count)
                .filter(|&n| n != 3)
                .map(|n| address(n).to_string())
                .collect();
            assert_eq!(last, format!("announce {}", expected.join(" ")));
            let announced = |range: std::ops::RangeInclusive<usize>| {
                let list: Vec<String> = range
                    .filter(|&n| n != 3 && n != 5)
                    .map(|n| address(n).to_string())
                    .collect();
                format!("announce {}", list.join(" "))
            };
            let mut expected = Vec::new();
            for batch in [
                1..=ANNOUNCE_BATCH,
                ANNOUNCE_BATCH + 1..=2 * ANNOUNCE_BATCH,
                2 * ANNOUNCE_BATCH + 1..=count,
            ] {
                for n in batch.clone() {
                    expected.push(format!("add {} sent", address(n)));
                    expected.push(format!("add {} done", address(n)));
                }
                expected.push(announced(batch));
            }
            assert_eq!(*host.log.lock().unwrap(), expected);
        });
    }
}
