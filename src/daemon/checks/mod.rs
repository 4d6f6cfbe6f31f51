//! Runs the node's checks (`[[check]]` and the `[health]` shorthand, in
//! [`Config::checks_for`] order) on a thread of their own, and hands each run back to
//! the loop as a [`Report`] with the check's index, the numbering the machine uses.
//!
//! Why a thread: the loop's thread sends the heartbeats. A check may hang (a
//! service that accepts and never answers), may be many (a thousand of them), may
//! spawn processes; none of that may delay a heartbeat. So the checks run on the
//! `failoverd-checks` thread, in a tokio runtime of its own, each on its own
//! schedule, and their results come back over a channel that the loop reads. The
//! loop only ever does the cheap part: feed the machine.
//!
//! Only a run that may change what the machine acts on wakes the loop: a failure,
//! or a pass among the first `rise` after one (or after the check started). A pass
//! that follows `rise` passes in a row leaves the check's standing as it was (it
//! shows in the status, nothing more), so it waits in the channel for the loop's
//! next turn, at most its next deadline away, unless `WAITING` runs wait already;
//! that turn takes every run waiting, in order, before what woke it. At a short interval a wake-up of its own for each such run cost the
//! loop a whole turn.
//!
//! Owns each check's schedule (its interval, the first run at once or after a small
//! jitter, its timeout) and which checks run: those `on = "both"` always, those
//! `on = "active"` only between the machine's `ActiveChecks(true)` and
//! `ActiveChecks(false)`. What a run means is the machine's call. The runners for
//! each kind are in `exec.rs`, `tcp.rs` and `http.rs`; pings use the gateway
//! prober's [`Pinger`], link states the [`Host`].

mod alarm;
mod exec;
mod http;
mod tcp;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::gateway::Pinger;
use super::host::Host;
use crate::config::{Check, Probe, RunAs, Scope};
use crate::duration::format_duration;
use crate::machine::Role;
use crate::machine::health::Run;

/// The longest detail a run reports, in bytes: it shows in the status, on the page
/// and as a metric label.
pub const MAX_DETAIL: usize = 200;
/// The groups of checks (see [`TOGETHER`]) of one interval start spread over at most
/// this much (or their interval, if shorter), so that many checks do not all run,
/// and report, at once.
const MAX_JITTER: Duration = Duration::from_millis(250);
/// Checks that start together, in the order of the file: the thread wakes once for
/// all of them (at the defaults, the gateway's ping and the interface's link check),
/// and a few runs at once are nothing to spread.
const TOGETHER: usize = 8;
/// A run that starts this much after it was due counts as held up by the one before
/// it, and the schedule moves on from it: tokio's `Interval` draws the line there too,
/// and a wake-up a few milliseconds late on a busy host is not a held-up run.
const LATE: Duration = Duration::from_millis(5);
/// Results not yet taken by the loop; a full channel holds the checks back, never
/// the loop.
const RESULTS: usize = 256;
/// Runs that may wait for the loop's next turn without ringing: past this many the
/// next run rings whatever it is, so that routine runs never fill the channel in
/// front of a failure, and the loop takes them all within one turn's budget
/// (tokio's, 128 polls).
const WAITING: usize = 64;
/// How long the thread waits, at exit, for name lookups still running; they are
/// left behind after that.
const SHUTDOWN: Duration = Duration::from_millis(100);
/// Threads for name lookups (`http` checks with a host name); a lookup that hangs
/// holds one until the resolver gives up, and the checks behind it time out.
const LOOKUP_THREADS: usize = 4;

/// What every run of a check may want to know about this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub node: String,
    pub cluster: String,
    /// Who `exec` checks run as (`[hooks] user`).
    pub run_as: Option<RunAs>,
}

/// One finished run of check `index`.
#[derive(Debug)]
pub struct Report {
    pub index: usize,
    pub run: Run,
}

/// What must still happen after a run was reported (an `exec` check's process group
/// being killed after a timeout); it runs on its own, beside the next runs.
pub type Cleanup = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The loop's handle on the check thread. Dropping it stops every check and joins
/// the thread.
pub struct Checks {
    orders: Option<mpsc::UnboundedSender<Order>>,
    /// Runs of the current set of checks; replaced with the set. The loop never
    /// waits on it, so a run sent to it wakes nobody.
    results: mpsc::Receiver<Report>,
    /// Rung after a run the machine must hear of at once (see the module's
    /// documentation); replaced with the set.
    news: mpsc::Receiver<()>,
    /// Rings `news` from this side.
    ring: mpsc::Sender<()>,
    thread: Option<thread::JoinHandle<()>>,
}

/// What the loop asks of the check thread.
enum Order {
    /// Stop every check and run these, reporting on `results`.
    Run {
        checks: Vec<Check>,
        context: Arc<Context>,
        results: mpsc::Sender<Report>,
        news: mpsc::Sender<()>,
    },
    /// Run the active-only checks, or stop them.
    Active(bool),
}

impl Checks {
    /// Starts the check thread, with no checks yet. `host` answers link checks;
    /// `role` is this node's role, which `exec` checks get in `FAILOVERD_ROLE`.
    pub fn start<H: Host>(host: H, role: watch::Receiver<Role>) -> io::Result<Checks> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(LOOKUP_THREADS)
            .thread_name("failoverd-lookup")
            .build()?;
        let (orders, received) = mpsc::unbounded_channel();
        let thread = thread::Builder::new()
            .name("failoverd-checks".to_string())
            .spawn(move || {
                // Not a realtime helper: checks may be many and heavy, and what
                // they cost must never be taken from the host's own work. Their
                // results reach the loop through a queue that never blocks it.
                // Link checks ask netlink once a second each: on a connection of
                // this thread's, so that neither the request nor the dump in
                // answer passes through the heartbeat loop's thread.
                runtime.block_on(async move {
                    let host = host.served_here().await;
                    serve(host, role, received).await;
                });
                runtime.shutdown_timeout(SHUTDOWN);
            })?;
        let (_, results) = mpsc::channel(1);
        let (ring, news) = mpsc::channel(1);
        Ok(Checks {
            orders: Some(orders),
            results,
            news,
            ring,
            thread: Some(thread),
        })
    }

    /// Stops the running checks and starts `checks`. Runs of the old ones can no
    /// longer arrive: their channel is gone with them, so a result never reaches the
    /// machine under an index that now means another check.
    pub fn run(&mut self, checks: Vec<Check>, context: Context) {
        let (tx, rx) = mpsc::channel(RESULTS);
        // One ring waiting is enough: the loop then takes every run there is.
        let (news_tx, news_rx) = mpsc::channel(1);
        self.results = rx;
        self.news = news_rx;
        self.ring = news_tx.clone();
        self.order(Order::Run {
            checks,
            context: Arc::new(context),
            results: tx,
            news: news_tx,
        });
    }

    /// Runs the active-only checks from now on, or stops them.
    pub fn set_active(&self, on: bool) {
        self.order(Order::Active(on));
    }

    /// The next run of the current checks, waiting for it. Cancel-safe.
    #[cfg(test)]
    pub async fn recv(&mut self) -> Option<Report> {
        self.results.recv().await
    }

    /// Gives `each` every run already there, in order. It never waits, nor blocks
    /// the thread: tokio's `try_recv` parks it while a send is halfway through,
    /// where a poll answers at once. Polled with a waker that does nothing, so that
    /// runs sent later wake nobody; when the task's budget for this wake-up runs out
    /// first, it rings for the rest, so the loop comes back for them at once.
    pub fn take(&mut self, mut each: impl FnMut(Report)) {
        // Most turns find nothing: asked without a poll, which would register the
        // waker every time.
        if self.results.is_empty() {
            return;
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        while let std::task::Poll::Ready(Some(report)) = self.results.poll_recv(&mut cx) {
            each(report);
        }
        if !tokio::task::coop::has_budget_remaining() {
            let _ = self.ring.try_send(());
        }
    }

    /// Ready when a run the machine must hear of at once has been sent since the
    /// last time; else `cx` is woken when one is. A new set of checks rings on a new
    /// channel, which holds no waker until it is polled.
    pub fn poll_news(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<()>> {
        self.news.poll_recv(cx)
    }

    fn order(&self, order: Order) {
        let sent = self.orders.as_ref().is_some_and(|o| o.send(order).is_ok());
        if !sent {
            tracing::error!("the check thread stopped: checks no longer run");
        }
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        // Closing the orders ends the thread's loop; its runtime then drops every
        // check, and a check's process group with it.
        self.orders = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The check thread's loop: carries out the orders until the loop's handle is gone.
async fn serve<H: Host>(
    host: H,
    role: watch::Receiver<Role>,
    mut orders: mpsc::UnboundedReceiver<Order>,
) {
    let alarms = alarm::Alarms::default();
    let clock = tokio::spawn(alarms.clone().run());
    let here = Here { host, role, alarms };
    let mut active = false;
    let mut current: Option<Set> = None;
    let mut both = JoinSet::new();
    let mut active_only = JoinSet::new();
    while let Some(order) = orders.recv().await {
        match order {
            Order::Run {
                checks,
                context,
                results,
                news,
            } => {
                // Dropping a JoinSet aborts its tasks.
                both = JoinSet::new();
                active_only = JoinSet::new();
                let set = Set {
                    checks,
                    context,
                    results,
                    news,
                };
                set.spawn(Scope::Both, &mut both, &here);
                if active {
                    set.spawn(Scope::Active, &mut active_only, &here);
                }
                current = Some(set);
            }
            Order::Active(on) if on == active => {}
            Order::Active(on) => {
                active = on;
                active_only = JoinSet::new();
                if let (true, Some(set)) = (on, &current) {
                    set.spawn(Scope::Active, &mut active_only, &here);
                }
            }
        }
    }
    drop((both, active_only));
    clock.abort();
}

/// What the check thread gives every check's schedule.
struct Here<H> {
    host: H,
    role: watch::Receiver<Role>,
    alarms: alarm::Alarms,
}

/// The checks of one configuration, and where their runs go.
struct Set {
    checks: Vec<Check>,
    context: Arc<Context>,
    results: mpsc::Sender<Report>,
    news: mpsc::Sender<()>,
}

impl Set {
    /// Starts a task per check of `scope`.
    fn spawn<H: Host>(&self, scope: Scope, tasks: &mut JoinSet<()>, here: &Here<H>) {
        for (index, check) in self.checks.iter().enumerate() {
            if check.on != scope {
                continue;
            }
            let runner = Runner::new(check, here.host.clone(), Arc::clone(&self.context));
            tasks.spawn(schedule(
                index,
                runner,
                Pace {
                    interval: check.interval,
                    delay: jitter(index, check.interval),
                    rise: check.rise,
                },
                (here.role.clone(), here.alarms.clone()),
                (self.results.clone(), self.news.clone()),
            ));
        }
    }
}

/// How long check `index` waits before its first run: checks start in groups of
/// [`TOGETHER`], the first group at once and the others spread over at most
/// [`MAX_JITTER`] (or the interval), by the golden ratio so that any number of
/// groups spread evenly.
fn jitter(index: usize, interval: Duration) -> Duration {
    let group = index / TOGETHER;
    let fraction = (group as f64 * 0.618_033_988_75).fract();
    interval.min(MAX_JITTER).mul_f64(fraction)
}

/// When a check runs: every `interval` after a first `delay`; and how many passes
/// in a row end a failure.
struct Pace {
    interval: Duration,
    delay: Duration,
    rise: u32,
}

/// Runs a check every `interval` (from the start of one run to the start of the
/// next; a run that overruns delays the next rather than overlapping it) and sends
/// each run, ringing `news` after those the machine must hear of at once (see the
/// module's documentation), until the receiver is gone or the task is aborted.
async fn schedule<H: Host>(
    index: usize,
    runner: Runner<H>,
    pace: Pace,
    (role, alarms): (watch::Receiver<Role>, alarm::Alarms),
    (results, news): (mpsc::Sender<Report>, mpsc::Sender<()>),
) {
    let mut next = std::time::Instant::now() + pace.delay;
    let mut passes: u32 = 0;
    loop {
        tokio::select! {
            () = results.closed() => return,
            () = alarms.until(next) => {}
        }
        next = next_run(next, std::time::Instant::now(), pace.interval);
        let role = *role.borrow();
        let (run, cleanup) = runner.run(role).await;
        // Killing a timed-out program's group may take the whole grace (a program
        // that ignores SIGTERM, an orphan not reaped yet); the next run must not wait
        // for it, or `fall` failures would take `fall` graces to count.
        if let Some(cleanup) = cleanup {
            tokio::spawn(cleanup);
        }
        passes = if run.passed {
            passes.saturating_add(1)
        } else {
            0
        };
        let report = Report { index, run };
        let sent = match results.try_reserve() {
            Ok(permit) => {
                permit.send(report);
                Ok(())
            }
            // Full of runs the loop was not rung for (it rings here, see below, long
            // before that): have it take them, then wait for the room.
            Err(mpsc::error::TrySendError::Full(())) => {
                let _ = news.try_send(());
                results.send(report).await.map_err(drop)
            }
            Err(mpsc::error::TrySendError::Closed(())) => Err(()),
        };
        if sent.is_err() {
            return;
        }
        if is_news(passes, pace.rise) || results.capacity() <= RESULTS - WAITING {
            // Full means a ring is already waiting, and the loop takes this run
            // with the others when it answers that one. (The ring is sent after the
            // run, with the channel's own ordering between them; should the loop
            // still find the run missing when it answers, the run waits one turn.)
            let _ = news.try_send(());
        }
    }
}

/// When the run after the one due at `due` and started at `now` is due: an
/// interval later, or, for a run that started late because the one before it
/// overran, an interval after it started, rather than at once to catch up.
fn next_run(
    due: std::time::Instant,
    now: std::time::Instant,
    interval: Duration,
) -> std::time::Instant {
    if now > due + LATE {
        now + interval
    } else {
        due + interval
    }
}

/// Whether a run, the `passes`-th pass in a row (0 for a failure), may change what
/// the machine acts on for a check that needs `rise` passes to end a failure. The
/// first passes are news even when nothing failed before: the machine may hold a
/// failure this thread never saw (a check carried over a reload by its name).
fn is_news(passes: u32, rise: u32) -> bool {
    passes <= rise.max(1)
}

/// One check's runner, by kind.
enum Runner<H> {
    Exec(exec::Exec, Arc<Context>),
    Tcp {
        address: std::net::SocketAddr,
        timeout: Duration,
    },
    Http(http::Http),
    Ping {
        pinger: Pinger,
        target: std::net::IpAddr,
        timeout: Duration,
    },
    Link {
        host: H,
        interface: String,
        timeout: Duration,
    },
}

impl<H: Host> Runner<H> {
    fn new(check: &Check, host: H, context: Arc<Context>) -> Runner<H> {
        let timeout = check.timeout;
        match &check.probe {
            Probe::Exec { command } => {
                let (program, args) = command.split_first().map_or_else(
                    || (String::new(), Vec::new()),
                    |(program, args)| (program.clone(), args.to_vec()),
                );
                let exec = exec::Exec {
                    name: check.name.clone(),
                    program: program.into(),
                    args,
                    timeout,
                };
                Runner::Exec(exec, context)
            }
            Probe::Tcp { address } => Runner::Tcp {
                address: *address,
                timeout,
            },
            Probe::Http { url, status, body } => Runner::Http(http::Http {
                url: url.clone(),
                status: status.clone(),
                body: body.clone(),
                timeout,
            }),
            Probe::Ping { target } => Runner::Ping {
                pinger: Pinger::new(),
                target: *target,
                timeout,
            },
            Probe::Link { interface } => Runner::Link {
                host,
                interface: interface.clone(),
                timeout,
            },
        }
    }

    async fn run(&self, role: Role) -> (Run, Option<Cleanup>) {
        let run = match self {
            Runner::Exec(exec, context) => return exec.run(context, role).await,
            Runner::Tcp { address, timeout } => tcp::run(*address, *timeout).await,
            Runner::Http(http) => http.run().await,
            Runner::Ping {
                pinger,
                target,
                timeout,
            } => match pinger.ping(*target, *timeout).await {
                Ok(rtt) => Run {
                    passed: true,
                    took: rtt,
                    detail: String::new(),
                },
                Err(err) => Run {
                    passed: false,
                    took: *timeout,
                    detail: bounded_line(err.to_string().as_bytes()),
                },
            },
            Runner::Link {
                host,
                interface,
                timeout,
            } => link(host, interface, *timeout).await,
        };
        (run, None)
    }
}

/// Whether `interface` is up and running; a missing one counts as down.
async fn link<H: Host>(host: &H, interface: &str, limit: Duration) -> Run {
    let started = Instant::now();
    let (passed, detail) = match tokio::time::timeout(limit, host.link(interface)).await {
        Ok(Ok(info)) if info.up => (true, String::new()),
        Ok(Ok(_)) => (false, "down".to_string()),
        Ok(Err(err)) => (false, bounded_line(err.to_string().as_bytes())),
        Err(_) => (false, format!("timed out after {}", format_duration(limit))),
    };
    Run {
        passed,
        took: started.elapsed(),
        detail,
    }
}

/// `bytes` as one short line of text for a run's detail: invalid UTF-8 replaced,
/// control characters (tabs, escapes, line breaks) as spaces, runs of spaces as
/// one, at most [`MAX_DETAIL`] bytes (cut at a character, marked with `…`).
pub fn bounded_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut line = String::with_capacity(text.len().min(MAX_DETAIL));
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        if line.len() > MAX_DETAIL {
            break;
        }
    }
    if line.len() > MAX_DETAIL {
        const MORE: char = '…';
        let mut cut = MAX_DETAIL - MORE.len_utf8();
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push(MORE);
    }
    line
}

#[cfg(test)]
mod tests;
