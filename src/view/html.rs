//! The status page: this node's state, VIPs, peers and their links, a timeline of
//! roles (`timeline`), health and its checks, hooks and events as one self-contained
//! HTML document that reloads itself. It loads nothing from anywhere else (no
//! scripts, no external style sheets, fonts or images), and every string that comes
//! from the status is escaped.

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use crate::machine::event::{Role, Severity};
use crate::machine::health::UNFIT;
use crate::machine::peer::LinkState;
use crate::status::{CheckState, Counters, Failback, Named, PeerState, Scope, Status, unix_ms};

/// How often the status page reloads itself.
const REFRESH_SECONDS: u32 = 2;
/// Events shown on the page, newest first.
const EVENTS_SHOWN: usize = 20;
/// Hook runs shown on the page, newest first.
const HOOKS_SHOWN: usize = 10;

/// The status page of `status` as it looks at `now` (ages count up to it).
pub fn render_page(status: &Status, now: SystemTime) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail, and every Display used here only forwards.
    let _ = write_page(&mut out, status, unix_ms(now));
    out
}

const STYLE: &str = "\
:root{--ok:#1a7f37;--late:#b35900;--bad:#cf222e;--idle:#6e7781;--blue:#0969da;\
--line:#d0d7de;--soft:#eaeef2;--bg:#f6f8fa;--text:#1f2328;--muted:#57606a}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--text);\
font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}\
header{background:#24292f;color:#fff;padding:14px 24px;display:flex;align-items:center;\
gap:14px;flex-wrap:wrap}\
header h1{margin:0;font-size:22px;font-weight:600}\
header .meta{margin-left:auto;color:#d0d7de;font-size:13px}\
.banner{padding:12px 24px;font-weight:700;font-size:15px}\
.banner.maintenance{background:repeating-linear-gradient(-45deg,#ffd33d 0 18px,#ffdf5d 18px 36px);\
color:#3b2300;border-bottom:3px solid #9a6700;font-size:17px}\
.banner.notice{background:#ddf4ff;color:#0a3069;border-bottom:1px solid #54aeff}\
main{max-width:1200px;margin:0 auto;padding:16px 24px;display:grid;\
grid-template-columns:repeat(auto-fit,minmax(min(480px,100%),1fr));gap:16px}\
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px;overflow-x:auto;\
min-width:0}\
section.wide{grid-column:1/-1}\
h2{margin:0 0 8px;font-size:12px;text-transform:uppercase;letter-spacing:.07em;\
color:var(--muted)}\
h3{margin:0;font-size:15px}\
table{width:100%;border-collapse:collapse}\
th,td{text-align:left;padding:4px 8px 4px 0;border-bottom:1px solid var(--soft);\
vertical-align:baseline}\
th{font-size:12px;font-weight:600;color:var(--muted)}\
tr:last-child td{border-bottom:0}\
td.num,th.num{text-align:right;padding-right:12px;font-variant-numeric:tabular-nums;\
white-space:nowrap}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}\
dt{color:var(--muted)}dd{margin:0;min-width:0;overflow-wrap:anywhere}\
.badge{display:inline-block;padding:1px 10px;border-radius:999px;font-size:12px;\
font-weight:700;text-transform:uppercase;letter-spacing:.05em;color:#fff;\
background:var(--idle)}\
header .badge{font-size:14px;padding:3px 14px}\
.b-active{background:var(--ok)}.b-standby{background:var(--blue)}\
.b-fault,.b-dead{background:var(--bad)}.b-starting{background:var(--idle)}\
.c-ok{color:var(--ok)}.c-late{color:var(--late)}.c-bad{color:var(--bad)}\
.c-idle{color:var(--muted)}\
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:6px;\
background:currentColor;vertical-align:baseline}\
.mono{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:13px}\
.muted{color:var(--muted)}\
.peer{border-top:1px solid var(--soft);padding:10px 0 4px}\
.peer:first-of-type{border-top:0;padding-top:0}\
.peer-head{display:flex;align-items:center;gap:10px;flex-wrap:wrap;margin-bottom:6px}\
.flag{font-size:12px;border:1px solid var(--line);border-radius:4px;padding:0 6px;\
color:var(--muted)}\
.flag.bad{border-color:var(--bad);color:var(--bad);font-weight:700}\
.sev{font-size:11px;font-weight:700;text-transform:uppercase}\
footer{max-width:1200px;margin:0 auto;padding:0 24px 20px;color:var(--muted);font-size:12px}\
a{color:var(--blue)}\
svg.timeline{display:block;width:100%;height:auto;font-size:12px}\
.timeline text{fill:var(--muted)}.timeline .tl-name{fill:var(--text);font-weight:600}\
.tl-grid line{stroke:var(--soft)}.tl-move{fill:var(--text)}\
.tl-active{fill:var(--ok);background:var(--ok)}\
.tl-standby{fill:var(--blue);background:var(--blue)}\
.tl-fault{fill:var(--bad);background:var(--bad)}\
.tl-dead{fill:#82071e;background:#82071e}\
.tl-unknown{fill:#afb8c1;background:#afb8c1}\
.tl-maintenance{fill:#d4a72c;background:#d4a72c}\
.key{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 10px}\
.tl-legend{margin:6px 0 0;font-size:12px}";

fn write_page(out: &mut String, s: &Status, now_ms: u64) -> fmt::Result {
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{node}: {state} \u{2014} failoverd</title><style>{STYLE}</style></head>\n<body>\n",
        node = Esc(&s.node),
        state = Esc(s.state.as_str()),
    )?;
    writeln!(
        out,
        "<header><h1>{node}</h1>{badge}<div class=\"meta\">cluster <b>{cluster}</b> \
         \u{b7} failoverd {version} \u{b7} pid {pid}</div></header>",
        node = Esc(&s.node),
        badge = StateBadge::role(&s.state),
        cluster = Esc(&s.cluster),
        version = Esc(&s.daemon_version),
        pid = s.pid,
    )?;
    if s.maintenance.on {
        out.push_str(
            "<div class=\"banner maintenance\">MAINTENANCE MODE \u{2014} automatic \
             transitions are frozen",
        );
        if !s.maintenance.set_by.is_empty() {
            out.push_str(" (set by ");
            write_joined(out, &s.maintenance.set_by)?;
            out.push(')');
        }
        out.push_str("</div>\n");
    }
    let d = &s.damping;
    if d.flapping {
        write!(
            out,
            "<div class=\"banner notice\">Flapping: {changes} unplanned changes of holder \
             lately; an unplanned takeover waits for {silence} of silence",
            changes = d.changes,
            silence = Age(d.takeover_silence_ms),
        )?;
        if let Some(until) = &d.until {
            write!(
                out,
                " until {} unless the holder changes again",
                Esc(&display_time(until))
            )?;
        }
        out.push_str(".</div>\n");
    }
    if s.releasing {
        out.push_str(
            "<div class=\"banner notice\">Releasing: the stop hook and the removal of \
             the VIPs are under way.</div>\n",
        );
    }
    if s.handing_over {
        let to = s
            .handing_over_to
            .as_ref()
            .map_or(String::new(), |node| format!(" to {}", Esc(node)));
        let waited = s
            .handing_over_ms
            .map_or(String::new(), |ms| format!(" ({} so far)", Age(ms as f64)));
        out.push_str(&format!(
            "<div class=\"banner notice\">Handing over{to}: waiting for the quiet standby \
             to answer before releasing{waited}.</div>\n",
        ));
    }
    if s.standby_requested {
        out.push_str(
            "<div class=\"banner notice\">Standby requested: this node keeps out of the \
             way while a peer can hold the VIPs.</div>\n",
        );
    }
    if s.takeover_requested {
        out.push_str(
            "<div class=\"banner notice\">Takeover requested: this node takes the VIPs \
             as soon as it may.</div>\n",
        );
    }
    out.push_str("<main>\n");
    write_node(out, s, now_ms)?;
    write_vips(out, s)?;
    write_peers(out, s)?;
    timeline::write_timeline(out, s, now_ms)?;
    write_gateways(out, s)?;
    write_interfaces(out, s)?;
    write_checks(out, s)?;
    write_hooks(out, s)?;
    write_events(out, s)?;
    write!(
        out,
        "</main>\n<footer>Refreshes every {REFRESH_SECONDS} s \u{b7} \
         <a href=\"status\">status as JSON</a> \u{b7} <a href=\"metrics\">metrics</a> \
         \u{b7} configuration {config}</footer>\n</body></html>\n",
        config = Esc(&s.config),
    )
}

fn write_node(out: &mut String, s: &Status, now_ms: u64) -> fmt::Result {
    out.push_str("<section><h2>This node</h2><dl>");
    write!(
        out,
        "<dt>State</dt><dd>{badge} for {age}</dd>\
         <dt>Since</dt><dd class=\"mono\">{since}</dd>\
         <dt>Reason</dt><dd>{reason}</dd>",
        badge = StateBadge::role(&s.state),
        age = Age(now_ms.saturating_sub(s.since_unix_ms) as f64),
        since = Esc(&display_time(&s.since)),
        reason = Esc(&s.reason),
    )?;
    out.push_str("<dt>Health</dt><dd>");
    match s.health.failing {
        0 => out.push_str("<span class=\"c-ok\"><span class=\"dot\"></span>healthy</span>"),
        n => write!(
            out,
            "<span class=\"c-bad\"><span class=\"dot\"></span>{}</span>",
            FailingChecks(n)
        )?,
    }
    if s.health.failed {
        out.push_str(" <span class=\"flag bad\">a check failed while active</span>");
    }
    out.push_str("</dd><dt>Maintenance</dt><dd>");
    out.push_str(if s.maintenance.on {
        "<b class=\"c-late\">on</b>"
    } else {
        "off"
    });
    write!(
        out,
        "</dd><dt>Failback</dt><dd>{}",
        Esc(s.failback.as_str())
    )?;
    if s.failback == Failback::Auto {
        write!(out, " after {}", Age(s.failback_delay_ms as f64))?;
    }
    if let Some(due) = &s.failback_due {
        write!(
            out,
            "; back to {} at {}",
            Esc(&due.to),
            Esc(&display_time(&due.at))
        )?;
    } else if s.failback_held {
        out.push_str("; held off by an operator's takeover");
    }
    if s.damping.enabled {
        write!(
            out,
            "</dd><dt>Takeover after</dt><dd>{} of silence",
            Age(s.damping.takeover_silence_ms)
        )?;
        if s.damping.flapping {
            out.push_str(" <span class=\"flag bad\">flapping</span>");
        }
    }
    if s.starved.count > 0 {
        write!(out, "</dd><dt>Starved</dt><dd>{} times", s.starved.count)?;
        if let Some(ms) = s.starved.longest_ms {
            write!(out, ", the longest {} late", Age(ms))?;
        }
    }
    out.push_str("</dd><dt>Last takeover</dt><dd>");
    match s.last_takeover_ms {
        Some(ms) => write!(out, "took {}", Age(ms))?,
        None => out.push_str("<span class=\"muted\">none yet</span>"),
    }
    let sched = &s.scheduling;
    out.push_str("</dd><dt>Heartbeat thread</dt><dd>");
    match &sched.realtime_off {
        None if sched.realtime_priority > 0 => {
            write!(out, "realtime (SCHED_RR {})", sched.realtime_priority)?;
        }
        None => out.push_str("<span class=\"muted\">not reported</span>"),
        Some(why) => write!(
            out,
            "<span class=\"c-late\" title=\"{}\">normal priority</span>",
            Esc(why)
        )?,
    }
    match &sched.memory_off {
        None if sched.memory_locked => out.push_str(", memory locked"),
        None => {}
        Some(why) => write!(
            out,
            ", <span class=\"c-late\" title=\"{}\">memory not locked</span>",
            Esc(why)
        )?,
    }
    write_raw_sends(out, &s.counters)?;
    let short = shorten(&s.fingerprint, 16);
    writeln!(
        out,
        "</dd><dt>Fingerprint</dt><dd class=\"mono\" title=\"{full}\">{short}{more}</dd>\
         </dl></section>",
        full = Esc(&s.fingerprint),
        short = Esc(short),
        more = if short.len() < s.fingerprint.len() {
            "\u{2026}"
        } else {
            ""
        },
    )
}

/// The links whose heartbeats went through a raw socket, and where raw sends
/// failed, as `failoverd status` shows them.
fn write_raw_sends(out: &mut String, counters: &Counters) -> fmt::Result {
    let links = |counts: &[(String, u64)]| -> Vec<String> {
        Counters::counted(counts)
            .map(|(link, n)| format!("{} {n}", Esc(link)))
            .collect()
    };
    let sent = links(&counters.sent_raw);
    if !sent.is_empty() {
        write!(out, "</dd><dt>Raw sends</dt><dd>{}", sent.join(", "))?;
    }
    let failed = links(&counters.raw_failed);
    if !failed.is_empty() {
        out.push_str(if sent.is_empty() {
            "</dd><dt>Raw sends</dt><dd>"
        } else {
            "; "
        });
        write!(
            out,
            "<span class=\"c-late\" title=\"each went again over UDP; see [scheduling] \
             raw_send\">failed: {}</span>",
            failed.join(", ")
        )?;
    }
    Ok(())
}

fn write_vips(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section><h2>Virtual IPs</h2>");
    if s.vips.is_empty() {
        out.push_str("<p class=\"muted\">No VIPs are configured.</p></section>\n");
        return Ok(());
    }
    out.push_str(
        "<table><tr><th>Address</th><th>Interface</th><th>Label</th><th>Held by</th></tr>",
    );
    for vip in &s.vips {
        write!(
            out,
            "<tr><td class=\"mono\">{address}</td><td class=\"mono\">{interface}</td><td>{label}</td><td>",
            address = Esc(&vip.address),
            interface = Esc(&vip.interface),
            label = Esc(vip.label.as_deref().unwrap_or("")),
        )?;
        match (&vip.holder, vip.held_here) {
            _ if vip.removal_failures > 0 => write!(
                out,
                "<span class=\"c-bad\"><span class=\"dot\"></span>removal failing ({} in a row), may still be on this node</span>",
                vip.removal_failures
            )?,
            (_, true) => out.push_str(
                "<span class=\"c-ok\"><span class=\"dot\"></span><b>this node</b></span>",
            ),
            (Some(holder), false) => write!(
                out,
                "<span class=\"c-ok\"><span class=\"dot\"></span></span>{}",
                Esc(holder)
            )?,
            (None, false) => {
                out.push_str("<span class=\"c-bad\"><span class=\"dot\"></span>nobody</span>")
            }
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table></section>\n");
    Ok(())
}

fn write_peers(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section class=\"wide\"><h2>Peers</h2>");
    if s.peers.is_empty() {
        out.push_str("<p class=\"muted\">No peers.</p>");
    }
    for peer in &s.peers {
        write!(
            out,
            "<div class=\"peer\"><div class=\"peer-head\"><h3>{name}</h3>{badge}\
             <span class=\"flag\">priority {priority}</span>",
            name = Esc(&peer.name),
            badge = StateBadge::peer(&peer.state),
            priority = peer.priority,
        )?;
        match peer.health_failing {
            0 => out.push_str("<span class=\"flag\">healthy</span>"),
            n => write!(out, "<span class=\"flag bad\">{}</span>", FailingChecks(n))?,
        }
        out.push_str(match peer.fingerprint_match {
            Some(true) => "<span class=\"flag\">configuration matches</span>",
            Some(false) => "<span class=\"flag bad\">CONFIGURATION DIFFERS</span>",
            None => "<span class=\"flag\">configuration not yet seen</span>",
        });
        if !peer.alive {
            out.push_str("<span class=\"flag bad\">not heard on any link</span>");
        }
        if peer.maintenance {
            out.push_str("<span class=\"flag bad\">maintenance</span>");
        }
        if peer.standby_requested {
            out.push_str("<span class=\"flag\">standby requested</span>");
        }
        if peer.failed {
            out.push_str("<span class=\"flag bad\">a check failed while active</span>");
        }
        if peer.quiet {
            out.push_str("<span class=\"flag\">quiet standby</span>");
        }
        out.push_str(
            "</div><table><tr><th>Link</th><th>Address</th><th>Heartbeats</th>\
             <th class=\"num\">Last heard</th><th class=\"num\">Received</th></tr>",
        );
        for link in &peer.links {
            write!(
                out,
                "<tr><td>{name}</td><td class=\"mono\">{address}</td>\
                 <td class=\"{class}\"><span class=\"dot\"></span>{state}</td>\
                 <td class=\"num\">{age}</td><td class=\"num\">{received}</td></tr>",
                name = Esc(&link.name),
                address = Esc(&link.address),
                class = link_class(&link.state),
                state = Esc(link.state.as_str()),
                age = link
                    .last_heartbeat_ms
                    .map_or_else(|| "never".to_string(), |ms| format!("{} ago", Age(ms))),
                received = link.received,
            )?;
        }
        out.push_str("</table></div>");
    }
    out.push_str("</section>\n");
    Ok(())
}

fn write_gateways(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section><h2>Gateways</h2>");
    if s.health.gateways.is_empty() {
        out.push_str("<p class=\"muted\">No gateways are checked.</p></section>\n");
        return Ok(());
    }
    out.push_str(
        "<table><tr><th>Gateway</th><th>Reachable</th><th class=\"num\">RTT</th>\
         <th class=\"num\">Failures in a row</th><th class=\"num\">Probes</th></tr>",
    );
    for gw in &s.health.gateways {
        let (class, word) = if gw.reachable {
            ("c-ok", "yes")
        } else {
            ("c-bad", "no")
        };
        write!(
            out,
            "<tr><td class=\"mono\">{address}</td><td class=\"{class}\"><span class=\"dot\"></span>{word}</td>\
             <td class=\"num\">{rtt}</td><td class=\"num\">{failures}</td><td class=\"num\">{probes}</td></tr>",
            address = Esc(&gw.address),
            rtt = gw
                .rtt_ms
                .map_or_else(|| "\u{2014}".to_string(), |ms| Age(ms).to_string()),
            failures = gw.consecutive_failures,
            probes = gw.probes,
        )?;
    }
    out.push_str("</table></section>\n");
    Ok(())
}

fn write_interfaces(out: &mut String, s: &Status) -> fmt::Result {
    if s.health.interfaces.is_empty() {
        return Ok(());
    }
    out.push_str("<section><h2>VIP interfaces</h2><table><tr><th>Interface</th><th>Link</th></tr>");
    for iface in &s.health.interfaces {
        let (class, word) = if iface.up {
            ("c-ok", "up")
        } else {
            ("c-bad", "down")
        };
        write!(
            out,
            "<tr><td class=\"mono\">{name}</td><td class=\"{class}\"><span class=\"dot\"></span>{word}</td></tr>",
            name = Esc(&iface.name),
        )?;
    }
    out.push_str("</table></section>\n");
    Ok(())
}

/// Every check, the built-in ones too, in the order the daemon runs them; then, for
/// each sticky failure, what it does and how to end it.
fn write_checks(out: &mut String, s: &Status) -> fmt::Result {
    let checks = &s.health.checks;
    if checks.is_empty() {
        return Ok(());
    }
    out.push_str(
        "<section class=\"wide\"><h2>Checks</h2><table><tr><th>Check</th><th>Kind</th>\
         <th>Target</th><th>Weight</th><th>State</th><th class=\"num\">Failures in a row</th>\
         <th class=\"num\">Runs</th><th class=\"num\">Last took</th><th>Last output</th></tr>",
    );
    for check in checks {
        let class = match check.state.known() {
            Some(CheckState::Passing) => "c-ok",
            Some(CheckState::Failing) => "c-bad",
            Some(CheckState::Idle) | None => "c-idle",
        };
        write!(
            out,
            "<tr><td>{name}</td><td>{kind}</td><td class=\"mono\">{target}</td><td>",
            name = Esc(&check.name),
            kind = Esc(&check.kind),
            target = Esc(&check.target),
        )?;
        if check.fatal {
            out.push_str("fatal");
        } else {
            write!(out, "weight {}", check.weight)?;
        }
        if check.on == Scope::Active {
            out.push_str(", on active");
        }
        write!(
            out,
            "</td><td class=\"{class}\"><span class=\"dot\"></span>{state}",
            state = Esc(check.state.as_str()),
        )?;
        if check.failed {
            out.push_str(" <span class=\"flag bad\">failed while active</span>");
        }
        write!(
            out,
            "</td><td class=\"num\">{failures}</td><td class=\"num\">{runs}</td>\
             <td class=\"num\">{took}</td><td class=\"mono\">{detail}</td></tr>",
            failures = check.consecutive_failures,
            runs = check.runs,
            took = check
                .last_duration_ms
                .map_or_else(|| "\u{2014}".to_string(), |ms| Age(ms).to_string()),
            detail = Esc(check.last_detail.as_deref().unwrap_or("")),
        )?;
    }
    out.push_str("</table>");
    for check in checks.iter().filter(|c| c.failed) {
        write!(
            out,
            "<p class=\"c-bad\"><b>{name}</b> failed while this node was active: this node \
             takes the VIPs only if no other node can, until <span class=\"mono\">failoverd \
             clear {name}</span>",
            name = Esc(&check.name),
        )?;
        if let Some(until) = &check.failed_until {
            write!(out, " or {}", Esc(&display_time(until)))?;
        }
        out.push_str(".</p>");
    }
    out.push_str("</section>\n");
    Ok(())
}

fn write_hooks(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section><h2>Last hook runs</h2>");
    if s.hooks.is_empty() {
        out.push_str("<p class=\"muted\">No hook has run yet.</p></section>\n");
        return Ok(());
    }
    out.push_str(
        "<table><tr><th>Hook</th><th>Started (UTC)</th><th class=\"num\">Took</th><th>Outcome</th></tr>",
    );
    for run in s.hooks.iter().take(HOOKS_SHOWN) {
        write!(
            out,
            "<tr><td>{hook}</td><td class=\"mono\" title=\"{started}\">{time}</td>\
             <td class=\"num\">{took}</td><td class=\"{class}\"><span class=\"dot\"></span>{outcome}</td></tr>",
            hook = Esc(&run.hook),
            started = Esc(&run.started),
            time = Esc(time_of_day(&run.started)),
            took = Age(run.duration_ms),
            class = if run.success { "c-ok" } else { "c-bad" },
            outcome = Esc(&run.outcome),
        )?;
    }
    out.push_str("</table></section>\n");
    Ok(())
}

fn write_events(out: &mut String, s: &Status) -> fmt::Result {
    out.push_str("<section class=\"wide\"><h2>Recent events</h2>");
    if s.events.is_empty() {
        out.push_str("<p class=\"muted\">No events yet.</p></section>\n");
        return Ok(());
    }
    out.push_str(
        "<table><tr><th>Time (UTC)</th><th>Severity</th><th>Kind</th><th>Message</th></tr>",
    );
    for event in s.events.iter().rev().take(EVENTS_SHOWN) {
        let class = match event.severity.known() {
            Some(Severity::Error) => "c-bad",
            Some(Severity::Warn) => "c-late",
            Some(Severity::Info) | None => "c-idle",
        };
        write!(
            out,
            "<tr><td class=\"mono\" title=\"{time}\">{short}</td><td class=\"sev {class}\">{severity}</td>\
             <td>{kind}</td><td>{message}</td></tr>",
            time = Esc(&event.time),
            short = Esc(time_of_day(&event.time)),
            severity = Esc(event.severity.as_str()),
            kind = Esc(event.kind.as_str()),
            message = Esc(&event.message),
        )?;
    }
    out.push_str("</table></section>\n");
    Ok(())
}

fn write_joined(out: &mut String, items: &[String]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write!(out, "{}", Esc(item))?;
    }
    Ok(())
}

/// A coloured badge for a node state; the colour comes from the known state, never
/// from the string itself.
struct StateBadge<'a> {
    word: &'a str,
    state: Option<PeerState>,
}

impl<'a> StateBadge<'a> {
    fn role(role: &'a Named<Role>) -> StateBadge<'a> {
        StateBadge {
            word: role.as_str(),
            state: role.known().map(PeerState::from),
        }
    }

    fn peer(state: &'a Named<PeerState>) -> StateBadge<'a> {
        StateBadge {
            word: state.as_str(),
            state: state.known(),
        }
    }
}

impl fmt::Display for StateBadge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.state {
            Some(PeerState::Active) => "b-active",
            Some(PeerState::Standby | PeerState::Witness) => "b-standby",
            Some(PeerState::Fault) => "b-fault",
            Some(PeerState::Dead) => "b-dead",
            Some(PeerState::Starting | PeerState::Unknown | PeerState::Stopped) | None => {
                "b-starting"
            }
        };
        write!(f, "<span class=\"badge {class}\">{}</span>", Esc(self.word))
    }
}

/// `1 failing check`, `2 failing checks`.
struct FailingChecks(u8);

impl fmt::Display for FailingChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 failing check"),
            UNFIT => f.write_str("a fatal check failing"),
            n => write!(f, "{n} failing checks"),
        }
    }
}

fn link_class(state: &Named<LinkState>) -> &'static str {
    match state.known() {
        Some(LinkState::Up) => "c-ok",
        Some(LinkState::Late) => "c-late",
        Some(LinkState::Down) => "c-bad",
        Some(LinkState::Unknown) | None => "c-idle",
    }
}

/// A duration given in milliseconds, in the largest units that keep it readable:
/// `0.42 ms`, `12 ms`, `1.5 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`.
struct Age(f64);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if !ms.is_finite() || ms < 0.0 {
            return f.write_str("?");
        }
        if ms < 1.0 {
            return write!(f, "{ms:.2} ms");
        }
        if ms < 1000.0 {
            return write!(f, "{ms:.0} ms");
        }
        if ms < 60_000.0 {
            return write!(f, "{:.1} s", ms / 1000.0);
        }
        let secs = (ms / 1000.0) as u64;
        match secs {
            ..3600 => write!(f, "{} min {} s", secs / 60, secs % 60),
            3600..86_400 => write!(f, "{} h {} min", secs / 3600, secs % 3600 / 60),
            _ => write!(f, "{} d {} h", secs / 86_400, secs % 86_400 / 3600),
        }
    }
}

/// `2026-11-22T04:30:00.123Z` as `2026-11-22 04:30:00 UTC`; anything else as is.
fn display_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(time)) if rfc3339.ends_with('Z') => format!("{date} {time} UTC"),
        _ => rfc3339.to_string(),
    }
}

/// `2026-11-22T04:30:00.123Z` as `04:30:00.123`; anything else as is.
fn time_of_day(rfc3339: &str) -> &str {
    rfc3339.get(11..23).unwrap_or(rfc3339)
}

/// The first `chars` characters of `s`.
fn shorten(s: &str, chars: usize) -> &str {
    s.char_indices().nth(chars).map_or(s, |(i, _)| &s[..i])
}

/// `s`, escaped for HTML text and attribute values.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

mod timeline;

#[cfg(test)]
mod tests;
