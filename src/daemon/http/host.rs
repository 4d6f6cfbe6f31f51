//! Which hosts the status page answers to: its defence against DNS rebinding.
//!
//! A web page elsewhere can point its own name at this server's address and have a
//! visitor's browser, inside the network, fetch from here; the browser then treats
//! the answer as the page's own and hands it over. Such a request names the page's
//! host in its Host header. So a request must name the address it came in on (with
//! any port or none; IPv6 in brackets), `localhost` when that address is a loopback
//! address, or a name the administrator listed in `[http] hosts`; any other gets 421.
//! A request that names no host at all (HTTP/1.0 without Host) passes: every browser
//! sends one, and some older monitoring tools do not. Pure code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether a request for `host` (as sent: `name`, `name:port`, `[v6]:port`), that
/// came in on the local address `local`, may be answered; `names` are the listed host
/// names, lowercase and without a final dot.
pub(super) fn allowed(host: Option<&str>, local: IpAddr, names: &[String]) -> bool {
    let Some(host) = host else {
        return true;
    };
    let Some(name) = without_port(host) else {
        return false;
    };
    let local = local.to_canonical();
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6
            .parse::<Ipv6Addr>()
            .is_ok_and(|a| IpAddr::V6(a).to_canonical() == local);
    }
    if let Ok(v4) = name.parse::<Ipv4Addr>() {
        return IpAddr::V4(v4) == local;
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    (local.is_loopback() && name == "localhost") || names.contains(&name)
}

/// `host` without its port; None when what follows the name is not `:digits`.
fn without_port(host: &str) -> Option<&str> {
    let (name, rest) = if host.starts_with('[') {
        let end = host.find(']')? + 1;
        host.split_at(end)
    } else {
        match host.find(':') {
            Some(colon) => host.split_at(colon),
            None => (host, ""),
        }
    };
    if rest.is_empty() {
        return Some(name);
    }
    let port = rest.strip_prefix(':')?;
    (port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_address_localhost_and_listed_names_pass() {
        let lan: IpAddr = "198.18.0.11".parse().unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::11".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.18.0.11".parse().unwrap();
        let names = ["alpha.example.com".to_string()];
        let cases: &[(Option<&str>, IpAddr, bool)] = &[
            (None, lan, true),
            (Some("198.18.0.11"), lan, true),
            (Some("198.18.0.11:9469"), lan, true),
            (Some("198.18.0.11:8080"), lan, true),
            (Some("198.18.0.11"), mapped, true),
            (Some("198.18.0.12:9469"), lan, false),
            (Some("alpha.example.com:9469"), lan, true),
            (Some("ALPHA.example.com."), lan, true),
            (Some("evil.example.com:9469"), lan, false),
            (Some("alpha.example.com.evil.net"), lan, false),
            (Some("localhost:9469"), lan, false),
            (Some("localhost:9469"), loopback, true),
            (Some("LocalHost"), loopback, true),
            (Some("127.0.0.1:9469"), loopback, true),
            (Some("[::1]:9469"), loopback, false),
            (Some("[2001:db8::11]:9469"), v6, true),
            (Some("[2001:DB8:0::11]"), v6, true),
            (Some("2001:db8::11"), v6, false),
            (Some("[2001:db8::12]:9469"), v6, false),
            (Some("198.18.0.11:94a9"), lan, false),
            (Some("198.18.0.11:"), lan, true),
            (Some("198.18.0.11:123456"), lan, false),
            (Some("[2001:db8::11]x"), v6, false),
            (Some("[2001:db8::11"), v6, false),
            (Some(""), lan, false),
            (Some("user@198.18.0.11"), lan, false),
        ];
        for (host, local, expected) in cases {
            assert_eq!(
                allowed(*host, *local, &names),
                *expected,
                "{host:?} on {local}"
            );
        }
        let loopback6: IpAddr = "::1".parse().unwrap();
        assert!(allowed(Some("[::1]:9469"), loopback6, &[]));
        assert!(allowed(Some("localhost"), loopback6, &[]));
    }
}
