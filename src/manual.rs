//! The manual page failoverd.toml(5), made from the configuration reference.
//!
//! The reference is Markdown, written for reading on the web; the page is roff, for
//! `man`. The conversion knows only what the reference uses: headings, paragraphs,
//! lists, tables, code blocks and inline code, bold text and links (their text is
//! kept, their target dropped). The pages of the commands come from their clap
//! definitions instead (`failoverd generate-files`, in `main.rs`).

use std::fmt::Write;

/// The heading whose section is the reference, in a page of its own or in a longer
/// one.
pub const REFERENCE_HEADING: &str = "Configuration reference";

/// Why the reference could not be made into a page.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    /// No heading of any level reads [`REFERENCE_HEADING`].
    #[error("no heading \"{REFERENCE_HEADING}\" in the Markdown")]
    NoReference,
    /// A code block opened with ``` is never closed.
    #[error("line {line}: code block not closed")]
    OpenCodeBlock { line: usize },
}

/// failoverd.toml(5) in roff, from `markdown`, a page that holds the configuration
/// reference under a heading "Configuration reference" of any level. `version`
/// goes into the page's footer.
pub fn configuration_page(markdown: &str, version: &str) -> Result<String, ManualError> {
    let (level, lines) = reference_section(markdown).ok_or(ManualError::NoReference)?;
    let mut page = String::new();
    page.push_str(&format!(
        ".TH failoverd.toml 5 \"\" \"failoverd {}\" \"File Formats\"\n",
        escape(version)
    ));
    page.push_str(".SH NAME\nfailoverd.toml \\- configuration file of failoverd\n");
    page.push_str(".SH SYNOPSIS\n/etc/failoverd/failoverd.toml\n");
    page.push_str(".SH DESCRIPTION\n");
    convert(&lines, level, &mut page)?;
    page.push_str(
        ".SH FILES\n\
         .TP\n\
         /etc/failoverd/failoverd.toml\n\
         Where the daemon and the client commands look without \\fB\\-\\-config\\fP.\n\
         .TP\n\
         /usr/share/doc/failoverd/examples/failoverd.toml\n\
         A complete, commented example, as the Debian package installs it.\n\
         .SH \"SEE ALSO\"\n\
         \\fBfailoverd\\fP(8), \\fBfailoverd\\-check\\fP(8), \\fBfailoverd\\-run\\fP(8)\n",
    );
    Ok(page)
}

/// The level of the reference's heading and the numbered lines under it, up to the
/// next heading of the same level or higher.
fn reference_section(markdown: &str) -> Option<(usize, Vec<(usize, &str)>)> {
    let mut lines = markdown.lines().enumerate().map(|(i, line)| (i + 1, line));
    let mut fenced = false;
    let level = loop {
        let (_, line) = lines.next()?;
        if line.starts_with("```") {
            fenced = !fenced;
        }
        match heading(line) {
            Some((level, text)) if !fenced && text == REFERENCE_HEADING => break level,
            _ => {}
        }
    };
    let mut section = Vec::new();
    for (number, line) in lines {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && heading(line).is_some_and(|(other, _)| other <= level) {
            break;
        }
        section.push((number, line));
    }
    Some((level, section))
}

/// `## Text` as (2, "Text").
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    let text = line[level..].strip_prefix(' ')?;
    (1..=6).contains(&level).then_some((level, text.trim()))
}

/// The blocks of the section into `page`: headings one level below the
/// reference's become sections, deeper ones subsections.
fn convert(lines: &[(usize, &str)], level: usize, page: &mut String) -> Result<(), ManualError> {
    let mut i = 0;
    while i < lines.len() {
        let (number, line) = lines[i];
        if line.trim().is_empty() {
            i += 1;
        } else if line.starts_with("```") {
            let end = lines[i + 1..]
                .iter()
                .position(|(_, line)| line.starts_with("```"))
                .ok_or(ManualError::OpenCodeBlock { line: number })?;
            code_block(&lines[i + 1..i + 1 + end], page);
            i += end + 2;
        } else if let Some((depth, text)) = heading(line) {
            let macro_name = if depth <= level + 1 { "SH" } else { "SS" };
            let _ = writeln!(page, ".{macro_name}\n{}", text_line(&inline(text)));
            i += 1;
        } else if line.starts_with('|') {
            let rows = lines[i..]
                .iter()
                .take_while(|(_, line)| line.starts_with('|'))
                .count();
            table(&lines[i..i + rows], page);
            i += rows;
        } else if let Some(item) = list_item(line) {
            let rest = block_end(&lines[i + 1..]);
            let mut text = item.to_string();
            for (_, more) in &lines[i + 1..i + 1 + rest] {
                text.push(' ');
                text.push_str(more.trim());
            }
            let _ = writeln!(page, ".IP \\(bu 2\n{}", text_line(&inline(&text)));
            i += 1 + rest;
        } else {
            let rest = block_end(&lines[i..]);
            let text: Vec<&str> = lines[i..i + rest].iter().map(|(_, l)| l.trim()).collect();
            let _ = writeln!(page, ".PP\n{}", text_line(&inline(&text.join(" "))));
            i += rest;
        }
    }
    Ok(())
}

/// How many of `lines` continue the paragraph or list item before them.
fn block_end(lines: &[(usize, &str)]) -> usize {
    lines
        .iter()
        .position(|(_, line)| {
            line.trim().is_empty()
                || line.starts_with("```")
                || line.starts_with('|')
                || heading(line).is_some()
                || list_item(line).is_some()
        })
        .unwrap_or(lines.len())
}

fn list_item(line: &str) -> Option<&str> {
    line.strip_prefix("- ").or_else(|| line.strip_prefix("* "))
}

/// A code block, indented and unfilled, its characters as written.
fn code_block(lines: &[(usize, &str)], page: &mut String) {
    page.push_str(".PP\n.RS 4\n.nf\n");
    for (_, line) in lines {
        page.push_str(&text_line(&escape_code(line)));
        page.push('\n');
    }
    page.push_str(".fi\n.RE\n");
}

/// A table as a list: each row tagged with its first cell, then the middle cells
/// with their column names, then the last cell as the row's text. Columns of
/// prose do not fit side by side in 80 characters.
fn table(rows: &[(usize, &str)], page: &mut String) {
    let mut rows = rows.iter().map(|(_, row)| cells(row));
    let Some(header) = rows.next() else {
        return;
    };
    for row in rows {
        // The line of dashes under the header.
        if row
            .iter()
            .all(|cell| cell.chars().all(|c| matches!(c, '-' | ':')))
        {
            continue;
        }
        let Some((first, rest)) = row.split_first() else {
            continue;
        };
        let _ = writeln!(page, ".TP\n{}", text_line(&inline(first)));
        if let Some((last, middle)) = rest.split_last() {
            let described: Vec<String> = middle
                .iter()
                .zip(header.iter().skip(1))
                .map(|(cell, name)| format!("{name}: {cell}."))
                .collect();
            if !described.is_empty() {
                let _ = writeln!(page, "{}\n.br", text_line(&inline(&described.join(" "))));
            }
            let _ = writeln!(page, "{}", text_line(&inline(last)));
        }
    }
}

/// The cells of `| a | b |`, split at the bars outside inline code.
fn cells(row: &str) -> Vec<String> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = row.strip_suffix('|').unwrap_or(row);
    let mut cells = vec![String::new()];
    let mut code = false;
    for c in row.chars() {
        match c {
            '`' => code = !code,
            '|' if !code => {
                cells.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(cell) = cells.last_mut() {
            cell.push(c);
        }
    }
    cells.iter().map(|cell| cell.trim().to_string()).collect()
}

/// Markdown's inline marks in roff: `code` and **bold** in bold, links as their
/// text. Everything else escaped.
fn inline(text: &str) -> String {
    inline_in(text, false)
}

/// [`inline`] within text that is already `bold` or not: roff's `\fP` goes back one
/// font only, so bold is not opened twice.
fn inline_in(text: &str, bold: bool) -> String {
    let (open, close) = if bold { ("", "") } else { ("\\fB", "\\fP") };
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix('`')
            && let Some(end) = after.find('`')
        {
            // \% keeps roff from hyphenating a key or a path at the end of a line.
            out.push_str(&format!("{open}\\%{}{close}", escape_code(&after[..end])));
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix("**")
            && let Some(end) = after.find("**")
        {
            out.push_str(&format!("{open}{}{close}", inline_in(&after[..end], true)));
            rest = &after[end + 2..];
        } else if let Some((label, after)) = link(rest) {
            out.push_str(&inline_in(label, bold));
            rest = after;
        } else {
            out.push_str(&escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// `[label](target)` at the start of `text`: the label and what follows the link.
fn link(text: &str) -> Option<(&str, &str)> {
    let after = text.strip_prefix('[')?;
    // The label may hold brackets of its own, as in [`[[check]]`](#check).
    let mut depth = 1;
    let mut close = None;
    let mut code = false;
    for (i, c) in after.char_indices() {
        match c {
            '`' => code = !code,
            '[' if !code => depth += 1,
            ']' if !code => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let target = after[close + 1..].strip_prefix('(')?;
    let end = target.find(')')?;
    Some((&after[..close], &target[end + 1..]))
}

/// Text escaped for roff: backslashes, and every character outside ASCII by its
/// code point, which groff and mandoc read whatever the page's encoding.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            c if c.is_ascii() => out.push(c),
            c => {
                let _ = write!(out, "\\[u{:04X}]", u32::from(c));
            }
        }
    }
    out
}

/// Like [`escape`], and with the ASCII characters that roff would otherwise print
/// as typographic ones (hyphen, quotes) kept as typed, so that code can be copied.
fn escape_code(text: &str) -> String {
    escape(text)
        .replace('-', "\\-")
        .replace('\'', "\\(aq")
        .replace('`', "\\(ga")
}

/// A line of text that roff does not read as a request.
fn text_line(text: &str) -> String {
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else if text.is_empty() {
        "\\&".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(markdown: &str) -> String {
        configuration_page(markdown, "1.2.3").expect("a reference")
    }

    /// The part of the page made from the Markdown, between the fixed sections.
    fn body(markdown: &str) -> String {
        let page = page(markdown);
        let start = page.find(".SH DESCRIPTION\n").expect("a description") + 16;
        let end = page.find(".SH FILES\n").expect("a files section");
        page[start..end].to_string()
    }

    #[test]
    fn the_section_under_the_heading_is_taken_at_any_level() {
        let readme = "# failoverd\n\nIntro.\n\n## Configuration reference\n\nOne file.\n\n\
                      ### `[cluster]`\n\nKeys.\n\n## How the election works\n\nNot this.\n";
        assert_eq!(
            body(readme),
            ".PP\nOne file.\n.SH\n\\fB\\%[cluster]\\fP\n.PP\nKeys.\n"
        );
        let page_of_its_own = "# Configuration reference\n\nOne file.\n\n## `[cluster]`\n\nKeys.\n";
        assert_eq!(body(page_of_its_own), body(readme));
    }

    #[test]
    fn without_the_heading_there_is_no_page() {
        assert!(matches!(
            configuration_page("# Something else\n\ntext\n", "1"),
            Err(ManualError::NoReference)
        ));
        // A heading inside a code block is not one.
        assert!(matches!(
            configuration_page("```\n# Configuration reference\n```\n", "1"),
            Err(ManualError::NoReference)
        ));
    }

    #[test]
    fn the_title_carries_the_version() {
        assert!(page("# Configuration reference\n").starts_with(
            ".TH failoverd.toml 5 \"\" \"failoverd 1.2.3\" \"File Formats\"\n.SH NAME\n"
        ));
    }

    #[test]
    fn deeper_headings_become_subsections() {
        let markdown = "# Configuration reference\n## A\n### B\n";
        assert_eq!(body(markdown), ".SH\nA\n.SS\nB\n");
    }

    #[test]
    fn a_paragraph_is_one_line_and_links_keep_their_text() {
        let markdown = "# Configuration reference\n\nSee [Troubleshooting\nfile modes](t.md#modes) \
                        and [`[[check]]`](#check-zero-or-more).\n";
        assert_eq!(
            body(markdown),
            ".PP\nSee Troubleshooting file modes and \\fB\\%[[check]]\\fP.\n"
        );
    }

    #[test]
    fn a_table_becomes_a_tagged_list() {
        let markdown = "# Configuration reference\n\n\
                        | Key | Type | Default | Meaning |\n\
                        |---|---|---|---|\n\
                        | `port` | integer | `694` | UDP port; not 0. |\n\
                        | `a` | `\"x\" | \"y\"` | none | Bars in code stay. |\n";
        assert_eq!(
            body(markdown),
            ".TP\n\\fB\\%port\\fP\nType: integer. Default: \\fB\\%694\\fP.\n.br\nUDP port; not 0.\n\
             .TP\n\\fB\\%a\\fP\nType: \\fB\\%\"x\" | \"y\"\\fP. Default: none.\n.br\nBars in code stay.\n"
        );
        let two_columns = "# Configuration reference\n| Heartbeat | failoverd |\n|---|---|\n\
                           | `keepalive` | `timing.interval` |\n";
        assert_eq!(
            body(two_columns),
            ".TP\n\\fB\\%keepalive\\fP\n\\fB\\%timing.interval\\fP\n"
        );
    }

    #[test]
    fn code_is_kept_as_typed() {
        let markdown =
            "# Configuration reference\n\n```toml\n[[node]]\n\n.name = 'it-s' # \\ `x`\n```\n";
        assert_eq!(
            body(markdown),
            ".PP\n.RS 4\n.nf\n[[node]]\n\\&\n\\&.name = \\(aqit\\-s\\(aq # \\e \\(gax\\(ga\n.fi\n.RE\n"
        );
        assert!(matches!(
            configuration_page("# Configuration reference\n```\nopen\n", "1"),
            Err(ManualError::OpenCodeBlock { line: 2 })
        ));
    }

    #[test]
    fn text_is_escaped_for_roff() {
        let markdown = "# Configuration reference\n\n.starts with a dot, 2 × `interval`, \\n, **bold `code`**\n";
        assert_eq!(
            body(markdown),
            ".PP\n\\&.starts with a dot, 2 \\[u00D7] \\fB\\%interval\\fP, \\en, \\fBbold \\%code\\fP\n"
        );
    }

    #[test]
    fn list_items_are_bulleted() {
        let markdown = "# Configuration reference\n\n- one\n  more\n- two\n\nAfter.\n";
        assert_eq!(
            body(markdown),
            ".IP \\(bu 2\none more\n.IP \\(bu 2\ntwo\n.PP\nAfter.\n"
        );
    }
}
