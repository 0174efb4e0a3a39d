//! Sealed artifact images: the private copy that the safe loading functions
//! verify and then execute from.
//!
//! The bytes go into a `memfd` (Linux), which is then sealed against every
//! change (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`) and
//! mapped `MAP_PRIVATE`. After sealing no process, including this one, can
//! write, truncate or grow it, so what was verified is what runs, and a
//! redeploy that rewrites or truncates the original file affects nothing
//! (no `SIGBUS`, no changed code). Unlike an anonymous copy, the sealed file
//! can be mapped again: [`SealedImage::fd`] gives the descriptor, so data
//! images can later be mapped copy-on-write straight from the verified bytes
//! (issue 15). Its load-time cost (copy plus hash) against the trusted
//! file mapping is measured in `docs/trust.md`.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// A sealed memfd holding an artifact, mapped private and read-only.
#[derive(Debug)]
pub(crate) struct SealedImage {
    file: File,
    ptr: NonNull<u8>,
    /// Length of the mapping (the file length rounded up to pages).
    map_len: usize,
    /// Length of the file.
    len: usize,
}

// SAFETY: the image owns its mapping and descriptor like a `Box<[u8]>`; the
// mapping is only read through `&self` (its protection changes need `&mut`).
unsafe impl Send for SealedImage {}
// SAFETY: shared access only reads the sealed, never-written mapping.
unsafe impl Sync for SealedImage {}

impl SealedImage {
    /// Copies the rest of `file` (from its current position) into a sealed
    /// image. The copy runs in the kernel where it can (`std::io::copy`
    /// uses `copy_file_range`/`sendfile` on Linux).
    pub(crate) fn from_file(file: &File) -> io::Result<SealedImage> {
        let mut out = create()?;
        let mut src = file;
        io::copy(&mut src, &mut out)?;
        Self::seal_and_map(out)
    }

    /// Copies `bytes` into a sealed image.
    pub(crate) fn from_bytes(bytes: &[u8]) -> io::Result<SealedImage> {
        let mut out = create()?;
        out.write_all(bytes)?;
        Self::seal_and_map(out)
    }

    fn seal_and_map(file: File) -> io::Result<SealedImage> {
        let seals =
            libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on a descriptor we own; F_ADD_SEALS takes an int.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "artifact too large"))?;
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "empty artifact"));
        }
        let map_len = super::mmap::round_up_to_page(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "artifact too large"))?;
        // SAFETY: a new private read-only mapping of a file we own, at an
        // address the kernel picks: it aliases nothing the program owns. The
        // file is sealed against writes, shrinking and growing, so its bytes
        // cannot change and no page of `[0, len)` can disappear under us.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SealedImage {
            file,
            ptr: NonNull::new(ptr.cast()).expect("mmap returned null"),
            map_len,
            len,
        })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `[ptr, ptr + len)` is mapped readable for as long as
        // `self` (made read-only or read+execute, never inaccessible), and
        // the sealed file behind it cannot change or shrink.
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

    /// The sealed file, for mapping parts of the verified image again (its
    /// offsets are image offsets).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Drop for SealedImage {
    fn drop(&mut self) {
        // SAFETY: ptr/map_len describe the mapping this value owns; nothing
        // refers to it any more. The descriptor is closed by `File`'s drop.
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

    #[test]
    fn sealed_image_cannot_change() {
        let img = SealedImage::from_bytes(b"hello, sealed world").unwrap();
        assert_eq!(img.bytes(), b"hello, sealed world");
        // Writing, truncating or growing the sealed file fails.
        let mut f = File::from(img.fd().try_clone_to_owned().unwrap());
        assert!(f.write_all(b"x").is_err());
        assert!(f.set_len(3).is_err());
        assert!(f.set_len(1 << 20).is_err());
        assert_eq!(img.bytes(), b"hello, sealed world");
    }

    #[test]
    fn copies_a_file_that_is_then_rewritten() {
        let path = std::env::temp_dir().join(format!("wasmc-sealed-{}", std::process::id()));
        std::fs::write(&path, vec![5u8; 10_000]).unwrap();
        let img = SealedImage::from_file(&File::open(&path).unwrap()).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert_eq!(img.bytes(), &[5u8; 10_000][..]);
        std::fs::remove_file(&path).unwrap();
    }
}
