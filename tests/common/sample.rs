//! The sample cluster configuration, rendered for a test: config/failoverd.toml, the
//! commented example that is installed, with the values a test needs set by key.
//!
//! It is the one sample that every Rust user starts from: the unit tests in
//! src/config, the end-to-end and fault tests (tests/common/cluster.rs), the
//! properties, the simulator, the hot-path bench and the fuzz seeds. scripts/sample.sh
//! renders the same file by the same rules for scripts/demo.sh and bench/failover.sh.
//! So the shape of the sample changes in config/failoverd.toml alone, and a user that
//! sets a key or table the sample no longer has fails here, loudly.
//!
//! It needs std only, so that src/, examples/ and benches/ can include it with
//! `#[path]` as well as tests/common.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;

/// The installed example, which every rendering starts from.
const EXAMPLE: &str = include_str!("../../config/failoverd.toml");

/// config/failoverd.toml with keys set, added or removed.
///
/// Keys are named as `failoverd check` names them: `timing.dead`, `node[1].priority`.
/// A table alone (`hooks`, `node[1]`, or `vip` for every `[[vip]]`) stands for all of
/// its lines. Values are one line long, as every value in the sample is.
#[derive(Debug, Clone)]
pub struct Sample {
    lines: Vec<String>,
}

/// Where a line of the document sits.
struct Place {
    /// `cluster`, `node[1]`; empty before the first header.
    table: String,
    /// The dotted key the line sets, if it sets one.
    key: Option<String>,
    header: bool,
}

impl Sample {
    /// The example as it is installed.
    pub fn new() -> Sample {
        Sample {
            lines: EXAMPLE.lines().map(String::from).collect(),
        }
    }

    /// Sets `key` to `value`, adding the key after the last one of its table when the
    /// table does not have it yet. The value is written as it is when it reads as TOML
    /// (an integer, `true`, `false`, an array, an inline table or a quoted string) and
    /// as a string otherwise: `set("timing.dead", "300ms")`, `set("health.failures", 2)`.
    /// Panics when the sample has no such table.
    pub fn set(mut self, key: &str, value: impl fmt::Display) -> Sample {
        let (table, name) = key.rsplit_once('.').unwrap_or(("", key));
        let line = format!("{name} = {}", toml_value(&value.to_string()));
        let places = self.places();
        if let Some(at) = places.iter().position(|p| p.key.as_deref() == Some(key)) {
            self.lines[at] = line;
            return self;
        }
        let Some(last) = places
            .iter()
            .rposition(|p| p.table == table && (p.header || p.key.is_some()))
        else {
            panic!("the sample has no table {table:?} to set {key} in");
        };
        self.lines.insert(last + 1, line);
        self
    }

    /// Removes `key`, or every line of a table. Panics when the sample has neither.
    pub fn remove(self, key: &str) -> Sample {
        let gone = |p: &Place| {
            p.table == key
                || p.table
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('['))
                || p.key.as_deref() == Some(key)
        };
        let places = self.places();
        let kept: Vec<String> = (self.lines.into_iter().zip(&places))
            .filter(|(_, place)| !gone(place))
            .map(|(line, _)| line)
            .collect();
        assert!(
            kept.len() < places.len(),
            "the sample has no key or table {key}"
        );
        Sample { lines: kept }
    }

    /// Appends `text`, whole tables such as a second `[[vip]]`, at the end.
    pub fn append(mut self, text: &str) -> Sample {
        self.lines.push(String::new());
        self.lines.extend(text.lines().map(String::from));
        self
    }

    /// Adds an empty `[table]` at the end unless the sample has one, so that `set` can
    /// fill in an optional table the installed example leaves out or shows only in
    /// comments: `with_table("fencing").set("fencing.command", path)`.
    pub fn with_table(self, table: &str) -> Sample {
        if self.places().iter().any(|p| p.header && p.table == table) {
            return self;
        }
        self.append(&format!("[{table}]"))
    }

    /// Drops the comment lines: the document a generator mutates should be mostly keys.
    pub fn without_comments(mut self) -> Sample {
        self.lines.retain(|l| !l.trim_start().starts_with('#'));
        self
    }

    /// The table and key of every line, in order.
    fn places(&self) -> Vec<Place> {
        let mut table = String::new();
        let mut count: HashMap<String, usize> = HashMap::new();
        self.lines
            .iter()
            .map(|line| {
                let line = line.trim();
                if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
                    let name = name.trim();
                    let next = count.entry(name.to_string()).or_insert(0);
                    let index = *next;
                    *next += 1;
                    table = format!("{name}[{index}]");
                    return Place {
                        table: table.clone(),
                        key: None,
                        header: true,
                    };
                }
                if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    table = name.trim().to_string();
                    return Place {
                        table: table.clone(),
                        key: None,
                        header: true,
                    };
                }
                let key = match line.split_once('=') {
                    Some((name, _)) if !line.starts_with('#') => Some(match table.as_str() {
                        "" => name.trim().to_string(),
                        table => format!("{table}.{}", name.trim()),
                    }),
                    _ => None,
                };
                Place {
                    table: table.clone(),
                    key,
                    header: false,
                }
            })
            .collect()
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// `value` as TOML: as it is when it already reads as TOML, else as a string.
fn toml_value(value: &str) -> String {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if integer || value == "true" || value == "false" || value.starts_with(['[', '{', '"']) {
        value.to_string()
    } else {
        format!("\"{value}\"")
    }
}
