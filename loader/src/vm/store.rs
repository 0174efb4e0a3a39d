//! The store's runtime state, [`StoreOpaque`]: everything instances create
//! or use — instances and their VMContexts, functions, memories, tables,
//! globals, the runtime limits and the externref activations table. The
//! public `Store` (`store.rs`) owns one in a `Box`, so its address (which
//! every VMContext records) never changes.
//!
//! Handles of the API layer are indices into the vectors here tagged with
//! the store's id ([`Stored`]); [`StoreOpaque::check`] refuses a handle of
//! another store. Nothing is freed before the store drops, so raw pointers
//! that compiled code holds (VMContexts, definitions, funcrefs) stay valid.
//!
//! The operations on tables and globals here take [`VMVal`]s and check their
//! types, so that the API layer can call them without unsafe code.
//! [`StoreOpaque::memory_and_data_mut`] hands out a memory's bytes and the
//! host data at once (`Memory::data_and_store_mut`), with why that is sound.
//!
//! **Host data.** The public `Store<T>` keeps its `T` here, boxed as
//! `dyn Any` ([`StoreOpaque::data`]), so that the runtime needs no type
//! parameter and the API layer reaches the `T` from any `&mut StoreOpaque`
//! (a host function gets one from the calling VMContext) by a checked
//! downcast, with no pointer casts: a `Caller<'_, T>` can only be made for
//! a store whose data is a `T` (host functions are created through a
//! `StoreContextMut<'_, T>`, and a function is only ever called with its own
//! store), and if that invariant were ever broken the downcast fails with a
//! panic, never undefined behaviour.
//!
//! **Moving between threads.** `StoreOpaque` is `Send` (see the
//! `unsafe impl` below); `Store<T>` adds `T: Send` through its
//! `PhantomData<T>`.

use crate::vm::code::RuntimeModule;
use crate::vm::func::FuncData;
use crate::vm::gc::activations::VMExternRefActivationsTable;
use crate::vm::gc::GcStats;
use crate::vm::global::GlobalData;
use crate::vm::instance::InstanceData;
use crate::vm::memory::MemoryData;
use crate::vm::table::TableData;
use crate::vm::traphandlers::FaultAddress;
use crate::vm::values::VMVal;
use crate::vm::vmcontext::VMRuntimeLimits;
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use wasmc_format::{GlobalType, Interruption, TableType, TrapCode, ValType};

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

/// What the host makes outside an instantiation ([`StoreOpaque::admit_host_made`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostMade {
    Memory,
    Table,
}

/// Where a faulting access of Wasm code pointed ([`StoreOpaque::fault_site`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultSite {
    /// The first pages of the address space: with Spectre mitigation,
    /// Cranelift's explicit bounds checks replace an out-of-bounds address
    /// (static offset already added) with null, so this is a bounds check
    /// that worked (as is a null funcref's or table element's load).
    NearNull,
    /// Inside memory `index`'s reservation or guard region: an access out of
    /// bounds that only the guard layout stopped, `wasm_address` past the
    /// base of a memory of `size` bytes.
    Memory {
        index: usize,
        wasm_address: u64,
        size: u64,
    },
    /// Anywhere else, or a non-canonical address ([`FaultAddress::Unknown`]):
    /// no memory access of correct code gets there (the guard layout covers
    /// every unchecked 32-bit access), so the sandbox failed and only the
    /// mapping happened to be absent.
    Outside,
}

/// Faults below this address are null-pointer accesses, never guard-region
/// hits ([`FaultSite::NearNull`]): a spectre-guarded bounds check
/// loads from null itself (an access of up to 16 bytes), and no memory's
/// reservation starts this low (Linux's `vm.mmap_min_addr` keeps at least
/// the first page unmapped; a reservation is gigabytes long).
const NEAR_NULL: usize = 1 << 16;

/// A handle's store id and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Stored {
    pub store_id: u64,
    pub index: usize,
}

/// Hooks a store consults before memories and tables grow and before
/// instances, memories and tables are created (Wasmtime's
/// `ResourceLimiter`). Installed with `Store::limiter`; a store without
/// one still holds at most [`DEFAULT_INSTANCE_LIMIT`] instances,
/// [`DEFAULT_MEMORY_LIMIT`] memories and [`DEFAULT_TABLE_LIMIT`] tables
/// (as in Wasmtime).
///
/// Sizes are in bytes for memories and in elements for tables; `maximum` is
/// the declared maximum, if any. Returning `Ok(false)` refuses the growth:
/// `memory.grow` / `table.grow` in Wasm return -1, `Memory::grow` /
/// `Table::grow` return an error, and a refused initial size fails the
/// instantiation with an error naming the limit. An `Err` stops Wasm's
/// `memory.grow` / `table.grow` (the call into Wasm returns that error, as
/// in Wasmtime: a quota error ends the guest rather than being a -1 it may
/// ignore) and is returned as the error of host-side calls and of
/// instantiation.
pub trait ResourceLimiter {
    /// Whether a memory may grow from `current` to `desired` bytes.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> anyhow::Result<bool>;
    /// Whether a table may grow from `current` to `desired` elements.
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> anyhow::Result<bool>;
    /// The most instances the store may hold (default 10,000).
    fn instances(&self) -> usize {
        DEFAULT_INSTANCE_LIMIT
    }
    /// The most memories the store may hold (default 10,000).
    fn memories(&self) -> usize {
        DEFAULT_MEMORY_LIMIT
    }
    /// The most tables the store may hold (default 10,000).
    fn tables(&self) -> usize {
        DEFAULT_TABLE_LIMIT
    }
}

/// Default of [`ResourceLimiter::instances`].
pub const DEFAULT_INSTANCE_LIMIT: usize = 10_000;
/// Default of [`ResourceLimiter::memories`].
pub const DEFAULT_MEMORY_LIMIT: usize = 10_000;
/// Default of [`ResourceLimiter::tables`].
pub const DEFAULT_TABLE_LIMIT: usize = 10_000;

/// The closure given to `Store::limiter`, with the data's type erased:
/// called with the store's data (always the `T` it was made for).
pub(crate) type LimiterFn =
    Box<dyn (FnMut(&mut dyn Any) -> &mut dyn ResourceLimiter) + Send + Sync>;

/// The store's contents. Reached through `AsContext` / `AsContextMut`
/// from a `Store` or a `Caller`.
pub struct StoreOpaque {
    pub(crate) id: u64,
    /// The host data of the `Store<T>` owning this: a `T` (see the module
    /// docs). Dropped after everything else (last field).
    // Field order is drop order: references held by globals and tables are
    // released (their own Drop) before the instances' VMContexts go away.
    pub(crate) globals: Vec<GlobalData>,
    pub(crate) tables: Vec<TableData>,
    pub(crate) instances: Vec<InstanceData>,
    pub(crate) funcs: Vec<FuncData>,
    pub(crate) memories: Vec<MemoryData>,
    pub(crate) activations: Box<VMExternRefActivationsTable>,
    pub(crate) limits: Box<VMRuntimeLimits>,
    /// The engine's epoch counter; `limits.epoch_ptr` points into it.
    pub(crate) epoch: Arc<AtomicU64>,
    /// Fuel metering is on: `set_fuel` was called. Instances must then
    /// count fuel, and fuel-counting instances need it on.
    pub(crate) fuel_enabled: bool,
    /// Fuel given but not yet handed to compiled code: `fuel_consumed` is
    /// an `i64`, so `set_fuel` hands over at most `i64::MAX` units and
    /// keeps the rest here; the `out_of_fuel` builtin hands more over
    /// when the code runs out ([`Self::out_of_fuel`]). Wasmtime's
    /// `fuel_reserve`.
    fuel_reserve: u64,
    /// `set_epoch_deadline` was called: every instance must check epochs.
    pub(crate) epoch_deadline_set: bool,
    /// Host functions by the address of their `VMFuncRef` (the funcrefs in
    /// VMContexts are found through `func_ref_ranges`).
    pub(crate) func_by_ref: HashMap<usize, usize, BuildHasherDefault<AddrHasher>>,
    /// Host functions whose funcref has no trampoline yet: no module of the
    /// store had their type when they were made (see
    /// [`Self::fill_host_trampolines`]).
    pending_host: Vec<usize>,
    /// Each instance's `func_refs` array: start address -> (end, instance).
    pub(crate) func_ref_ranges: BTreeMap<usize, (usize, usize)>,
    pub(crate) modules: Vec<Arc<RuntimeModule>>,
    pub(crate) max_wasm_stack: usize,
    pub(crate) max_memory_pages: u64,
    pub(crate) max_table_elements: u32,
    /// Number of host-to-Wasm activations of this store in progress.
    pub(crate) wasm_depth: u32,
    /// Collect at every builtin and host call (testing).
    pub(crate) gc_stress: bool,
    /// Collector statistics.
    pub(crate) gc_stats: GcStats,
    /// The resource limiter, if one was installed.
    pub(crate) limiter: Option<LimiterFn>,
    /// The engine's pooling allocator, if it uses one: instances' memories
    /// and tables come from its slots.
    pub(crate) pool: Option<Arc<crate::vm::pool::Pool>>,
    /// The API layer's `Engine` the store was made with, opaque here (as
    /// host bodies are): the runtime needs nothing from it but what the
    /// API layer copied into the fields above.
    pub(crate) engine: Box<dyn Any + Send + Sync>,
    /// The host data (see the module docs). Last: dropped after the
    /// instances, so that host values in it outlive any use by them.
    pub(crate) data: Box<dyn Any>,
}

// SAFETY: a store is used by one thread at a time (every use goes through
// `&mut StoreOpaque` or `&StoreOpaque`, and `StoreOpaque` is not `Sync`, so
// a shared borrow never crosses threads), but may move between threads
// between uses. What it holds stays correct after a move:
// - the raw pointers in it (VMContexts, definitions, funcrefs, host
//   contexts, the activations table, the runtime limits) point into memory
//   the store itself owns (boxed, so a move of the store does not move
//   them), into modules it keeps alive (`modules`), into shared host
//   functions its instances keep alive (`InstanceData::shared_hosts`;
//   their contexts are `Send + Sync` and never written), or, for
//   `limits.epoch_ptr`, into the engine's epoch counter (an `AtomicU64` the
//   store keeps alive in `epoch`, which any thread may increment); never
//   into another thread's stack or thread-locals;
// - `VMExternRef`s (in tables, globals, the activations table) are
//   atomically reference counted and their values are `Send + Sync`
//   (`ExternRef::new` requires it);
// - host functions are `Send + Sync` (`HostCall`, `HostFuncParts`);
// - the per-call trap-handling state (jump buffer, activation chain, the
//   stack limit written into `VMRuntimeLimits`) lives on the calling
//   thread and is set up on every entry into Wasm (`catch_traps`), and the
//   activations table is empty whenever no Wasm of the store runs, so
//   nothing thread-specific survives in the store between calls;
// - `data` is the `T` of the `Store<T>` owning this, and `Store<T>` is only
//   `Send` when `T` is (its `PhantomData<T>`); no safe API hands out a
//   `StoreOpaque` by value, so it only moves with its `Store<T>`;
// - `limiter` and `engine` are `Send` themselves.
unsafe impl Send for StoreOpaque {}

impl StoreOpaque {
    /// An empty store holding host data `data`, with default limits: 512
    /// KiB of Wasm stack, 65536 memory pages, 10,000,000 table elements; no
    /// epoch deadline, no fuel. `epoch` is the engine's epoch counter.
    pub(crate) fn new(
        engine: Box<dyn Any + Send + Sync>,
        epoch: Arc<AtomicU64>,
        data: Box<dyn Any>,
    ) -> StoreOpaque {
        let limits = Box::new(VMRuntimeLimits::new(Arc::as_ptr(&epoch)));
        StoreOpaque {
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            globals: Vec::new(),
            tables: Vec::new(),
            instances: Vec::new(),
            funcs: Vec::new(),
            memories: Vec::new(),
            activations: Box::new(VMExternRefActivationsTable::new()),
            limits,
            epoch,
            fuel_enabled: false,
            fuel_reserve: 0,
            epoch_deadline_set: false,
            func_by_ref: HashMap::default(),
            pending_host: Vec::new(),
            func_ref_ranges: BTreeMap::new(),
            modules: Vec::new(),
            max_wasm_stack: 512 * 1024,
            max_memory_pages: wasmc_format::WASM32_MAX_PAGES,
            max_table_elements: 10_000_000,
            wasm_depth: 0,
            gc_stress: false,
            gc_stats: GcStats::default(),
            limiter: None,
            pool: None,
            engine,
            data,
        }
    }

    /// The resource limiter, if one is installed.
    pub(crate) fn limiter(&mut self) -> Option<&mut dyn ResourceLimiter> {
        let data: &mut dyn Any = &mut *self.data;
        match &mut self.limiter {
            Some(f) => Some(f(data)),
            None => None,
        }
    }

    /// Who sets the store's count limits, and the most instances,
    /// memories and tables it may hold: the limiter's, or the defaults
    /// without one (as in Wasmtime, a store without a limiter is still
    /// bounded: each memory reserves gigabytes of address space).
    pub(crate) fn count_limits(&mut self) -> (&'static str, usize, usize, usize) {
        match self.limiter() {
            Some(l) => (
                "the store's limiter",
                l.instances(),
                l.memories(),
                l.tables(),
            ),
            None => (
                "a store without a resource limiter",
                DEFAULT_INSTANCE_LIMIT,
                DEFAULT_MEMORY_LIMIT,
                DEFAULT_TABLE_LIMIT,
            ),
        }
    }

    /// Whether one more memory or table made by the host (`Memory::new`,
    /// `Table::new`) fits the store's count of them; `Err` names the limit.
    /// Instantiation checks its own memories and tables in `vm::instance`.
    pub(crate) fn admit_host_made(&mut self, kind: HostMade) -> Result<(), String> {
        let (who, _, max_mem, max_tab) = self.count_limits();
        let (have, max, one, many) = match kind {
            HostMade::Memory => (self.memories.len(), max_mem, "memory", "memories"),
            HostMade::Table => (self.tables.len(), max_tab, "table", "tables"),
        };
        if have + 1 > max {
            return Err(format!(
                "{who} allows {max} {many}, this would be {one} {}",
                have + 1
            ));
        }
        Ok(())
    }

    /// Memory `m`'s bytes and the host data, both writable at once: the
    /// split borrow behind `Memory::data_and_store_mut`, so that a host
    /// function can decode its arguments from guest memory straight into
    /// state kept in its `T` (WASI does).
    ///
    /// This needs no `unsafe`: the bytes come from `self.memories` and the
    /// data is `self.data`, two different fields, so the borrow checker
    /// sees the two `&mut` as disjoint. That is also the fact that makes
    /// it right, not just accepted:
    /// - the bytes are their own mapping (owned by the `MemoryData`'s
    ///   `Mmap`, see `vm/memory.rs`), not part of the boxed `T`, and the
    ///   `T` cannot reach them (it is `'static` and owned by this store, so
    ///   it holds no borrow of the store or of its memories; a `Memory`
    ///   handle in it is only an index);
    /// - nothing can grow, move or unmap the memory while the two borrows
    ///   live: growing goes through `&mut StoreOpaque` (`grow_memory`) or
    ///   through Wasm of this store, which can only be entered with
    ///   `&mut StoreOpaque`, and both are held by this borrow; a Wasm frame
    ///   below a host call is suspended until the host function returns;
    ///   the mapping is only unmapped when the store drops;
    /// - the memory is not shared (`MemoryData::new` refuses shared
    ///   memories), so no other thread accesses the bytes.
    ///
    /// Panics if `m` is out of range (callers pass a checked handle index).
    pub(crate) fn memory_and_data_mut(&mut self, m: usize) -> (&mut [u8], &mut dyn Any) {
        (self.memories[m].bytes_mut(), &mut *self.data)
    }

    /// Asks the limiter whether a memory may grow from `current` to
    /// `desired` pages (`Ok(true)` without a limiter).
    pub(crate) fn memory_growing(
        &mut self,
        current: u64,
        desired: u64,
        maximum: Option<u64>,
    ) -> anyhow::Result<bool> {
        let Some(l) = self.limiter() else {
            return Ok(true);
        };
        let bytes = |p: u64| usize::try_from(p.saturating_mul(wasmc_format::WASM_PAGE_SIZE));
        let (Ok(c), Ok(d)) = (bytes(current), bytes(desired)) else {
            return Ok(false);
        };
        l.memory_growing(c, d, maximum.and_then(|m| bytes(m).ok()))
    }

    /// Asks the limiter whether a table may grow from `current` to
    /// `desired` elements (`Ok(true)` without a limiter).
    pub(crate) fn table_growing(
        &mut self,
        current: u32,
        desired: u32,
        maximum: Option<u64>,
    ) -> anyhow::Result<bool> {
        match self.limiter() {
            None => Ok(true),
            Some(l) => l.table_growing(
                current as usize,
                desired as usize,
                // A 64-bit table's maximum may not fit a 32-bit usize: it
                // is then no limit.
                maximum.and_then(|m| usize::try_from(m).ok()),
            ),
        }
    }

    /// Grows memory `m` by `delta` pages after asking the limiter: the old
    /// size, `Ok(None)` if a limit refuses it.
    pub(crate) fn grow_memory(&mut self, m: usize, delta: u64) -> anyhow::Result<Option<u64>> {
        let cur = self.memories[m].pages();
        let max = self.memories[m].current_type().max;
        if delta > 0 && !self.memory_growing(cur, cur.saturating_add(delta), max)? {
            return Ok(None);
        }
        let store_max = self.max_memory_pages;
        Ok(self.memories[m].grow(delta, store_max))
    }

    /// Where a faulting data access of this store's Wasm code pointed.
    /// Wasm code reaches only memories of its own store, so these are all
    /// the candidates.
    pub(crate) fn fault_site(&self, fault: FaultAddress) -> FaultSite {
        let addr = match fault {
            FaultAddress::At(addr) => addr,
            FaultAddress::Unknown => return FaultSite::Outside,
        };
        if addr < NEAR_NULL {
            return FaultSite::NearNull;
        }
        self.memories
            .iter()
            .enumerate()
            .find_map(|(index, m)| {
                Some(FaultSite::Memory {
                    index,
                    wasm_address: m.wasm_address(addr)?,
                    size: m.len() as u64,
                })
            })
            .unwrap_or(FaultSite::Outside)
    }

    pub(crate) fn gc_stats(&self) -> GcStats {
        GcStats {
            table_len: self.activations.len(),
            table_capacity: self.activations.capacity(),
            ..self.gc_stats
        }
    }

    #[inline]
    pub(crate) fn stored(&self, index: usize) -> Stored {
        Stored {
            store_id: self.id,
            index,
        }
    }

    /// Checks that a handle belongs to this store; its index.
    #[inline]
    pub(crate) fn check(&self, s: Stored, what: &str) -> usize {
        assert_eq!(
            s.store_id, self.id,
            "{what} used with a store it does not belong to"
        );
        s.index
    }

    pub(crate) fn limits_ptr(&self) -> *mut VMRuntimeLimits {
        &*self.limits as *const VMRuntimeLimits as *mut VMRuntimeLimits
    }

    // ----- interruption -----

    /// The first instance whose code lacks `what` (epoch checks or fuel).
    fn instance_without(&self, has: impl Fn(Interruption) -> bool) -> Option<&RuntimeModule> {
        self.instances
            .iter()
            .map(|i| &*i.module)
            .find(|m| !has(m.header().settings.interruption))
    }

    /// Sets the fuel left to `fuel` and turns fuel metering on. Refused if
    /// an instance of this store was compiled without fuel counting (its
    /// code would run unmetered).
    pub(crate) fn set_fuel(&mut self, fuel: u64) -> Result<(), String> {
        if let Some(m) = self.instance_without(|i| i.fuel) {
            return Err(format!(
                "cannot set fuel: this store holds an instance of {} compiled without fuel \
                 counting (compile it with `wasmc compile --fuel`)",
                module_name(m)
            ));
        }
        self.fuel_enabled = true;
        let active = fuel.min(i64::MAX as u64);
        self.fuel_reserve = fuel - active;
        // SAFETY: the store is borrowed mutably, so no Wasm of it runs on
        // another thread; Wasm of it suspended below a host call on this
        // thread reloads `fuel_consumed` when the call returns.
        unsafe { *self.limits.fuel_consumed.get() = -(active as i64) };
        Ok(())
    }

    /// The fuel left; `Err` if fuel metering is off.
    pub(crate) fn get_fuel(&self) -> Result<u64, String> {
        if !self.fuel_enabled {
            return Err("fuel is not enabled on this store: call `set_fuel` first".into());
        }
        // SAFETY: no Wasm of this store runs while the host holds it (a
        // store is used by one thread at a time; Wasm below a host call is
        // suspended and stored its count before calling).
        let consumed = unsafe { *self.limits.fuel_consumed.get() };
        let active = if consumed < 0 {
            consumed.unsigned_abs()
        } else {
            0
        };
        // At most the `fuel` of the last `set_fuel`: no overflow.
        Ok(self.fuel_reserve + active)
    }

    /// Sets the epoch deadline `delta` epochs after the engine's current
    /// one. Refused if an instance of this store was compiled without epoch
    /// checks (it could not be interrupted).
    pub(crate) fn set_epoch_deadline(&mut self, delta: u64) -> Result<(), String> {
        if let Some(m) = self.instance_without(|i| i.epochs) {
            return Err(format!(
                "cannot set an epoch deadline: this store holds an instance of {} compiled \
                 without epoch checks (compile it with `wasmc compile --epoch-interruption`)",
                module_name(m)
            ));
        }
        self.epoch_deadline_set = true;
        let deadline = self.epoch.load(Ordering::Relaxed).saturating_add(delta);
        // SAFETY: the store is borrowed mutably, so no Wasm of it runs on
        // another thread; Wasm of it suspended below a host call on this
        // thread reloads the deadline at its next check (every check loads
        // it), so the write never races a read.
        unsafe { *self.limits.epoch_deadline.get() = deadline };
        Ok(())
    }

    /// Whether the engine's epoch has reached the store's deadline.
    pub(crate) fn epoch_deadline_reached(&self) -> bool {
        // SAFETY: read on the thread running this store's Wasm (a builtin)
        // or holding the store; nothing writes it concurrently.
        let deadline = unsafe { *self.limits.epoch_deadline.get() };
        self.epoch.load(Ordering::Relaxed) >= deadline
    }

    /// Whether the fuel is used up (`fuel_consumed >= 0`) with none left in
    /// the reserve; otherwise hands up to `i64::MAX` units of the reserve
    /// over to compiled code first (which reloads its count after the
    /// builtin that asks), net of what the code used past zero.
    pub(crate) fn out_of_fuel(&mut self) -> bool {
        let cell = self.limits.fuel_consumed.get();
        // SAFETY: read and written on the thread running this store's Wasm
        // (from the `out_of_fuel` builtin) or holding the store, so nothing
        // accesses it concurrently; compiled code stored its count before
        // calling the builtin that asks, and reloads it after.
        let consumed = unsafe { *cell };
        if consumed < 0 {
            return false;
        }
        let add = self.fuel_reserve.min(i64::MAX as u64);
        self.fuel_reserve -= add;
        // `consumed >= 0` and `add <= i64::MAX`: no overflow.
        let consumed = consumed - add as i64;
        // SAFETY: as for the read above.
        unsafe { *cell = consumed };
        consumed >= 0
    }

    /// Whether `module`'s code fits this store's interruption settings; the
    /// reason if not. Checked before instantiation.
    pub(crate) fn check_interruption(&self, module: &RuntimeModule) -> Result<(), String> {
        let i = module.header().settings.interruption;
        // Named only on error: instantiation must not allocate for this.
        let name = || module_name(module);
        if i.fuel && !self.fuel_enabled {
            return Err(format!(
                "{} was compiled with fuel counting (`--fuel`): give the store fuel \
                 with `set_fuel` before instantiating it",
                name()
            ));
        }
        if !i.fuel && self.fuel_enabled {
            return Err(format!(
                "{} was compiled without fuel counting and would run unmetered in this \
                 store, which meters fuel (compile it with `wasmc compile --fuel`)",
                name()
            ));
        }
        if !i.epochs && self.epoch_deadline_set {
            return Err(format!(
                "{} was compiled without epoch checks and could not be interrupted in \
                 this store, which has an epoch deadline (compile it with `wasmc compile \
                 --epoch-interruption`)",
                name()
            ));
        }
        Ok(())
    }

    pub(crate) fn activations_ptr(&mut self) -> *mut VMExternRefActivationsTable {
        &mut *self.activations
    }

    /// Keeps `module` alive as long as the store and gives host functions of
    /// its types a trampoline.
    pub(crate) fn add_module(&mut self, module: &Arc<RuntimeModule>) {
        if !self.modules.iter().any(|m| Arc::ptr_eq(m, module)) {
            self.modules.push(module.clone());
            self.fill_host_trampolines();
        }
    }

    /// Host functions have no code of their own: Wasm reaches them through a
    /// module's host trampoline for their signature. Gives every host
    /// funcref still waiting for one ([`Self::host_func_made`]) the
    /// trampoline of a module with the same type id. O(waiting functions x
    /// modules), once per module a store sees (not per instance or host
    /// function: a store with many of them would make that quadratic).
    fn fill_host_trampolines(&mut self) {
        let mut pending = std::mem::take(&mut self.pending_host);
        pending.retain(|&i| !self.fill_host_trampoline(i));
        self.pending_host = pending;
    }

    /// Gives host function `index` the trampoline of a module of the store
    /// with its type; false if none has it yet.
    fn fill_host_trampoline(&mut self, index: usize) -> bool {
        let Some(ctx) = self.funcs.get_mut(index).and_then(|f| f.host_ctx_mut()) else {
            return true;
        };
        if !ctx.func_ref.wasm_call.is_null() {
            return true;
        }
        let id = ctx.func_ref.type_id;
        for m in &self.modules {
            if let Some(t) = m.type_ids().iter().position(|t| *t == id) {
                if let Some(tramp) = m.host_trampoline(t as u32) {
                    ctx.func_ref.wasm_call = tramp;
                    return true;
                }
            }
        }
        false
    }

    /// Records host function `index`, just made: its trampoline now, or
    /// when a module with its type arrives.
    pub(crate) fn host_func_made(&mut self, index: usize) {
        if !self.fill_host_trampoline(index) {
            self.pending_host.push(index);
        }
    }

    /// The function whose funcref is at `ptr` (null, or any address that is
    /// no funcref of this store, gives `None`).
    pub(crate) fn func_index_of_ref(&self, ptr: *mut u8) -> Option<usize> {
        if ptr.is_null() {
            return None;
        }
        let p = ptr as usize;
        if let Some(&index) = self.func_by_ref.get(&p) {
            return Some(index);
        }
        // A funcref in an instance's VMContext: its position is the index.
        let (&start, &(end, inst)) = self.func_ref_ranges.range(..=p).next_back()?;
        if p >= end {
            return None;
        }
        let size = self.instances[inst].module.offsets().size_of_vmfunc_ref() as usize;
        let off = p - start;
        if !off.is_multiple_of(size) {
            return None;
        }
        let f = u32::try_from(off / size).ok()?;
        // A defined function's funcref is only handed out after its record
        // was made (`instance::instance_func`), so it is found here.
        self.instances[inst].func_index(f)
    }

    // ----- tables -----

    /// A raw table element for `v`, which must be a reference of type
    /// `elem` (`Err` with the expected type otherwise). Borrowed: valid while
    /// `v` (an externref) or the store (a funcref) is.
    fn table_raw(&self, v: &VMVal, elem: ValType) -> Result<*mut u8, ValType> {
        if v.ty() != elem {
            return Err(elem);
        }
        Ok(v.to_raw_borrowed(self).get_ptr())
    }

    /// Creates a table of `ty.min` copies of `init`; its index.
    /// The store's table count and its limiter bound it, as they bound an
    /// instantiation's tables (`vm::instance`).
    pub(crate) fn new_table(&mut self, ty: TableType, init: &VMVal) -> Result<usize, String> {
        let raw = self
            .table_raw(init, ty.elem.val_type())
            .map_err(|t| format!("table element: expected {t}, found {}", init.ty()))?;
        self.admit_host_made(HostMade::Table)?;
        if !self
            .table_growing(0, ty.min, ty.max)
            .map_err(|e| format!("{e:#}"))?
        {
            return Err(format!(
                "table of {} elements refused by the store's limiter",
                ty.min
            ));
        }
        // SAFETY: `table_raw` checked that `raw` is a reference of the
        // table's type, null or live (held by `init`, or a funcref of this
        // store).
        let t = unsafe { TableData::new(ty, raw, self.max_table_elements) }?;
        self.tables.push(t);
        Ok(self.tables.len() - 1)
    }

    /// Element `i` of table `t` (initialised first if it was not: a lazy
    /// funcref table's), `None` if out of bounds.
    pub(crate) fn table_get(&mut self, t: usize, i: u32) -> Option<VMVal> {
        let raw = crate::vm::table::get(self, t, i).ok()?;
        // SAFETY: a table element is null or a live reference of the table's
        // type (each externref element holds a count).
        Some(unsafe {
            VMVal::from_raw(
                self,
                crate::vm::vmcontext::ValRaw::from_u64(raw as usize as u64),
                self.tables[t].ty.elem.val_type(),
            )
        })
    }

    /// Number of function records in the store (made on first use: see
    /// `instance::instance_func`); for tests.
    pub(crate) fn num_funcs(&self) -> usize {
        self.funcs.len()
    }

    /// Stores `v` at element `i` of table `t`.
    pub(crate) fn table_set(&mut self, t: usize, i: u32, v: &VMVal) -> Result<(), TableOpError> {
        let raw = self.table_raw(v, self.tables[t].ty.elem.val_type())?;
        // SAFETY: `table_raw` checked `raw` is a null or live reference of
        // the table's type.
        unsafe { self.tables[t].set(i, raw) }.map_err(TableOpError::Trap)
    }

    /// Grows table `t` by `delta` copies of `init`; the old size, `None` if
    /// a limit forbids it.
    pub(crate) fn table_grow(
        &mut self,
        t: usize,
        delta: u32,
        init: &VMVal,
    ) -> Result<Option<u32>, TableOpError> {
        let raw = self.table_raw(init, self.tables[t].ty.elem.val_type())?;
        let cur = self.tables[t].size();
        let max = self.tables[t].ty.max;
        if delta > 0
            && !self
                .table_growing(cur, cur.saturating_add(delta), max)
                .map_err(TableOpError::Limiter)?
        {
            return Ok(None);
        }
        let limit = self.max_table_elements;
        // SAFETY: `table_raw` checked `raw` is a null or live reference of
        // the table's type.
        Ok(unsafe { self.tables[t].grow(delta, raw, limit) })
    }

    // ----- globals -----

    /// Creates a global of type `ty` holding `v`; its index.
    pub(crate) fn new_global(&mut self, ty: GlobalType, v: &VMVal) -> Result<usize, ValType> {
        if v.ty() != ty.ty {
            return Err(ty.ty);
        }
        let raw = v.to_raw_borrowed(self);
        // SAFETY: a null definition asks for a boxed one; `raw` is a value of
        // the global's type (checked), its reference null or live (held by
        // `v`, or a funcref of this store).
        let g = unsafe { GlobalData::new(ty, std::ptr::null_mut(), raw) };
        self.globals.push(g);
        Ok(self.globals.len() - 1)
    }

    /// The value of global `g`.
    pub(crate) fn global_get(&self, g: usize) -> VMVal {
        let g = &self.globals[g];
        // SAFETY: a global holds a value of its type; an externref one holds
        // a count on it, so it is null or live.
        unsafe { VMVal::from_raw(self, g.get_raw(), g.ty.ty) }
    }

    /// Sets global `g` to `v` (`Err` with the global's type if `v` has
    /// another). Mutability is the API's rule, not checked here.
    pub(crate) fn global_set(&mut self, g: usize, v: &VMVal) -> Result<(), ValType> {
        let ty = self.globals[g].ty.ty;
        if v.ty() != ty {
            return Err(ty);
        }
        let raw = v.to_raw_borrowed(self);
        // SAFETY: `raw` is a value of the global's type (checked), its
        // reference null or live (held by `v`, or a funcref of this store).
        unsafe { self.globals[g].store_raw(raw) };
        Ok(())
    }
}

/// `module `name`` or `the module`, for messages.
fn module_name(m: &RuntimeModule) -> String {
    match &m.info().name {
        Some(n) => format!("module `{n}`"),
        None => "the module".into(),
    }
}

/// Why a table operation failed.
#[derive(Debug)]
pub(crate) enum TableOpError {
    /// The value is not of the table's element type (the expected type).
    Type(ValType),
    /// Out of bounds.
    Trap(TrapCode),
    /// The resource limiter failed (its own error, not a refusal).
    Limiter(anyhow::Error),
}

impl From<ValType> for TableOpError {
    fn from(t: ValType) -> Self {
        TableOpError::Type(t)
    }
}

impl Drop for StoreOpaque {
    fn drop(&mut self) {
        // Explicit order: references first (globals live in VMContexts).
        self.globals.clear();
        self.tables.clear();
        for i in &mut self.instances {
            i.release_segments();
        }
        // SAFETY: the store is dropping, which it cannot do while its Wasm
        // runs (a running call borrows it), so no Wasm frame holds an entry.
        unsafe { self.activations.clear() };
    }
}

/// The hasher of [`StoreOpaque::func_by_ref`], keyed by addresses the
/// loader made itself: one multiply and a fold of the high bits into the
/// low ones (the table indexes by the low bits; addresses are aligned).
/// SipHash's resistance to chosen keys buys nothing here and cost a
/// noticeable part of instantiating a module with many imports.
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StoreOpaque {
        StoreOpaque::new(Box::new(()), Arc::new(AtomicU64::new(0)), Box::new(()))
    }

    /// Compiled code's view: what it stored in `fuel_consumed`.
    fn code_consumed(s: &StoreOpaque, v: i64) {
        // SAFETY: a test store on this thread, no Wasm running.
        unsafe { *s.limits.fuel_consumed.get() = v };
    }

    /// A fault is placed in the memory whose reservation (guard region
    /// included) holds it, near null as a check that worked, and anywhere
    /// else (or at an unknown, non-canonical address) outside every memory.
    #[test]
    fn fault_sites_are_memories_near_null_or_outside() {
        let mut s = store();
        let ty = wasmc_format::MemoryType {
            min: 1,
            max: None,
            memory64: false,
            shared: false,
        };
        for _ in 0..2 {
            let m = MemoryData::new(ty, 16, None).unwrap();
            s.memories.push(m);
        }
        let base = s.memories[1].base() as usize;
        let reservation = crate::vm::memory::MEMORY_RESERVATION as usize;
        let at = |a| s.fault_site(FaultAddress::At(a));
        assert_eq!(
            at(base + 0x1_0000),
            FaultSite::Memory {
                index: 1,
                wasm_address: 0x1_0000,
                size: 0x1_0000
            }
        );
        // The last byte of the guard region.
        assert_eq!(
            at(base + reservation - 1),
            FaultSite::Memory {
                index: 1,
                wasm_address: reservation as u64 - 1,
                size: 0x1_0000
            }
        );
        for addr in [0, 8, NEAR_NULL - 1] {
            assert_eq!(at(addr), FaultSite::NearNull, "{addr:#x}");
        }
        // Just past the reservation, unless memory 0's happens to follow.
        let other = s.memories[0].base() as usize;
        let past = base + reservation;
        if !(other..other + reservation).contains(&past) {
            assert_eq!(at(past), FaultSite::Outside);
        }
        assert_eq!(at(usize::MAX), FaultSite::Outside);
        // A general-protection fault's address is reported as 0: not null.
        assert_eq!(s.fault_site(FaultAddress::Unknown), FaultSite::Outside);
    }

    #[test]
    fn fuel_beyond_i64_is_kept_in_the_reserve_and_handed_over() {
        let mut s = store();
        s.set_fuel(u64::MAX).unwrap();
        assert_eq!(s.get_fuel().unwrap(), u64::MAX);
        // The code used its i64::MAX units and 5 more before its check.
        code_consumed(&s, 5);
        assert!(!s.out_of_fuel(), "the reserve is handed over");
        let left = u64::MAX - i64::MAX as u64 - 5;
        assert_eq!(s.get_fuel().unwrap(), left);
        // The last unit of the reserve, then nothing.
        code_consumed(&s, 0);
        assert!(!s.out_of_fuel());
        assert_eq!(s.get_fuel().unwrap(), 1);
        code_consumed(&s, 0);
        assert!(s.out_of_fuel());
        assert_eq!(s.get_fuel().unwrap(), 0);
        // Up to i64::MAX there is no reserve: exactly what was set.
        s.set_fuel(10).unwrap();
        code_consumed(&s, 0);
        assert!(s.out_of_fuel());
        s.set_fuel(i64::MAX as u64).unwrap();
        assert_eq!(s.get_fuel().unwrap(), i64::MAX as u64);
    }
}
