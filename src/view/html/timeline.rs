//! The timeline on the status page: one row per node as this node saw it (its own
//! roles, its peers' states), a band while maintenance was on, markers where the
//! VIPs moved, and a time axis, over the status's [`History`]. Drawn as inline SVG
//! that scales to the page's width; a tooltip (`<title>`) on each segment and
//! marker says what it was, when, and why. No script, nothing loaded.

use std::fmt::{self, Write as _};
use std::time::{Duration, UNIX_EPOCH};

use super::{Age, Esc, shorten};
use crate::status::{History, Named, PeerState, Status, rfc3339};

/// The drawing's width in its own units; it scales to the section's width.
const WIDTH: f64 = 1000.0;
/// Where the plot begins: the node names stand left of it.
const LEFT: f64 = 120.0;
const RIGHT: f64 = 12.0;
const PLOT: f64 = WIDTH - LEFT - RIGHT;
/// A node's row, and the space between rows (where the move markers sit).
const ROW: f64 = 20.0;
const GAP: f64 = 10.0;
/// The maintenance band's height.
const BAND: f64 = 8.0;
/// Below the rows: the axis labels.
const AXIS: f64 = 22.0;
/// The shortest span drawn, so that a daemon just started still gets an axis.
const MIN_SPAN_MS: u64 = 60_000;
/// Characters of a node's name shown left of its row (all of it in the tooltip).
const NAME_CHARS: usize = 16;
/// Steps of the time axis, the first that gives at most [`MAX_TICKS`] ticks.
const STEPS_MS: [u64; 19] = [
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    604_800_000,
];
const MAX_TICKS: u64 = 8;

/// The History section of the page, drawn as it looks at `now_ms`.
pub(super) fn write_timeline(out: &mut String, s: &Status, now_ms: u64) -> fmt::Result {
    out.push_str("<section class=\"wide\"><h2>History</h2>");
    if s.history.is_empty() {
        out.push_str("<p class=\"muted\">No history in this status.</p></section>\n");
        return Ok(());
    }
    let window = Window::new(&s.history, now_ms);
    let rows = rows(s, &window);
    let maintenance = maintenance(s, &window);
    let band = if maintenance.is_empty() {
        0.0
    } else {
        BAND + GAP
    };
    let height = GAP + rows.len() as f64 * (ROW + GAP) + band + AXIS;
    write!(
        out,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"Roles over time, as {node} saw them\">",
        node = Esc(&s.node),
    )?;
    let bottom = height - AXIS;
    write_axis(out, &window, bottom)?;
    for (i, row) in rows.iter().enumerate() {
        let y = GAP + i as f64 * (ROW + GAP);
        write_row(out, row, &window, y)?;
    }
    if !maintenance.is_empty() {
        let y = GAP + rows.len() as f64 * (ROW + GAP);
        write!(
            out,
            "<text class=\"tl-name\" x=\"0\" y=\"{:.1}\">maintenance</text>",
            y + BAND
        )?;
        for (from, to) in &maintenance {
            let (x, w) = window.span(*from, *to);
            write!(
                out,
                "<rect class=\"tl-maintenance\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
                 height=\"{BAND}\"><title>maintenance on from {} to {} ({})</title></rect>",
                Esc(&clock(*from)),
                Esc(&window.until(*to)),
                Age(to.saturating_sub(*from) as f64),
            )?;
        }
    }
    // Markers last, so that no segment covers them.
    for (i, row) in rows.iter().enumerate() {
        let y = GAP + i as f64 * (ROW + GAP);
        write_moves(out, row, &window, y)?;
    }
    out.push_str("</svg><p class=\"tl-legend muted\">");
    for (class, word) in [
        ("tl-active", "active"),
        ("tl-standby", "standby"),
        ("tl-fault", "fault"),
        ("tl-dead", "dead"),
        ("tl-unknown", "starting, stopped or not heard yet"),
        ("tl-maintenance", "maintenance"),
    ] {
        write!(out, "<span class=\"key {class}\"></span>{word} ")?;
    }
    writeln!(
        out,
        "\u{b7} \u{25bc} the VIPs moved \u{b7} {changes} changes since {since} \u{b7} \
         hover for when and why</p></section>",
        changes = s.history.changes.len(),
        since = Esc(&clock(window.since)),
    )
}

/// The span of time drawn, and where a time falls on the drawing.
struct Window {
    /// Where the history begins: nothing is known before it.
    since: u64,
    start: u64,
    end: u64,
    now: u64,
}

impl Window {
    fn new(history: &History, now_ms: u64) -> Window {
        let first = history.changes.first().map_or(u64::MAX, |c| c.unix_ms);
        let last = history.changes.last().map_or(0, |c| c.unix_ms);
        let since = match history.since_unix_ms {
            0 => first.min(now_ms),
            since => since.min(first),
        };
        // A clock that went back leaves changes after `now`: draw up to them.
        let end = now_ms.max(last).max(since.saturating_add(1));
        let start = since.min(end.saturating_sub(MIN_SPAN_MS));
        Window {
            since,
            start,
            end,
            now: now_ms,
        }
    }

    /// Where `t` falls, clamped to the plot.
    fn x(&self, t: u64) -> f64 {
        let t = t.clamp(self.start, self.end);
        LEFT + (t - self.start) as f64 / (self.end - self.start) as f64 * PLOT
    }

    /// The left edge and width of the span from `from` to `to`, at least a sliver
    /// wide so that a state held for a moment still shows.
    fn span(&self, from: u64, to: u64) -> (f64, f64) {
        let x = self.x(from);
        (x, (self.x(to) - x).max(1.0))
    }

    /// `to` as the end of a span: "now" when it is the end of the drawing.
    fn until(&self, to: u64) -> String {
        if to >= self.end && self.end == self.now {
            "now".to_string()
        } else {
            clock(to)
        }
    }
}

/// One node's row: what it was, from when to when, and why.
struct Row<'a> {
    node: &'a str,
    /// This node rather than a peer.
    me: bool,
    segments: Vec<Segment<'a>>,
}

struct Segment<'a> {
    from: u64,
    to: u64,
    state: Named<PeerState>,
    /// What it was before (none for the first segment).
    before: Option<Named<PeerState>>,
    reason: &'a str,
}

/// This node's row, then one per peer (those of the status first, in its order,
/// then any the history names that a reload removed).
fn rows<'a>(s: &'a Status, window: &Window) -> Vec<Row<'a>> {
    let mut nodes: Vec<(&str, Named<PeerState>)> = vec![(&s.node, role_as_state(&s.state))];
    nodes.extend(s.peers.iter().map(|p| (p.name.as_str(), p.state.clone())));
    for change in &s.history.changes {
        if !nodes.iter().any(|(name, _)| *name == change.node) {
            nodes.push((&change.node, change.to.clone()));
        }
    }
    nodes
        .into_iter()
        .map(|(node, current)| {
            let mut segments: Vec<Segment> = Vec::new();
            let changes = s.history.changes.iter().filter(|c| c.node == node);
            let mut state = None;
            let mut from = window.since;
            let mut reason = "";
            for change in changes {
                let at = change.unix_ms.max(window.since);
                let held = state.take().unwrap_or_else(|| change.from.clone());
                let before = segments.last().map(|s: &Segment| s.state.clone());
                segments.push(Segment {
                    from,
                    to: at,
                    state: held,
                    before,
                    reason,
                });
                state = Some(change.to.clone());
                from = at;
                reason = &change.reason;
            }
            let before = segments.last().map(|s| s.state.clone());
            segments.push(Segment {
                from,
                to: window.end,
                state: state.unwrap_or(current),
                before,
                reason,
            });
            Row {
                node,
                me: node == s.node,
                segments,
            }
        })
        .collect()
}

/// The spans during which maintenance was on.
fn maintenance(s: &Status, window: &Window) -> Vec<(u64, u64)> {
    let toggles = &s.history.maintenance;
    let mut on = toggles
        .first()
        .map_or(s.maintenance.on, |first| !first.on)
        .then_some(window.since);
    let mut spans = Vec::new();
    for toggle in toggles {
        let at = toggle.unix_ms.max(window.since);
        match (on, toggle.on) {
            (None, true) => on = Some(at),
            (Some(from), false) => {
                spans.push((from, at));
                on = None;
            }
            _ => {}
        }
    }
    if let Some(from) = on {
        spans.push((from, window.end));
    }
    spans
}

fn write_axis(out: &mut String, window: &Window, bottom: f64) -> fmt::Result {
    let span = window.end - window.start;
    let step = STEPS_MS
        .into_iter()
        .find(|step| span / step <= MAX_TICKS)
        .unwrap_or(span.div_ceil(MAX_TICKS).max(1));
    out.push_str("<g class=\"tl-grid\">");
    let mut tick = window.start.div_ceil(step).saturating_mul(step);
    while tick <= window.end {
        let x = window.x(tick);
        // A label at the right edge ends there rather than past it.
        let anchor = if x > WIDTH - RIGHT - 20.0 {
            "end"
        } else {
            "middle"
        };
        write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"0\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            bottom + AXIS - 6.0,
            Esc(&tick_label(tick, step)),
        )?;
        tick = tick.saturating_add(step);
        if tick == u64::MAX {
            break;
        }
    }
    out.push_str("</g>");
    Ok(())
}

fn write_row(out: &mut String, row: &Row, window: &Window, y: f64) -> fmt::Result {
    write!(
        out,
        "<text class=\"tl-name\" x=\"0\" y=\"{:.1}\"><title>{node}</title>{short}{me}</text>",
        y + ROW * 0.7,
        node = Esc(row.node),
        short = Esc(shorten(row.node, NAME_CHARS)),
        me = if row.me { " (here)" } else { "" },
    )?;
    for segment in &row.segments {
        if segment.to <= segment.from && segment.to < window.end {
            continue;
        }
        let (x, w) = window.span(segment.from, segment.to);
        write!(
            out,
            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{ROW}\">\
             <title>{node} {state} from {from} to {to} ({took})",
            class = state_class(&segment.state),
            node = Esc(row.node),
            state = Esc(segment.state.as_str()),
            from = Esc(&clock(segment.from)),
            to = Esc(&window.until(segment.to)),
            took = Age(segment.to.saturating_sub(segment.from) as f64),
        )?;
        if !segment.reason.is_empty() {
            write!(out, ": {}", Esc(segment.reason))?;
        }
        out.push_str("</title></rect>");
    }
    Ok(())
}

/// A marker above the row wherever the node became active or stopped being: where
/// the VIPs moved.
fn write_moves(out: &mut String, row: &Row, window: &Window, y: f64) -> fmt::Result {
    for segment in &row.segments {
        let Some(before) = &segment.before else {
            continue;
        };
        if *before != PeerState::Active && segment.state != PeerState::Active {
            continue;
        }
        let x = window.x(segment.from);
        write!(
            out,
            "<path class=\"tl-move\" d=\"M{:.1} {:.1}h8l-4 7z\"><title>{when}: {node} {before} \u{2192} {state}",
            x - 4.0,
            y - 8.0,
            when = Esc(&clock(segment.from)),
            node = Esc(row.node),
            before = Esc(before.as_str()),
            state = Esc(segment.state.as_str()),
        )?;
        if !segment.reason.is_empty() {
            write!(out, ": {}", Esc(segment.reason))?;
        } else if !row.me {
            out.push_str(" (as seen from here)");
        }
        out.push_str("</title></path>");
    }
    Ok(())
}

/// This node's role in the words of a peer's state, for one kind of row.
fn role_as_state(role: &Named<crate::machine::Role>) -> Named<PeerState> {
    match role {
        Named::Known(role) => Named::Known(PeerState::from(*role)),
        Named::Newer(word) => Named::Newer(word.clone()),
    }
}

/// The class that colours a state; from the known state, never from the word.
fn state_class(state: &Named<PeerState>) -> &'static str {
    match state.known() {
        Some(PeerState::Active) => "tl-active",
        Some(PeerState::Standby | PeerState::Witness) => "tl-standby",
        Some(PeerState::Fault) => "tl-fault",
        Some(PeerState::Dead) => "tl-dead",
        Some(PeerState::Starting | PeerState::Unknown | PeerState::Stopped) | None => "tl-unknown",
    }
}

/// `2026-11-22 04:30:00 UTC`.
fn clock(unix_ms: u64) -> String {
    super::display_time(&rfc3339(UNIX_EPOCH + Duration::from_millis(unix_ms)))
}

/// An axis label: the date at midnight or for steps of days, else the time of day,
/// with seconds when the step is under a minute.
fn tick_label(unix_ms: u64, step: u64) -> String {
    let time = rfc3339(UNIX_EPOCH + Duration::from_millis(unix_ms));
    let (date, clock) = (time.get(5..10), time.get(11..19));
    match (date, clock) {
        (Some(date), Some(clock)) if step >= 86_400_000 || clock == "00:00:00" => date.to_string(),
        (_, Some(clock)) if step < 60_000 => clock.to_string(),
        (_, Some(clock)) => clock[..5].to_string(),
        _ => time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::fixture::{self, NOW_MS};
    use crate::status::{Change, MaintenanceChange};

    /// The fixture's history begins with the daemon's start, 01:15:02.004.
    const SINCE: u64 = 1_795_310_102_004;

    /// Each `<rect>` of the timeline: its class, left edge, width, top edge, and
    /// its tooltip.
    fn rects(page: &str) -> Vec<(String, f64, f64, f64, String)> {
        let svg = &page[page.find("<svg class=\"timeline\"").expect("a timeline")..];
        let svg = &svg[..svg.find("</svg>").expect("the end of the timeline")];
        let attr = |tag: &str, name: &str| -> String {
            let from = tag.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
            tag[from..from + tag[from..].find('"').unwrap()].to_string()
        };
        svg.split("<rect")
            .skip(1)
            .map(|tag| {
                let title = &tag[tag.find("<title>").unwrap() + 7..tag.find("</title>").unwrap()];
                let number = |name| attr(tag, name).parse::<f64>().unwrap();
                (
                    attr(tag, "class"),
                    number("x"),
                    number("width"),
                    number("y"),
                    title.to_string(),
                )
            })
            .collect()
    }

    /// Where a time falls in the fixture's timeline, from its start to `NOW_MS`.
    fn x(t: u64) -> f64 {
        LEFT + (t - SINCE) as f64 / (NOW_MS - SINCE) as f64 * PLOT
    }

    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.11
    }

    #[test]
    fn draws_each_nodes_states_as_segments_in_time() {
        let page = super::super::render_page(&fixture::status(), fixture::now());
        let rects = rects(&page);
        let row = |y: f64| -> Vec<_> { rects.iter().filter(|r| r.3 == y).collect() };
        let alpha = row(GAP);
        let classes: Vec<&str> = alpha.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(classes, ["tl-unknown", "tl-standby", "tl-active"]);
        let takeover = 1_795_310_259_421;
        assert!(near(alpha[0].1, LEFT));
        assert!(near(alpha[2].1, x(takeover)), "{:?}", alpha[2]);
        assert!(near(alpha[2].1 + alpha[2].2, WIDTH - RIGHT));
        assert!(near(alpha[1].1 + alpha[1].2, x(takeover)));
        assert_eq!(
            alpha[2].4,
            "alpha active from 2026-11-22 01:17:39 UTC to now (3 h 12 min): peer beta dead \
             on all links"
        );
        let beta = row(GAP + ROW + GAP);
        let classes: Vec<&str> = beta.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            classes,
            ["tl-unknown", "tl-active", "tl-dead", "tl-standby"]
        );
        assert!(near(beta[2].1, x(1_795_310_260_004)));
        assert!(near(beta[3].1, x(1_795_311_731_004)));
        assert!(
            beta[2].4.starts_with(
                "beta dead from 2026-11-22 01:17:40 UTC to 2026-11-22 01:42:11 UTC (24 min 31 s)"
            ),
            "{}",
            beta[2].4
        );
        // Maintenance from 02:50 to 03:05, in a band below the nodes.
        let band: Vec<_> = rects.iter().filter(|r| r.0 == "tl-maintenance").collect();
        assert_eq!(band.len(), 1);
        assert!(near(band[0].1, x(1_795_315_800_004)));
        assert!(near(band[0].1 + band[0].2, x(1_795_316_700_004)));
        assert_eq!(band[0].3, GAP + 2.0 * (ROW + GAP));
        assert_eq!(rects.len(), 3 + 4 + 1);
    }

    #[test]
    fn marks_where_the_vips_moved_with_the_reason() {
        let page = super::super::render_page(&fixture::status(), fixture::now());
        let moves: Vec<&str> = page
            .split("<path class=\"tl-move\"")
            .skip(1)
            .map(|m| &m[m.find("<title>").unwrap() + 7..m.find("</title>").unwrap()])
            .collect();
        assert_eq!(
            moves,
            [
                "2026-11-22 01:17:39 UTC: alpha standby \u{2192} active: peer beta dead on all links",
                "2026-11-22 01:15:03 UTC: beta unknown \u{2192} active (as seen from here)",
                "2026-11-22 01:17:40 UTC: beta active \u{2192} dead (as seen from here)",
            ]
        );
    }

    #[test]
    fn the_axis_is_labelled_in_steps_that_fit() {
        let page = super::super::render_page(&fixture::status(), fixture::now());
        // 01:15 to 04:30: every 30 minutes.
        for label in ["01:30", "02:00", "02:30", "03:00", "03:30", "04:00"] {
            assert!(
                page.contains(&format!("text-anchor=\"middle\">{label}</text>")),
                "{label}"
            );
        }
        assert!(page.contains("text-anchor=\"end\">04:30</text>"));
        assert!(!page.contains("text-anchor=\"middle\">01:00</text>"));
        assert_eq!(tick_label(NOW_MS, 10_000), "04:30:00");
        assert_eq!(tick_label(1_795_305_600_000, 3_600_000), "11-22");
        assert_eq!(tick_label(NOW_MS, 86_400_000), "11-22");
    }

    #[test]
    fn a_node_just_started_gets_a_minute_and_no_history_says_so() {
        let mut status = fixture::status();
        status.history = History {
            since_unix_ms: NOW_MS - 2_000,
            changes: Vec::new(),
            maintenance: vec![MaintenanceChange {
                unix_ms: NOW_MS - 2_000,
                on: true,
            }],
        };
        let page = super::super::render_page(&status, fixture::now());
        let rects = rects(&page);
        // Nothing known before the start; then the states of the status.
        assert!(
            rects[0].1 > WIDTH - RIGHT - PLOT / 30.0 - 1.0,
            "{:?}",
            rects[0]
        );
        assert_eq!(rects[0].0, "tl-active");
        assert_eq!(rects[1].0, "tl-standby");
        assert_eq!(rects[2].0, "tl-maintenance");
        assert!(page.contains(">04:29:30</text>"));
        status.history = History::default();
        let page = super::super::render_page(&status, fixture::now());
        assert!(page.contains("No history in this status."));
        assert!(!page.contains("<svg"));
    }

    #[test]
    fn names_and_reasons_are_escaped_and_odd_states_drawn_plain() {
        let mut status = fixture::status();
        status.history.changes.push(Change {
            unix_ms: NOW_MS - 1_000,
            node: "<b>gamma</b>".into(),
            from: Named::Newer("<x>".into()),
            to: PeerState::Active.into(),
            reason: "<script>alert(1)</script>".into(),
        });
        let page = super::super::render_page(&status, fixture::now());
        assert!(page.contains("&lt;b&gt;gamma&lt;/b&gt;"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<b>gamma"));
        let rects = rects(&page);
        let gamma: Vec<_> = rects.iter().filter(|r| r.4.contains("gamma")).collect();
        assert_eq!(gamma[0].0, "tl-unknown");
        assert_eq!(gamma[1].0, "tl-active");
    }
}
