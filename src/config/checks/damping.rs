//! `[damping]`, checked with the rest of the file. The defaults and the reasons for
//! them are in docs/steadiness.md.

use std::time::Duration;

use super::super::raw::RawDamping;
use super::super::{Damping, Timing};
use super::Checker;
use crate::duration::format_duration;

/// Unplanned changes of holder within the window that are still no flapping: two
/// round trips of the VIPs. A cluster that works moves them unplanned a few times a
/// year; five times in a minute is a fight.
const CHANGES: u32 = 4;
const WINDOW: Duration = Duration::from_secs(60);
/// `dead` doubles with each change while flapping, up to this many times `dead`
/// (three doublings).
const MAX_FACTOR: u32 = 8;
/// More changes than this within a window is no threshold anyone means.
const MAX_CHANGES: u32 = 1000;

impl Checker {
    pub(super) fn damping(&mut self, raw: RawDamping, timing: &Timing) -> Damping {
        let enabled = raw.enabled.unwrap_or(true);
        let changes = raw.changes.unwrap_or(CHANGES);
        if !(1..=MAX_CHANGES).contains(&changes) {
            self.problem(
                "damping.changes",
                format!(
                    "must be between 1 and {MAX_CHANGES} (set enabled = false to turn \
                     damping off)"
                ),
            );
        }
        let window = self.duration("damping.window", raw.window.as_deref(), WINDOW);
        if window.is_zero() {
            self.problem("damping.window", "must be positive");
        }
        let quiet = self.duration("damping.quiet", raw.quiet.as_deref(), window);
        if quiet.is_zero() {
            self.problem("damping.quiet", "must be positive");
        }
        let max_silence = self.duration(
            "damping.max_silence",
            raw.max_silence.as_deref(),
            timing.dead.saturating_mul(MAX_FACTOR),
        );
        if max_silence < timing.dead {
            self.problem(
                "damping.max_silence",
                format!(
                    "{} must be at least timing.dead ({}): damping only ever lengthens \
                     the silence an unplanned takeover waits for",
                    format_duration(max_silence),
                    format_duration(timing.dead)
                ),
            );
        }
        Damping {
            enabled,
            changes,
            window,
            quiet,
            max_silence,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::tests::{good, keys, parse};

    #[test]
    fn damping_is_on_by_default_with_a_cap_of_eight_times_dead() {
        let config = parse(&good().to_string()).unwrap();
        let d = config.damping;
        assert!(d.enabled);
        assert_eq!(d.changes, 4);
        assert_eq!(d.window, Duration::from_secs(60));
        assert_eq!(d.quiet, d.window);
        assert_eq!(d.max_silence, config.timing.dead * 8);
    }

    #[test]
    fn damping_keys_are_read_and_their_relations_checked() {
        let text = good()
            .with_table("damping")
            .set("damping.enabled", false)
            .set("damping.changes", 2)
            .set("damping.window", "30s")
            .set("damping.quiet", "2m")
            .set("damping.max_silence", "5s")
            .to_string();
        let d = parse(&text).unwrap().damping;
        assert!(!d.enabled);
        assert_eq!(d.changes, 2);
        assert_eq!(d.window, Duration::from_secs(30));
        assert_eq!(d.quiet, Duration::from_secs(120));
        assert_eq!(d.max_silence, Duration::from_secs(5));

        let text = good()
            .with_table("damping")
            .set("damping.changes", 0)
            .set("damping.max_silence", "1ms")
            .set("damping.quiet", "0s")
            .to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(
            keys(&problems),
            ["damping.changes", "damping.max_silence", "damping.quiet"],
            "{problems:#?}"
        );
        let text = good()
            .with_table("damping")
            .set("damping.factor", 2)
            .to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(keys(&problems), ["damping.factor"], "{problems:#?}");
    }
}
