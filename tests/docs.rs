//! The docs hold to the code: every configuration key in docs/configuration.md is one
//! the parser accepts, every key the parser accepts is documented there, the TOML
//! examples use only keys the parser takes (and the README's minimal configuration is
//! complete), every `failoverd ...` command line shown in a code block of the docs
//! parses with the real command line, and every link between the pages leads to a
//! file and heading that exist. No root, no network.
//!
//! The keys the parser accepts are asked of the parser itself: a document with an
//! unknown key in a table is refused with the list of keys that table takes (serde's
//! `deny_unknown_fields`), so a key added to a `Raw*` struct shows up here without a
//! list to keep.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use failoverd::config::Config;

/// A key no table takes, put into each table to make the parser list the ones it does.
const PROBE: &str = "zz_docs_probe";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// README.md and every page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    let dir = repo().join("docs");
    let mut docs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn name(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

// --- configuration keys ----------------------------------------------------------

/// The tables of the reference: for each heading such as "## `[cluster]` (required)" or
/// "## `[[check]]` (zero or more)", the keys in the first column of the table below it,
/// with the line each is documented on.
fn documented_keys(text: &str) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut tables: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            current = table_heading(line);
            if let Some(table) = &current {
                tables.entry(table.clone()).or_default();
            }
            continue;
        }
        let Some(table) = &current else { continue };
        let Some(key) = line
            .strip_prefix("| `")
            .and_then(|rest| rest.split_once("` |"))
        else {
            continue;
        };
        let key = key.0;
        if key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            let keys = tables.get_mut(table).expect("entered with its heading");
            if let Some(first) = keys.insert(key.to_string(), index + 1) {
                panic!(
                    "docs/configuration.md documents {table}.{key} twice (lines {first} and {})",
                    index + 1
                );
            }
        }
    }
    tables
}

/// `cluster` for a heading "### `[cluster]` (required)", `link` for "`[[link]]`".
fn table_heading(line: &str) -> Option<String> {
    let title = line.trim_start_matches('#').trim();
    let inner = title.strip_prefix("`[")?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.find(']')?;
    Some(inner[..end].to_string())
}

/// The keys the parser lists for the table at `path` (`""` for the top level), by
/// giving it one it does not take. `None` when that table is not one of the parser's.
fn accepted_keys(path: &str) -> Option<BTreeSet<String>> {
    // A table is written `[name]` or, for an array of tables, `[[name]]`; the parser
    // lists its keys for whichever form it takes.
    let documents = if path.is_empty() {
        vec![format!("{PROBE} = 1\n")]
    } else {
        vec![
            format!("[{path}]\n{PROBE} = 1\n"),
            format!("[[{path}]]\n{PROBE} = 1\n"),
        ]
    };
    for document in documents {
        let problems = match Config::parse(&document, Path::new("/nonexistent")) {
            Ok(_) => panic!("a document with the key {PROBE} was accepted:\n{document}"),
            Err(problems) => problems,
        };
        let Some(problem) = problems
            .iter()
            .find(|p| p.message.contains(&format!("`{PROBE}`")))
        else {
            continue;
        };
        // "unknown key `zz_docs_probe`, expected one of `name`, `key_file`, ..."
        let (_, expected) = problem.message.split_once("expected").unwrap_or_else(|| {
            panic!(
                "the parser no longer lists the keys a table takes, which this test reads: {problem}"
            )
        });
        let keys: BTreeSet<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        assert!(!keys.is_empty(), "no keys listed in: {problem}");
        return Some(keys);
    }
    None
}

#[test]
fn every_documented_configuration_key_exists_and_every_key_is_documented() {
    let path = repo().join("docs/configuration.md");
    let documented = documented_keys(&read(&path));
    assert!(
        documented.len() >= 10 && documented.values().all(|keys| !keys.is_empty()),
        "docs/configuration.md should have a table of keys under each heading such as \
         \"### `[cluster]`\"; found {documented:#?}"
    );

    let mut wrong = Vec::new();
    let top = accepted_keys("").expect("the top level lists its tables");
    for table in &top {
        if !documented.contains_key(table) {
            wrong.push(format!(
                "[{table}] is a table of the configuration, but docs/configuration.md has no \
                 heading \"`[{table}]`\" with a table of its keys"
            ));
        }
    }
    for (table, keys) in &documented {
        let top_level = table.split('.').next().unwrap_or(table);
        if !top.contains(top_level) {
            wrong.push(format!(
                "docs/configuration.md documents [{table}], which the parser does not take \
                 (it takes {top:?})"
            ));
            continue;
        }
        let Some(accepted) = accepted_keys(table) else {
            wrong.push(format!("the parser does not list the keys of [{table}]"));
            continue;
        };
        for (key, line) in keys {
            if !accepted.contains(key) {
                wrong.push(format!(
                    "docs/configuration.md:{line}: {table}.{key} is documented, but the parser \
                     does not take it (it takes {accepted:?})"
                ));
            }
        }
        for key in &accepted {
            // A key that is a table of its own is documented under its own heading.
            let nested = format!("{table}.{key}");
            if !keys.contains_key(key) && !documented.contains_key(&nested) {
                wrong.push(format!(
                    "{table}.{key} is a key the parser takes, but docs/configuration.md does \
                     not document it under \"`[{table}]`\""
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the configuration reference and the parser disagree:\n  {}",
        wrong.join("\n  ")
    );
}

/// The ```toml blocks of a page, with the line each starts on.
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match &mut current {
            Some(_) if fence => blocks.extend(current.take()),
            Some((_, block)) => {
                block.push_str(line);
                block.push('\n');
            }
            None if fence && line.trim_start() == "```toml" => {
                current = Some((index + 2, String::new()));
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn every_configuration_example_uses_keys_the_parser_takes() {
    let mut wrong = Vec::new();
    let mut blocks = 0;
    for page in pages() {
        for (line, block) in toml_blocks(&read(&page)) {
            blocks += 1;
            // Most examples are a table or two, not a whole file: what is missing
            // is fine, a key the parser does not take or a value of the wrong type
            // is not.
            let Err(problems) = Config::parse(&block, Path::new("/nonexistent")) else {
                continue;
            };
            for problem in problems {
                if problem.message.contains("unknown") || problem.message.contains("wrong type") {
                    wrong.push(format!("{}:{line}: {problem}", name(&page)));
                }
            }
        }
    }
    assert!(blocks >= 5, "too few TOML examples found: {blocks}");
    assert!(
        wrong.is_empty(),
        "configuration examples the parser refuses:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_minimal_configuration_of_the_readme_is_complete() {
    let readme = read(&repo().join("README.md"));
    let (line, block) = toml_blocks(&readme)
        .into_iter()
        .find(|(_, block)| block.contains("[cluster]"))
        .expect("the README shows a minimal configuration");
    // Only the files it names are missing here; on a node they exist.
    let files = ["cluster.key_file", "hooks.start", "hooks.stop"];
    if let Err(problems) = Config::parse(&block, Path::new("/nonexistent")) {
        let other: Vec<String> = problems
            .iter()
            .filter(|p| !files.contains(&p.key.as_str()))
            .map(|p| p.to_string())
            .collect();
        assert!(
            other.is_empty(),
            "README.md:{line}: the minimal configuration is refused:\n  {}",
            other.join("\n  ")
        );
    }
}

// --- command lines ---------------------------------------------------------------

/// A command line found in the docs, and where.
struct Example {
    at: String,
    words: Vec<String>,
}

/// Every `failoverd ...` line in a fenced code block, including `$ failoverd ...`
/// in a transcript and `ExecStart=/usr/local/sbin/failoverd ...` in a unit; the lines
/// of a usage synopsis (`[-c FILE]`) are expanded into the command lines they allow.
fn examples() -> Vec<Example> {
    let mut found = Vec::new();
    for page in pages() {
        let mut fenced = false;
        for (index, line) in read(&page).lines().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if !fenced {
                continue;
            }
            let Some(rest) = command_line(line) else {
                continue;
            };
            let at = format!("{}:{}", name(&page), index + 1);
            if rest.contains('[') {
                for words in expand_synopsis(&rest, &at) {
                    found.push(Example {
                        at: at.clone(),
                        words,
                    });
                }
            } else {
                found.push(Example {
                    at,
                    words: shell_words(&rest, line),
                });
            }
        }
    }
    found
}

/// What follows `failoverd` on a line that runs it, or `None`.
fn command_line(line: &str) -> Option<String> {
    let mut line = line.trim();
    for prefix in ["$ ", "sudo ", "ExecStart="] {
        line = line.strip_prefix(prefix).unwrap_or(line).trim_start();
    }
    let first = line.split_whitespace().next()?;
    if first != "failoverd" && !first.ends_with("/failoverd") {
        return None;
    }
    let rest = line[first.len()..].trim();
    // `failoverd` alone, `failoverd: ...` (a message) or `failoverd 0.1.0, pid 4121`
    // (the last line of `failoverd status`) is no command line.
    rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '-')
        .then(|| rest.to_string())
}

/// Splits a shell command line into words: quotes, a `#` comment, and the end of the
/// command at `&&`, `||`, `;` or `|`.
fn shell_words(text: &str, line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(q) => word.push(q),
                        None => panic!("unclosed quote in {line:?}"),
                    }
                }
            }
            '#' if !in_word => break,
            ';' | '&' | '|' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// A value for each placeholder of a usage synopsis.
fn placeholder(word: &str, at: &str) -> String {
    match word {
        "FILE" => "/etc/failoverd/failoverd.toml",
        "NAME" => "alpha",
        "LEVEL" => "debug",
        "PATH" => "/run/failoverd/failoverd.sock",
        "DIR" => "/var/lib/failoverd",
        "DURATION" => "2s",
        "CHECK" => "web",
        "PID" => "4242",
        other if other.chars().any(|c| c.is_ascii_lowercase()) => other,
        other => {
            panic!("{at}: no sample value for the placeholder {other}; add one to tests/docs.rs")
        }
    }
    .to_string()
}

/// The command lines a synopsis such as `maintenance on|off [-c FILE] [-f|--follow]`
/// allows: its required words with each alternative in turn, alone and with each
/// optional group (and each alternative of it) in turn.
fn expand_synopsis(text: &str, at: &str) -> Vec<Vec<String>> {
    let mut required: Vec<Vec<String>> = Vec::new();
    let mut optional: Vec<Vec<Vec<String>>> = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if let Some(group) = rest.strip_prefix('[') {
            let end = group
                .find(']')
                .unwrap_or_else(|| panic!("{at}: unclosed [ in {text:?}"));
            let alternatives = group[..end]
                .split('|')
                .map(|alt| {
                    alt.split_whitespace()
                        .map(|w| placeholder(w, at))
                        .collect::<Vec<_>>()
                })
                .collect();
            // `[-f|--follow]` is two spellings of one option, `[--node NAME]` one.
            optional.push(alternatives);
            rest = group[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..end];
            required.push(word.split('|').map(|w| placeholder(w, at)).collect());
            rest = rest[end..].trim_start();
        }
    }
    // Each alternative of a required word in turn, the others at their first.
    let mut bases = Vec::new();
    for (position, alternatives) in required.iter().enumerate() {
        for (choice, _) in alternatives.iter().enumerate() {
            if choice == 0 && position > 0 {
                continue;
            }
            let base: Vec<String> = required
                .iter()
                .enumerate()
                .map(|(i, alts)| alts[if i == position { choice } else { 0 }].clone())
                .collect();
            bases.push(base);
        }
    }
    let mut lines = bases.clone();
    for group in &optional {
        for alternative in group {
            let mut line = bases[0].clone();
            line.extend(alternative.iter().cloned());
            lines.push(line);
        }
    }
    lines
}

/// Runs the built binary on `words` with `FAILOVERD_PARSE_ONLY` set: it parses them
/// as always and exits 0 without acting on them, or refuses them as always.
fn parses(words: &[String]) -> Result<(), String> {
    let output = Command::new(env!("CARGO_BIN_EXE_failoverd"))
        .args(words)
        .env("FAILOVERD_PARSE_ONLY", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run failoverd");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[test]
fn every_command_line_in_the_docs_parses() {
    let examples = examples();
    // The synopsis, the install steps, the witness and `failoverd clear`, at least.
    assert!(
        examples.len() >= 20,
        "too few command lines found: {}",
        examples.len()
    );
    let mut wrong = Vec::new();
    for example in &examples {
        if let Err(output) = parses(&example.words) {
            wrong.push(format!(
                "{}: failoverd {}\n{}",
                example.at,
                example.words.join(" "),
                output.trim_end()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "command lines in the docs that do not parse:\n\n{}",
        wrong.join("\n\n")
    );
}

#[test]
fn the_parse_check_refuses_what_the_parser_refuses() {
    // Without this, a binary that ignored its arguments would pass every example.
    for words in [
        &["status", "--bogus"][..],
        &["maintenance"],
        &["maintenance", "sideways"],
        &["clear"],
        &["takeover", "--timeout", "soon"],
        &["frobnicate"],
    ] {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        assert!(
            parses(&words).is_err(),
            "failoverd {} was accepted",
            words.join(" ")
        );
    }
    let words: Vec<String> = ["status", "--json"].iter().map(|w| w.to_string()).collect();
    assert_eq!(parses(&words), Ok(()));
}

// --- links -----------------------------------------------------------------------

/// The anchors GitHub gives the headings of a page: lower case, punctuation other
/// than `-` and `_` dropped, spaces made `-`, and `-1`, `-2` after a repeat.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *count == 0 {
            slug.clone()
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// The targets of the Markdown links of a page, outside code blocks, with their lines.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut links = Vec::new();
    let mut fenced = false;
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            links.push((index + 1, rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    links
}

/// Pages that others write; links to them are fine before they exist.
const COMING: &[&str] = &[
    "docs/migrating.md",
    "docs/steadiness.md",
    "docs/packaging.md",
];

#[test]
fn every_link_between_the_pages_leads_somewhere() {
    let mut wrong = Vec::new();
    for page in pages() {
        let text = read(&page);
        let dir = page.parent().expect("a page is in a directory");
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let dest = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            let dest_name = name(&normalize(&dest));
            if !dest.exists() {
                if !COMING.contains(&dest_name.as_str()) {
                    wrong.push(format!("{}:{line}: {target}: no such file", name(&page)));
                }
                continue;
            }
            if !anchor.is_empty()
                && dest.extension().is_some_and(|e| e == "md")
                && !anchors(&read(&dest)).contains(anchor)
            {
                wrong.push(format!(
                    "{}:{line}: {target}: no heading #{anchor} in {dest_name}",
                    name(&page)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "broken links:\n  {}", wrong.join("\n  "));
}

/// `a/docs/../b` as `a/b`, without asking the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
