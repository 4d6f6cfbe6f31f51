//! How a problem in the file is reported: [`Problem`], with its dotted key and line.
//!
//! Owns the line index (byte offset to line), the line of every key path in the
//! document, key paths as strings (`node[1].addresses.lan`) and the rewording of
//! serde's messages. It decides nothing about what is a problem: the `raw` and
//! `checks` passes do.

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

    pub(super) fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
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

pub(super) fn tidy_serde_message(message: &str) -> String {
    let mut message = message
        .replace("invalid type: ", "wrong type: found ")
        .replace("unknown field", "unknown key");
    // The name of a raw struct means nothing to the reader of the file.
    const RAW: &str = "expected struct Raw";
    if let Some(at) = message.find(RAW) {
        let rest = &message[at + RAW.len()..];
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        message.replace_range(at..at + RAW.len() + name_len, "expected a table");
    }
    message.trim().to_string()
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    #[test]
    fn a_table_of_the_wrong_type_is_called_a_table() {
        let problems = parse("node = [1, 2]\n").unwrap_err();
        assert_eq!(
            problems[0].message, "wrong type: found integer `1`, expected a table",
            "{problems:#?}"
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let problems = parse("[cluster]\nname = \"web\nport = 1\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
    }
}
