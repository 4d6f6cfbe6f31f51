//! pressure: load that a busy host puts on a daemon, for the steadiness tests and the
//! benchmark's busy-host row.
//!
//! - `pressure spin --threads N --seconds S` keeps N threads busy for S seconds: a
//!   runaway job or a build. Run it under `chrt -r P` for realtime hogs.
//! - `pressure page-out --seconds S --every MS PID...` asks the kernel, every MS
//!   milliseconds for S seconds, to page out every page of each PID
//!   (process_madvise with MADV_PAGEOUT): the memory pressure of a host that is
//!   short of memory, aimed at the processes under test and at nothing else.
//!   Locked pages stay; the others must be read back in on their next use. Its
//!   line counts, for each PID, the bytes the kernel took, the ranges it refused
//!   as locked (EINVAL) and the calls that failed otherwise.
//!
//! Both end by themselves after their seconds; both print one JSON line.

use std::fs;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::libc;

#[derive(Parser)]
#[command(name = "pressure", about = "CPU and memory pressure, bounded in time")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Keep THREADS threads busy for SECONDS.
    Spin {
        #[arg(long, default_value_t = 1)]
        threads: u32,
        #[arg(long)]
        seconds: f64,
    },
    /// Page out every page of the given processes, again and again.
    PageOut {
        #[arg(long)]
        seconds: f64,
        /// Milliseconds between two rounds.
        #[arg(long, default_value_t = 10)]
        every: u64,
        #[arg(required = true)]
        pids: Vec<i32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Spin { threads, seconds } => spin(threads, limit(seconds)),
        Command::PageOut {
            seconds,
            every,
            pids,
        } => page_out(&pids, limit(seconds), Duration::from_millis(every)),
    }
}

/// At most a minute, whatever was asked: the load must stop by itself.
fn limit(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds.clamp(0.0, 60.0))
}

fn spin(threads: u32, limit: Duration) -> ExitCode {
    let end = Instant::now() + limit;
    let rounds = AtomicU64::new(0);
    thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut n: u64 = 0;
                while Instant::now() < end {
                    // Some work between clock reads, so that the loop is mostly
                    // computation, as a real hog's is.
                    for i in 0..10_000u64 {
                        n = std::hint::black_box(n.wrapping_mul(31).wrapping_add(i));
                    }
                }
                rounds.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    println!(
        "{{\"threads\":{threads},\"seconds\":{}}}",
        limit.as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn page_out(pids: &[i32], limit: Duration, every: Duration) -> ExitCode {
    let end = Instant::now() + limit;
    let mut rounds = 0u64;
    // For each PID: bytes advised, ranges refused as locked, other failures.
    let mut counts = vec![(0u64, 0u64, 0u64); pids.len()];
    let mut pidfds = Vec::new();
    for &pid in pids {
        // SAFETY: plain syscall with integer arguments.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            eprintln!(
                "pressure: pidfd_open {pid}: {}",
                std::io::Error::last_os_error()
            );
            return ExitCode::FAILURE;
        }
        pidfds.push((pid, fd as libc::c_int));
    }
    while Instant::now() < end {
        rounds += 1;
        for (&(pid, fd), (advised, locked, failed)) in pidfds.iter().zip(&mut counts) {
            let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) else {
                continue;
            };
            let ranges: Vec<libc::iovec> = maps
                .lines()
                .filter_map(|line| {
                    let (range, _) = line.split_once(' ')?;
                    let (start, stop) = range.split_once('-')?;
                    let start = usize::from_str_radix(start, 16).ok()?;
                    let stop = usize::from_str_radix(stop, 16).ok()?;
                    // The kernel's own pages are not the process's to page out.
                    let special = ["[vsyscall]", "[vvar]", "[vvar_vclock]", "[vdso]"]
                        .iter()
                        .any(|name| line.ends_with(name));
                    (!special).then_some(libc::iovec {
                        iov_base: start as *mut libc::c_void,
                        iov_len: stop - start,
                    })
                })
                .collect();
            // One range a call: the kernel stops a call at the first range it
            // refuses (a locked one, [vvar]), and the others must still be tried.
            for range in &ranges {
                // SAFETY: the iovec describes the other process's range; the kernel
                // reads only the iovec, which lives across the call.
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_process_madvise,
                        fd,
                        std::ptr::from_ref(range),
                        1usize,
                        libc::MADV_PAGEOUT,
                        0,
                    )
                };
                if n >= 0 {
                    *advised += n as u64;
                } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                    *locked += 1;
                } else {
                    *failed += 1;
                }
            }
        }
        thread::sleep(every);
    }
    let per_pid: Vec<String> = pids
        .iter()
        .zip(&counts)
        .map(|(pid, (advised, locked, failed))| {
            format!(
                "{{\"pid\":{pid},\"advised_bytes\":{advised},\"refused_locked\":{locked},\"failed\":{failed}}}"
            )
        })
        .collect();
    println!("{{\"rounds\":{rounds},\"pids\":[{}]}}", per_pid.join(","));
    ExitCode::SUCCESS
}
