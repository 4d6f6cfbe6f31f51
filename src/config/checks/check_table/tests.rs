//! Every rule of a `[[check]]` table, and of the `[hooks]` keys that came with them:
//! a good table of each kind parses into the right values, and each broken rule is
//! one problem with its key and line, all of them at once.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::{parse_http_url, parse_status};
use crate::config::tests::{dir_with_key, good, keys};
use crate::config::{Check, Config, HttpUrl, MAX_HTTP_BODY, Probe, Problem, Scope, StartFailure};
use crate::scratch::Scratch;

/// A base directory with the key file and a program of every kind the exec rules
/// tell apart, relative to which the documents below are parsed.
fn base() -> Scratch {
    let dir = dir_with_key(0o600, "0123456789abcdef0123456789abcdef\n");
    for (name, mode) in [
        ("probe", 0o755),
        ("plain", 0o644),
        ("group-writable", 0o775),
        ("world-writable", 0o757),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::create_dir(dir.path().join("dir")).unwrap();
    dir
}

/// The test sample with `tables` appended, parsed in a fresh [`base`]; the text too,
/// to find lines in.
fn parse(tables: &str) -> (String, Scratch, Result<Config, Vec<Problem>>) {
    let text = good().append(tables).to_string();
    let dir = base();
    let result = Config::parse(&text, dir.path());
    (text, dir, result)
}

fn refused(tables: &str) -> (String, Vec<Problem>) {
    let (text, _dir, result) = parse(tables);
    match result {
        Ok(config) => panic!("accepted: {:#?}\n{tables}", config.checks),
        Err(problems) => (text, problems),
    }
}

/// A `[[check]]` named "t" of `kind` with the key that kind requires, then `edits`:
/// `key = value` sets a key (replacing it if there), `-key` removes one.
fn table(kind: &str, edits: &[&str]) -> String {
    let required = match kind {
        "exec" => r#"command = ["probe"]"#,
        "tcp" => r#"address = "127.0.0.1:5432""#,
        "http" => r#"url = "http://127.0.0.1:8080/health""#,
        "ping" => r#"target = "198.18.0.1""#,
        "link" => r#"interface = "eth1""#,
        _ => "",
    };
    let mut lines = vec![
        "name = \"t\"".to_string(),
        format!("kind = \"{kind}\""),
        required.to_string(),
    ];
    for edit in edits {
        if let Some(key) = edit.strip_prefix('-') {
            lines.retain(|l| !l.starts_with(&format!("{key} =")));
            continue;
        }
        let (key, _) = edit.split_once(" = ").expect("key = value");
        match lines
            .iter()
            .position(|l| l.starts_with(&format!("{key} =")))
        {
            Some(at) => lines[at] = edit.to_string(),
            None => lines.push(edit.to_string()),
        }
    }
    lines.retain(|l| !l.is_empty());
    format!("[[check]]\n{}\n", lines.join("\n"))
}

/// The line that `key` of the last `[[check]]` of `text` is on: where it is set, or
/// the table's header when it is not.
fn line_of_key(text: &str, key: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().rposition(|l| *l == "[[check]]").unwrap();
    let leaf = key.rsplit_once('.').map_or(key, |(_, leaf)| leaf);
    let leaf = leaf.split('[').next().unwrap();
    let set = lines
        .iter()
        .enumerate()
        .skip(header)
        .find(|(_, l)| l.starts_with(&format!("{leaf} =")));
    set.map_or(header, |(i, _)| i) + 1
}

/// The 1-based line of the `n`th line of `text` that starts with `start`.
fn nth_line(text: &str, start: &str, n: usize) -> usize {
    let mut found = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with(start));
    found.nth(n).map(|(i, _)| i + 1).expect(start)
}

#[test]
fn one_check_of_each_kind_parses_into_typed_values() {
    let (_, dir, result) = parse(
        r#"[[check]]
name = "web"
kind = "http"
url = "http://[::1]:8080/health?full=1#top"
expect_status = 200
expect_body = "ok"

[[check]]
name = "db"
kind = "exec"
command = ["probe", "-q", "--host", "a b"]
interval = "5s"
timeout = "2s"
rise = 1
fall = 3
fatal = true
on = "active"
start_grace = "30s"
failure_timeout = "10m"

[[check]]
name = "db.port"
kind = "tcp"
address = "[::1]:5432"
weight = 0

[[check]]
name = "upstream_router"
kind = "ping"
target = "fd00::1"
weight = 100

[[check]]
name = "backend-nic"
kind = "link"
interface = "eth1"
on = "active"
failure_timeout = "never"

[hooks]
standby = "probe"
start_failure = "ignore"
"#,
    );
    let config = result.unwrap_or_else(|problems| panic!("{problems:#?}"));
    let program = dir.path().join("probe").to_str().unwrap().to_string();
    let default = Check {
        name: String::new(),
        probe: Probe::Link {
            interface: String::new(),
        },
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        rise: 2,
        fall: 2,
        weight: 1,
        fatal: false,
        on: Scope::Both,
        start_grace: Duration::ZERO,
        failure_timeout: None,
    };
    let expected = [
        Check {
            name: "web".into(),
            probe: Probe::Http {
                url: HttpUrl {
                    host: "[::1]".into(),
                    port: 8080,
                    path: "/health?full=1".into(),
                },
                status: 200..=200,
                body: Some("ok".into()),
            },
            ..default.clone()
        },
        Check {
            name: "db".into(),
            probe: Probe::Exec {
                command: vec![program, "-q".into(), "--host".into(), "a b".into()],
            },
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            rise: 1,
            fall: 3,
            fatal: true,
            on: Scope::Active,
            start_grace: Duration::from_secs(30),
            failure_timeout: Some(Duration::from_secs(600)),
            ..default.clone()
        },
        Check {
            name: "db.port".into(),
            probe: Probe::Tcp {
                address: "[::1]:5432".parse().unwrap(),
            },
            weight: 0,
            ..default.clone()
        },
        Check {
            name: "upstream_router".into(),
            probe: Probe::Ping {
                target: "fd00::1".parse().unwrap(),
            },
            weight: 100,
            ..default.clone()
        },
        Check {
            name: "backend-nic".into(),
            probe: Probe::Link {
                interface: "eth1".into(),
            },
            on: Scope::Active,
            start_grace: Duration::from_secs(10),
            failure_timeout: None,
            ..default
        },
    ];
    assert_eq!(config.checks, expected);
    assert_eq!(config.hooks.standby, Some(dir.path().join("probe")));
    assert_eq!(config.hooks.start_failure, StartFailure::Ignore);

    // The [health] shorthand comes first, with each node's own interface names.
    let names = |me| -> Vec<String> { config.checks_for(me).into_iter().map(|c| c.name).collect() };
    let ours = ["web", "db", "db.port", "upstream_router", "backend-nic"];
    assert_eq!(names(0)[..2], ["gateway-198.18.0.1", "link-eth0"]);
    assert_eq!(names(1)[..2], ["gateway-198.18.0.1", "link-enp1s0"]);
    assert_eq!(names(1)[2..], ours);
}

#[test]
fn the_defaults() {
    let (_, _dir, result) = parse(&table("tcp", &[]));
    let config = result.unwrap_or_else(|problems| panic!("{problems:#?}"));
    let check = &config.checks[0];
    assert_eq!(
        (check.interval, check.timeout),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    assert_eq!(
        (check.rise, check.fall, check.weight, check.fatal),
        (2, 2, 1, false)
    );
    assert_eq!(check.on, Scope::Both);
    assert_eq!(
        (check.start_grace, check.failure_timeout),
        (Duration::ZERO, None)
    );
    assert_eq!(config.hooks.standby, None);
    assert_eq!(config.hooks.start_failure, StartFailure::Release);

    let (_, _dir, result) = parse(&table("http", &["interval = \"3s\"", "on = \"active\""]));
    let config = result.unwrap_or_else(|problems| panic!("{problems:#?}"));
    let check = &config.checks[0];
    assert_eq!(check.timeout, Duration::from_secs(3), "the interval");
    assert_eq!(check.start_grace, Duration::from_secs(10));
    assert_eq!(check.failure_timeout, None, "until `failoverd clear`");
    let Probe::Http { url, status, body } = &check.probe else {
        panic!("{:?}", check.probe);
    };
    assert_eq!((url.port, url.path.as_str()), (8080, "/health"));
    assert_eq!((status, body), (&(200..=399), &None));
}

/// One rule broken each: `kind; edit; ... => key: what the message says`, with the
/// edits that [`table`] takes and the key within `check[0]`.
const BROKEN: &[&str] = &[
    // name
    r#"tcp; -name => name: is required"#,
    r#"tcp; name = "" => name: must be 1 to 64 bytes long"#,
    r#"tcp; name = "my check" => name: "my check" may hold only letters, digits, '-', '_' and '.'"#,
    r#"tcp; name = "café" => name: may hold only letters, digits"#,
    r#"tcp; name = "vip" => name: "vip" is the name of a built-in check (vip, start-hook)"#,
    r#"tcp; name = "start-hook" => name: built-in check"#,
    r#"tcp; name = "gateway-198.18.0.1" => name: [health] makes (ping 198.18.0.1 on node "alpha")"#,
    r#"tcp; name = "link-enp1s0" => name: [health] makes (link enp1s0 on node "beta")"#,
    // kind, and the keys that go with each kind
    r#"tcp; -kind => kind: is required"#,
    r#"smtp => kind: "smtp" is not one of "exec", "tcp", "http", "ping", "link""#,
    r#"tcp; url = "http://x/" => url: is for kind = "http" checks; this one is kind = "tcp""#,
    r#"tcp; expect_status = 200 => expect_status: is for kind = "http" checks"#,
    r#"ping; expect_body = "ok" => expect_body: is for kind = "http" checks"#,
    r#"http; command = ["probe"] => command: is for kind = "exec" checks"#,
    r#"link; address = "127.0.0.1:1" => address: is for kind = "tcp" checks"#,
    r#"exec; target = "198.18.0.1" => target: is for kind = "ping" checks"#,
    r#"ping; interface = "eth1" => interface: is for kind = "link" checks"#,
    r#"exec; -command => command: is required for kind = "exec""#,
    r#"tcp; -address => address: is required for kind = "tcp""#,
    r#"http; -url => url: is required for kind = "http""#,
    r#"ping; -target => target: is required for kind = "ping""#,
    r#"link; -interface => interface: is required for kind = "link""#,
    // http
    r#"http; url = "https://127.0.0.1/health" => url: https is not supported: check the service's plain local port"#,
    r#"http; url = "ftp://host/" => url: is not a plain http:// URL"#,
    r#"http; url = "http://::1/" => url: an IPv6 address goes in brackets"#,
    r#"http; expect_status = 600 => expect_status: "600" is not a status code (100 to 599)"#,
    r#"http; expect_status = "2xx" => expect_status: or a range of them such as "200-399""#,
    r#"http; expect_status = "399-200" => expect_status: is an empty range"#,
    r#"http; expect_status = true => expect_status: wrong type: found boolean `true`"#,
    r#"http; expect_body = "" => expect_body: is empty; leave it out"#,
    // exec
    r#"exec; command = [] => command: must name a program and its arguments"#,
    r#"exec; command = ["", "-q"] => command: must name a program"#,
    r#"exec; command = ["probe", 5] => command[1]: wrong type"#,
    r#"exec; command = ["absent"] => command[0]: (there is no search of PATH"#,
    r#"exec; command = ["/absent/x"] => command[0]: /absent/x: No such file"#,
    r#"exec; command = ["dir"] => command[0]: is not a regular file"#,
    r#"exec; command = ["plain"] => command[0]: is not executable"#,
    r#"exec; command = ["group-writable"] => command[0]: has mode 0775: failoverd runs it, so it must not be writable"#,
    r#"exec; command = ["world-writable"] => command[0]: has mode 0757"#,
    // tcp, ping, link
    r#"tcp; address = "127.0.0.1" => address: is not an address:port"#,
    r#"tcp; address = "::1:80" => address: is not an address:port"#,
    r#"tcp; address = "127.0.0.1:0" => address: the port must not be 0"#,
    r#"ping; target = "fe80::1" => target: fe80::1 is link-local"#,
    r#"ping; target = "router" => target: "router" is not an IP address"#,
    r#"ping; target = "127.0.0.1" => target: 127.0.0.1 is this host itself"#,
    r#"link; interface = "eth0:1" => interface: "eth0:1" holds ':', which Linux does not allow in an interface name"#,
    r#"link; interface = "eth/1" => interface: "eth/1" holds '/', which Linux does not allow"#,
    r#"link; interface = "eth 1" => interface: "eth 1" holds a space or a control character; Linux does not allow one"#,
    r#"link; interface = ".." => interface: ".." is not an interface name Linux allows"#,
    r#"link; interface = "" => interface: an interface name must not be empty"#,
    r#"link; interface = "sixteen-bytes-xx" => interface: "sixteen-bytes-xx" is 16 bytes long; Linux allows at most 15 in an interface name"#,
    // timing
    r#"tcp; interval = "5ms" => interval: must be at least 10ms"#,
    r#"tcp; interval = "5" => interval: has no unit"#,
    r#"tcp; timeout = "2s" => timeout: 2s must be positive and at most interval (1s)"#,
    r#"tcp; timeout = "0s" => timeout: must be positive"#,
    r#"tcp; rise = 0 => rise: must be at least 1"#,
    r#"tcp; fall = 0 => fall: must be at least 1"#,
    r#"tcp; rise = -1 => rise: out of range: found -1, expected a number from 0 to 4294967295"#,
    r#"tcp; fatal = "yes" => fatal: wrong type: found string "yes", expected true or false"#,
    r#"tcp; interval = 5 => interval: wrong type: found integer `5`, expected a duration such as "200ms" or "2s""#,
    r#"tcp; on = "active"; failure_timeout = 5 => failure_timeout: expected a duration such as "10m", or "never""#,
    r#"tcp; address = 5432 => address: expected an address:port such as "127.0.0.1:5432""#,
    r#"http; url = 1 => url: expected a URL such as "http://127.0.0.1:8080/health""#,
    r#"ping; target = 1 => target: expected an IP address such as "198.18.0.11""#,
    r#"ping; target = "198.18.0.10" => target: 198.18.0.10 is the address of vip[0]: the node that holds it would ping itself"#,
    r#"ping; target = "198.19.0.2" => target: 198.19.0.2 is node "beta"'s address on link "crossover": that node would ping itself"#,
    // weight, fatal, on
    r#"tcp; weight = 101 => weight: must be between 0 and 100"#,
    r#"tcp; fatal = true; weight = 1 => weight: cannot go with fatal = true"#,
    r#"tcp; on = "standby" => on: "standby" is not one of "both", "active""#,
    r#"tcp; start_grace = "5s" => start_grace: is for on = "active" checks only; this one is on = "both""#,
    r#"tcp; on = "both"; failure_timeout = "1m" => failure_timeout: is for on = "active" checks only"#,
    r#"tcp; on = "active"; start_grace = "soon" => start_grace: unknown unit"#,
    r#"tcp; on = "active"; failure_timeout = "5" => failure_timeout: has no unit"#,
    // what the first pass finds
    r#"tcp; retries = 3 => retries: unknown key"#,
];

#[test]
fn each_broken_rule_is_one_problem_with_its_key_and_line() {
    let long_name = format!("name = \"{}\"", "n".repeat(65));
    let long_body = format!("expect_body = \"{}\"", "x".repeat(MAX_HTTP_BODY + 1));
    let generated = [
        format!("tcp; {long_name} => name: must be 1 to 64 bytes long"),
        format!("http; {long_body} => expect_body: only the first 65536 bytes"),
    ];
    let cases = BROKEN
        .iter()
        .copied()
        .chain(generated.iter().map(String::as_str));
    for case in cases {
        let (table_of, expected) = case
            .split_once(" => ")
            .expect("kind; edits => key: message");
        let (leaf, message) = expected.split_once(": ").expect("key: message");
        let mut edits = table_of.split("; ");
        let kind = edits.next().unwrap();
        let tables = table(kind, &edits.collect::<Vec<_>>());
        let key = format!("check[0].{leaf}");
        let (text, problems) = refused(&tables);
        let [problem] = &problems[..] else {
            panic!("{case}\n{problems:#?}");
        };
        assert_eq!(problem.key, key, "{case}");
        assert!(problem.message.contains(message), "{case}\n{problem}");
        assert_eq!(
            problem.line,
            Some(line_of_key(&text, &key)),
            "{case}\n{problem}"
        );
    }
}

#[test]
fn every_problem_of_every_check_is_reported_at_once() {
    let tables = [
        table(
            "tcp",
            &[
                "name = \"vip\"",
                "address = \"127.0.0.1:0\"",
                "url = \"http://x/\"",
            ],
        ),
        table(
            "http",
            &[
                "name = \"web\"",
                "url = \"https://x/\"",
                "interval = \"5ms\"",
            ],
        ),
        table(
            "exec",
            &[
                "name = \"web\"",
                "command = [\"plain\"]",
                "on = \"sometimes\"",
            ],
        ),
        table(
            "ping",
            &[
                "-name",
                "target = \"fe80::1\"",
                "rise = 0",
                "start_grace = \"1s\"",
            ],
        ),
        table(
            "link",
            &["name = \"x\"", "fatal = true", "weight = 3", "bogus = 1"],
        ),
        table("smtp", &["name = \"y\""]),
    ]
    .concat();
    let (text, problems) = refused(&tables);
    let header = |n| nth_line(&text, "[[check]]", n);
    let line = |n, start| {
        let from = header(n);
        from + text
            .lines()
            .skip(from)
            .position(|l| l.starts_with(start))
            .unwrap()
            + 1
    };
    let expected = [
        // In file order, whichever pass found them.
        ("check[0].name", line(0, "name")),
        ("check[0].address", line(0, "address")),
        ("check[0].url", line(0, "url")),
        ("check[1].url", line(1, "url")),
        ("check[1].interval", line(1, "interval")),
        ("check[2].name", line(2, "name")),
        ("check[2].command[0]", line(2, "command")),
        ("check[2].on", line(2, "on")),
        ("check[3].name", header(3)),
        ("check[3].target", line(3, "target")),
        ("check[3].rise", line(3, "rise")),
        ("check[3].start_grace", line(3, "start_grace")),
        ("check[4].weight", line(4, "weight")),
        ("check[4].bogus", line(4, "bogus")),
        ("check[5].kind", line(5, "kind")),
    ];
    let found: Vec<(&str, usize)> = problems
        .iter()
        .map(|p| (p.key.as_str(), p.line.unwrap_or(0)))
        .collect();
    assert_eq!(found, expected, "{problems:#?}");
}

#[test]
fn hooks_standby_and_start_failure() {
    let (_, problems) = refused("[hooks]\nstandby = \"absent\"\nstart_failure = \"retry\"\n");
    assert_eq!(keys(&problems), ["hooks.standby", "hooks.start_failure"]);
    assert!(
        problems[0].message.contains("No such file"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1]
            .message
            .contains(r#""retry" is not one of "release", "ignore""#),
        "{}",
        problems[1]
    );
    let (_, problems) = refused("[hooks]\nstandby = \"plain\"\n");
    assert!(
        problems[0].message.contains("is not executable"),
        "{}",
        problems[0]
    );
    let (_, problems) = refused("[hooks]\nstandby = \"dir\"\n");
    assert!(
        problems[0].message.contains("is not a regular file"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_gateway_listed_twice_would_be_two_checks_of_one_name() {
    let text = good()
        .set(
            "health.gateways",
            r#"["198.18.0.1", "198.18.0.2", "198.18.0.1"]"#,
        )
        .to_string();
    let dir = base();
    let problems = Config::parse(&text, dir.path()).unwrap_err();
    assert_eq!(keys(&problems), ["health.gateways[2]"]);
    assert!(
        problems[0].message.contains("listed twice"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_check_may_take_a_shorthand_name_that_is_not_made() {
    // No VIP on eth1 and no gateway .2: nothing else is called that.
    let tables = [
        table("link", &["name = \"link-eth1\""]),
        table("ping", &["name = \"gateway-198.18.0.2\""]),
    ]
    .concat();
    let (_, _dir, result) = parse(&tables);
    assert!(result.is_ok(), "{result:#?}");
}

#[test]
fn http_urls() {
    let url = |host: &str, port, path: &str| HttpUrl {
        host: host.into(),
        port,
        path: path.into(),
    };
    for (text, expected) in [
        ("http://127.0.0.1", url("127.0.0.1", 80, "/")),
        ("HTTP://localhost:8080", url("localhost", 8080, "/")),
        (
            "http://web.internal/a/b?c=d",
            url("web.internal", 80, "/a/b?c=d"),
        ),
        ("http://host?x=1", url("host", 80, "/?x=1")),
        ("http://host/#frag", url("host", 80, "/")),
        ("http://[fd00::1]", url("[fd00::1]", 80, "/")),
        ("http://[::1]:9000/up", url("[::1]", 9000, "/up")),
    ] {
        assert_eq!(parse_http_url(text), Ok(expected), "{text}");
    }
    for (text, message) in [
        ("127.0.0.1:8080/health", "not a plain http:// URL"),
        ("https://127.0.0.1/", "or use an exec check with curl"),
        ("http://", "is not a host name"),
        ("http:///health", "is not a host name"),
        ("http://a b/", "is not a host name"),
        ("http://host:0/", "not a port"),
        ("http://host:65536/", "not a port"),
        ("http://host:/", "not a port"),
        ("http://[::1/", "lacks its \"]\""),
        ("http://[::g]/", "not an IPv6 address"),
        ("http://[::1]x/", "not a plain http:// URL"),
        ("http://fe80::1/", "goes in brackets"),
        ("http://user:pw@host/", "user name or password"),
        ("http://host/a b", "percent-encode"),
        ("http://host/a\r\nX: y", "percent-encode"),
    ] {
        let err = parse_http_url(text).unwrap_err();
        assert!(err.contains(message), "{text}: {err}");
    }
}

#[test]
fn status_ranges() {
    assert_eq!(parse_status("200"), Ok(200..=200));
    assert_eq!(parse_status("200-399"), Ok(200..=399));
    assert_eq!(parse_status("100-599"), Ok(100..=599));
    assert_eq!(parse_status("204-204"), Ok(204..=204));
    for text in [
        "99",
        "600",
        "-1",
        "200-",
        "-200",
        "2xx",
        "",
        "200-300-400",
        "399-200",
    ] {
        assert!(parse_status(text).is_err(), "{text}");
    }
}
