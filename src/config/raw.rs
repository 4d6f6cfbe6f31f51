//! The first pass: the document read into serde structs, every key optional.
//!
//! Owns the `Raw*` structs (`deny_unknown_fields`, so an unknown key is an error) and
//! [`read_raw`], which records each serde error, drops the key it points at and reads
//! again, so that one run reports them all. Missing keys, values and their relations
//! are left to `checks`, which reports them together with these.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Problem;
use super::diagnostics::{LineIndex, Seg, path_string, tidy_serde_message};

/// The whole document. Every key is optional, so that a missing one is reported in the
/// second pass together with everything else.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) cluster: Option<RawCluster>,
    pub(super) timing: Option<RawTiming>,
    pub(super) link: Option<Vec<RawLink>>,
    pub(super) node: Option<Vec<RawNode>>,
    pub(super) vip: Option<Vec<RawVip>>,
    pub(super) health: Option<RawHealth>,
    pub(super) check: Option<Vec<RawCheck>>,
    pub(super) hooks: Option<RawHooks>,
    pub(super) announce: Option<RawAnnounce>,
    pub(super) control: Option<RawControl>,
    pub(super) events: Option<RawEvents>,
    pub(super) http: Option<RawHttp>,
    pub(super) split_brain: Option<RawSplitBrain>,
    pub(super) fencing: Option<RawFencing>,
    pub(super) scheduling: Option<RawScheduling>,
    pub(super) damping: Option<RawDamping>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScheduling {
    pub(super) realtime_priority: Option<u8>,
    pub(super) lock_memory: Option<bool>,
    pub(super) raw_send: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDamping {
    pub(super) enabled: Option<bool>,
    pub(super) changes: Option<u32>,
    pub(super) window: Option<String>,
    pub(super) quiet: Option<String>,
    pub(super) max_silence: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSplitBrain {
    pub(super) live_vip: Option<String>,
    pub(super) require_gateway: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFencing {
    pub(super) command: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) timeout: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) retry: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) retry_max: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    pub(super) socket: Option<PathBuf>,
    pub(super) group: Option<String>,
    pub(super) state_dir: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    pub(super) file: Option<PathBuf>,
    pub(super) keep: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default, deserialize_with = "listen")]
    pub(super) listen: Option<String>,
    pub(super) hosts: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) name: Option<String>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) port: Option<u16>,
    pub(super) failback: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) failback_delay: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTiming {
    #[serde(default, deserialize_with = "duration")]
    pub(super) interval: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) warn: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) dead: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) init_dead: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) standby_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLink {
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) name: Option<String>,
    pub(super) witness: Option<bool>,
    pub(super) priority: Option<u16>,
    #[serde(default, deserialize_with = "addresses")]
    pub(super) addresses: Option<BTreeMap<String, String>>,
    pub(super) interfaces: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVip {
    #[serde(default, deserialize_with = "cidr")]
    pub(super) address: Option<String>,
    pub(super) interface: Option<String>,
    pub(super) label: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    #[serde(default, deserialize_with = "ip_addresses")]
    pub(super) gateways: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) interval: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) timeout: Option<String>,
    pub(super) failures: Option<u32>,
    pub(super) link_state: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHooks {
    pub(super) start: Option<PathBuf>,
    pub(super) stop: Option<PathBuf>,
    pub(super) fault: Option<PathBuf>,
    pub(super) standby: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) timeout: Option<String>,
    pub(super) start_failure: Option<String>,
    pub(super) on_adopt: Option<String>,
    pub(super) user: Option<String>,
    pub(super) group: Option<String>,
}

/// One `[[check]]`: the keys of every kind side by side, so that `checks` can name
/// the kind a misplaced key belongs to instead of calling it unknown.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    pub(super) name: Option<String>,
    pub(super) kind: Option<String>,
    #[serde(default, deserialize_with = "url")]
    pub(super) url: Option<String>,
    pub(super) expect_status: Option<RawStatus>,
    pub(super) expect_body: Option<String>,
    pub(super) command: Option<Vec<String>>,
    #[serde(default, deserialize_with = "tcp_address")]
    pub(super) address: Option<String>,
    #[serde(default, deserialize_with = "ip_address")]
    pub(super) target: Option<String>,
    pub(super) interface: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) interval: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) timeout: Option<String>,
    pub(super) rise: Option<u32>,
    pub(super) fall: Option<u32>,
    pub(super) weight: Option<u32>,
    pub(super) fatal: Option<bool>,
    pub(super) on: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) start_grace: Option<String>,
    #[serde(default, deserialize_with = "duration_or_never")]
    pub(super) failure_timeout: Option<String>,
}

/// `expect_status` as written, an integer (`200`) or a string (`"200"`,
/// `"200-399"`), kept as text for `checks` to read.
pub(super) struct RawStatus(pub(super) String);

impl<'de> Deserialize<'de> for RawStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawStatus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status code or a range such as \"200-399\"")
            }
            fn visit_i64<E: serde::de::Error>(self, code: i64) -> Result<RawStatus, E> {
                Ok(RawStatus(code.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, code: u64) -> Result<RawStatus, E> {
                Ok(RawStatus(code.to_string()))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawStatus, E> {
                Ok(RawStatus(text.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnnounce {
    pub(super) count: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) interval: Option<String>,
    #[serde(default, deserialize_with = "duration_or_off")]
    pub(super) refresh: Option<String>,
}

/// A string that stands for something else, read with what it stands for in words:
/// a key of the wrong type is then "expected a duration such as ..." rather than
/// "expected a string". The second pass reads the string.
struct Text(&'static str);

impl serde::de::Visitor<'_> for Text {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_string())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Text {
    type Value = String;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

const DURATION: &str = "a duration such as \"200ms\" or \"2s\"";
const IP_ADDRESS: &str = "an IP address such as \"198.18.0.11\"";

fn text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    words: &'static str,
) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_str(Text(words)).map(Some)
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d, DURATION)
}

fn duration_or_never<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d, "a duration such as \"10m\", or \"never\"")
}

fn duration_or_off<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d, "a duration such as \"60s\", or \"off\"")
}

fn ip_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d, IP_ADDRESS)
}

fn cidr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d, "an address and prefix length such as \"198.18.0.10/24\"")
}

fn listen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d, "an address:port such as \"127.0.0.1:9469\"")
}

fn tcp_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d, "an address:port such as \"127.0.0.1:5432\"")
}

fn url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d, "a URL such as \"http://127.0.0.1:8080/health\"")
}

/// `[health] gateways`: an array of IP addresses.
fn ip_addresses<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(address) = seq.next_element_seed(Text(IP_ADDRESS))? {
                out.push(address);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_seq(Visitor).map(Some)
}

/// A node's `addresses`: an IP address for each link, by link name.
fn addresses<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table such as { lan = \"198.18.0.11\" }")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(link) = map.next_key::<String>()? {
                let address = map.next_value_seed(Text(IP_ADDRESS))?;
                out.insert(link, address);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Visitor).map(Some)
}

/// First pass: serde with `deny_unknown_fields`. Each error is recorded, the key it
/// points at is dropped and the document read again, so one run reports them all.
pub(super) fn read_raw(
    mut doc: Spanned<DeTable<'_>>,
    lines: &LineIndex,
    problems: &mut Vec<Problem>,
) -> Option<RawConfig> {
    // Bounded: every round removes a key, and a document this broken says enough.
    for _ in 0..64 {
        let err = match RawConfig::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(raw) => return Some(raw),
            Err(err) => err,
        };
        let span = err.span();
        let path = span
            .as_ref()
            .and_then(|s| key_at(doc.get_ref(), s.start))
            .unwrap_or_default();
        let key = path_string(&path);
        let mut removed = !path.is_empty() && remove_at(doc.get_mut(), &path);
        if !removed && path.len() > 1 {
            // The error sits on an array element: drop the nearest key holding it
            // (`check[1].command` for `check[1].command[0]`), so that the other
            // tables of an array of tables are still read.
            let holder = path.iter().rposition(|s| matches!(s, Seg::Key(_)));
            if let Some(last) = holder {
                removed = remove_at(doc.get_mut(), &path[..=last]);
            }
        }
        problems.push(Problem {
            key: if key.is_empty() {
                "(document)".to_string()
            } else {
                key
            },
            line: span.map(|s| lines.line(s.start)),
            message: tidy_serde_message(err.message()),
        });
        if !removed {
            return None;
        }
    }
    None
}

/// The deepest key whose key or value covers `offset`.
fn key_at(table: &DeTable<'_>, offset: usize) -> Option<Vec<Seg>> {
    fn in_value(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<Vec<Seg>> {
        match value.get_ref() {
            DeValue::Table(t) => key_at(t, offset),
            // The span of an array-of-tables element may cover only its header, so
            // look inside every element rather than trusting the span.
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let mut path = vec![Seg::Index(i)];
                match in_value(item, offset) {
                    Some(deeper) => path.extend(deeper),
                    None if covers(item.span(), offset) => {}
                    None => return None,
                }
                Some(path)
            }),
            _ => None,
        }
    }
    fn covers(span: std::ops::Range<usize>, offset: usize) -> bool {
        span.start <= offset && offset < span.end.max(span.start + 1)
    }
    for (key, value) in table {
        let deeper = in_value(value, offset);
        if deeper.is_some() || covers(key.span(), offset) || covers(value.span(), offset) {
            let mut path = vec![Seg::Key(key.get_ref().to_string())];
            path.extend(deeper.unwrap_or_default());
            return Some(path);
        }
    }
    None
}

/// Removes the entry at `path`; returns false if there is none.
fn remove_at(table: &mut DeTable<'_>, path: &[Seg]) -> bool {
    let Some((Seg::Key(first), rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return table.remove(first.as_str()).is_some();
    }
    let Some(value) = table.get_mut(first.as_str()) else {
        return false;
    };
    remove_in_value(value.get_mut(), rest)
}

fn remove_in_value(value: &mut DeValue<'_>, path: &[Seg]) -> bool {
    match (value, path.first()) {
        (DeValue::Table(t), Some(Seg::Key(_))) => remove_at(t, path),
        (DeValue::Array(items), Some(Seg::Index(i))) => {
            let rest = &path[1..];
            if rest.is_empty() {
                // Dropping an array element would renumber the others; a bad
                // element is reported and its whole array dropped instead.
                return false;
            }
            match items.get_mut(*i) {
                Some(item) => remove_in_value(item.get_mut(), rest),
                None => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{good, keys, parse};

    #[test]
    fn every_problem_is_reported_at_once_with_key_and_line() {
        let text = good()
            .set("node[0].priority", "\"high\"")
            .set("health.retries", 4)
            .set("timing.dead", "150ms")
            .set(
                "node[1].addresses",
                r#"{ crossover = "198.19.0.2", lan = "198.18.0.x" }"#,
            )
            .set("link[1].mtu", 9000)
            .to_string();
        let problems = parse(&text).unwrap_err();
        let keys = keys(&problems);
        for expected in [
            "node[0].priority",
            "health.retries",
            "link[1].mtu",
            "timing.dead",
            "node[1].addresses.lan",
        ] {
            assert!(
                keys.contains(&expected),
                "{expected} missing in {problems:#?}"
            );
        }
        let priority = problems
            .iter()
            .find(|p| p.key == "node[0].priority")
            .unwrap();
        let line = text.lines().position(|l| l.contains("\"high\"")).unwrap() + 1;
        assert_eq!(priority.line, Some(line));
        assert!(priority.message.contains("wrong type"), "{priority}");
        let retries = problems.iter().find(|p| p.key == "health.retries").unwrap();
        assert!(retries.message.contains("unknown key"), "{retries}");
    }
}
