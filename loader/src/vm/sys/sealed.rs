//! Verified artifact images: the private copy that the safe loading
//! functions verify and then execute from.
//!
//! The bytes are read into a private anonymous mapping (transparent huge
//! pages where the kernel allows them: a 30 MB artifact is then 15 page
//! faults, not 7,500), which no other process can reach and which this one
//! only reads. A redeploy that rewrites or truncates the original file
//! therefore affects nothing (no `SIGBUS`, no changed code), and what was
//! verified is what runs.
//!
//! Memory images must also be mappable again, copy-on-write, into each
//! instance's memory (issue 15), which an anonymous copy cannot be. So the
//! part of the image that holds them (`.wasmc.data`, found by the caller)
//! goes into a `memfd` instead (from a file: straight from the file, with
//! `sendfile`), sealed against every change (`F_SEAL_WRITE |
//! F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`) and mapped over the same
//! range of the copy: the image's bytes and the descriptor's are then the
//! same pages. Copying the whole artifact into a memfd, as this module did
//! first, cost 26 ms for esbuild's 30 MB artifact against 13 ms now on this
//! machine: shmem inserts and frees every 4 KiB page in the page cache.
//! Costs are measured in `docs/trust.md`.

use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// A private copy of an artifact, read-only, whose `sealed` range (if any)
/// is backed by a sealed memfd.
#[derive(Debug)]
pub(crate) struct SealedImage {
    ptr: NonNull<u8>,
    /// Length of the mapping (the artifact length rounded up to pages).
    map_len: usize,
    /// Length of the artifact.
    len: usize,
    /// The sealed memfd and the image range it backs (page aligned start;
    /// memfd offset 0 is image offset `range.start`).
    sealed: Option<(File, Range<usize>)>,
}

// SAFETY: the image owns its mapping and descriptor like a `Box<[u8]>`; the
// mapping is only read through `&self` (its protection changes need `&mut`).
unsafe impl Send for SealedImage {}
// SAFETY: shared access only reads the private mapping, which nothing
// writes after construction.
unsafe impl Sync for SealedImage {}

impl SealedImage {
    /// Copies `file` into a private image, the range `data` of it (where
    /// the caller expects `.wasmc.data`, `None` for nowhere) straight from
    /// the file into a sealed memfd rather than through the copy (see the
    /// module docs). A file that changes while it is read gives an image of
    /// whatever was read, which the caller's verification then judges (a
    /// file that shrinks is an error); it can never change the image
    /// afterwards.
    pub(crate) fn from_file(file: &File, data: Option<Range<usize>>) -> io::Result<SealedImage> {
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "artifact too large"))?;
        let mut img = Self::anonymous(len)?;
        img.len = len;
        let Some(r) = img.sealable(data) else {
            img.read_at(file, 0..len)?;
            img.protect()?;
            return Ok(img);
        };
        img.read_at(file, 0..r.start)?;
        img.read_at(file, r.end..len)?;
        match create() {
            Ok(memfd) => {
                send_range(file, &memfd, r.clone())?;
                // Any failure from here on fails the load: the range is not
                // touched again after a `MAP_FIXED` that may have failed.
                img.map_sealed(memfd, r)?;
            }
            // No memfd (an old kernel, a seccomp filter): the range is read
            // into the copy, and its images copied at instantiation.
            Err(_) => img.read_at(file, r)?,
        }
        img.protect()?;
        Ok(img)
    }

    /// Copies `bytes` into a private image, the range `data` of it also
    /// into a sealed memfd (see [`Self::from_file`]).
    pub(crate) fn from_bytes(bytes: &[u8], data: Option<Range<usize>>) -> io::Result<SealedImage> {
        let mut img = Self::anonymous(bytes.len())?;
        // SAFETY: the fresh mapping is read-write and at least `bytes.len()`
        // long, and being new it cannot overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), img.ptr.as_ptr(), bytes.len()) };
        img.len = bytes.len();
        if let Some(r) = img.sealable(data) {
            // Without a memfd the images are copied at instantiation; any
            // later failure fails the load (see `from_file`).
            if let Ok(mut memfd) = create() {
                memfd.write_all(&bytes[r.clone()])?;
                img.map_sealed(memfd, r)?;
            }
        }
        img.protect()?;
        Ok(img)
    }

    /// A read-write anonymous mapping for `len` bytes (`len` is 0 until
    /// filled), asking for huge pages.
    fn anonymous(len: usize) -> io::Result<SealedImage> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "empty artifact"));
        }
        let map_len = super::mmap::round_up_to_page(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "artifact too large"))?;
        // SAFETY: a new anonymous private mapping at an address the kernel
        // picks: it aliases nothing the program owns.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Huge pages make the copy's page faults 512 times fewer; the advice
        // may be refused (THP off), which only costs time. A mapping smaller
        // than one huge page cannot use one: no system call for it.
        if map_len >= 2 << 20 {
            // SAFETY: advice on the mapping just made, which we own.
            unsafe { libc::madvise(ptr, map_len, libc::MADV_HUGEPAGE) };
        }
        Ok(SealedImage {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned null"),
            map_len,
            len: 0,
            sealed: None,
        })
    }

    /// Reads `range` of `file` into the same range of the copy, which must
    /// lie inside it; the file ending early is an error.
    fn read_at(&mut self, file: &File, range: Range<usize>) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        if range.start >= range.end {
            return Ok(());
        }
        if range.end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "read outside the image",
            ));
        }
        // SAFETY: `range` lies inside the mapping (checked above), which is
        // read-write until `protect` and referenced by nothing else: the
        // only `&mut self` is ours.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(range.start), range.len())
        };
        file.read_exact_at(buf, range.start as u64)
            .map_err(|e| changed(e, "the artifact file shrank while it was read"))
    }

    /// The range to back by a memfd for `r` (where `.wasmc.data` is), if it is
    /// usable: inside the image, its start on a page, extended to whole
    /// pages up to the image's end, so that mapping the memfd replaces no
    /// byte after `r` by the zeros past the memfd's end.
    fn sealable(&self, r: Option<Range<usize>>) -> Option<Range<usize>> {
        let r = r?;
        let end = super::mmap::round_up_to_page(r.end)?.min(self.len);
        let page = super::mmap::page_size();
        (r.start <= r.end && r.end <= self.len && r.start.is_multiple_of(page) && r.start < end)
            .then_some(r.start..end)
    }

    /// Seals `memfd`, which holds the image's bytes `range` (a
    /// [`Self::sealable`] range), and maps it over that range.
    fn map_sealed(&mut self, memfd: File, range: Range<usize>) -> io::Result<()> {
        let seals =
            libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on a descriptor we own; F_ADD_SEALS takes an int.
        if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if memfd.metadata()?.len() != range.len() as u64 || range.end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "memfd of another length",
            ));
        }
        let map_len = super::mmap::round_up_to_page(range.len()).unwrap_or(usize::MAX);
        // SAFETY: `[range.start, range.start + map_len)` lies inside our
        // mapping (`range` ends at most at `len`, checked above; rounded up
        // to a page it ends at most at `map_len`) and starts on a page (a
        // `sealable` range); no reference into it is live (`&mut self`), so
        // MAP_FIXED replaces only our own pages. The memfd is sealed and as
        // long as the range (checked after sealing), so its pages never
        // change or disappear: from now on they are the image's bytes there.
        let p = unsafe {
            libc::mmap(
                self.ptr.as_ptr().add(range.start).cast(),
                map_len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                memfd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        self.sealed = Some((memfd, range));
        Ok(())
    }

    /// Makes the whole image read-only: nothing writes it from now on.
    fn protect(&self) -> io::Result<()> {
        // SAFETY: the whole mapping is ours; no reference into it is live
        // that could observe a write (every one is a read).
        if unsafe { libc::mprotect(self.ptr.as_ptr().cast(), self.map_len, libc::PROT_READ) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `[ptr, ptr + len)` is mapped readable for as long as
        // `self` (made read-only or read+execute, never inaccessible), and
        // nothing writes it after construction (private anonymous pages
        // only we can reach, and sealed memfd pages).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Makes `range` (page aligned, inside the image) read+execute.
    pub(crate) fn make_executable(&mut self, range: std::ops::Range<usize>) -> io::Result<()> {
        let page = super::mmap::page_size();
        if range.start > range.end || range.end > self.len || !range.start.is_multiple_of(page) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "`.text` is outside the image or not page aligned",
            ));
        }
        // SAFETY: `range` lies inside our private mapping (checked above),
        // page aligned at its start; changing its protection affects no other
        // mapping.
        let r = unsafe {
            libc::mprotect(
                self.ptr.as_ptr().add(range.start).cast(),
                range.len(),
                libc::PROT_READ | libc::PROT_EXEC,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The sealed memfd and its offset for the image bytes `range`, if the
    /// sealed part of the image holds all of them: they can be mapped again
    /// from it (copy-on-write memory images).
    pub(crate) fn fd(&self, range: &Range<usize>) -> Option<(BorrowedFd<'_>, u64)> {
        let (file, sealed) = self.sealed.as_ref()?;
        (sealed.start <= range.start && range.start <= range.end && range.end <= sealed.end)
            .then(|| (file.as_fd(), (range.start - sealed.start) as u64))
    }
}

impl Drop for SealedImage {
    fn drop(&mut self) {
        // SAFETY: ptr/map_len describe the mapping this value owns (the
        // memfd part was mapped inside it); nothing refers to it any more.
        // The descriptor is closed by `File`'s drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.map_len) };
    }
}

/// `e`, or `what` if the file ended early.
fn changed(e: io::Error, what: &str) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(io::ErrorKind::UnexpectedEof, what)
    } else {
        e
    }
}

/// Copies `range` of `file` into `memfd` (at its start) in the kernel.
fn send_range(file: &File, memfd: &File, range: Range<usize>) -> io::Result<()> {
    let mut offset = libc::off_t::try_from(range.start)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    let mut left = range.len();
    while left > 0 {
        // SAFETY: both descriptors are open files we borrow, and `offset`
        // is a live local that sendfile updates; the call reads `file` at
        // `offset` without moving its file position and appends to `memfd`.
        let n = unsafe { libc::sendfile(memfd.as_raw_fd(), file.as_raw_fd(), &mut offset, left) };
        match n {
            0 => {
                let e = io::Error::from(io::ErrorKind::UnexpectedEof);
                return Err(changed(e, "the artifact file shrank while it was read"));
            }
            n if n > 0 => left -= n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// A new, empty memfd that allows sealing.
fn create() -> io::Result<File> {
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns
    // a new descriptor or -1.
    let fd = unsafe {
        libc::memfd_create(
            c"wasmc-artifact".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Bytes whose every page differs, `pages` pages and `tail` bytes.
    fn pattern(pages: usize, tail: usize) -> Vec<u8> {
        let page = super::super::mmap::page_size();
        (0..pages * page + tail)
            .map(|i| (i / page * 7 + i % 251) as u8)
            .collect()
    }

    #[test]
    fn the_sealed_part_cannot_change() {
        let page = super::super::mmap::page_size();
        let bytes = pattern(3, 100);
        let img = SealedImage::from_bytes(&bytes, Some(page..2 * page + 10)).unwrap();
        assert!(img.bytes() == bytes, "image differs from its input");
        // The memfd holds whole pages up to the image's end: page 1 and 2.
        let (fd, offset) = img.fd(&(page..2 * page)).unwrap();
        assert_eq!(offset, 0);
        let mut f = File::from(fd.try_clone_to_owned().unwrap());
        let mut held = Vec::new();
        // The descriptor shares the memfd's file position, left at its end
        // by the copy.
        std::io::Seek::rewind(&mut f).unwrap();
        f.read_to_end(&mut held).unwrap();
        assert!(held == bytes[page..3 * page], "memfd holds other bytes");
        // Writing, truncating or growing the sealed file fails.
        assert!(f.write_all(b"x").is_err());
        assert!(f.set_len(3).is_err());
        assert!(f.set_len(1 << 20).is_err());
        assert!(img.bytes() == bytes, "image changed");
        // Ranges outside the sealed part have no descriptor.
        assert!(img.fd(&(0..page)).is_none());
        assert!(img.fd(&(page..4 * page)).is_none());
        assert_eq!(img.fd(&(2 * page..2 * page + 5)).unwrap().1, page as u64);
    }

    #[test]
    fn a_sealed_range_at_the_end_keeps_the_bytes_after_it() {
        let page = super::super::mmap::page_size();
        // The range ends mid-page and the image goes on: the bytes after it
        // in that page are the image's, not the zeros past a memfd's end.
        for (pages, tail, range) in [
            (3, 100, page..page + 1),
            (3, 100, 2 * page..3 * page + 100),
            (2, 0, page..2 * page),
        ] {
            let bytes = pattern(pages, tail);
            let img = SealedImage::from_bytes(&bytes, Some(range.clone())).unwrap();
            assert!(
                img.bytes() == bytes,
                "image differs from its input: {range:?}"
            );
            assert!(img.fd(&range).is_some(), "{range:?} was not sealed");
        }
    }

    #[test]
    fn unusable_ranges_seal_nothing() {
        let page = super::super::mmap::page_size();
        let bytes = pattern(2, 0);
        for range in [1..page, page..3 * page, page..page, 2 * page..page] {
            let img = SealedImage::from_bytes(&bytes, Some(range.clone())).unwrap();
            assert!(
                img.bytes() == bytes,
                "image differs from its input: {range:?}"
            );
            assert!(img.sealed.is_none(), "{range:?} was sealed");
        }
    }

    #[test]
    fn copies_a_file_that_is_then_rewritten() {
        let path = std::env::temp_dir().join(format!("wasmc-sealed-{}", std::process::id()));
        std::fs::write(&path, vec![5u8; 10_000]).unwrap();
        let img = SealedImage::from_file(&File::open(&path).unwrap(), Some(4096..8192)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert_eq!(img.bytes(), &[5u8; 10_000][..]);
        std::fs::remove_file(&path).unwrap();
    }

    /// `from_file` reads the head and tail first, then the rest around the
    /// sealed range, which comes straight from the file: wherever the range
    /// lies (inside the probed head or tail, across them, in the middle,
    /// at the end), the image is the file and the range is sealed.
    #[test]
    fn from_file_reads_around_the_sealed_range() {
        let page = super::super::mmap::page_size();
        let dir = std::env::temp_dir().join(format!("wasmc-sealed-ranges-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (pages, tail) in [(40, 123), (3, 0), (200, 7)] {
            let bytes = pattern(pages, tail);
            let path = dir.join(format!("f{pages}"));
            std::fs::write(&path, &bytes).unwrap();
            let len = bytes.len();
            let last = len / page * page;
            let ranges = [
                page..2 * page,
                page..len,
                2 * page..last,
                last.saturating_sub(3 * page)..len - 1,
                page..page + 10,
            ];
            for range in ranges {
                let f = File::open(&path).unwrap();
                let img = SealedImage::from_file(&f, Some(range.clone())).unwrap();
                assert!(
                    img.bytes() == bytes,
                    "{pages} pages, {range:?}: image differs"
                );
                let sealed = img.sealable(Some(range.clone()));
                assert_eq!(
                    img.sealed.as_ref().map(|(_, r)| r.clone()),
                    sealed,
                    "{pages} pages, {range:?}"
                );
            }
            // A file shorter than its length when looked at (it shrank
            // while it was read) is an error, never an image of zeros.
            let f = File::open(&path).unwrap();
            let mut img = SealedImage::anonymous(len + page).unwrap();
            img.len = len + page;
            let e = img.read_at(&f, 0..len + page).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
            assert!(e.to_string().contains("shrank"), "{e}");
            let memfd = create().unwrap();
            let e = send_range(&f, &memfd, len - 1..len + page).unwrap_err();
            assert!(e.to_string().contains("shrank"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_inputs_are_refused() {
        assert!(SealedImage::from_bytes(&[], None).is_err());
    }
}
