//! The pooling allocator: preallocated slots for linear memories and
//! tables, and a cap on live instances, shared by every store of an engine
//! (opt-in: `Config::allocation_strategy`, as Wasmtime's
//! `InstanceAllocationStrategy::Pooling`).
//!
//! **Memory slots.** [`Pool::new`] reserves `total_memories` regions of
//! [`PoolLimits::slot_bytes`] each (address space only: `PROT_NONE`,
//! `MAP_NORESERVE`): the loader's one memory layout (4 GiB reservation +
//! 2 GiB guard, `vm::memory`), so every memory fits a slot. A memory never
//! grows past [`PoolLimits::max_memory_size`].
//!
//! **Teardown and reuse, O(touched pages).** When a pooled memory is freed
//! its slot is *discarded*, not unmapped: `madvise(MADV_DONTNEED)` over the
//! pages that were accessible (the kernel frees only the ones present), so
//! anonymous pages read zero again and the copy-on-write image pages read
//! the image again, and whatever the memory grew past its initial size is
//! made inaccessible again. The slot remembers which module's which memory
//! it held ([`SlotKey`]): the next instance of that same memory finds its
//! initial contents (images included) already in place and does nothing
//! at all; any other memory first replaces the slot's pages with fresh
//! inaccessible zero pages ([`Mmap::clear`], dropping the image mappings)
//! and then maps its own. Either way a slot never shows what a previous
//! instance wrote: every page the previous instance could reach was
//! discarded before the slot went back to the free list.
//!
//! **Tables.** A pooled table's elements live in a vector of
//! `table_elements` capacity taken from the pool and given back when the
//! table is freed, zeroed over its length then (teardown pays for it, as
//! Wasmtime's decommit does), so that a lazy funcref table, whose slots
//! start `0`, takes it as it is; it never grows past that capacity, so it
//! never reallocates. At most `total_tables` are live.
//!
//! **Instances.** [`Pool::new`] also maps `total_core_instances` VMContext
//! slots of [`PoolLimits::max_core_instance_size`] bytes each, read-write
//! and all zero (`MAP_NORESERVE`: pages are committed when touched). An
//! instance's VMContext lives in one ([`InstancePermit`]); when it is freed
//! the bytes it used are zeroed again (cleared in place when small,
//! discarded with `MADV_DONTNEED` otherwise: the funcref array is filled in
//! only on first use, so the pages touched are few) before the slot goes
//! back to the free list, so a slot is always all zero when taken.
//!
//! When a limit is reached, instantiation fails with an error naming it.
//!
//! **Dropped modules.** A free slot keyed for a module maps that module's
//! images (its sealed `.wasmc.data`), which pins their pages. When the
//! module is dropped no instance can take the slot ready any more (module
//! ids are never reused), so [`forget_module`] clears such slots in every
//! live pool (they are found through [`POOLS`]), as `sys::mmap` does for
//! the on-demand reservations it keeps.

use crate::vm::sys::mmap::{round_up_to_page, Mmap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use wasmc_format::WASM_PAGE_SIZE;

/// The sizes and counts of a [`Pool`] (the public
/// `PoolingAllocationConfig`, checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolLimits {
    pub total_core_instances: u32,
    pub total_memories: u32,
    pub total_tables: u32,
    /// The most bytes any pooled memory may have (a multiple of the Wasm
    /// page size, at most [`Self::slot_bytes`]).
    pub max_memory_size: u64,
    /// The most elements any pooled table may have.
    pub table_elements: u32,
    /// The most bytes of an instance's VMContext (rounded up to pages).
    pub max_core_instance_size: usize,
}

impl PoolLimits {
    /// Address space reserved per memory slot: the memory layout.
    pub const fn slot_bytes() -> u64 {
        crate::vm::memory::MEMORY_RESERVATION
    }
}

/// Which memory a slot was last initialised for: a module (by its unique
/// id, never reused within a process) and a memory index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotKey {
    pub module: u64,
    pub memory: u32,
}

/// A free memory slot: its mapping and what is in it.
struct FreeSlot {
    mmap: Mmap,
    /// Set when `[0, initial length)` of the slot is exactly the initial
    /// contents of that memory (images mapped, the rest zero, read-write)
    /// and everything past it is inaccessible.
    key: Option<SlotKey>,
}

/// Every pool made, for [`forget_module`]; dead ones are pruned there and
/// when a pool is made.
static POOLS: Mutex<Vec<Weak<Pool>>> = Mutex::new(Vec::new());

/// Clears the free memory slots of every live pool that hold the initial
/// contents of a memory of `module`, which is being dropped (module docs).
/// A slot that cannot be cleared is unmapped instead of reused.
pub(crate) fn forget_module(module: u64) {
    let pools: Vec<Arc<Pool>> = {
        let mut all = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    for pool in pools {
        // Cleared under the lock: a slot taken out meanwhile would make a
        // concurrent instantiation see one slot fewer (`total_memories`).
        let mut free = pool.free_memories.lock().unwrap_or_else(|e| e.into_inner());
        free.retain_mut(|slot| {
            if slot.key.is_none_or(|k| k.module != module) {
                return true;
            }
            slot.key = None;
            // Unmapped (dropped) if it cannot be cleared.
            slot.mmap.clear().is_ok()
        });
    }
}

/// An engine's pool (module docs).
pub(crate) struct Pool {
    limits: PoolLimits,
    /// Free memory slots; the most recently freed last (warm).
    free_memories: Mutex<Vec<FreeSlot>>,
    /// Free table vectors, cleared, `table_elements` capacity each.
    free_tables: Mutex<Vec<Vec<*mut u8>>>,
    live_tables: AtomicU32,
    /// `total_core_instances` VMContext slots of `instance_slot` bytes.
    instances: Mmap,
    instance_slot: usize,
    /// Indices of the free VMContext slots (each all zero).
    free_instances: Mutex<Vec<u32>>,
}

// SAFETY: the free table vectors are empty (they hold no pointers, only
// capacity), the memory slots and the VMContext region are owned mappings
// (`Mmap` is Send and Sync), and a VMContext slot is used by the one
// instance holding its permit; everything else is atomics and mutexes.
unsafe impl Send for Pool {}
// SAFETY: as for `Send`: all shared access goes through the mutexes and
// atomics.
unsafe impl Sync for Pool {}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("limits", &self.limits)
            .finish()
    }
}

/// A memory slot taken from the pool: its mapping, and whether it already
/// holds the initial contents of the memory it was taken for.
pub(crate) struct TakenSlot {
    pub mmap: Mmap,
    pub ready: bool,
}

impl Pool {
    /// Reserves every memory slot. `Err` names what failed (a limit out of
    /// range, or the address space).
    pub(crate) fn new(limits: PoolLimits) -> Result<Arc<Pool>, String> {
        if limits.max_memory_size > PoolLimits::slot_bytes()
            || !limits.max_memory_size.is_multiple_of(WASM_PAGE_SIZE)
        {
            return Err(format!(
                "pooling allocator: max_memory_size of {} bytes must be a multiple of \
                 the page size (65536) and at most the slot size, {} bytes",
                limits.max_memory_size,
                PoolLimits::slot_bytes()
            ));
        }
        let slot = usize::try_from(PoolLimits::slot_bytes())
            .map_err(|_| "pooling allocator: slots do not fit the address space")?;
        let mut free = Vec::with_capacity(limits.total_memories as usize);
        for i in 0..limits.total_memories {
            let mmap = Mmap::reserve(slot).map_err(|e| {
                format!(
                    "pooling allocator: cannot reserve memory slot {i} of {} ({slot} bytes \
                     each): {e}",
                    limits.total_memories
                )
            })?;
            free.push(FreeSlot { mmap, key: None });
        }
        let instance_slot = round_up_to_page(limits.max_core_instance_size.max(1))
            .ok_or("pooling allocator: max_core_instance_size too large")?;
        let region = instance_slot
            .checked_mul(limits.total_core_instances as usize)
            .ok_or("pooling allocator: VMContext slots do not fit the address space")?;
        let instances = Mmap::read_write(region).map_err(|e| {
            format!("pooling allocator: cannot map {region} bytes of VMContext slots: {e}")
        })?;
        let pool = Arc::new(Pool {
            limits,
            free_memories: Mutex::new(free),
            free_tables: Mutex::new(Vec::new()),
            live_tables: AtomicU32::new(0),
            instances,
            instance_slot,
            free_instances: Mutex::new((0..limits.total_core_instances).rev().collect()),
        });
        let mut all = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&pool));
        Ok(pool)
    }

    pub(crate) fn limits(&self) -> &PoolLimits {
        &self.limits
    }

    /// Takes a memory slot for memory `key` of `len` bytes initially, made
    /// read-write over `[0, len)`: the slot that last held the same memory
    /// if one is free (`ready`: its contents are already the initial ones),
    /// else the most recently freed one, cleared.
    pub(crate) fn take_memory(&self, key: SlotKey, len: usize) -> Result<TakenSlot, String> {
        if len as u64 > self.limits.max_memory_size {
            return Err(format!(
                "pooling allocator: a memory of {len} bytes exceeds max_memory_size ({} bytes)",
                self.limits.max_memory_size
            ));
        }
        let slot = {
            let mut free = self.free_memories.lock().unwrap_or_else(|e| e.into_inner());
            let i = free
                .iter()
                .rposition(|s| s.key == Some(key))
                .or_else(|| free.len().checked_sub(1));
            let Some(i) = i else {
                return Err(format!(
                    "pooling allocator: all {} memory slots are in use (total_memories)",
                    self.limits.total_memories
                ));
            };
            free.swap_remove(i)
        };
        let mut mmap = slot.mmap;
        if slot.key == Some(key) {
            return Ok(TakenSlot { mmap, ready: true });
        }
        let init = mmap.clear().and_then(|()| mmap.make_accessible(0, len));
        if let Err(e) = init {
            // The slot's state is unknown: do not reuse it.
            return Err(format!(
                "pooling allocator: cannot prepare a memory slot: {e}"
            ));
        }
        Ok(TakenSlot { mmap, ready: false })
    }

    /// Gives a memory slot back. `key` is set when `[0, keep)` held memory
    /// `key`'s initial contents at instantiation; the slot is discarded
    /// (module docs) so that it holds exactly them again. A slot that
    /// cannot be discarded or cleared is unmapped instead of reused.
    pub(crate) fn return_memory(&self, mut mmap: Mmap, key: Option<SlotKey>, keep: usize) {
        let key = match mmap.recycle(key.map(|_| keep)) {
            Ok(kept) => key.filter(|_| kept),
            Err(_) => return, // dropped: unmapped
        };
        let mut free = self.free_memories.lock().unwrap_or_else(|e| e.into_inner());
        free.push(FreeSlot { mmap, key });
    }

    /// Takes an element vector of `table_elements` capacity for a table of
    /// `min` elements: every element of its length is null (`0`; the length
    /// is what its last table had, or 0).
    pub(crate) fn take_table(&self, min: u32) -> Result<Vec<*mut u8>, String> {
        if min > self.limits.table_elements {
            return Err(format!(
                "pooling allocator: a table of {min} elements exceeds table_elements ({})",
                self.limits.table_elements
            ));
        }
        let total = self.limits.total_tables;
        self.live_tables
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < total).then_some(n + 1)
            })
            .map_err(|_| {
                format!("pooling allocator: all {total} table slots are in use (total_tables)")
            })?;
        let v = self
            .free_tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        if let Some(v) = v {
            return Ok(v);
        }
        // A capacity the host cannot allocate (`table_elements` is the
        // embedder's choice, up to 2^32 - 1 pointers) is a refusal, not an
        // abort of the process.
        let mut v = Vec::new();
        let n = self.limits.table_elements as usize;
        if let Err(e) = v.try_reserve_exact(n) {
            self.live_tables.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "pooling allocator: cannot allocate a table of table_elements ({n}) \
                 elements: {e}"
            ));
        }
        Ok(v)
    }

    /// Gives a table's element vector back (its elements already released).
    pub(crate) fn return_table(&self, mut v: Vec<*mut u8>) {
        // The next table may be a lazy funcref table, which reads a
        // non-zero slot as an initialised element: no pointer of this
        // table's store may survive.
        v.fill(std::ptr::null_mut());
        if v.capacity() >= self.limits.table_elements as usize {
            self.free_tables
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(v);
        }
        self.live_tables.fetch_sub(1, Ordering::AcqRel);
    }

    /// Takes a VMContext slot for a context of `size` bytes, or says which
    /// limit refuses it. The slot is all zero.
    pub(crate) fn acquire_instance(
        self: &Arc<Pool>,
        size: usize,
    ) -> Result<InstancePermit, String> {
        if size > self.instance_slot {
            return Err(format!(
                "pooling allocator: the instance's VMContext of {size} bytes exceeds \
                 max_core_instance_size ({} bytes)",
                self.limits.max_core_instance_size
            ));
        }
        let slot = self
            .free_instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .ok_or_else(|| {
                format!(
                    "pooling allocator: all {} instance slots are in use \
                     (total_core_instances)",
                    self.limits.total_core_instances
                )
            })?;
        Ok(InstancePermit {
            pool: self.clone(),
            slot,
            size,
            written: None,
        })
    }
}

/// A live instance's VMContext slot; dropping it zeroes the slot and frees
/// it.
pub(crate) struct InstancePermit {
    pool: Arc<Pool>,
    slot: u32,
    /// Bytes of the slot the VMContext uses (the rest stays untouched).
    size: usize,
    /// The only byte ranges of `[0, size)` that may have been written, if
    /// known ([`Self::set_written`]): freeing then zeroes just those, with no
    /// system call and no page to fault in again.
    written: Option<Vec<std::ops::Range<usize>>>,
}

/// Contexts up to this size are zeroed in place when freed; larger ones
/// are discarded (`MADV_DONTNEED`: only their touched pages cost).
const CLEAR_IN_PLACE_MAX: usize = 16 * 1024;

impl InstancePermit {
    /// The slot's start: `size` bytes, zero when the permit was made,
    /// page aligned, owned by this permit.
    pub(crate) fn ptr(&self) -> *mut u8 {
        let at = self.slot as usize * self.pool.instance_slot;
        // In bounds: `slot < total_core_instances` and the region is
        // `total_core_instances * instance_slot` bytes (`Pool::new`).
        self.pool.instances.as_ptr().wrapping_add(at)
    }

    /// Bytes of the slot the context may use.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Says that only `ranges` of the context were written, so that freeing
    /// zeroes only them. Ranges past `size` are clipped.
    pub(crate) fn set_written(&mut self, ranges: Vec<std::ops::Range<usize>>) {
        self.written = Some(ranges);
    }
}

impl Drop for InstancePermit {
    fn drop(&mut self) {
        let p = self.ptr();
        let zeroed = if let Some(ranges) = self.written.take() {
            for r in ranges {
                let end = r.end.min(self.size);
                if r.start < end {
                    // SAFETY: `[start, end)` lies inside this permit's slot
                    // (clipped to `size`, which fits the slot), and the
                    // instance that used it is gone.
                    unsafe { std::ptr::write_bytes(p.wrapping_add(r.start), 0, end - r.start) };
                }
            }
            true
        } else if self.size <= CLEAR_IN_PLACE_MAX {
            // SAFETY: `[p, p + size)` lies inside this permit's slot of the
            // read-write region (`acquire_instance` checked `size` against
            // the slot), and the instance that used it is gone: nothing
            // refers to these bytes any more.
            unsafe { std::ptr::write_bytes(p, 0, self.size) };
            true
        } else {
            let len = round_up_to_page(self.size).unwrap_or(self.pool.instance_slot);
            // SAFETY: as above; `p` is page aligned (slots are whole pages)
            // and `len` does not pass the slot's end (`size` fits the slot,
            // which is whole pages). Discarding private anonymous pages
            // makes them read zero.
            unsafe { libc::madvise(p.cast(), len, libc::MADV_DONTNEED) == 0 }
        };
        if zeroed {
            self.pool
                .free_instances
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.slot);
        }
        // Otherwise the slot is never reused (it may not be zero).
    }
}
