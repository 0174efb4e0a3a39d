//! Anonymous virtual-memory regions: reserve, make accessible, grow.
//!
//! A [`Mmap`] owns `len` bytes of address space starting at `ptr`, mapped
//! private and anonymous; it unmaps them on drop. Linear memories and the
//! loader's copies of artifacts use it.
//!
//! **Reservation pool (Linux).** Creating a guard-page memory costs a
//! multi-GiB `mmap`, and its first write faults in fresh page tables that
//! `munmap` tears down again; together that is most of an instantiation.
//! [`Mmap::reserve_pooled_for`] mappings are therefore not unmapped on drop but
//! reset and kept in a small process-wide pool for the next reservation of
//! the same length. Reset means: every page that was ever made accessible
//! (`[0, accessible)`, a high-water mark kept by [`Mmap::protect`]) is
//! discarded with `madvise(MADV_DONTNEED)`, after which a private anonymous
//! page reads as zero, and made `PROT_NONE` again; pages past the mark were
//! never accessible, so they were never touched. A pooled mapping is thus
//! indistinguishable from a fresh [`Mmap::reserve`]: all inaccessible, all
//! zero. If either call fails the mapping is unmapped instead.
//!
//! **Kept initial contents.** A memory that asks for its reservation with a
//! key ([`Mmap::reserve_pooled_for`]: a module's unique id and memory index)
//! and records that `[0, keep)` holds that memory's initial contents
//! ([`Mmap::set_reuse`]) is reset on drop by discarding its pages only
//! (`MADV_DONTNEED` over `[0, accessible)`: anonymous pages read zero
//! again, copy-on-write image pages read their file again) and making
//! `[keep, accessible)` `PROT_NONE`, keeping its image mappings; the pool
//! entry keeps the key. The next reservation with the same key and length
//! takes it back *ready*: exactly that memory's initial contents, nothing a
//! previous instance wrote, no `mmap` of the images again (the pooling
//! allocator's reuse, [`crate::vm::pool`], for on-demand memories). Any
//! other reservation resets a keyed entry completely first. Module ids are
//! never reused, so a key cannot match another module's memory.
//!
//! **File-backed pages.** [`Mmap::map_cow`] maps part of a file
//! privately over a range of the mapping (memory images: pages are shared
//! with the page cache until written). `MADV_DONTNEED` would bring such
//! pages back as the file's contents, not zero, so a reset of a mapping that
//! has any replaces `[0, accessible)` with a fresh anonymous `PROT_NONE`
//! mapping instead; the kernel then frees only the pages that were present
//! (touched), so reset stays proportional to the pages used.

use std::io;
use std::ptr::NonNull;

/// Bytes of a file that may be mapped copy-on-write into a memory: made
/// only by [`MappableBytes::new`], whose caller guarantees they never
/// change.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MappableBytes<'a> {
    fd: std::os::fd::BorrowedFd<'a>,
    offset: u64,
    len: usize,
}

impl<'a> MappableBytes<'a> {
    /// `len` bytes at `offset` of the file behind `fd`.
    ///
    /// # Safety
    /// `[offset, offset + len)` lies inside the file, and those bytes are
    /// never changed and the file never truncated below `offset + len` for
    /// as long as any mapping made from them lives (for example: the file
    /// is a sealed memfd).
    pub(crate) unsafe fn new(
        fd: std::os::fd::BorrowedFd<'a>,
        offset: u64,
        len: usize,
    ) -> MappableBytes<'a> {
        MappableBytes { fd, offset, len }
    }

    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'a> {
        self.fd
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// An owned anonymous mapping.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
    /// `[0, accessible)` covers every page ever given a protection other
    /// than `PROT_NONE`.
    accessible: usize,
    /// Reset and return to [`POOL`] on drop instead of unmapping.
    pooled: bool,
    /// Zeroed (pages discarded, kept read-write) and returned to
    /// [`ZERO_POOL`] on drop instead of unmapping.
    zero_pooled: bool,
    /// Every byte is zero again ([`Mmap::mark_zero`]): a `zero_pooled`
    /// mapping goes back to its pool without discarding its pages.
    known_zero: bool,
    /// Some range was mapped from a file ([`Mmap::map_cow`]).
    file_backed: bool,
    /// Set by [`Mmap::set_reuse`]: `[0, keep)` holds the initial contents of
    /// the memory `key`, so a pooled reservation keeps them on drop.
    reuse: Option<Reuse>,
}

/// What a pooled reservation holds (module docs: kept initial contents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reuse {
    key: (u64, u32),
    keep: usize,
}

/// Released reservations: all `PROT_NONE` and zero, or (with `reuse`)
/// holding a memory's initial contents in `[0, keep)` (see the module docs).
static POOL: std::sync::Mutex<Vec<Mmap>> = std::sync::Mutex::new(Vec::new());

/// Most reservations kept: each is only address space (`MAP_NORESERVE`,
/// no pages), a few GiB of the 128 TiB a 64-bit process has.
const POOL_MAX: usize = 16;

/// Released read-write mappings ([`Mmap::zeroed_pooled`]), all zero.
static ZERO_POOL: std::sync::Mutex<Vec<Mmap>> = std::sync::Mutex::new(Vec::new());

/// A mapping of `len` (rounded up to pages) from `pool` if it holds one of
/// that length, else a new one from `make`. The two pools differ only in
/// how a released mapping is reset (see their `Drop` handling).
fn take_or_make(
    pool: &std::sync::Mutex<Vec<Mmap>>,
    len: usize,
    make: fn(usize) -> io::Result<Mmap>,
) -> io::Result<Mmap> {
    let rounded = round_up_to_page(len.max(1))
        .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "mapping too large"))?;
    let reused = {
        let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.iter()
            .position(|m| m.len == rounded)
            .map(|i| pool.swap_remove(i))
    };
    match reused {
        Some(m) => Ok(m),
        None => make(rounded),
    }
}

/// Resets the pool's reservations kept for memories of module `module`,
/// which is being dropped: nothing can take them ready any more (module ids
/// are never reused), and their image mappings would keep the module's
/// artifact pages alive for as long as they sit in the pool.
pub(crate) fn forget_module(module: u64) {
    let stale: Vec<Mmap> = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let mut stale = Vec::new();
        let mut i = 0;
        while i < pool.len() {
            if pool[i].reuse.is_some_and(|r| r.key.0 == module) {
                stale.push(pool.swap_remove(i));
            } else {
                i += 1;
            }
        }
        stale
    };
    for mut m in stale {
        // Dropped as a pooled reservation without a key: reset entirely,
        // then back to the pool (or unmapped).
        m.reuse = None;
        m.pooled = true;
        drop(m);
    }
}

// SAFETY: a Mmap is an owned region of memory, like a Box<[u8]>; it has no
// thread affinity.
unsafe impl Send for Mmap {}
// SAFETY: shared access only hands out the pointer; writes go through `&mut`.
unsafe impl Sync for Mmap {}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p <= 0 {
        4096
    } else {
        p as usize
    }
}

pub(crate) fn round_up_to_page(n: usize) -> Option<usize> {
    let p = page_size();
    n.checked_add(p - 1).map(|v| v & !(p - 1))
}

impl Mmap {
    /// Reserves `len` bytes (rounded up to pages) of inaccessible address
    /// space. `len == 0` reserves one page so the base is a real mapping.
    pub(crate) fn reserve(len: usize) -> io::Result<Mmap> {
        Self::map(len, libc::PROT_NONE)
    }

    /// [`Self::reserve_pooled_for`] without a key.
    #[cfg(test)]
    pub(crate) fn reserve_pooled(len: usize) -> io::Result<Mmap> {
        Self::reserve_pooled_for(len, None).map(|(m, _)| m)
    }

    /// Like [`Self::reserve`], but reuses a released reservation of the same
    /// (rounded) length when the pool has one, and returns this one to the
    /// pool when dropped (Linux; elsewhere the same as `reserve`). With
    /// `key`, for memory `key` (a module's id and memory index) of initial
    /// length `keep`: `true` with a reservation that holds
    /// exactly that memory's initial contents in `[0, keep)` (read-write,
    /// the rest `PROT_NONE`; see the module docs), else `false` with an
    /// all-`PROT_NONE`, all-zero one.
    pub(crate) fn reserve_pooled_for(
        len: usize,
        key: Option<((u64, u32), usize)>,
    ) -> io::Result<(Mmap, bool)> {
        if !cfg!(target_os = "linux") {
            return Ok((Self::reserve(len)?, false));
        }
        let rounded = round_up_to_page(len.max(1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "mapping too large"))?;
        let want = key.map(|(key, keep)| Reuse { key, keep });
        let taken = {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            // The same memory's contents, else a clean entry, else any.
            let i = pool
                .iter()
                .position(|m| m.len == rounded && want.is_some() && m.reuse == want)
                .or_else(|| {
                    pool.iter()
                        .position(|m| m.len == rounded && m.reuse.is_none())
                })
                .or_else(|| pool.iter().position(|m| m.len == rounded));
            i.map(|i| pool.swap_remove(i))
        };
        let mut m = match taken {
            Some(m) => m,
            None => Self::reserve(rounded)?,
        };
        m.pooled = true;
        if m.reuse.is_some() && m.reuse == want {
            m.reuse = None; // set again by the new owner once initialised
            return Ok((m, true));
        }
        if m.reuse.take().is_some() {
            // Another memory's contents: back to all inaccessible and zero.
            m.reset()?;
        }
        Ok((m, false))
    }

    /// Records that `[0, keep)` now holds the initial contents of memory
    /// `key`, so that on drop the reservation keeps them for the next
    /// [`Self::reserve_pooled_for`] of that key (module docs).
    pub(crate) fn set_reuse(&mut self, key: (u64, u32), keep: usize) {
        self.reuse = Some(Reuse { key, keep });
    }

    /// Forgets [`Self::set_reuse`]: the reservation is reset entirely on drop.
    pub(crate) fn clear_reuse(&mut self) {
        self.reuse = None;
    }

    /// Like [`Self::read_write`], but reuses a released mapping of the same
    /// (rounded) length, and when dropped discards its pages
    /// (`MADV_DONTNEED`: they read zero again, and only the pages touched
    /// cost) and keeps it for the next one (Linux; elsewhere the same as
    /// `read_write`). For large VMContexts: a fresh mapping and its unmap
    /// cost more than the few pages an instance touches.
    pub(crate) fn zeroed_pooled(len: usize) -> io::Result<Mmap> {
        if !cfg!(target_os = "linux") {
            return Self::read_write(len);
        }
        let mut m = take_or_make(&ZERO_POOL, len, Self::read_write)?;
        m.zero_pooled = true;
        m.known_zero = false;
        Ok(m)
    }

    /// Makes the whole mapping `PROT_NONE` and zero again (module docs).
    fn reset(&mut self) -> io::Result<()> {
        if self.file_backed {
            self.clear()
        } else {
            self.discard(0)
        }
    }

    /// Readies a memory's mapping for the next user of its pool (this
    /// module's reservation pool, or a pooling allocator's slot): with
    /// `keep`, keeps `[0, keep)` as the memory's initial contents (written
    /// pages discarded, image mappings kept, pages past it inaccessible)
    /// and returns `true`; otherwise, or if that fails, resets it to all
    /// inaccessible and zero and returns `false`. `Err` if neither worked:
    /// the mapping must not be reused.
    pub(crate) fn recycle(&mut self, keep: Option<usize>) -> io::Result<bool> {
        if let Some(keep) = keep {
            if keep <= self.len && self.discard(keep).is_ok() {
                return Ok(true);
            }
        }
        self.reset().map(|()| false)
    }

    /// Discards every page of `[0, accessible)`: anonymous pages read zero
    /// again and copy-on-write file pages read their file again (the
    /// kernel frees only the pages that are present: the cost is the pages
    /// touched); then makes `[keep, accessible)` `PROT_NONE` (`keep` page
    /// aligned), so `[0, keep)` stays as it was mapped and protected.
    pub(crate) fn discard(&mut self, keep: usize) -> io::Result<()> {
        if self.accessible == 0 {
            return Ok(());
        }
        // SAFETY: [ptr, ptr + accessible) lies inside this mapping, which we
        // own (`&mut self`: no reference into it is live); discarding its
        // pages affects no other allocation.
        let r = unsafe {
            libc::madvise(
                self.ptr.as_ptr().cast(),
                self.accessible,
                libc::MADV_DONTNEED,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if keep < self.accessible {
            self.protect(keep, self.accessible - keep, libc::PROT_NONE)?;
            self.accessible = keep;
        }
        Ok(())
    }

    /// Replaces `[0, accessible)` with fresh anonymous `PROT_NONE` pages:
    /// zero, inaccessible, and no longer mapped from any file.
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        if self.accessible == 0 {
            return Ok(());
        }
        // SAFETY: [ptr, ptr + accessible) lies inside this mapping, which we
        // own (`&mut self`: no reference into it is live); MAP_FIXED
        // replaces exactly that range with fresh zero pages.
        let p = unsafe {
            libc::mmap(
                self.ptr.as_ptr().cast(),
                self.accessible,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        self.file_backed = false;
        self.accessible = 0;
        Ok(())
    }

    /// Records that the user wrote zeros over every byte it wrote, so that a
    /// [`Self::zeroed_pooled`] mapping can be reused without discarding
    /// its pages (which the next user would then fault in again). Nothing
    /// unsafe depends on it: a mapping that is not all zero is only not
    /// what `zeroed_pooled` promises.
    pub(crate) fn mark_zero(&mut self) {
        self.known_zero = true;
    }

    /// Maps `len` bytes (rounded up to pages) of zeroed read-write memory.
    pub(crate) fn read_write(len: usize) -> io::Result<Mmap> {
        Self::map(len, libc::PROT_READ | libc::PROT_WRITE)
    }

    fn map(len: usize, prot: libc::c_int) -> io::Result<Mmap> {
        let len = round_up_to_page(len.max(1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "mapping too large"))?;
        // SAFETY: an anonymous private mapping at an address the kernel picks
        // cannot alias anything the program owns.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned null"),
            len,
            accessible: if prot == libc::PROT_NONE { 0 } else { len },
            pooled: false,
            zero_pooled: false,
            known_zero: false,
            file_backed: false,
            reuse: None,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Makes `[start, start + len)` (page-aligned start) read-write.
    pub(crate) fn make_accessible(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Maps `bytes` privately (copy-on-write) and read-write over
    /// `[start, start + bytes.len())`; `start`, the length and the file
    /// offset must be page aligned and the range inside the mapping. Writes
    /// stay in this mapping; unwritten pages read the file's bytes, which
    /// [`MappableBytes`] guarantees never change.
    pub(crate) fn map_cow(&mut self, start: usize, bytes: MappableBytes<'_>) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (len, offset) = (bytes.len(), bytes.offset());
        let page = page_size();
        let ok = start.is_multiple_of(page)
            && len.is_multiple_of(page)
            && offset.is_multiple_of(page as u64)
            && start.checked_add(len).is_some_and(|end| end <= self.len);
        if !ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "file mapping {start:#x}+{len:#x} at {offset:#x} not page aligned or \
                     outside mapping of {:#x}",
                    self.len
                ),
            ));
        }
        if len == 0 {
            return Ok(());
        }
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
        // SAFETY: the range was checked to lie inside this mapping, which we
        // own (`&mut self`: no reference into it is live), so MAP_FIXED
        // replaces only our pages. The file's bytes lie inside it and never
        // change (`MappableBytes`), so the new pages can neither change nor
        // fault with SIGBUS.
        let p = unsafe {
            libc::mmap(
                self.ptr.as_ptr().add(start).cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                bytes.fd().as_raw_fd(),
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        self.file_backed = true;
        self.accessible = self.accessible.max(start + len);
        Ok(())
    }

    /// Makes `[start, start + len)` (page-aligned start) read-only.
    pub(crate) fn make_read_only(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ)
    }

    /// Makes `[start, start + len)` (page-aligned start) read+execute.
    pub(crate) fn make_executable(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_EXEC)
    }

    fn protect(&mut self, start: usize, len: usize, prot: libc::c_int) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let len = round_up_to_page(len).unwrap_or(usize::MAX);
        let in_range = (start & (page_size() - 1)) == 0
            && start.checked_add(len).is_some_and(|end| end <= self.len);
        if !in_range {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "protect {start:#x}+{len:#x} outside mapping of {:#x}",
                    self.len
                ),
            ));
        }
        // SAFETY: the range was checked to lie inside this mapping, which we
        // own; changing its protection cannot affect other allocations.
        let r = unsafe { libc::mprotect(self.ptr.as_ptr().add(start).cast(), len, prot) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if prot != libc::PROT_NONE {
            self.accessible = self.accessible.max(start + len);
        }
        Ok(())
    }
}

impl Mmap {
    /// The same mapping as a pool's entry (no longer pooled on drop), for
    /// a `Drop` that hands it to a pool instead of unmapping it.
    #[cfg(target_os = "linux")]
    fn handed_over(&self, file_backed: bool, reuse: Option<Reuse>) -> Mmap {
        Mmap {
            ptr: self.ptr,
            len: self.len,
            accessible: self.accessible,
            pooled: false,
            zero_pooled: false,
            known_zero: false,
            file_backed,
            reuse,
        }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if self.zero_pooled
            && !self.file_backed
            && (self.known_zero || self.discard(self.len).is_ok())
        {
            let mut pool = ZERO_POOL.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOL_MAX {
                // The pool takes over the mapping (read-write, all zero):
                // `self` must not unmap it.
                pool.push(self.handed_over(false, None));
                return;
            }
        }
        #[cfg(target_os = "linux")]
        if self.pooled {
            let reuse = self.reuse.take();
            if let Ok(kept) = self.recycle(reuse.map(|r| r.keep)) {
                let kept = reuse.filter(|_| kept);
                let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
                if pool.len() < POOL_MAX {
                    // The pool takes over the mapping: `self` must not
                    // unmap it.
                    pool.push(self.handed_over(self.file_backed, kept));
                    return;
                }
            }
        }
        // SAFETY: ptr/len describe a mapping this value owns and nothing else
        // refers to it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_reservations_come_back_inaccessible_and_zero() {
        // A length no other test reserves, so the pool entry is ours.
        let len = 37 * page_size();
        let mut seen = Vec::new();
        for round in 0..20u8 {
            let mut m = Mmap::reserve_pooled(len).unwrap();
            assert_eq!(m.len(), len);
            let used = (1 + round as usize % 5) * page_size();
            m.make_accessible(0, used).unwrap();
            // SAFETY: [0, used) was just made read-write.
            let bytes = unsafe { std::slice::from_raw_parts_mut(m.as_ptr(), used) };
            assert!(bytes.iter().all(|b| *b == 0), "round {round}: not zero");
            bytes.fill(round + 1);
            seen.push(m.as_ptr() as usize);
        }
        if cfg!(target_os = "linux") {
            // Reused: far fewer distinct mappings than rounds.
            seen.sort_unstable();
            seen.dedup();
            assert!(seen.len() < 5, "{} distinct mappings", seen.len());
        }
    }

    /// A keyed reservation comes back *ready* to the same key only: with
    /// its kept range accessible and every byte written before discarded;
    /// any other key gets it reset (inaccessible, zero).
    #[test]
    fn keyed_reservations_keep_only_initial_contents() {
        // A length no other test reserves, so the pool entries are ours.
        let len = 43 * page_size();
        let keep = 3 * page_size();
        let key = (u64::MAX - 7, 2);
        let other_key = Some(((u64::MAX - 8, 2), keep));
        let check_zero = |m: &mut Mmap, what: &str| {
            assert_eq!(m.accessible, 0, "{what}");
            m.make_accessible(0, keep).unwrap();
            // SAFETY: [0, keep) was just made read-write.
            let bytes = unsafe { std::slice::from_raw_parts(m.as_ptr(), keep) };
            assert!(bytes.iter().all(|b| *b == 0), "{what}: not zero");
        };
        let mut ready_rounds = 0;
        for round in 0..10u8 {
            let (mut m, ready) = Mmap::reserve_pooled_for(len, Some((key, keep))).unwrap();
            if ready {
                ready_rounds += 1;
                assert_eq!(m.accessible, keep, "round {round}");
            } else {
                m.make_accessible(0, keep).unwrap();
            }
            // SAFETY: [0, keep) is read-write (ready, or just made so).
            let bytes = unsafe { std::slice::from_raw_parts_mut(m.as_ptr(), keep) };
            assert!(
                bytes.iter().all(|b| *b == 0),
                "round {round}: a write leaked"
            );
            m.set_reuse(key, keep);
            bytes.fill(round + 1);
            // Grown past the kept range: made inaccessible again on reuse.
            m.make_accessible(keep, page_size()).unwrap();
            // Another key meanwhile gets a clean reservation.
            let (mut other, ready) = Mmap::reserve_pooled_for(len, other_key).unwrap();
            assert!(!ready, "round {round}: another key's contents");
            check_zero(&mut other, "another key");
            drop(other);
            drop(m);
        }
        // Both entries taken by other keys: neither is ready, both are reset.
        let (mut a, ready_a) = Mmap::reserve_pooled_for(len, other_key).unwrap();
        let (mut b, ready_b) = Mmap::reserve_pooled_for(len, None).unwrap();
        assert!(!ready_a && !ready_b);
        check_zero(&mut a, "reset for another key");
        check_zero(&mut b, "reset without a key");
        if cfg!(target_os = "linux") {
            // The pool is shared with other tests (16 entries): most rounds
            // still find the entry.
            assert!(ready_rounds >= 3, "reused ready {ready_rounds} times");
        }
        drop((a, b));
        // A dropped module's kept reservations are reset.
        let (mut m, _) = Mmap::reserve_pooled_for(len, Some((key, keep))).unwrap();
        m.make_accessible(0, keep).unwrap();
        m.set_reuse(key, keep);
        drop(m);
        forget_module(key.0);
        let (mut m, ready) = Mmap::reserve_pooled_for(len, Some((key, keep))).unwrap();
        assert!(!ready, "a forgotten module's reservation came back ready");
        check_zero(&mut m, "forgotten");
    }

    #[test]
    fn zeroed_pooled_mappings_come_back_zero() {
        // A length no other test maps, so the pool entry is ours.
        let len = 41 * page_size();
        let mut seen = Vec::new();
        for round in 0..20u8 {
            let m = Mmap::zeroed_pooled(len).unwrap();
            // SAFETY: the whole mapping is read-write.
            let bytes = unsafe { std::slice::from_raw_parts_mut(m.as_ptr(), len) };
            assert!(bytes.iter().all(|b| *b == 0), "round {round}: not zero");
            bytes[..(1 + round as usize) * 1000].fill(round + 1);
            seen.push(m.as_ptr() as usize);
        }
        if cfg!(target_os = "linux") {
            seen.sort_unstable();
            seen.dedup();
            assert!(seen.len() < 5, "{} distinct mappings", seen.len());
        }
    }

    #[test]
    fn reserve_protect() {
        let mut m = Mmap::reserve(3 * page_size()).unwrap();
        m.make_accessible(0, 3 * page_size()).unwrap();
        // SAFETY: the first page was made read-write.
        unsafe { m.as_ptr().write(7) };
        assert!(m.make_accessible(1, 1).is_err());
        assert!(m.make_accessible(0, 10 * page_size()).is_err());
        m.make_read_only(0, page_size()).unwrap();
        // SAFETY: the first page is readable.
        assert_eq!(unsafe { m.as_ptr().read() }, 7);
    }
}
