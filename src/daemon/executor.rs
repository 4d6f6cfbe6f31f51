//! Performs the machine's slow effects one at a time, in the order requested, and
//! reports each outcome back. Order is the point: "stop hook, then remove the VIP"
//! must never become the reverse because netlink happened to be faster.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::announce;
use super::hooks::{self, HookStatus};
use super::vip::{Netlink, VipSpec};
use crate::config::{Config, format_duration};
use crate::machine::{Effect, EffectId, Hook, Outcome};

pub struct Executor {
    config: Arc<Config>,
    netlink: Netlink,
    specs: Arc<Vec<VipSpec>>,
    done: mpsc::UnboundedSender<(EffectId, Outcome)>,
}

/// Sends gratuitous ARP / unsolicited NA for every VIP, in the background.
#[derive(Clone)]
pub struct Announcer {
    netlink: Netlink,
    specs: Arc<Vec<VipSpec>>,
    interval: Duration,
}

impl Executor {
    pub fn new(
        config: Arc<Config>,
        me: usize,
        netlink: Netlink,
        done: mpsc::UnboundedSender<(EffectId, Outcome)>,
    ) -> Executor {
        let node = &config.nodes[me];
        let specs = config
            .vips
            .iter()
            .map(|vip| VipSpec {
                address: vip.address,
                prefix_len: vip.prefix_len,
                interface: node.interface(&vip.interface).to_string(),
                label: vip.label_on(node),
            })
            .collect();
        Executor {
            netlink,
            specs: Arc::new(specs),
            done,
            config,
        }
    }

    pub fn announcer(&self) -> Announcer {
        Announcer {
            netlink: self.netlink.clone(),
            specs: Arc::clone(&self.specs),
            interval: self.config.announce.interval,
        }
    }

    /// Starts the executor task; effects sent on the returned channel run in order.
    pub fn spawn(self) -> mpsc::UnboundedSender<(EffectId, Effect)> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(EffectId, Effect)>();
        let announcer = self.announcer();
        tokio::spawn(async move {
            while let Some((id, effect)) = rx.recv().await {
                let outcome = self.perform(effect, &announcer).await;
                if self.done.send((id, outcome)).is_err() {
                    return;
                }
            }
        });
        tx
    }

    async fn perform(&self, effect: Effect, announcer: &Announcer) -> Outcome {
        match effect {
            Effect::FindStale => {
                let mut present = Vec::new();
                for (i, spec) in self.specs.iter().enumerate() {
                    match self.netlink.is_present(spec).await {
                        Ok(true) => present.push(i),
                        Ok(false) => {}
                        Err(err) => warn!("checking for a stale VIP: {err}"),
                    }
                }
                Outcome::Present(present)
            }
            Effect::AddVip(i) => {
                let Some(spec) = self.specs.get(i) else {
                    return Outcome::Vip(Err(format!("no VIP {i}")));
                };
                let result = self.netlink.add(spec).await;
                debug!(vip = %spec.address, ?result, "add");
                Outcome::Vip(result.map(|_| ()).map_err(|e| e.to_string()))
            }
            Effect::RemoveVip(i) => {
                let Some(spec) = self.specs.get(i) else {
                    return Outcome::Vip(Err(format!("no VIP {i}")));
                };
                let result = self.netlink.remove(spec).await;
                debug!(vip = %spec.address, ?result, "remove");
                Outcome::Vip(result.map(|_| ()).map_err(|e| e.to_string()))
            }
            Effect::Announce { rounds } => {
                announcer.spawn(rounds);
                Outcome::Done
            }
            Effect::RunHook { hook, env } => {
                let hooks = &self.config.hooks;
                let program = match hook {
                    Hook::Start => hooks.start.as_ref(),
                    Hook::Stop => hooks.stop.as_ref(),
                    Hook::Fault => hooks.fault.as_ref(),
                };
                let Some(program) = program else {
                    return Outcome::Done;
                };
                let outcome = hooks::run_hook(hook.as_str(), program, &env, hooks.timeout).await;
                let took = format_duration(Duration::from_millis(
                    u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
                ));
                let summary = match &outcome.status {
                    HookStatus::Exited(code) => format!("exited {code} after {took}"),
                    HookStatus::Signaled(sig) => format!("killed by signal {sig} after {took}"),
                    HookStatus::TimedOut => format!(
                        "timed out after {} and was killed",
                        format_duration(hooks.timeout)
                    ),
                    HookStatus::SpawnFailed(err) => format!("could not start: {err}"),
                };
                Outcome::Hook {
                    success: outcome.is_success(),
                    summary,
                }
            }
        }
    }
}

impl Announcer {
    /// Announces every VIP `rounds` times, `announce.interval` apart, without
    /// holding up the caller.
    pub fn spawn(&self, rounds: u32) {
        if self.specs.is_empty() || rounds == 0 {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut by_interface: BTreeMap<&str, Vec<IpAddr>> = BTreeMap::new();
            for spec in this.specs.iter() {
                by_interface
                    .entry(spec.interface.as_str())
                    .or_default()
                    .push(spec.address);
            }
            let mut targets = Vec::new();
            for (interface, addresses) in by_interface {
                match this.netlink.link_info(interface).await {
                    Ok(info) => targets.push((info, addresses)),
                    Err(err) => warn!("cannot announce on {interface}: {err}"),
                }
            }
            for round in 0..rounds {
                if round > 0 {
                    tokio::time::sleep(this.interval).await;
                }
                for (info, addresses) in &targets {
                    if let Err(err) = announce::announce(info.index, info.mac, addresses) {
                        warn!("announcing VIPs: {err}");
                    }
                }
            }
        });
    }
}
