//! Linear memories: [`Memory`] (the handle) and `MemoryData` (the mapping).
//!
//! Two layouts, matching the artifact's [`MemoryStrategy`]:
//! - **Guard**: `reservation + guard` bytes are reserved inaccessible and
//!   `[0, length)` is made read-write; growing makes more pages read-write and
//!   the base never moves. Out-of-bounds accesses fault and become traps.
//! - **Explicit**: only the current length is mapped; growing may move the
//!   mapping (`mremap`). Compiled code checks bounds itself.
//!
//! The authoritative `VMMemoryDefinition` is inline in the defining
//! instance's VMContext (or boxed, for host-created memories); importers point
//! at it, so a grow is seen by every user.

use crate::error::Error;
use crate::store::{AsContext, AsContextMut, Stored};
use crate::sys::mmap::Mmap;
use crate::vmcontext::VMMemoryDefinition;
use wasmc_format::{MemoryStrategy, MemoryType, WASM_PAGE_SIZE};

/// Strategy of memories created by the host: large enough for any guard
/// layout [`wasmc_format::ArtifactHeader::check_host`] accepts.
pub(crate) const HOST_MEMORY_STRATEGY: MemoryStrategy = MemoryStrategy::Guard {
    reservation: 1 << 33,
    guard: 1 << 32,
};

pub(crate) struct MemoryData {
    mmap: Mmap,
    def: *mut VMMemoryDefinition,
    own_def: Option<Box<VMMemoryDefinition>>,
    pub ty: MemoryType,
    pub strategy: MemoryStrategy,
    len: usize,
}

impl MemoryData {
    /// A memory of `ty.min` pages. Its definition is boxed until
    /// [`Self::set_def`] moves it into a VMContext.
    pub fn new(
        ty: MemoryType,
        strategy: MemoryStrategy,
        max_pages: u64,
    ) -> Result<MemoryData, String> {
        if ty.shared {
            return Err("shared memories are not supported".into());
        }
        let limit = max_pages.min(ty.max_pages_limit());
        if ty.min > limit {
            return Err(format!(
                "memory minimum of {} pages exceeds the limit of {limit} pages",
                ty.min,
            ));
        }
        let len = usize::try_from(ty.min * WASM_PAGE_SIZE)
            .map_err(|_| "memory minimum exceeds the address space")?;
        let mmap = match strategy {
            MemoryStrategy::Guard { reservation, guard } => {
                // Only a 64-bit memory can ask for more than the reservation.
                if len as u64 > reservation {
                    return Err(format!(
                        "memory minimum of {} pages exceeds the reservation of {reservation:#x} bytes",
                        ty.min
                    ));
                }
                let total = reservation
                    .checked_add(guard)
                    .and_then(|t| usize::try_from(t).ok())
                    .ok_or("memory reservation too large")?;
                let mut m = Mmap::reserve_pooled(total)
                    .map_err(|e| format!("cannot reserve memory: {e}"))?;
                m.make_accessible(0, len)
                    .map_err(|e| format!("cannot commit memory: {e}"))?;
                m
            }
            MemoryStrategy::Explicit => {
                Mmap::read_write(len).map_err(|e| format!("cannot allocate memory: {e}"))?
            }
        };
        let mut own_def = Box::new(VMMemoryDefinition {
            base: mmap.as_ptr(),
            current_length: len,
        });
        Ok(MemoryData {
            def: &mut *own_def,
            own_def: Some(own_def),
            mmap,
            ty,
            strategy,
            len,
        })
    }

    /// Makes `def` (inside a VMContext) the authoritative definition.
    ///
    /// # Safety
    /// `def` must stay valid as long as this memory (it lives in the store).
    pub unsafe fn set_def(&mut self, def: *mut VMMemoryDefinition) {
        self.own_def = None;
        self.def = def;
        self.sync();
    }

    pub fn def(&self) -> *mut VMMemoryDefinition {
        self.def
    }

    fn sync(&mut self) {
        // SAFETY: def points to a live definition (see set_def / own_def).
        unsafe {
            (*self.def).base = self.mmap.as_ptr();
            (*self.def).current_length = self.len;
        }
    }

    pub fn base(&self) -> *mut u8 {
        self.mmap.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn pages(&self) -> u64 {
        self.len as u64 / WASM_PAGE_SIZE
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: [base, base + len) is mapped read-write and owned by self.
        unsafe { std::slice::from_raw_parts(self.base(), self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.base(), self.len) }
    }

    /// Grows by `delta` pages; the old size in pages, or `None` if the
    /// declared maximum, the index type's limit (2^16 or 2^48 pages), the
    /// store limit or the reservation would be exceeded.
    pub fn grow(&mut self, delta: u64, store_max: u64) -> Option<u64> {
        let old = self.pages();
        let new = old.checked_add(delta)?;
        let limit = self.ty.max_pages_limit();
        let max = self.ty.max.unwrap_or(limit).min(limit).min(store_max);
        if new > max {
            return None;
        }
        if delta == 0 {
            return Some(old);
        }
        let new_len = usize::try_from(new * WASM_PAGE_SIZE).ok()?;
        match self.strategy {
            MemoryStrategy::Guard { reservation, .. } => {
                if new_len as u64 > reservation {
                    return None;
                }
                self.mmap.make_accessible(0, new_len).ok()?;
            }
            MemoryStrategy::Explicit => {
                if new_len > self.mmap.len() {
                    self.mmap.resize(new_len).ok()?;
                    self.mmap.make_accessible(0, new_len).ok()?;
                }
            }
        }
        self.len = new_len;
        self.sync();
        Some(old)
    }

    /// Can code compiled for `strategy` use this memory?
    pub fn fits_strategy(&self, strategy: MemoryStrategy) -> bool {
        match (strategy, self.strategy) {
            (MemoryStrategy::Explicit, _) => true,
            (MemoryStrategy::Guard { reservation, guard }, MemoryStrategy::Guard { .. }) => {
                self.mmap.len() as u64 >= reservation.saturating_add(guard)
            }
            (MemoryStrategy::Guard { .. }, MemoryStrategy::Explicit) => false,
        }
    }

    /// The current type (minimum = current size).
    pub fn current_type(&self) -> MemoryType {
        MemoryType {
            min: self.pages(),
            ..self.ty
        }
    }
}

/// A linear memory of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory(pub(crate) Stored);

impl Memory {
    /// Creates a memory owned by the host (for imports such as spectest's).
    pub fn new(mut store: impl AsContextMut, ty: MemoryType) -> Result<Memory, Error> {
        let store = store.as_context_mut();
        let data = MemoryData::new(ty, HOST_MEMORY_STRATEGY, store.max_memory_pages)
            .map_err(crate::InstantiationError::Resource)?;
        store.memories.push(data);
        Ok(Memory(store.stored(store.memories.len() - 1)))
    }

    pub(crate) fn data_of<'a>(&self, store: &'a crate::StoreOpaque) -> &'a MemoryData {
        &store.memories[store.check(self.0, "memory")]
    }

    pub(crate) fn data_of_mut<'a>(&self, store: &'a mut crate::StoreOpaque) -> &'a mut MemoryData {
        let i = store.check(self.0, "memory");
        &mut store.memories[i]
    }

    /// The memory's type; `min` is the current size.
    pub fn ty(&self, store: impl AsContext) -> MemoryType {
        self.data_of(store.as_context()).current_type()
    }

    /// Size in pages.
    pub fn size(&self, store: impl AsContext) -> u64 {
        self.data_of(store.as_context()).pages()
    }

    /// Size in bytes.
    pub fn data_size(&self, store: impl AsContext) -> usize {
        self.data_of(store.as_context()).len()
    }

    /// Grows by `delta` pages; returns the old size in pages.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64) -> Result<u64, Error> {
        let store = store.as_context_mut();
        let max = store.max_memory_pages;
        self.data_of_mut(store)
            .grow(delta, max)
            .ok_or_else(|| Error::msg("failed to grow memory"))
    }

    /// The memory's bytes.
    pub fn data<'a, T: AsContext + 'a>(&self, store: &'a T) -> &'a [u8] {
        self.data_of(store.as_context()).bytes()
    }

    /// The memory's bytes, writable.
    pub fn data_mut<'a, T: AsContextMut + 'a>(&self, store: &'a mut T) -> &'a mut [u8] {
        self.data_of_mut(store.as_context_mut()).bytes_mut()
    }

    /// Base address of the memory (may change on grow in explicit mode).
    pub fn data_ptr(&self, store: impl AsContext) -> *mut u8 {
        self.data_of(store.as_context()).base()
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read(&self, store: impl AsContext, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        let d = self.data_of(store.as_context()).bytes();
        let src = offset
            .checked_add(buf.len())
            .and_then(|end| d.get(offset..end))
            .ok_or_else(|| Error::msg("out of bounds memory access"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    /// Copies `buf` into the memory at `offset`.
    pub fn write(
        &self,
        mut store: impl AsContextMut,
        offset: usize,
        buf: &[u8],
    ) -> Result<(), Error> {
        let d = self.data_of_mut(store.as_context_mut()).bytes_mut();
        let dst = offset
            .checked_add(buf.len())
            .and_then(|end| d.get_mut(offset..end))
            .ok_or_else(|| Error::msg("out of bounds memory access"))?;
        dst.copy_from_slice(buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(min: u64, max: Option<u64>) -> MemoryType {
        MemoryType {
            min,
            max,
            memory64: false,
            shared: false,
        }
    }

    #[test]
    fn guard_memory_grows_in_place() {
        let mut m = MemoryData::new(ty(1, Some(3)), HOST_MEMORY_STRATEGY, 65536).unwrap();
        let base = m.base();
        m.bytes_mut()[65535] = 9;
        assert_eq!(m.grow(1, 65536), Some(1));
        assert_eq!(m.grow(2, 65536), None);
        assert_eq!(m.base(), base);
        assert_eq!(m.bytes()[65535], 9);
        assert_eq!(m.len(), 2 * 65536);
        // SAFETY: the own definition is live.
        assert_eq!(unsafe { (*m.def()).current_length }, 2 * 65536);
    }

    #[test]
    fn explicit_memory_may_move() {
        let mut m = MemoryData::new(ty(0, None), MemoryStrategy::Explicit, 100).unwrap();
        assert_eq!(m.len(), 0);
        assert_eq!(m.grow(2, 100), Some(0));
        m.bytes_mut()[2 * 65536 - 1] = 1;
        assert_eq!(m.grow(200, 100), None);
        assert_eq!(m.grow(10, 100), Some(2));
        assert_eq!(m.bytes()[2 * 65536 - 1], 1);
        // SAFETY: the own definition is live.
        assert_eq!(unsafe { (*m.def()).base }, m.base());
    }
}
