//! Which pages of the loaded files the daemon keeps mapped. Start-up runs code the
//! loop never runs again (the command line, the configuration, the first netlink
//! requests), and a reload runs the configuration's again; the kernel maps code in
//! whole large folios around each page run, and the memory lock keeps what is mapped.
//! [`release`] unmaps the read-only segments of every loaded object (the
//! executable's code and constants, libc's), so that only what runs afterwards maps
//! back, from the page cache, as it runs.
//!
//! Only segments that nothing writes are released: not writable, outside RELRO, in
//! an object without text relocations. Unmapping such a page loses nothing; it maps
//! back as the file's own bytes. The vDSO, which no file backs, is left alone.

use std::ffi::c_void;
use std::io;
use std::ops::Range;

/// A program header, in the fields the choice reads.
#[derive(Clone, Copy, Debug)]
struct Segment {
    kind: u32,
    flags: u32,
    /// Address in the object, before the load bias.
    vaddr: usize,
    /// Bytes backed by the file (a segment's zero-filled tail is left alone).
    filesz: usize,
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

/// Unmaps the pages of the loaded objects' read-only segments; returns the bytes
/// of address space released. Pages locked by `mlockall` cannot be released:
/// unlock first. Every segment is tried; the first refusal is returned after.
pub fn release() -> io::Result<usize> {
    let mut released = 0;
    let mut refused = None;
    for range in releasable_now() {
        // SAFETY: the range lies in a read-only, file-backed segment of an object
        // that stays loaded (see `releasable`); its pages map back as the file's
        // bytes on the next access, so no code or constant changes under any thread.
        let done =
            unsafe { libc::madvise(range.start as *mut c_void, range.len(), libc::MADV_DONTNEED) };
        if done == 0 {
            released += range.len();
        } else if refused.is_none() {
            refused = Some(io::Error::last_os_error());
        }
    }
    match refused {
        Some(err) => Err(err),
        None => Ok(released),
    }
}

/// The read-only segments of every loaded object but the vDSO, in page-aligned
/// address ranges.
fn releasable_now() -> Vec<Range<usize>> {
    struct Walk {
        page: usize,
        vdso: usize,
        ranges: Vec<Range<usize>>,
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
            })
            .collect();
        let loaded = |s: &&Segment| s.kind == libc::PT_LOAD;
        if segments
            .iter()
            .filter(loaded)
            .any(|s| (bias + s.vaddr..bias + s.vaddr + s.filesz).contains(&walk.vdso))
        {
            return 0;
        }
        let text_relocated = segments
            .iter()
            .filter(|s| s.kind == libc::PT_DYNAMIC)
            // SAFETY: the loader mapped this object's dynamic section there, and
            // it ends with DT_NULL.
            .any(|s| unsafe { has_text_relocations((bias + s.vaddr) as *const Dynamic) });
        if !text_relocated {
            walk.ranges.extend(releasable(bias, &segments, walk.page));
        }
        0
    }

    // SAFETY: sysconf and getauxval only read values the kernel gave the process.
    let (page, vdso) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::getauxval(libc::AT_SYSINFO_EHDR),
        )
    };
    let mut walk = Walk {
        page: usize::try_from(page).unwrap_or(4096),
        vdso: vdso as usize,
        ranges: Vec::new(),
    };
    // SAFETY: `visit` matches the callback's type and only reads what the loader
    // hands it; `walk` outlives the call.
    unsafe {
        libc::dl_iterate_phdr(Some(visit), (&raw mut walk).cast::<c_void>());
    }
    walk.ranges
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
    let span = |s: &Segment| bias + s.vaddr..bias + s.vaddr + s.filesz;
    let written: Vec<Range<usize>> = segments
        .iter()
        .filter(|s| s.kind == libc::PT_GNU_RELRO)
        .map(span)
        .collect();
    let mut ranges = Vec::new();
    for segment in segments
        .iter()
        .filter(|s| s.kind == libc::PT_LOAD && s.flags & libc::PF_W == 0)
    {
        let mut pieces = vec![span(segment)];
        for relro in &written {
            pieces = pieces
                .into_iter()
                .flat_map(|piece| {
                    [
                        piece.start..piece.end.min(relro.start),
                        piece.start.max(relro.end)..piece.end,
                    ]
                })
                .filter(|piece| !piece.is_empty())
                .collect();
        }
        ranges.extend(pieces.into_iter().filter_map(|piece| {
            let start = piece.start.next_multiple_of(page);
            let end = piece.end / page * page;
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
                filesz: 0x1000,
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
    fn this_process_releases_its_own_code_and_runs_on() {
        let ranges = releasable_now();
        let here = this_process_releases_its_own_code_and_runs_on as fn() as usize;
        assert!(
            ranges.iter().any(|r| r.contains(&here)),
            "the test's own code is not among {ranges:x?}"
        );
        // Other tests run meanwhile on other threads, and the test binary never
        // locks its memory: every page released maps back as they run.
        let released = release().expect("madvise refused a read-only segment");
        assert_eq!(released, ranges.iter().map(Range::len).sum::<usize>());
    }
}
