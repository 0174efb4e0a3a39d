//! Linear memories' runtime side: `MemoryData`, the mapping behind a
//! public `Memory` handle.
//!
//! One layout for every memory, whatever the artifact's header says (the
//! sandbox is the loader's, see [`wasmc_format::memory`]):
//! [`GUARD_RESERVATION`] + [`GUARD_SIZE`] bytes are reserved inaccessible and
//! `[0, length)` is made read-write; growing makes more pages read-write and
//! the base never moves. Out-of-bounds accesses of guard-mode code fault and
//! become traps; code compiled with explicit bounds checks runs unchanged in
//! it. A header forged from guard mode to `Explicit` therefore cannot shrink
//! a memory below what unchecked code may reach.
//!
//! 64-bit memories (memory64) get the same layout: their code compares
//! every access with the current length, but nothing in the artifact can
//! make the loader give them less than the guard layout either, and their
//! base never moves. They can grow to [`GUARD_RESERVATION`] bytes (4 GiB) in
//! this loader; a grow beyond that fails (`memory.grow` returns -1).
//!
//! The authoritative `VMMemoryDefinition` is inline in the defining
//! instance's VMContext (or boxed, for host-created memories); importers point
//! at it, so a grow is seen by every user.
//!
//! Memory images (a module's initial contents) are mapped copy-on-write
//! over the fresh pages ([`MemoryData::apply_image`]): the base never moves,
//! so the mapping stays valid. With the pooling allocator the reservation
//! is a slot of the engine's pool ([`crate::vm::pool`]), given back when the
//! memory drops.

use crate::vm::code::ImageSource;
use crate::vm::pool::{Pool, SlotKey};
use crate::vm::sys::mmap::Mmap;
use crate::vm::vmcontext::VMMemoryDefinition;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use wasmc_format::memory::{GUARD_RESERVATION, GUARD_SIZE};
use wasmc_format::{MemoryType, WASM_PAGE_SIZE};

pub(crate) struct MemoryData {
    /// Taken out only by `Drop` (to go back to its pool slot).
    mmap: ManuallyDrop<Mmap>,
    /// The pool slot holding the memory, for the pooling allocator.
    slot: Option<PooledSlot>,
    def: *mut VMMemoryDefinition,
    own_def: Option<Box<VMMemoryDefinition>>,
    pub ty: MemoryType,
    len: usize,
    /// An on-demand memory's key (module id, memory index): its reservation
    /// may keep its initial contents for the next instance of the same
    /// memory ([`Mmap::reserve_pooled_for`]).
    key: Option<(u64, u32)>,
    /// An on-demand memory whose reservation came back holding its initial
    /// contents (images mapped, the rest zero).
    ready: bool,
}

/// A pooled memory's slot ([`crate::vm::pool`]).
struct PooledSlot {
    pool: Arc<Pool>,
    key: SlotKey,
    /// `[0, initial)` held the memory's initial contents at instantiation
    /// (set once its images were applied, or the slot came back with them):
    /// the slot may be reused as is by the same memory once discarded.
    initialized: bool,
    /// The initial length.
    initial: usize,
}

/// The initial length in bytes of a memory of type `ty` under a store's
/// `max_pages`, or why it cannot be made.
fn initial_len(ty: &MemoryType, max_pages: u64) -> Result<usize, String> {
    if ty.shared {
        return Err("shared memories are not supported".into());
    }
    // A type the validator would refuse (a host-made `Memory::new` is
    // the only way to get one here): growth and import matching assume
    // `min <= max <= the index type's limit`.
    if let Some(max) = ty.max {
        if ty.min > max {
            return Err(format!(
                "invalid memory type: minimum of {} pages exceeds its maximum of {max}",
                ty.min
            ));
        }
        if max > ty.max_pages_limit() {
            return Err(format!(
                "invalid memory type: maximum of {max} pages exceeds the limit of {} pages",
                ty.max_pages_limit()
            ));
        }
    }
    let limit = max_pages.min(ty.max_pages_limit());
    if ty.min > limit {
        return Err(format!(
            "memory minimum of {} pages exceeds the limit of {limit} pages",
            ty.min,
        ));
    }
    ty.min
        .checked_mul(WASM_PAGE_SIZE)
        .filter(|&b| b <= GUARD_RESERVATION)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| {
            format!(
                "memory minimum of {} pages exceeds the reservation of {GUARD_RESERVATION:#x} bytes",
                ty.min
            )
        })
}

/// Bytes of address space every memory reserves: the loader's one layout.
pub(crate) const MEMORY_RESERVATION: u64 = GUARD_RESERVATION + GUARD_SIZE;

impl MemoryData {
    /// A memory of `ty.min` pages. Its definition is boxed until
    /// [`Self::set_def`] moves it into a VMContext. `key` (a module's id and
    /// memory index) lets the reservation keep the memory's initial
    /// contents for the next instance of the same memory
    /// ([`Self::initialized`]); host-created memories have none.
    pub fn new(ty: MemoryType, max_pages: u64, key: Option<SlotKey>) -> Result<MemoryData, String> {
        let len = initial_len(&ty, max_pages)?;
        let total = usize::try_from(MEMORY_RESERVATION)
            .map_err(|_| "memory reservation too large for this host")?;
        let key = key.map(|k| (k.module, k.memory));
        let (mut mmap, ready) = Mmap::reserve_pooled_for(total, key.map(|k| (k, len)))
            .map_err(|e| format!("cannot reserve memory: {e}"))?;
        if !ready {
            mmap.make_accessible(0, len)
                .map_err(|e| format!("cannot commit memory: {e}"))?;
        }
        let mut m = Self::from_parts(mmap, None, ty, len);
        m.key = key;
        m.ready = ready;
        Ok(m)
    }

    /// A memory of `ty.min` pages in a slot of `pool`, for memory `key`
    /// (a module's memory index); `Err` names the pool's limit it exceeds.
    /// [`Self::initialized`] says whether the slot already holds the
    /// memory's initial contents (the images need not be applied).
    pub fn new_pooled(
        ty: MemoryType,
        max_pages: u64,
        pool: &Arc<Pool>,
        key: SlotKey,
    ) -> Result<MemoryData, String> {
        let len = initial_len(&ty, max_pages)?;
        let taken = pool.take_memory(key, len)?;
        let slot = PooledSlot {
            pool: pool.clone(),
            key,
            initialized: taken.ready,
            initial: len,
        };
        Ok(Self::from_parts(taken.mmap, Some(slot), ty, len))
    }

    fn from_parts(mmap: Mmap, slot: Option<PooledSlot>, ty: MemoryType, len: usize) -> MemoryData {
        let mut own_def = Box::new(VMMemoryDefinition {
            base: mmap.as_ptr(),
            current_length: len,
        });
        MemoryData {
            def: &mut *own_def,
            own_def: Some(own_def),
            mmap: ManuallyDrop::new(mmap),
            slot,
            ty,
            len,
            key: None,
            ready: false,
        }
    }

    /// Whether the memory already holds its initial contents: a pool slot,
    /// or an on-demand reservation, that last held this same memory (its
    /// images are mapped, the rest is zero).
    pub fn initialized(&self) -> bool {
        self.ready || self.slot.as_ref().is_some_and(|s| s.initialized)
    }

    /// Records that the memory's images were applied, so that its pool
    /// slot or reservation can be reused as is by the same memory.
    pub fn set_initialized(&mut self) {
        if let Some(s) = &mut self.slot {
            s.initialized = true;
        }
        if let Some(key) = self.key {
            self.mmap.set_reuse(key, self.len);
        }
    }

    /// Makes a pooled memory that came with its initial contents all zero
    /// again (instantiation failed before its data segments would have been
    /// applied: the memory must not show them).
    pub fn forget_initial_contents(&mut self) -> Result<(), String> {
        self.mmap.clear_reuse();
        if std::mem::take(&mut self.ready) {
            return self
                .mmap
                .clear()
                .and_then(|()| self.mmap.make_accessible(0, self.len))
                .map_err(|e| format!("cannot clear a memory: {e}"));
        }
        match &mut self.slot {
            Some(s) if s.initialized => {
                s.initialized = false;
                self.mmap
                    .clear()
                    .and_then(|()| self.mmap.make_accessible(0, self.len))
                    .map_err(|e| format!("cannot clear a memory slot: {e}"))
            }
            _ => Ok(()),
        }
    }

    /// Writes a memory image at `memory_offset`: maps it copy-on-write when
    /// the source can be mapped, else copies its bytes. `Err` if it does not
    /// fit inside the current length. Before any other write to the memory
    /// only: a mapping replaces what was there.
    pub fn apply_image(
        &mut self,
        memory_offset: u64,
        source: ImageSource<'_>,
    ) -> Result<(), String> {
        let start = usize::try_from(memory_offset).map_err(|_| "image offset too large")?;
        match source.map {
            Some(bytes) => {
                if start.checked_add(bytes.len()).is_none_or(|e| e > self.len) {
                    return Err("memory image outside the memory".into());
                }
                self.mmap
                    .map_cow(start, bytes)
                    .map_err(|e| format!("cannot map memory image: {e}"))
            }
            None => {
                let dst = start
                    .checked_add(source.bytes.len())
                    .and_then(|end| self.bytes_mut().get_mut(start..end))
                    .ok_or("memory image outside the memory")?;
                dst.copy_from_slice(source.bytes);
                Ok(())
            }
        }
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
        // SAFETY: `def` is `own_def` (boxed, owned by self) or, after
        // `set_def`, a definition its caller promised outlives this memory.
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

    /// The Wasm address of host address `addr` if it lies in this memory's
    /// reservation (its accessible bytes, the rest of the reservation and
    /// the guard region): `addr - base`. A fault there is an access that
    /// only the guard layout stopped.
    pub fn wasm_address(&self, addr: usize) -> Option<u64> {
        let base = self.mmap.as_ptr() as usize;
        let off = addr.checked_sub(base)?;
        (off < self.mmap.len()).then_some(off as u64)
    }

    pub fn pages(&self) -> u64 {
        self.len as u64 / WASM_PAGE_SIZE
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `[base, base + len)` is mapped read-write (made accessible
        // by `new`/`grow`, which set `len`) and owned by `self.mmap`, which
        // lives as long as `&self`.
        unsafe { std::slice::from_raw_parts(self.base(), self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `[base, base + len)` is mapped read-write and owned by
        // `self.mmap`; `&mut self` makes this the only live view of it.
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
        let new_bytes = new.checked_mul(WASM_PAGE_SIZE)?;
        // A pooled memory also stops at the pool's limit.
        let pool_max = self
            .slot
            .as_ref()
            .map_or(u64::MAX, |s| s.pool.limits().max_memory_size);
        if new_bytes > GUARD_RESERVATION || new_bytes > pool_max {
            return None;
        }
        let new_len = usize::try_from(new_bytes).ok()?;
        self.mmap.make_accessible(0, new_len).ok()?;
        self.len = new_len;
        self.sync();
        Some(old)
    }

    /// The current type (minimum = current size).
    pub fn current_type(&self) -> MemoryType {
        MemoryType {
            min: self.pages(),
            ..self.ty
        }
    }
}

impl Drop for MemoryData {
    fn drop(&mut self) {
        // SAFETY: `mmap` is taken exactly once, here, and `self` is not
        // used after (it is being dropped).
        let mmap = unsafe { ManuallyDrop::take(&mut self.mmap) };
        if let Some(s) = self.slot.take() {
            s.pool
                .return_memory(mmap, s.initialized.then_some(s.key), s.initial);
        }
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
        let mut m = MemoryData::new(ty(1, Some(3)), 65536, None).unwrap();
        let base = m.base();
        m.bytes_mut()[65535] = 9;
        assert_eq!(m.grow(1, 65536), Some(1));
        assert_eq!(m.grow(2, 65536), None);
        assert_eq!(m.base(), base);
        assert_eq!(m.bytes()[65535], 9);
        assert_eq!(m.len(), 2 * 65536);
        // SAFETY: `def` is the memory's own boxed definition, alive with `m`.
        assert_eq!(unsafe { (*m.def()).current_length }, 2 * 65536);
    }

    #[test]
    fn memory64_gets_the_guard_layout_and_stops_at_the_reservation() {
        let mut m = MemoryData::new(
            MemoryType {
                memory64: true,
                ..ty(1, None)
            },
            u64::MAX,
            None,
        )
        .unwrap();
        let base = m.base();
        assert_eq!(m.grow(1, u64::MAX), Some(1));
        assert_eq!(m.base(), base, "the base never moves");
        let reservation_pages = GUARD_RESERVATION / WASM_PAGE_SIZE;
        // Past the reservation: refused, whatever the type allows.
        assert_eq!(m.grow(reservation_pages, u64::MAX), None);
        assert_eq!(m.pages(), 2);
        let too_big = MemoryType {
            memory64: true,
            ..ty(reservation_pages + 1, None)
        };
        let e = MemoryData::new(too_big, u64::MAX, None).err().unwrap();
        assert!(e.contains("exceeds the reservation"), "{e}");
    }
}
