//! The status page of the sample status, and of that status in trouble.

use std::time::UNIX_EPOCH;

use super::*;
use crate::status::fixture::{self, now};
use crate::status::{EventRecord, Maintenance};

const SCRIPT_MESSAGE: &str = "hook said <script>alert('x')</script> & \"quoted\"";

#[test]
fn page_shows_the_cluster_at_a_glance() {
    let page = render_page(&fixture::status(), now());
    for needle in [
        "<h1>alpha</h1>",
        "<title>alpha: active \u{2014} failoverd</title>",
        "<span class=\"badge b-active\">active</span>",
        "for 3 h 12 min",
        "2026-11-22 01:17:39 UTC",
        "peer beta dead on all links",
        "<dt>Failback</dt><dd>manual</dd>",
        "took 3 ms",
        "198.18.0.10/24",
        "2001:db8::10/64",
        "<b>this node</b>",
        "<h3>beta</h3>",
        "<span class=\"badge b-standby\">standby</span>",
        "priority 100",
        "configuration matches",
        "crossover",
        "38 ms ago",
        "<td class=\"c-ok\"><span class=\"dot\"></span>ok</td>",
        "198.18.0.1",
        "0.41 ms",
        "exited 0",
        "<td class=\"sev c-late\">warn</td><td>link</td>",
        "http-equiv=\"refresh\" content=\"2\"",
        "<h2>Checks</h2>",
        "<tr><td>web</td><td>http</td><td class=\"mono\">http://127.0.0.1:8080/health</td>\
         <td>weight 0</td><td class=\"c-bad\"><span class=\"dot\"></span>failing</td>\
         <td class=\"num\">4</td><td class=\"num\">10812</td><td class=\"num\">3 ms</td>\
         <td class=\"mono\">status 503</td></tr>",
        "<td>weight 1, on active</td><td class=\"c-idle\"><span class=\"dot\"></span>idle</td>",
        "<td>fatal, on active</td><td class=\"c-ok\"><span class=\"dot\"></span>passing \
         <span class=\"flag bad\">failed while active</span></td>",
        "<b>db</b> failed while this node was active",
        "failoverd clear db</span> or 2026-11-22 05:17:39 UTC.",
        "healthy</span> <span class=\"flag bad\">a check failed while active</span>",
        "<td>start-hook</td>",
    ] {
        assert!(page.contains(needle), "page lacks {needle:?}:\n{page}");
    }
    assert!(!page.contains("MAINTENANCE MODE"));
    assert!(!page.contains("nobody"));
}

#[test]
fn page_escapes_every_string_from_the_status() {
    let mut status = fixture::status();
    status.peers[0].name = "\"><img src=x onerror=alert(1)>".into();
    status.maintenance = Maintenance {
        on: true,
        set_by: vec!["<b>mallory</b>".into()],
    };
    status.events.last_mut().unwrap().message = SCRIPT_MESSAGE.into();
    status.health.checks[1].last_detail = Some("<script>x</script>".into());
    status.health.checks[1].target = "http://h/<img src=x>".into();
    status.health.checks[3].name = "<b>db</b>".into();
    let page = render_page(&status, now());
    assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
    assert!(page.contains("failoverd clear &lt;b&gt;db&lt;/b&gt;"));
    assert!(page.contains(
        "hook said &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"
    ));
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("set by &lt;b&gt;mallory&lt;/b&gt;"));
    let lower = page.to_lowercase();
    assert!(!lower.contains("<script"), "{page}");
    assert!(!lower.contains("<img"), "{page}");
    assert!(!lower.contains("<b>mallory"), "{page}");
}

#[test]
fn page_needs_nothing_from_elsewhere() {
    let page = render_page(&fixture::status(), now()).to_lowercase();
    // URLs may show as text (an http check's target), never as a reference.
    for outside in [
        "=\"http:",
        "=\"https:",
        "=\"//",
        "url(",
        "src=",
        "<script",
        "stylesheet",
        "@import",
    ] {
        assert!(!page.contains(outside), "page refers to {outside:?}");
    }
}

#[test]
fn page_says_when_failback_is_due_or_held() {
    let mut status = fixture::status();
    status.failback = Failback::Auto.into();
    status.failback_due = Some(crate::status::FailbackDue {
        to: "alpha<".to_string(),
        at: "2026-11-22T04:30:42.000Z".to_string(),
        at_unix_ms: 0,
    });
    let page = render_page(&status, now());
    let needle =
        "<dt>Failback</dt><dd>auto after 5.0 s; back to alpha&lt; at 2026-11-22 04:30:42 UTC</dd>";
    assert!(page.contains(needle), "{needle:?} missing");
    status.failback_due = None;
    status.failback_held = true;
    let page = render_page(&status, now());
    let needle = "<dt>Failback</dt><dd>auto after 5.0 s; held off by an operator's takeover</dd>";
    assert!(page.contains(needle), "{needle:?} missing");
}

#[test]
fn page_flags_trouble() {
    let mut status = fixture::status();
    status.health.failing = 2;
    status.releasing = true;
    status.failback = Failback::Auto.into();
    status.vips[1].held_here = false;
    status.vips[1].holder = None;
    let peer = &mut status.peers[0];
    peer.health_failing = 1;
    peer.alive = false;
    peer.state = PeerState::Dead.into();
    peer.fingerprint_match = Some(false);
    peer.links[1].state = LinkState::Down.into();
    peer.failed = true;
    let page = render_page(&status, now());
    for needle in [
        "<span class=\"c-bad\"><span class=\"dot\"></span>2 failing checks</span>",
        "<dt>Failback</dt><dd>auto after 5.0 s</dd>",
        "<span class=\"c-bad\"><span class=\"dot\"></span>nobody</span>",
        "<span class=\"flag bad\">1 failing check</span>",
        "<span class=\"flag bad\">not heard on any link</span>",
        "<span class=\"flag bad\">CONFIGURATION DIFFERS</span>",
        "<span class=\"badge b-dead\">dead</span>",
        "<td class=\"c-bad\"><span class=\"dot\"></span>dead</td>",
        "Releasing:",
        "<span class=\"flag bad\">not heard on any link</span><span class=\"flag bad\">a check failed while active</span>",
    ] {
        assert!(page.contains(needle), "page lacks {needle:?}");
    }
}

/// Raw sends by link, and failed ones flagged, as `failoverd status` shows them;
/// nothing where there were none.
#[test]
fn raw_sends_show_by_link() {
    let mut status = fixture::status();
    assert!(!render_page(&status, now()).contains("Raw sends"));
    status.counters.sent_raw = vec![("crossover".into(), 5_120), ("lan".into(), 0)];
    status.counters.raw_failed = vec![("crossover".into(), 0), ("lan".into(), 3)];
    let page = render_page(&status, now());
    assert!(
        page.contains(
            "<dt>Raw sends</dt><dd>crossover 5120; <span class=\"c-late\" title=\"each went \
             again over UDP; see [scheduling] raw_send\">failed: lan 3</span></dd>"
        ),
        "{page}"
    );
}

#[test]
fn maintenance_is_a_banner() {
    let mut status = fixture::status();
    status.maintenance = Maintenance {
        on: true,
        set_by: vec!["alpha".into(), "beta".into()],
    };
    let page = render_page(&status, now());
    assert!(page.contains("MAINTENANCE MODE"));
    assert!(page.contains("(set by alpha, beta)"));
}

#[test]
fn a_waiting_handover_is_a_banner_that_names_its_node() {
    let mut status = fixture::status();
    assert!(!render_page(&status, now()).contains("Handing over"));
    status.handing_over = true;
    status.handing_over_to = Some("<beta>".into());
    status.handing_over_ms = Some(640);
    let page = render_page(&status, now());
    assert!(
        page.contains(
            "Handing over to &lt;beta&gt;: waiting for the quiet standby to answer before \
             releasing (640 ms so far)."
        ),
        "{page}"
    );
}

#[test]
fn a_standing_takeover_order_is_a_banner() {
    let mut status = fixture::status();
    assert!(!render_page(&status, now()).contains("Takeover requested"));
    status.takeover_requested = true;
    let page = render_page(&status, now());
    assert!(
        page.contains("Takeover requested: this node takes the VIPs as soon as it may."),
        "{page}"
    );
}

#[test]
fn flapping_is_a_banner_and_the_takeover_silence_is_shown() {
    let mut status = fixture::status();
    let page = render_page(&status, now());
    assert!(!page.contains("Flapping:"));
    assert!(page.contains("<dt>Starved</dt><dd>2 times"));
    status.damping.flapping = true;
    status.damping.changes = 6;
    status.damping.takeover_silence_ms = 4000.0;
    let page = render_page(&status, now());
    assert!(page.contains("Flapping: 6 unplanned changes of holder"));
    assert!(page.contains("<span class=\"flag bad\">flapping</span>"));
}

#[test]
fn page_lists_the_last_twenty_events_newest_first() {
    let mut status = fixture::status();
    let template = status.events[0].clone();
    status.events = (1..=30)
        .map(|seq| EventRecord {
            seq,
            message: format!("event number {seq}."),
            ..template.clone()
        })
        .collect();
    let page = render_page(&status, now());
    let shown: Vec<u64> = (1..=30)
        .filter(|seq| page.contains(&format!("event number {seq}.")))
        .collect();
    assert_eq!(shown, (11..=30).collect::<Vec<_>>());
    let position = |seq: u64| page.find(&format!("event number {seq}.")).unwrap();
    assert!(position(30) < position(29) && position(12) < position(11));
}

#[test]
fn odd_values_render_without_panicking() {
    let mut status = fixture::status();
    status.since = "not a time".into();
    status.since_unix_ms = u64::MAX;
    status.fingerprint = "é".repeat(40);
    status.last_takeover_ms = Some(f64::NAN);
    status.hooks[0].started = "ü".into();
    status.hooks[0].duration_ms = f64::INFINITY;
    status.peers[0].links[0].last_heartbeat_ms = Some(-3.0);
    status.state = Named::Newer("something new".into());
    status.peers[0].state = Named::Newer("<evicted>".into());
    status.events[0].severity = Named::Newer("fatal".into());
    let page = render_page(&status, UNIX_EPOCH);
    assert!(page.contains("<span class=\"badge b-starting\">something new</span>"));
    assert!(page.contains("<span class=\"badge b-starting\">&lt;evicted&gt;</span>"));
    assert!(page.contains("<td class=\"sev c-idle\">fatal</td>"));
    assert!(page.contains(&"é".repeat(16)));
}

#[test]
fn ages_read_naturally() {
    for (ms, text) in [
        (0.412, "0.41 ms"),
        (45.0, "45 ms"),
        (1500.0, "1.5 s"),
        (200_000.0, "3 min 20 s"),
        (7_500_000.0, "2 h 5 min"),
        (273_600_000.0, "3 d 4 h"),
        (-1.0, "?"),
        (f64::NAN, "?"),
    ] {
        assert_eq!(Age(ms).to_string(), text, "{ms} ms");
    }
}
