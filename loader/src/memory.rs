//! [`Memory`]: the public handle of a linear memory. The mapping and its
//! growth are the runtime's (`vm/memory.rs`).

use crate::error::Error;
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::vm::memory::{MemoryData, HOST_MEMORY_STRATEGY};
use crate::vm::store::Stored;
use wasmc_format::MemoryType;

/// A linear memory of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory(pub(crate) Stored);

impl Memory {
    /// Creates a memory owned by the host (for imports such as spectest's).
    pub fn new(mut store: impl AsContextMut, ty: MemoryType) -> Result<Memory, Error> {
        let store = store.as_context_mut().store;
        if !store.memory_growing(0, ty.min, ty.max)? {
            return Err(crate::InstantiationError::Resource(format!(
                "memory of {} pages refused by the store's limiter",
                ty.min
            ))
            .into());
        }
        let data = MemoryData::new(ty, HOST_MEMORY_STRATEGY, store.max_memory_pages)
            .map_err(crate::InstantiationError::Resource)?;
        store.memories.push(data);
        Ok(Memory(store.stored(store.memories.len() - 1)))
    }

    pub(crate) fn data_of<'a>(&self, store: &'a StoreOpaque) -> &'a MemoryData {
        &store.memories[store.check(self.0, "memory")]
    }

    pub(crate) fn data_of_mut<'a>(&self, store: &'a mut StoreOpaque) -> &'a mut MemoryData {
        let i = store.check(self.0, "memory");
        &mut store.memories[i]
    }

    /// The memory's type; `min` is the current size.
    pub fn ty(&self, store: impl AsContext) -> MemoryType {
        self.data_of(store.as_context().store).current_type()
    }

    /// Size in pages.
    pub fn size(&self, store: impl AsContext) -> u64 {
        self.data_of(store.as_context().store).pages()
    }

    /// Size in bytes.
    pub fn data_size(&self, store: impl AsContext) -> usize {
        self.data_of(store.as_context().store).len()
    }

    /// Grows by `delta` pages; returns the old size in pages.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64) -> Result<u64, Error> {
        let store = store.as_context_mut().store;
        let i = store.check(self.0, "memory");
        store
            .grow_memory(i, delta)?
            .ok_or_else(|| Error::msg("failed to grow memory"))
    }

    /// The memory's bytes.
    pub fn data<'a, T: AsContext + 'a>(&self, store: &'a T) -> &'a [u8] {
        self.data_of(store.as_context().store).bytes()
    }

    /// The memory's bytes, writable.
    pub fn data_mut<'a, T: AsContextMut + 'a>(&self, store: &'a mut T) -> &'a mut [u8] {
        self.data_of_mut(store.as_context_mut().store).bytes_mut()
    }

    /// Base address of the memory (may change on grow in explicit mode).
    pub fn data_ptr(&self, store: impl AsContext) -> *mut u8 {
        self.data_of(store.as_context().store).base()
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read(&self, store: impl AsContext, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        let d = self.data_of(store.as_context().store).bytes();
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
        let d = self.data_of_mut(store.as_context_mut().store).bytes_mut();
        let dst = offset
            .checked_add(buf.len())
            .and_then(|end| d.get_mut(offset..end))
            .ok_or_else(|| Error::msg("out of bounds memory access"))?;
        dst.copy_from_slice(buf);
        Ok(())
    }
}
