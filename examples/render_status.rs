//! render_status: writes the status page of the sample status,
//! `tests/fixtures/status.json` (node alpha of cluster web, active, with beta in
//! standby), to a file, as it looks a few hours after the takeover.
//!
//! Not a tool for users: `scripts/check-status-page.sh` opens its output in headless
//! Chromium to check that the page renders and to take the screenshot in the docs.
//!
//! Usage: `render_status OUT.html [--maintenance] [--metrics OUT.txt]`

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use failoverd::status::{Maintenance, Status};
use failoverd::view::html::render_page;
use failoverd::view::metrics::{Format, render_metrics};

const SAMPLE: &str = include_str!("../tests/fixtures/status.json");
/// 2026-11-22T04:30:00Z, the moment the sample's unit tests look at it too: about
/// three hours after its takeover, 28 s after its last event.
const NOW_MS: u64 = 1_795_321_800_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().filter(|a| !a.starts_with("--")) else {
        eprintln!("usage: render_status OUT.html [--maintenance] [--metrics OUT.txt]");
        return ExitCode::from(2);
    };
    let mut status: Status = match serde_json::from_str(SAMPLE) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("render_status: the sample is not a status document: {err}");
            return ExitCode::FAILURE;
        }
    };
    if args.iter().any(|a| a == "--maintenance") {
        status.maintenance = Maintenance {
            on: true,
            set_by: vec![status.node.clone()],
        };
    }
    let now = UNIX_EPOCH + Duration::from_millis(NOW_MS);
    if let Err(err) = std::fs::write(out, render_page(&status, now)) {
        eprintln!("render_status: cannot write {out}: {err}");
        return ExitCode::FAILURE;
    }
    if let Some(i) = args.iter().position(|a| a == "--metrics") {
        let Some(path) = args.get(i + 1) else {
            eprintln!("render_status: --metrics needs a file");
            return ExitCode::from(2);
        };
        if let Err(err) = std::fs::write(path, render_metrics(&status, Format::Prometheus)) {
            eprintln!("render_status: cannot write {path}: {err}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
