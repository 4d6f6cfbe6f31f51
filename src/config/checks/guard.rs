//! The split-brain guard's settings: `[split_brain]`, `[fencing]` and
//! `[hooks] on_adopt`, checked with the rest of the file.

use std::path::Path;
use std::time::Duration;

use super::super::raw::{RawFencing, RawSplitBrain};
use super::super::{Fencing, LiveVip, OnAdopt, SplitBrain};
use super::Checker;

impl Checker {
    pub(super) fn split_brain(&mut self, raw: RawSplitBrain, gateway_checks: bool) -> SplitBrain {
        let live_vip = match raw.live_vip.as_deref() {
            None | Some("wait") => LiveVip::Wait,
            Some("take") => LiveVip::Take,
            Some(other) => {
                self.problem(
                    "split_brain.live_vip",
                    format!("\"{other}\" is not one of \"wait\", \"take\""),
                );
                LiveVip::Wait
            }
        };
        let require_gateway = raw.require_gateway.unwrap_or(false);
        if require_gateway && !gateway_checks {
            self.problem(
                "split_brain.require_gateway",
                "needs a gateway to ping: set [health] gateways or add a [[check]] of kind \
                 \"ping\"",
            );
        }
        SplitBrain {
            live_vip,
            require_gateway,
        }
    }

    pub(super) fn fencing(&mut self, raw: RawFencing, base: &Path) -> Fencing {
        let command = raw.command.map(|path| base.join(path));
        if let Some(path) = &command {
            self.program("fencing.command", path, "");
        }
        let timeout = self.duration(
            "fencing.timeout",
            raw.timeout.as_deref(),
            Duration::from_secs(30),
        );
        if timeout.is_zero() {
            self.problem("fencing.timeout", "must be positive");
        }
        let retry = self.duration(
            "fencing.retry",
            raw.retry.as_deref(),
            Duration::from_secs(5),
        );
        if retry.is_zero() {
            self.problem("fencing.retry", "must be positive");
        }
        let retry_max = self.duration(
            "fencing.retry_max",
            raw.retry_max.as_deref(),
            Duration::from_secs(60),
        );
        if retry_max < retry {
            self.problem(
                "fencing.retry_max",
                "must be at least fencing.retry: the wait after a failed fence doubles from \
                 retry up to retry_max",
            );
        }
        Fencing {
            command,
            timeout,
            retry,
            retry_max,
        }
    }

    pub(super) fn on_adopt(&mut self, raw: Option<&str>) -> OnAdopt {
        match raw {
            None | Some("keep") => OnAdopt::Keep,
            Some("start") => OnAdopt::Start,
            Some(other) => {
                self.problem(
                    "hooks.on_adopt",
                    format!("\"{other}\" is not one of \"keep\", \"start\""),
                );
                OnAdopt::Keep
            }
        }
    }
}
