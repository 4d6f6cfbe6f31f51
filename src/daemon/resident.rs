//! Which pages of the loaded files the daemon keeps mapped. Start-up runs code the
//! loop never runs again (the command line, the configuration, the first netlink
//! requests), and a reload runs the configuration's again; the kernel maps code in
//! whole large folios around each page run, and the memory lock keeps what is mapped.
//! [`release`] unmaps the read-only segments of every loaded object (the
//! executable's code and constants, libc's), so that only what runs afterwards maps
//! back, from the page cache, as it runs; and locks the code a running node runs
//! (`.text.hot`, see packaging/hot-text.ld) whole, so that a takeover it never ran
//! does not wait on the disk for its code either.
//!
//! Only pages that hold the file's own bytes are unmapped: segments neither writable
//! nor in RELRO, of objects without text relocations, and of those only the pages
//! the process has no private copy of (`/proc/self/pagemap`). A breakpoint that a
//! debugger or a uprobe wrote into the code is such a copy, and is kept, unless it
//! was written in the microseconds between the page map's reading and the range's
//! unmapping: the kernel has no call that drops only a file's pages. The vDSO,
//! which no file backs, is left alone.

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// What a release could not do.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Without the page map a private copy cannot be told from the file's page, so
    /// nothing is released.
    #[error("cannot read /proc/self/pagemap, so nothing was released: {0}")]
    Pagemap(io::Error),
    /// The kernel refused to unlock or unmap a range; it stays as it was.
    #[error("could not release {start:#x}..{end:#x}: {source}")]
    Release {
        start: usize,
        end: usize,
        source: io::Error,
    },
    /// A range was unmapped but could not be locked again: what maps back there is
    /// not locked.
    #[error("could not lock {start:#x}..{end:#x} again, so it is not locked: {source}")]
    Relock {
        start: usize,
        end: usize,
        source: io::Error,
    },
    /// The running node's code could not be locked whole; it stays locked as it is
    /// touched, as the rest of the memory.
    #[error(
        "could not lock the running node's code ({len} bytes) whole, so it is locked as it \
         is touched: {source}"
    )]
    LockHot { len: usize, source: io::Error },
}

/// What a release did.
#[derive(Debug, Default)]
pub struct Released {
    /// Bytes of address space unmapped.
    pub bytes: usize,
    /// Bytes of the code a running node runs locked whole afterwards.
    pub hot: usize,
    /// What went wrong first, if anything; the release went on past it.
    pub error: Option<ReleaseError>,
    /// How long it took.
    pub took: Duration,
}

/// Unmaps the pages of the loaded objects' read-only segments that hold their
/// file's bytes. With `locked` (the memory is locked), each range is unlocked just
/// before and locked again as touched just after, so that the rest of the memory
/// stays locked throughout, and the code of `.text.hot` is then locked whole.
pub fn release(locked: bool) -> Released {
    let started = Instant::now();
    let mut released = walk_and_release(locked);
    released.took = started.elapsed();
    released
}

fn walk_and_release(locked: bool) -> Released {
    let pagemap = match File::open("/proc/self/pagemap") {
        Ok(file) => file,
        Err(err) => {
            return Released {
                error: Some(ReleaseError::Pagemap(err)),
                ..Released::default()
            };
        }
    };
    let mut released = Released::default();
    // Locked whole below: no use unmapping what is mapped again at once. Its pages
    // whole, so that what is released around it starts and ends on a page.
    let page = page_size();
    let hot = hot_code().filter(|_| locked);
    let kept_whole = hot
        .clone()
        .map(|hot| hot.start / page * page..hot.end.next_multiple_of(page));
    // Ranges are released while the loader's lock is held (inside the walk), so
    // that no object can be unloaded and its range reused meanwhile.
    each_releasable(&mut |range| {
        let kept: Vec<Range<usize>> = kept_whole
            .iter()
            .map(|hot| hot.start.max(range.start)..hot.end.min(range.end))
            .filter(|kept| !kept.is_empty())
            .collect();
        for piece in without(range, &kept) {
            let copies = match private_copies(&pagemap, &piece) {
                Ok(copies) => copies,
                Err(err) => {
                    released.error.get_or_insert(ReleaseError::Pagemap(err));
                    continue;
                }
            };
            for piece in without(piece, &copies) {
                match release_range(&piece, locked) {
                    Ok(()) => released.bytes += piece.len(),
                    Err(err) => {
                        released.error.get_or_insert(err);
                    }
                }
            }
        }
    });
    if let Some(hot) = hot {
        // SAFETY: mlock only changes how the pages of this mapped range are kept.
        if unsafe { libc::mlock(hot.start as *const c_void, hot.len()) } == 0 {
            released.hot = hot.len();
        } else {
            released.error.get_or_insert(ReleaseError::LockHot {
                len: hot.len(),
                source: io::Error::last_os_error(),
            });
        }
    }
    released
}

/// Unmaps `range`; with `locked`, unlocks it first and locks it again, as touched,
/// after.
fn release_range(range: &Range<usize>, locked: bool) -> Result<(), ReleaseError> {
    let (start, end, len) = (range.start, range.end, range.len());
    let os_error = |done: libc::c_int| {
        if done == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let at = start as *mut c_void;
    // SAFETY: munlock only changes how the pages of the range are kept.
    if locked && let Err(source) = os_error(unsafe { libc::munlock(at, len) }) {
        return Err(ReleaseError::Release { start, end, source });
    }
    // SAFETY: every page of the range holds its file's bytes in a read-only,
    // file-backed segment of an object the loader's lock keeps loaded (see
    // `each_releasable` and `private_copies`); it maps back as the same bytes on
    // the next access, so no code or constant changes under any thread.
    let advised = os_error(unsafe { libc::madvise(at, len, libc::MADV_DONTNEED) });
    if locked {
        // SAFETY: mlock2 only changes how the pages of the range are kept.
        let relocked = os_error(unsafe { libc::mlock2(at, len, libc::MLOCK_ONFAULT) });
        if let Err(source) = relocked {
            return Err(ReleaseError::Relock { start, end, source });
        }
    }
    advised.map_err(|source| ReleaseError::Release { start, end, source })
}

/// Entries of /proc/self/pagemap: a page present in memory, swapped out, and one
/// that is a file's page (clear for a private copy).
const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;
const FILE_PAGE: u64 = 1 << 61;

/// The pages of `range` that the process holds a private copy of: present or
/// swapped out, and not the file's own page.
fn private_copies(pagemap: &File, range: &Range<usize>) -> io::Result<Vec<Range<usize>>> {
    let page = page_size();
    let pages = range.len() / page;
    let mut entries = vec![0u8; pages * 8];
    pagemap.read_exact_at(&mut entries, (range.start / page * 8) as u64)?;
    Ok(entries
        .chunks_exact(8)
        .enumerate()
        .filter_map(|(i, entry)| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(entry);
            let entry = u64::from_ne_bytes(bytes);
            let copied = entry & (PRESENT | SWAPPED) != 0 && entry & FILE_PAGE == 0;
            let at = range.start + i * page;
            copied.then_some(at..at + page)
        })
        .collect())
}

/// `range` without the ranges in `holes` (sorted, within it).
fn without(range: Range<usize>, holes: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = range.start;
    for hole in holes {
        if hole.start > start {
            pieces.push(start..hole.start);
        }
        start = start.max(hole.end);
    }
    if start < range.end {
        pieces.push(start..range.end);
    }
    pieces
}

/// The first and the last function of `.text.hot` (packaging/hot-text.ld names
/// their sections first and last). Their bodies differ so that no pass merges them.
#[unsafe(link_section = ".text.failoverd_hot_start")]
#[inline(never)]
extern "C" fn hot_start() -> u32 {
    0x686f_7401
}

#[unsafe(link_section = ".text.failoverd_hot_end")]
#[inline(never)]
extern "C" fn hot_end() -> u32 {
    0x686f_7402
}

/// Bounds of a `.text.hot` believed: a build without the linker script leaves
/// the two markers wherever the linker put them, next to each other as a rule.
const HOT_AT_LEAST: usize = 64 << 10;
const HOT_AT_MOST: usize = 16 << 20;

/// The code of `.text.hot`, when the build placed it (see build.rs).
pub fn hot_code() -> Option<Range<usize>> {
    let start = hot_start as *const () as usize;
    let end = hot_end as *const () as usize;
    let len = end.checked_sub(start)?;
    (HOT_AT_LEAST..=HOT_AT_MOST)
        .contains(&len)
        .then_some(start..end)
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a value the kernel gave the process.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// A program header, in the fields the choice reads.
#[derive(Clone, Copy, Debug)]
struct Segment {
    kind: u32,
    flags: u32,
    /// Address in the object, before the load bias.
    vaddr: usize,
    /// Bytes backed by the file (a segment's zero-filled tail is left alone).
    filesz: usize,
    /// Bytes in memory.
    memsz: usize,
}

/// Dynamic-section tags that mark text relocations (elf.h; the libc crate has
/// none of them).
const DT_NULL: isize = 0;
const DT_TEXTREL: isize = 22;
const DT_FLAGS: isize = 30;
const DF_TEXTREL: usize = 0x4;

/// One entry of a dynamic section, on 32- and 64-bit targets alike.
#[repr(C)]
struct Dynamic {
    tag: isize,
    value: usize,
}

/// Calls `each` with the read-only segments of every loaded object but the vDSO,
/// in page-aligned address ranges, with the loader's lock held.
fn each_releasable(each: &mut dyn FnMut(Range<usize>)) {
    struct Walk<'a> {
        page: usize,
        vdso: usize,
        each: &'a mut dyn FnMut(Range<usize>),
    }

    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid `info` for the call's duration, and
        // `data` is the `Walk` below, borrowed by no one else meanwhile.
        let (info, walk) = unsafe { (&*info, &mut *data.cast::<Walk>()) };
        if info.dlpi_phdr.is_null() {
            return 0;
        }
        // SAFETY: the loader's headers of a loaded object: `dlpi_phnum` of them.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        let bias = info.dlpi_addr as usize;
        let segments: Vec<Segment> = headers
            .iter()
            .map(|h| Segment {
                kind: h.p_type,
                flags: h.p_flags,
                vaddr: h.p_vaddr as usize,
                filesz: h.p_filesz as usize,
                memsz: h.p_memsz as usize,
            })
            .collect();
        let is_vdso = segments.iter().any(|s| {
            let start = bias.wrapping_add(s.vaddr);
            s.kind == libc::PT_LOAD && (start..start.wrapping_add(s.memsz)).contains(&walk.vdso)
        });
        let text_relocated = segments
            .iter()
            .filter(|s| s.kind == libc::PT_DYNAMIC)
            // SAFETY: the loader mapped this object's dynamic section there, and
            // it ends with DT_NULL.
            .any(|s| unsafe { has_text_relocations(bias.wrapping_add(s.vaddr) as *const Dynamic) });
        if !is_vdso && !text_relocated {
            for range in releasable(bias, &segments, walk.page) {
                (walk.each)(range);
            }
        }
        0
    }

    // SAFETY: getauxval only reads a value the kernel gave the process.
    let vdso = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    let mut walk = Walk {
        page: page_size(),
        vdso,
        each,
    };
    // SAFETY: `visit` matches the callback's type and only reads what the loader
    // hands it; `walk` outlives the call.
    unsafe {
        libc::dl_iterate_phdr(Some(visit), (&raw mut walk).cast::<c_void>());
    }
}

/// Whether the dynamic section at `dynamic` asks for text relocations.
///
/// # Safety
/// `dynamic` must point at a loaded object's dynamic section, ended by DT_NULL.
unsafe fn has_text_relocations(mut dynamic: *const Dynamic) -> bool {
    loop {
        // SAFETY: within the section until DT_NULL, by the caller's promise.
        let entry = unsafe { &*dynamic };
        match entry.tag {
            DT_NULL => return false,
            DT_TEXTREL => return true,
            DT_FLAGS if entry.value & DF_TEXTREL != 0 => return true,
            _ => {}
        }
        // SAFETY: the entry was not the last.
        dynamic = unsafe { dynamic.add(1) };
    }
}

/// The whole pages of an object's loaded, read-only, file-backed segments, outside
/// its RELRO ranges (which the loader writes before it makes them read-only), at
/// load bias `bias`.
fn releasable(bias: usize, segments: &[Segment], page: usize) -> Vec<Range<usize>> {
    let at = |s: &Segment| bias.wrapping_add(s.vaddr);
    let written: Vec<Range<usize>> = segments
        .iter()
        .filter(|s| s.kind == libc::PT_GNU_RELRO)
        .map(|s| at(s)..at(s).wrapping_add(s.memsz.max(s.filesz)))
        .collect();
    let mut ranges = Vec::new();
    for segment in segments
        .iter()
        .filter(|s| s.kind == libc::PT_LOAD && s.flags & libc::PF_W == 0)
    {
        let start = at(segment);
        let mut pieces = Vec::from([(start, start.wrapping_add(segment.filesz))]);
        for relro in &written {
            pieces = pieces
                .into_iter()
                .flat_map(|(start, end)| {
                    [(start, end.min(relro.start)), (start.max(relro.end), end)]
                })
                .filter(|(start, end)| start < end)
                .collect();
        }
        ranges.extend(pieces.into_iter().filter_map(|(start, end)| {
            let start = start.next_multiple_of(page);
            let end = end / page * page;
            (start < end).then_some(start..end)
        }));
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn load(flags: u32, vaddr: usize, filesz: usize) -> Segment {
        Segment {
            kind: libc::PT_LOAD,
            flags,
            vaddr,
            filesz,
            memsz: filesz,
        }
    }

    #[test]
    fn only_whole_pages_of_read_only_segments_are_released() {
        let segments = [
            // Headers and constants, read-only.
            load(libc::PF_R, 0, 0x3_0100),
            // Code, starting mid-page.
            load(libc::PF_R | libc::PF_X, 0x3_0100, 0x1_0000),
            // Data, writable.
            load(libc::PF_R | libc::PF_W, 0x5_0000, 0x2000),
        ];
        let bias = 0x7f00_0000_0000;
        assert_eq!(
            releasable(bias, &segments, PAGE),
            vec![bias..bias + 0x3_0000, bias + 0x3_1000..bias + 0x4_0000],
        );
    }

    #[test]
    fn relro_is_never_released_even_in_a_read_only_segment() {
        let segments = [
            load(libc::PF_R, 0, 0x10_0000),
            Segment {
                kind: libc::PT_GNU_RELRO,
                flags: libc::PF_R,
                vaddr: 0x4_0800,
                filesz: 0x800,
                memsz: 0x1000,
            },
        ];
        assert_eq!(
            releasable(0, &segments, PAGE),
            vec![0..0x4_0000, 0x4_2000..0x10_0000],
        );
    }

    #[test]
    fn text_relocations_are_found_by_tag_or_flag() {
        let tagged = [
            Dynamic { tag: 1, value: 7 },
            Dynamic {
                tag: DT_TEXTREL,
                value: 0,
            },
            Dynamic {
                tag: DT_NULL,
                value: 0,
            },
        ];
        let flagged = [
            Dynamic {
                tag: DT_FLAGS,
                value: DF_TEXTREL | 0x8,
            },
            Dynamic {
                tag: DT_NULL,
                value: 0,
            },
        ];
        let clean = [
            Dynamic {
                tag: DT_FLAGS,
                value: 0x8,
            },
            Dynamic {
                tag: DT_NULL,
                value: 0,
            },
        ];
        // SAFETY: each array ends with DT_NULL.
        unsafe {
            assert!(has_text_relocations(tagged.as_ptr()));
            assert!(has_text_relocations(flagged.as_ptr()));
            assert!(!has_text_relocations(clean.as_ptr()));
        }
    }

    #[test]
    fn a_range_is_released_around_the_pages_it_keeps() {
        assert_eq!(
            without(0..0x5000, &[0x1000..0x2000, 0x2000..0x3000]),
            vec![0..0x1000, 0x3000..0x5000]
        );
        let whole = 0..0x2000;
        assert!(without(whole.clone(), std::slice::from_ref(&whole)).is_empty());
        assert_eq!(without(whole.clone(), &[]), std::slice::from_ref(&whole));
    }

    /// A page written through a private mapping of a file (what a debugger's or a
    /// uprobe's breakpoint makes of a code page) is found, and the file's own pages
    /// around it are not.
    #[test]
    fn a_private_copy_of_a_file_page_is_kept() {
        let page = page_size();
        let path = std::env::temp_dir().join(format!(
            "failoverd-resident-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, vec![7u8; 3 * page]).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // SAFETY: a fresh private mapping of the file, used only here and unmapped
        // at the end.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                3 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        assert_ne!(start, libc::MAP_FAILED);
        let at = start as usize;
        // SAFETY: all three pages lie in the mapping made above.
        unsafe {
            assert_eq!(std::ptr::read_volatile(start.cast::<u8>()), 7);
            std::ptr::write_volatile(start.cast::<u8>().add(page), 9);
            assert_eq!(std::ptr::read_volatile(start.cast::<u8>().add(2 * page)), 7);
        }
        let pagemap = File::open("/proc/self/pagemap").unwrap();
        let copies = private_copies(&pagemap, &(at..at + 3 * page)).unwrap();
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(start, 3 * page) };
        let written = at + page..at + 2 * page;
        assert_eq!(copies, std::slice::from_ref(&written));
    }

    #[test]
    fn this_process_releases_its_own_code_and_runs_on() {
        let mut ranges = Vec::new();
        each_releasable(&mut |range| ranges.push(range));
        let here = this_process_releases_its_own_code_and_runs_on as fn() as usize;
        assert!(
            ranges.iter().any(|r| r.contains(&here)),
            "the test's own code is not among {ranges:x?}"
        );
        // Other tests run meanwhile on other threads, and the test binary never
        // locks its memory: every page released maps back as they run.
        let released = release(false);
        assert!(released.error.is_none(), "{:?}", released.error);
        assert!(released.bytes > 0, "nothing released of {ranges:x?}");
        assert_eq!(released.hot, 0, "nothing is locked without `locked`");
    }
}
