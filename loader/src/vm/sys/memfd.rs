//! Sealed anonymous files: bytes that no process can change, and that can
//! be mapped copy-on-write any number of times.
//!
//! A [`SealedMemfd`] is a Linux `memfd` filled once and then sealed with
//! `F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`: after that no
//! one, this process included, can write, truncate or grow it, and the seals
//! cannot be removed. A private (`MAP_PRIVATE`) mapping of it therefore reads
//! exactly the bytes written at creation for as long as the mapping lives,
//! and can never raise `SIGBUS` (the file cannot shrink). Writes through
//! such a mapping go to private copies of the pages, never to the file.
//!
//! The loader's safe loading path keeps the memory images of a module's
//! `.wasmc.data` in one (`vm::code::ImageBacking`) and maps them into each
//! new instance's memories: the images are copied once per load, and
//! instantiation costs a few `mmap` calls whatever their size. Mapping them
//! from the artifact file instead would let a rewrite of the file change a
//! running instance's memory, and a truncation turn its reads into
//! `SIGBUS`.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A sealed memfd (module docs). Its bytes never change.
#[derive(Debug)]
pub(crate) struct SealedMemfd {
    file: File,
    len: u64,
}

impl SealedMemfd {
    /// A sealed memfd holding a copy of `bytes`; `Err` where memfds or seals
    /// are unavailable (then the caller copies instead of mapping).
    pub(crate) fn from_bytes(name: &std::ffi::CStr, bytes: &[u8]) -> io::Result<SealedMemfd> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: memfd_create takes a NUL-terminated name (a `CStr`) and
            // flags; it returns a new descriptor or -1.
            let fd = unsafe {
                libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            file.write_all(bytes)?;
            let seals =
                libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
            // SAFETY: fcntl on a descriptor we own; F_ADD_SEALS takes an int.
            if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // Read the length back from the sealed file: it is what the
            // kernel guarantees from now on.
            let len = file.metadata()?.len();
            if len != bytes.len() as u64 {
                return Err(io::Error::other("short write to a memfd"));
            }
            Ok(SealedMemfd { file, len })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (name, bytes);
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "sealed memfds need Linux",
            ))
        }
    }

    /// The descriptor, for mapping (its offsets are offsets into the bytes
    /// given to [`Self::from_bytes`]).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Its length in bytes (fixed by the seals).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn sealed_memfd_cannot_change() {
        let m = SealedMemfd::from_bytes(c"test", b"initial bytes").unwrap();
        assert_eq!(m.len(), 13);
        let mut f = File::from(m.fd().try_clone_to_owned().unwrap());
        assert!(f.write_all(b"x").is_err(), "write allowed");
        assert!(f.set_len(3).is_err(), "shrink allowed");
        assert!(f.set_len(1 << 20).is_err(), "grow allowed");
        let mut back = [0u8; 13];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut back, 0).unwrap();
        assert_eq!(&back, b"initial bytes");
    }
}
