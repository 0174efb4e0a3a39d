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
//! part of the image that holds them (`.wasmc.data`, found by the caller) is
//! copied once more into a `memfd`, sealed against every change
//! (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`), and mapped
//! over the same range of the copy: the image's bytes and the descriptor's
//! are then the same pages. Copying the whole artifact into a memfd, as
//! this module did first, cost 23 ms for esbuild's 30 MB artifact against
//! 9 ms now: shmem inserts and frees every 4 KiB page in the page cache.
//! Costs are measured in `docs/trust.md`.

use std::fs::File;
use std::io::{self, Read, Write};
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
    /// Copies the rest of `file` (from its current position) into a private
    /// image; `locate` names the range of the copy to back by a sealed
    /// memfd (see the module docs), `None` for none. A file that changes
    /// while it is read gives an image of whatever was read, which the
    /// caller's verification then judges; it can never change the image
    /// afterwards.
    pub(crate) fn from_file(
        file: &File,
        locate: impl FnOnce(&[u8]) -> Option<Range<usize>>,
    ) -> io::Result<SealedImage> {
        let expected = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "artifact too large"))?;
        let mut img = Self::anonymous(expected)?;
        // Read at most `expected` bytes: a file that grows meanwhile is cut
        // at its length when we looked, one that shrinks ends the image
        // early.
        let mut got = 0;
        let mut src = file;
        while got < expected {
            // SAFETY: `[got, expected)` lies inside the mapping, which is
            // read-write until `finish` and referenced by nothing else yet.
            let buf = unsafe {
                std::slice::from_raw_parts_mut(img.ptr.as_ptr().add(got), expected - got)
            };
            match src.read(buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        img.len = got;
        img.finish(locate)
    }

    /// Copies `bytes` into a private image (see [`Self::from_file`]).
    pub(crate) fn from_bytes(
        bytes: &[u8],
        locate: impl FnOnce(&[u8]) -> Option<Range<usize>>,
    ) -> io::Result<SealedImage> {
        let mut img = Self::anonymous(bytes.len())?;
        // SAFETY: the fresh mapping is read-write and at least `bytes.len()`
        // long, and being new it cannot overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), img.ptr.as_ptr(), bytes.len()) };
        img.len = bytes.len();
        img.finish(locate)
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
        // may be refused (THP off), which only costs time.
        // SAFETY: advice on the mapping just made, which we own.
        unsafe { libc::madvise(ptr, map_len, libc::MADV_HUGEPAGE) };
        Ok(SealedImage {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned null"),
            map_len,
            len: 0,
            sealed: None,
        })
    }

    /// Backs the range `locate` names by a sealed memfd, then makes the
    /// whole image read-only.
    fn finish(
        mut self,
        locate: impl FnOnce(&[u8]) -> Option<Range<usize>>,
    ) -> io::Result<SealedImage> {
        if self.len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "empty artifact"));
        }
        let page = super::mmap::page_size();
        // The memfd covers whole pages of the image (up to its end), so that
        // mapping it over the copy replaces no byte after the range by the
        // zeros past the memfd's end.
        let range = locate(self.bytes()).and_then(|r| {
            let end = super::mmap::round_up_to_page(r.end)?.min(self.len);
            (r.start <= r.end && r.end <= self.len && r.start.is_multiple_of(page) && r.start < end)
                .then_some(r.start..end)
        });
        if let Some(range) = range {
            // No memfd (an old kernel, a seccomp filter): the images are
            // copied at instantiation instead of mapped.
            if let Ok(file) = self.seal_range(range.clone()) {
                self.sealed = Some((file, range));
            }
        }
        // SAFETY: the whole mapping is ours; no reference into it is live.
        if unsafe { libc::mprotect(self.ptr.as_ptr().cast(), self.map_len, libc::PROT_READ) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self)
    }

    /// Copies `range` of the image into a sealed memfd and maps it over the
    /// same range.
    fn seal_range(&mut self, range: Range<usize>) -> io::Result<File> {
        let mut file = create()?;
        file.write_all(&self.bytes()[range.clone()])?;
        let seals =
            libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on a descriptor we own; F_ADD_SEALS takes an int.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let map_len = super::mmap::round_up_to_page(range.len()).unwrap_or(usize::MAX);
        // SAFETY: `[range.start, range.start + map_len)` lies inside our
        // mapping (`range` ends at most at `len`, rounded up to a page it
        // ends at most at `map_len`) and starts on a page; no reference into
        // it is live (`&mut self`), so MAP_FIXED replaces only our own pages.
        // The memfd is sealed, so its pages never change or disappear, and
        // they hold the bytes they replace: reading the image is unchanged.
        let p = unsafe {
            libc::mmap(
                self.ptr.as_ptr().add(range.start).cast(),
                map_len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(file)
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
        let img = SealedImage::from_bytes(&bytes, |_| Some(page..2 * page + 10)).unwrap();
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
            let img = SealedImage::from_bytes(&bytes, |_| Some(range.clone())).unwrap();
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
            let img = SealedImage::from_bytes(&bytes, |_| Some(range.clone())).unwrap();
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
        let img =
            SealedImage::from_file(&File::open(&path).unwrap(), |_| Some(4096..8192)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert_eq!(img.bytes(), &[5u8; 10_000][..]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn empty_inputs_are_refused() {
        assert!(SealedImage::from_bytes(&[], |_| None).is_err());
    }
}
