//! The heartbeat thread's standing with the kernel: a realtime scheduling policy, so
//! that a host busy with other work cannot hold a heartbeat back for longer than the
//! daemon's own work takes, and memory locked as it is touched, so that a host short
//! of memory cannot page the heartbeat path out and stall it on a disk read.
//!
//! Both are asked for on the thread that runs the loop, which reads the links (the
//! main thread), after the other threads have started, and again on a reload. The
//! threads the loop waits on (they enlist, see [`helper_started`]) run one step
//! below it; every policy carries SCHED_RESET_ON_FORK, so hook processes, the
//! processes checks run and any thread not enlisted (the checks', whose cost must
//! never be taken from the host's own work, and the status page's) run at normal
//! priority. What the kernel refuses is logged and shown
//! in the status with the reason and the fix; it never stops the daemon, which works
//! at normal priority too, only less steadily on a starved host.

use std::io;
use std::sync::{Mutex, PoisonError, TryLockError, mpsc};

use tracing::{debug, info, warn};

use super::resident::{self, ReleaseError, Released};
use super::worker::Worker;
use crate::config::Scheduling;
use crate::status::SchedulingStatus;

/// What was asked of the kernel and what it granted.
#[derive(Default)]
pub struct Standing {
    /// The settings last applied; `None` before the first time.
    applied: Option<Scheduling>,
    status: SchedulingStatus,
    /// The thread that releases start-up's pages, and its answers; started with
    /// the first `apply`.
    releaser: Option<(Worker<()>, Answers)>,
    /// A change of the memory lock that met a release under way, made at the next
    /// status chore.
    pending_lock: Option<bool>,
    /// The changes of the memory lock made so far: an answer from a release that
    /// ran before the last one says nothing of the memory now.
    lock_changes: u64,
}

/// What the releasing thread found, each with the number of changes of the memory
/// lock made before it ran.
type Answers = mpsc::Receiver<(u64, Released)>;

/// The memory lock as the last mlockall or munlockall left it.
struct MemoryLock {
    /// Whether mlockall is in effect: what a release must work around, even when
    /// the status says the memory is partly unlocked after a range was not locked
    /// again.
    locked: bool,
    changes: u64,
}

/// Held for the whole of a release and of a change of the lock, which keeps the
/// two apart: a munlockall in the middle of a release, which unlocks and locks
/// again range by range, would leave the ranges after it locked, and a release
/// told the memory was locked when it no longer is would lock them too.
static MEMORY: Mutex<MemoryLock> = Mutex::new(MemoryLock {
    locked: false,
    changes: 0,
});

impl Standing {
    /// Applies `wanted` to the calling thread and the process. A reload that leaves
    /// `[scheduling]` as it was asks nothing and logs nothing.
    pub fn apply(&mut self, wanted: &Scheduling) {
        let was = self.applied.replace(wanted.clone());
        if was.is_none() {
            self.start_releaser();
        }
        if was
            .as_ref()
            .is_none_or(|w| w.realtime_priority != wanted.realtime_priority)
        {
            self.set_priority(wanted.realtime_priority);
        }
        if was
            .as_ref()
            .is_none_or(|w| w.lock_memory != wanted.lock_memory)
        {
            self.set_lock(wanted.lock_memory);
        }
    }

    /// Applies `wanted` on a reload; nothing if the daemon never applied any (a
    /// shell under test).
    pub fn reload(&mut self, wanted: &Scheduling) {
        if self.applied.is_some() {
            self.apply(wanted);
        }
    }

    pub fn status(&self) -> &SchedulingStatus {
        &self.status
    }

    /// Has the read-only pages of the loaded files unmapped (see [`resident`]), off
    /// this thread: the walk reads the page map and makes a few dozen system calls,
    /// most of a millisecond. What the daemon runs from then on maps back as it
    /// runs, and is locked again then, so code that only start-up or a reload ran
    /// stops counting against the host; the code a running node runs is locked
    /// whole. Nothing in a shell under test, which applied nothing.
    pub fn release(&self) {
        if let Some((releaser, _)) = &self.releaser {
            // A full queue means a release is under way, which does the same.
            let _ = releaser.submit(());
        }
    }

    /// Takes what the releasing thread found, if it has finished: logs it, and
    /// says in the status when part of the memory could not be locked again.
    /// A change of the memory lock that had to wait for a release is made here.
    pub fn poll_released(&mut self) {
        if let Some(on) = self.pending_lock {
            self.set_lock(on);
        }
        let Some((_, answers)) = &self.releaser else {
            return;
        };
        while let Ok((changes, released)) = answers.try_recv() {
            debug!(
                "released {} KiB of read-only pages and locked {} KiB of a running node's \
                 code in {:?}",
                released.bytes / 1024,
                released.hot / 1024,
                released.took
            );
            match released.error {
                None => {}
                // A change of the lock since has locked or unlocked every range.
                Some(ReleaseError::Relock { .. }) if changes != self.lock_changes => {}
                Some(err @ ReleaseError::Relock { .. }) => {
                    let why =
                        format!("partly unlocked after start-up's pages were released: {err}");
                    warn!("memory {why}");
                    self.status.memory_locked = false;
                    self.status.memory_off = Some(why);
                }
                Some(err) => warn!("start-up's pages not all released: {err}"),
            }
        }
    }

    fn start_releaser(&mut self) {
        self.start_releaser_with(resident::release);
    }

    /// Starts the thread that runs `release` with whether the memory is locked.
    fn start_releaser_with(&mut self, release: impl Fn(bool) -> Released + Send + 'static) {
        let (answer, answers) = mpsc::channel();
        match Worker::spawn("failoverd-release", 1, move |()| {
            // The lock as it is now, not as it was when the release was asked for:
            // a reload may have changed it meanwhile.
            // The guard is held until the release is done, so that no change of
            // the lock lands between a range unlocked and the same range locked
            // again.
            let memory = MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
            let released = release(memory.locked);
            let _ = answer.send((memory.changes, released));
        }) {
            Ok(releaser) => self.releaser = Some((releaser, answers)),
            Err(err) => {
                warn!("start-up's pages will stay mapped: no thread to release them: {err}")
            }
        }
    }

    fn set_priority(&mut self, priority: u8) {
        let status = &mut self.status;
        // The helpers first: were the loop realtime and they not, one holding a lock
        // the loop needs (a queue, the allocator's) while a busy host starves it
        // would stall the loop all the same.
        let helper = helper_priority(priority);
        let (helpers, refused) = set_helpers(helper);
        match set_policy(0, priority) {
            Ok(()) if priority == 0 => {
                status.realtime_priority = 0;
                status.realtime_off =
                    Some("turned off ([scheduling] realtime_priority = 0)".into());
                info!("heartbeat thread at normal priority: realtime_priority is 0");
            }
            Ok(()) => {
                status.realtime_priority = priority;
                status.realtime_off = None;
                match refused {
                    None => info!(
                        "heartbeat thread at realtime priority: SCHED_RR {priority}, its {helpers} \
                         helper threads at {helper}"
                    ),
                    Some(err) => warn!(
                        "heartbeat thread at realtime priority: SCHED_RR {priority}, but \
                         not every helper thread: {err}"
                    ),
                }
            }
            Err(err) => {
                // The helpers must not stay above the loop, nor the status say other
                // than what the loop runs at (a reload asking for more keeps what
                // was granted before).
                let why = refused_policy(priority, &err);
                let kept = current_priority();
                set_helpers(helper_priority(kept));
                status.realtime_priority = kept;
                if kept == 0 {
                    warn!("heartbeat thread at normal priority: {why}");
                    status.realtime_off = Some(why);
                } else {
                    warn!("heartbeat thread kept at SCHED_RR {kept}: {why}");
                    status.realtime_off = None;
                }
            }
        }
    }

    fn set_lock(&mut self, on: bool) {
        // Never wait for a release under way: its thread walks the loaded objects
        // under the loader's lock, which a thread at normal priority may hold.
        let mut memory = match MEMORY.try_lock() {
            Ok(memory) => memory,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                self.pending_lock = Some(on);
                return;
            }
        };
        self.pending_lock = None;
        let done = lock(&mut memory, on);
        self.lock_changes = memory.changes;
        drop(memory);
        let status = &mut self.status;
        match done {
            Ok(()) if on => {
                status.memory_locked = true;
                status.memory_off = None;
                info!("memory locked as it is touched (mlockall)");
            }
            Ok(()) => {
                status.memory_locked = false;
                status.memory_off = Some("turned off ([scheduling] lock_memory = false)".into());
                info!("memory not locked: lock_memory is false");
            }
            Err(err) => {
                let why = refused_lock(&err);
                warn!("memory not locked: {why}");
                status.memory_locked = false;
                status.memory_off = Some(why);
            }
        }
    }
}

/// The helpers' priority for a loop at `priority`: one step below, never below 1
/// while the loop is realtime.
fn helper_priority(priority: u8) -> u8 {
    if priority == 0 {
        0
    } else {
        (priority - 1).max(1)
    }
}

/// The calling thread's SCHED_RR or SCHED_FIFO priority; 0 under any other policy.
fn current_priority() -> u8 {
    // SAFETY: pid 0 is the calling thread; `param` lives across the call.
    unsafe {
        let policy = libc::sched_getscheduler(0) & !libc::SCHED_RESET_ON_FORK;
        let mut param = libc::sched_param { sched_priority: 0 };
        if !matches!(policy, libc::SCHED_RR | libc::SCHED_FIFO)
            || libc::sched_getparam(0, &raw mut param) != 0
        {
            return 0;
        }
        u8::try_from(param.sched_priority).unwrap_or(0)
    }
}

/// The daemon's threads that the loop exchanges work with (the log, the workers,
/// the closer, the status publisher), by thread id, and the priority they run at.
/// Not the checks' thread (checks may be many and heavy), nor the status page's,
/// which stays below normal priority so that no flood of requests can take a
/// realtime thread's time.
struct Helpers {
    threads: Vec<libc::pid_t>,
    priority: u8,
}

static HELPERS: Mutex<Helpers> = Mutex::new(Helpers {
    threads: Vec::new(),
    priority: 0,
});

/// Called first thing on a helper thread: it takes the helpers' priority now and
/// whenever it changes, whether it started before the loop asked for realtime or
/// after. The returned guard takes the thread off the list when it ends.
pub fn helper_started() -> HelperGuard {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let mut helpers = HELPERS.lock().unwrap_or_else(PoisonError::into_inner);
    helpers.threads.push(tid);
    if helpers.priority > 0 {
        let _ = set_policy(0, helpers.priority);
    }
    HelperGuard(tid)
}

/// See [`helper_started`].
pub struct HelperGuard(libc::pid_t);

impl Drop for HelperGuard {
    fn drop(&mut self) {
        let mut helpers = HELPERS.lock().unwrap_or_else(PoisonError::into_inner);
        helpers.threads.retain(|&tid| tid != self.0);
    }
}

/// Puts every helper thread at `priority` (0: normal), now and as they start;
/// returns how many there are and the first refusal.
fn set_helpers(priority: u8) -> (usize, Option<io::Error>) {
    let mut helpers = HELPERS.lock().unwrap_or_else(PoisonError::into_inner);
    helpers.priority = priority;
    let refused = helpers
        .threads
        .iter()
        .filter_map(|&tid| set_policy(tid, priority).err())
        .next();
    (helpers.threads.len(), refused)
}

/// SCHED_RR at `priority` for thread `tid` (0: the calling thread), or SCHED_OTHER
/// for priority 0. Children forked by the thread start at normal priority.
pub(super) fn set_policy(tid: libc::pid_t, priority: u8) -> io::Result<()> {
    let policy = if priority == 0 {
        libc::SCHED_OTHER
    } else {
        libc::SCHED_RR
    };
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: `param` lives across the call.
    let done = unsafe {
        libc::sched_setscheduler(tid, policy | libc::SCHED_RESET_ON_FORK, &raw const param)
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Locks what is mapped now as each page is touched (MCL_ONFAULT: the resident size
/// stays what the daemon uses rather than its whole binary), or unlocks it all.
/// Mappings made later (a thread started after, a heap grown) are not locked: the
/// heartbeat path allocates nothing once running. `memory` records it.
fn lock(memory: &mut MemoryLock, on: bool) -> io::Result<()> {
    memory.changes += 1;
    // SAFETY: neither call takes a pointer; both only change how pages are kept.
    let done = unsafe {
        if on {
            libc::mlockall(libc::MCL_CURRENT | libc::MCL_ONFAULT)
        } else {
            libc::munlockall()
        }
    };
    if done == 0 {
        memory.locked = on;
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // A refused mlockall leaves nothing locked that a release could count on.
    if on {
        memory.locked = false;
    }
    Err(err)
}

/// Why the policy was refused, and what to change.
fn refused_policy(priority: u8, err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EPERM) => format!(
            "SCHED_RR {priority} refused ({err}): the daemon needs LimitRTPRIO={priority} or \
             higher, or CAP_SYS_NICE, and RestrictRealtime=no in its unit; on a kernel with \
             realtime group scheduling its cgroup also needs cpu.rt_runtime_us"
        ),
        _ => format!("SCHED_RR {priority} refused: {err}"),
    }
}

/// Why the memory lock was refused, and what to change.
fn refused_lock(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::ENOMEM | libc::EPERM) => format!(
            "mlockall refused ({err}): the address space is larger than the locked-memory \
             limit ({}); raise LimitMEMLOCK= in the unit or grant CAP_IPC_LOCK",
            memlock_limit()
        ),
        Some(libc::EINVAL) => {
            format!("mlockall refused ({err}): the kernel is older than 4.4 (no MCL_ONFAULT)")
        }
        _ => format!("mlockall refused: {err}"),
    }
}

/// RLIMIT_MEMLOCK in words.
fn memlock_limit() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` lives across the call and is the struct the call fills.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &raw mut limit) } != 0 {
        return "unknown".into();
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        format!("{} KiB", limit.rlim_cur / 1024)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// The tests that change the memory lock, which is the process's, one at a
    /// time: one holding it for a release would defer another's change.
    static MEMORY_TESTS: Mutex<()> = Mutex::new(());

    fn memory_tests() -> std::sync::MutexGuard<'static, ()> {
        MEMORY_TESTS.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[test]
    fn turned_off_says_so_and_why() {
        let _one = memory_tests();
        let mut standing = Standing::default();
        standing.apply(&Scheduling {
            realtime_priority: 0,
            lock_memory: false,
            raw_send: true,
        });
        let status = standing.status();
        assert_eq!(status.realtime_priority, 0);
        assert_eq!(
            status.realtime_off.as_deref(),
            Some("turned off ([scheduling] realtime_priority = 0)")
        );
        assert!(!status.memory_locked);
        assert_eq!(
            status.memory_off.as_deref(),
            Some("turned off ([scheduling] lock_memory = false)")
        );
    }

    #[test]
    fn a_range_not_locked_again_shows_in_the_status_and_code_locked_as_touched_does_not() {
        let mut standing = Standing::default();
        standing.status.memory_locked = true;
        let (answer, answers) = mpsc::channel();
        let idle = Worker::spawn("failoverd-test", 1, |()| {}).unwrap();
        standing.releaser = Some((idle, answers));
        let refused = || io::Error::from_raw_os_error(libc::ENOMEM);
        answer
            .send((
                0,
                Released {
                    error: Some(ReleaseError::LockHot {
                        len: 4096,
                        source: refused(),
                    }),
                    ..Released::default()
                },
            ))
            .unwrap();
        standing.poll_released();
        assert!(standing.status().memory_locked);
        let relock = |changes| {
            (
                changes,
                Released {
                    error: Some(ReleaseError::Relock {
                        start: 0x1000,
                        end: 0x2000,
                        source: refused(),
                    }),
                    ..Released::default()
                },
            )
        };
        // From a release that ran before the lock last changed: stale.
        standing.lock_changes = 1;
        answer.send(relock(0)).unwrap();
        standing.poll_released();
        assert!(standing.status().memory_locked);
        answer.send(relock(1)).unwrap();
        standing.poll_released();
        assert!(!standing.status().memory_locked);
        let why = standing.status().memory_off.as_deref().unwrap();
        assert!(
            why.contains("partly unlocked") && why.contains("0x1000..0x2000"),
            "{why}"
        );
    }

    /// A reload that turns `lock_memory` off while a release runs neither waits
    /// for it on the heartbeat thread nor lands in the middle of it: the change is
    /// made at the first status chore after the release is done.
    #[test]
    fn a_change_of_the_memory_lock_waits_for_a_release_under_way_off_the_loop() {
        let _one = memory_tests();
        let wait = Duration::from_secs(10);
        let mut standing = Standing::default();
        let (started, has_started) = mpsc::channel();
        let (open, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        standing.start_releaser_with(move |_| {
            let _ = started.send(());
            let _ = gate.lock().map(|gate| gate.recv_timeout(wait));
            Released::default()
        });
        standing.release();
        has_started.recv_timeout(wait).expect("the release started");
        standing.set_lock(false);
        assert_eq!(
            standing.pending_lock,
            Some(false),
            "changed during a release"
        );
        open.send(()).expect("the release waits");
        let deadline = Instant::now() + wait;
        while standing.pending_lock.is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            standing.poll_released();
        }
        assert_eq!(
            standing.pending_lock, None,
            "never changed after the release"
        );
        assert_eq!(
            standing.status().memory_off.as_deref(),
            Some("turned off ([scheduling] lock_memory = false)")
        );
    }

    #[test]
    fn a_refused_policy_names_what_the_unit_must_grant() {
        let why = refused_policy(10, &io::Error::from_raw_os_error(libc::EPERM));
        assert!(why.contains("LimitRTPRIO=10"), "{why}");
        assert!(why.contains("CAP_SYS_NICE"), "{why}");
        assert!(why.contains("RestrictRealtime=no"), "{why}");
        let why = refused_lock(&io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(why.contains("LimitMEMLOCK="), "{why}");
    }
}
