//! Anonymous virtual-memory regions: reserve, make accessible, grow.
//!
//! A [`Mmap`] owns `len` bytes of address space starting at `ptr`, mapped
//! private and anonymous; it unmaps them on drop. Linear memories and the
//! loader's copies of artifacts use it.

use std::io;
use std::ptr::NonNull;

/// An owned anonymous mapping.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
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
        Ok(())
    }

    /// Resizes the mapping to `new_len` bytes (rounded up to pages); the
    /// mapping may move. New bytes are zero; the caller sets their protection.
    #[cfg(target_os = "linux")]
    pub(crate) fn resize(&mut self, new_len: usize) -> io::Result<()> {
        let new_len = round_up_to_page(new_len.max(1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "mapping too large"))?;
        if new_len == self.len {
            return Ok(());
        }
        // SAFETY: ptr/len describe a mapping we own; MREMAP_MAYMOVE lets the
        // kernel pick a new address, and we update ptr/len from the result.
        let p = unsafe {
            libc::mremap(
                self.ptr.as_ptr().cast(),
                self.len,
                new_len,
                libc::MREMAP_MAYMOVE,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        self.ptr = NonNull::new(p.cast()).expect("mremap returned null");
        self.len = new_len;
        Ok(())
    }

    /// Resizes the mapping by copying into a new one.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn resize(&mut self, new_len: usize) -> io::Result<()> {
        let mut new = Mmap::read_write(new_len)?;
        let n = self.len.min(new.len);
        // SAFETY: both mappings are at least n bytes long and distinct.
        unsafe { std::ptr::copy_nonoverlapping(self.as_ptr(), new.as_ptr(), n) };
        std::mem::swap(self, &mut new);
        Ok(())
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping this value owns and nothing else
        // refers to it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_protect_resize() {
        let mut m = Mmap::reserve(3 * page_size()).unwrap();
        m.make_accessible(0, 3 * page_size()).unwrap();
        // SAFETY: the first page was made read-write.
        unsafe { m.as_ptr().write(7) };
        assert!(m.make_accessible(1, 1).is_err());
        // (mremap needs a single mapping: the whole region has one protection.)
        assert!(m.make_accessible(0, 10 * page_size()).is_err());
        m.resize(8 * page_size()).unwrap();
        m.make_accessible(0, 8 * page_size()).unwrap();
        // SAFETY: the whole mapping is read-write now; mremap kept the bytes.
        unsafe {
            assert_eq!(m.as_ptr().read(), 7);
            m.as_ptr().add(8 * page_size() - 1).write(1);
        }
    }
}
