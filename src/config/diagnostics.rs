//! How a problem in the file is reported: [`Problem`], with its dotted key and line.
//!
//! Owns the line index (byte offset to line), the line of every key path in the
//! document, key paths as strings (`node[1].addresses.lan`) and the rewording of
//! serde's and the TOML parser's messages. It decides nothing about what is a
//! problem: the `raw` and `checks` passes do.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in the file, tied to the key (and, where known, the line) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the key, e.g. `node[1].addresses.lan`.
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

pub(super) fn describe_problems(path: &Path, problems: &[Problem]) -> String {
    match problems {
        [one] => format!("{}: {one}", path.display()),
        _ => format!(
            "{} has {} problems:\n{}",
            path.display(),
            problems.len(),
            Problems(problems)
        ),
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {problem}")?;
        }
        Ok(())
    }
}

/// Byte offset to 1-based line number.
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// Byte offset at which 1-based `line` starts.
    pub(super) fn start(&self, line: usize) -> usize {
        self.starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or_default()
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// The problem of a file that is not UTF-8 from byte `at` on, placed so that an
/// editor (or `cut -b`) finds it.
pub(super) fn not_utf8(bytes: &[u8], at: usize) -> Problem {
    let before = &bytes[..at];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let byte = bytes.get(at).copied().unwrap_or_default();
    Problem {
        key: "(document)".to_string(),
        line: Some(before.iter().filter(|&&b| b == b'\n').count() + 1),
        message: format!(
            "byte {at} (column {}) is not UTF-8 ({byte:#04x}); the file must be UTF-8 text",
            at - line_start + 1
        ),
    }
}

/// The TOML parser's "duplicate key" at `span`, told as the key it is and where it
/// was set first. The document did not parse, so the tables are found again from
/// the headers above: good enough for the plain TOML of a configuration file, and
/// `None` (the parser's own words) where it is not.
pub(super) fn duplicate_key(
    text: &str,
    span: std::ops::Range<usize>,
    lines: &LineIndex,
) -> Option<Problem> {
    let written = text.get(span.clone())?.trim();
    let name = written.trim_matches(['"', '\'']);
    let line = lines.line(span.start);
    let all: Vec<&str> = text.lines().collect();
    let this = all.get(line - 1)?;
    let header = |l: &str| {
        let l = l.trim();
        l.starts_with('[') && l.ends_with(']') && !l.contains('=')
    };
    // A table declared twice: the header names it.
    if header(this) {
        let first = all[..line - 1]
            .iter()
            .position(|l| l.trim() == this.trim())?;
        return Some(Problem {
            key: this.trim().trim_matches(['[', ']']).trim().to_string(),
            line: Some(line),
            message: format!(
                "the table {} is declared twice (first on line {})",
                this.trim(),
                first + 1
            ),
        });
    }
    // The table the line is in, `node[1]` for the second `[[node]]`.
    let header_at = all[..line - 1].iter().rposition(|l| header(l));
    let table = match header_at {
        None => String::new(),
        Some(at) => {
            let h = all[at].trim();
            match h.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
                Some(array) => {
                    let index = all[..at].iter().filter(|l| l.trim() == h).count();
                    format!("{}[{index}]", array.trim())
                }
                None => h.trim_matches(['[', ']']).trim().to_string(),
            }
        }
    };
    let join = |table: &str, key: &str| match table {
        "" => key.to_string(),
        table => format!("{table}.{key}"),
    };
    // A key set twice in an inline table: `addresses = { lan = "a", lan = "b" }`.
    let column = span.start - lines.start(line);
    let before = this.get(..column)?;
    if let Some(open) = before.rfind('{')
        && !before[open..].contains('}')
    {
        let holder = before[..open].trim_end().strip_suffix('=')?.trim();
        return Some(Problem {
            key: join(&join(&table, holder), name),
            line: Some(line),
            message: "is set twice".to_string(),
        });
    }
    let from = header_at.map_or(0, |at| at + 1);
    let sets = |l: &&str| {
        let l = l.trim_start();
        [name, written].iter().any(|k| {
            l.strip_prefix(k)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
    };
    let first = all[from..line - 1].iter().position(sets);
    Some(Problem {
        key: join(&table, name),
        line: Some(line),
        message: match first {
            Some(first) => format!("is set twice (first on line {})", from + first + 1),
            None => "is set twice".to_string(),
        },
    })
}

/// One step of a key path.
#[derive(Debug, Clone)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

pub(super) fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The line of every key path in the document, for the checks of the second pass.
pub(super) fn key_lines(doc: &DeTable<'_>, lines: &LineIndex) -> HashMap<String, usize> {
    fn walk(
        table: &DeTable<'_>,
        prefix: &mut Vec<Seg>,
        lines: &LineIndex,
        out: &mut HashMap<String, usize>,
    ) {
        for (key, value) in table {
            prefix.push(Seg::Key(key.get_ref().to_string()));
            out.insert(path_string(prefix), lines.line(key.span().start));
            walk_value(value, prefix, lines, out);
            prefix.pop();
        }
    }
    fn walk_value(
        value: &Spanned<DeValue<'_>>,
        prefix: &mut Vec<Seg>,
        lines: &LineIndex,
        out: &mut HashMap<String, usize>,
    ) {
        match value.get_ref() {
            DeValue::Table(t) => walk(t, prefix, lines, out),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    prefix.push(Seg::Index(i));
                    out.insert(path_string(prefix), lines.line(item.span().start));
                    walk_value(item, prefix, lines, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = HashMap::new();
    walk(doc, &mut Vec::new(), lines, &mut out);
    out
}

/// serde's message in the words of the file: TOML's names for types, numbers as
/// ranges rather than Rust types (`u16`), what was found before what was expected.
pub(super) fn tidy_serde_message(message: &str) -> String {
    let message = message.trim();
    let mut message = if let Some(rest) = message.strip_prefix("invalid type: ") {
        format!("wrong type: found {rest}")
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        // "integer `70000`, expected u16": the found value without its type.
        match rest.split_once(", expected ") {
            Some((found, expected)) if found.starts_with("integer `") => format!(
                "out of range: found {}, expected {expected}",
                found.trim_start_matches("integer `").trim_end_matches('`')
            ),
            _ => format!("invalid value: {rest}"),
        }
    } else {
        message.replace("unknown field", "unknown key")
    };
    // The name of a raw struct means nothing to the reader of the file.
    const RAW: &str = "expected struct Raw";
    if let Some(at) = message.find(RAW) {
        let rest = &message[at + RAW.len()..];
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        message.replace_range(at..at + RAW.len() + name_len, "expected a table");
    }
    if let Some(at) = message.rfind(", expected ") {
        let expected = &message[at + ", expected ".len()..];
        if let Some(words) = expected_in_words(expected) {
            message.replace_range(at + ", expected ".len().., &words);
        }
    }
    message
}

/// What serde calls a Rust type, as the reader of a TOML file knows it.
fn expected_in_words(expected: &str) -> Option<String> {
    let number = |max: u64| Some(format!("a number from 0 to {max}"));
    match expected {
        "u8" => number(u8::MAX.into()),
        "u16" => number(u16::MAX.into()),
        "u32" => number(u32::MAX.into()),
        "u64" => number(u64::MAX),
        "a boolean" => Some("true or false".to_string()),
        "a sequence" => Some("an array".to_string()),
        "a map" => Some("a table".to_string()),
        "path string" => Some("a path (a string)".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    #[test]
    fn a_table_of_the_wrong_type_is_called_a_table() {
        let problems = parse("node = [1, 2]\n").unwrap_err();
        let node = problems.iter().find(|p| p.key == "node[0]").unwrap();
        assert_eq!(
            node.message, "wrong type: found integer `1`, expected a table",
            "{problems:#?}"
        );
    }

    #[test]
    fn serde_words_become_toml_words() {
        for (serde, ours) in [
            (
                "invalid value: integer `70000`, expected u16",
                "out of range: found 70000, expected a number from 0 to 65535",
            ),
            (
                "invalid value: integer `-1`, expected u32",
                "out of range: found -1, expected a number from 0 to 4294967295",
            ),
            (
                "invalid type: string \"x\", expected u8",
                "wrong type: found string \"x\", expected a number from 0 to 255",
            ),
            (
                "invalid type: string \"yes\", expected a boolean",
                "wrong type: found string \"yes\", expected true or false",
            ),
            (
                "invalid type: string \"a\", expected a sequence",
                "wrong type: found string \"a\", expected an array",
            ),
            (
                "invalid type: integer `5`, expected a map",
                "wrong type: found integer `5`, expected a table",
            ),
            (
                "invalid type: integer `5`, expected path string",
                "wrong type: found integer `5`, expected a path (a string)",
            ),
            (
                "invalid type: integer `5`, expected struct RawCluster",
                "wrong type: found integer `5`, expected a table",
            ),
            (
                "unknown field `mtu`, expected `name`",
                "unknown key `mtu`, expected `name`",
            ),
        ] {
            assert_eq!(super::tidy_serde_message(serde), ours);
        }
    }

    #[test]
    fn a_duplicate_key_is_named_with_its_first_line() {
        for (text, expected) in [
            (
                "[cluster]\nname = \"a\"\nport = 1\nname = \"b\"\n",
                "line 4: cluster.name: is set twice (first on line 2)",
            ),
            (
                "[cluster]\nname = \"a\"\n\"name\" = \"b\"\n",
                "line 3: cluster.name: is set twice (first on line 2)",
            ),
            (
                "top = 1\ntop = 2\n",
                "line 2: top: is set twice (first on line 1)",
            ),
            (
                "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\nname = \"c\"\n",
                "line 5: node[1].name: is set twice (first on line 4)",
            ),
            (
                "[[node]]\naddresses = { lan = \"a\", lan = \"b\" }\n",
                "line 2: node[0].addresses.lan: is set twice",
            ),
            (
                "[cluster]\nname = \"a\"\n[timing]\n[cluster]\n",
                "line 4: cluster: the table [cluster] is declared twice (first on line 1)",
            ),
        ] {
            let problems = parse(text).unwrap_err();
            let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
            assert_eq!(shown, [expected], "{text}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_placed() {
        let bytes = b"[cluster]\nname = \"w\xffb\"\n";
        let problem = super::not_utf8(bytes, 19);
        assert_eq!(
            problem.to_string(),
            "line 2: (document): byte 19 (column 10) is not UTF-8 (0xff); the file must be UTF-8 text"
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let problems = parse("[cluster]\nname = \"web\nport = 1\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
    }
}
