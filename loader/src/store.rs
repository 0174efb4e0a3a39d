//! [`Store`]: owns everything instances create or use — instances and their
//! VMContexts, host functions, memories, tables, globals, the runtime limits
//! and the externref activations table.
//!
//! Handles ([`crate::Func`], [`crate::Memory`], ...) are indices into the
//! store's vectors tagged with the store's id; using one with another store
//! panics. Nothing is freed before the store drops, so raw pointers that
//! compiled code holds (VMContexts, definitions, funcrefs) stay valid.
//! The store is single-threaded (not `Send`).

use crate::code::Module;
use crate::externref::VMExternRefActivationsTable;
use crate::func::FuncData;
use crate::global::GlobalData;
use crate::instance::InstanceData;
use crate::memory::MemoryData;
use crate::table::TableData;
use crate::vmcontext::VMRuntimeLimits;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

/// A handle's store id and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Stored {
    pub store_id: u64,
    pub index: usize,
}

/// The store's contents. Reached through [`AsContext`] / [`AsContextMut`]
/// from a [`Store`] or a [`crate::Caller`].
pub struct StoreOpaque {
    pub(crate) id: u64,
    // Field order is drop order: references held by globals and tables are
    // released (their own Drop) before the instances' VMContexts go away.
    pub(crate) globals: Vec<GlobalData>,
    pub(crate) tables: Vec<TableData>,
    pub(crate) instances: Vec<InstanceData>,
    pub(crate) funcs: Vec<FuncData>,
    pub(crate) memories: Vec<MemoryData>,
    pub(crate) activations: Box<VMExternRefActivationsTable>,
    pub(crate) limits: Box<VMRuntimeLimits>,
    /// Host functions by the address of their `VMFuncRef` (the funcrefs in
    /// VMContexts are found through `func_ref_ranges`).
    pub(crate) func_by_ref: HashMap<usize, usize>,
    /// Each instance's `func_refs` array: start address -> (end, instance).
    pub(crate) func_ref_ranges: BTreeMap<usize, (usize, usize)>,
    pub(crate) modules: Vec<Module>,
    pub(crate) max_wasm_stack: usize,
    pub(crate) max_memory_pages: u64,
    pub(crate) max_table_elements: u32,
    /// Number of host-to-Wasm activations of this store in progress.
    pub(crate) wasm_depth: u32,
    /// Collect at every builtin and host call (testing).
    pub(crate) gc_stress: bool,
    /// Collector statistics.
    pub(crate) gc_stats: crate::gc::GcStats,
}

/// A collection of instances and the objects they use. Single-threaded.
pub struct Store {
    inner: Box<StoreOpaque>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store with default limits: 512 KiB of Wasm stack, 65536
    /// memory pages, 10,000,000 table elements.
    pub fn new() -> Store {
        Store {
            inner: Box::new(StoreOpaque {
                id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
                globals: Vec::new(),
                tables: Vec::new(),
                instances: Vec::new(),
                funcs: Vec::new(),
                memories: Vec::new(),
                activations: Box::new(VMExternRefActivationsTable::new()),
                limits: Box::default(),
                func_by_ref: HashMap::new(),
                func_ref_ranges: BTreeMap::new(),
                modules: Vec::new(),
                max_wasm_stack: 512 * 1024,
                max_memory_pages: wasmc_format::WASM32_MAX_PAGES,
                max_table_elements: 10_000_000,
                wasm_depth: 0,
                gc_stress: false,
                gc_stats: crate::gc::GcStats::default(),
            }),
        }
    }

    /// Sets the most stack Wasm may use, in bytes, counted from the outermost
    /// host-to-Wasm call on a thread.
    pub fn set_max_wasm_stack(&mut self, bytes: usize) {
        self.inner.max_wasm_stack = bytes;
    }

    /// Sets the most pages any memory of this store may grow to.
    pub fn set_max_memory_pages(&mut self, pages: u64) {
        self.inner.max_memory_pages = pages.min(wasmc_format::WASM32_MAX_PAGES);
    }

    /// Sets the most elements any table of this store may grow to.
    pub fn set_max_table_elements(&mut self, n: u32) {
        self.inner.max_table_elements = n;
    }

    /// Runs the externref collector: releases every reference that no Wasm
    /// frame, table, global or host handle holds. From the host (no Wasm of
    /// this store running) that is everything in the activations table;
    /// host functions called from Wasm collect with [`crate::Caller::gc`],
    /// which walks the Wasm frames below them.
    pub fn gc(&mut self) {
        crate::gc::collect(&mut self.inner);
    }

    /// Stress mode for testing the collector: when on, a collection runs at
    /// every safepoint the runtime reaches (every builtin call and every host
    /// function call from Wasm).
    pub fn set_gc_stress(&mut self, on: bool) {
        self.inner.gc_stress = on;
    }

    /// The collector's statistics.
    pub fn gc_stats(&self) -> crate::gc::GcStats {
        self.inner.gc_stats()
    }
}

impl StoreOpaque {
    pub(crate) fn gc_stats(&self) -> crate::gc::GcStats {
        crate::gc::GcStats {
            table_len: self.activations.len(),
            table_capacity: self.activations.capacity(),
            ..self.gc_stats
        }
    }

    pub(crate) fn stored(&self, index: usize) -> Stored {
        Stored {
            store_id: self.id,
            index,
        }
    }

    /// Checks that a handle belongs to this store.
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

    pub(crate) fn activations_ptr(&mut self) -> *mut VMExternRefActivationsTable {
        &mut *self.activations
    }

    /// Keeps `module` alive as long as the store and gives host functions of
    /// its types a trampoline.
    pub(crate) fn add_module(&mut self, module: &Module) {
        if !self.modules.iter().any(|m| Module::same(m, module)) {
            self.modules.push(module.clone());
        }
        self.fill_host_trampolines();
    }

    /// Host functions have no code of their own: Wasm reaches them through a
    /// module's host trampoline for their signature. Give every host funcref
    /// that has none yet the trampoline of a module with the same type id.
    pub(crate) fn fill_host_trampolines(&mut self) {
        for f in &mut self.funcs {
            if let Some(ctx) = f.host_ctx_mut() {
                if !ctx.func_ref.wasm_call.is_null() {
                    continue;
                }
                let id = ctx.func_ref.type_id;
                for m in &self.modules {
                    if let Some(t) = m.type_ids().iter().position(|t| *t == id) {
                        ctx.func_ref.wasm_call = m.host_trampoline(t as u32);
                        break;
                    }
                }
            }
        }
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
        self.activations.clear();
    }
}

/// Read access to a store's contents.
pub trait AsContext {
    /// The store.
    fn as_context(&self) -> &StoreOpaque;
}

/// Write access to a store's contents.
pub trait AsContextMut: AsContext {
    /// The store.
    fn as_context_mut(&mut self) -> &mut StoreOpaque;
}

impl AsContext for Store {
    fn as_context(&self) -> &StoreOpaque {
        &self.inner
    }
}
impl AsContextMut for Store {
    fn as_context_mut(&mut self) -> &mut StoreOpaque {
        &mut self.inner
    }
}
impl AsContext for StoreOpaque {
    fn as_context(&self) -> &StoreOpaque {
        self
    }
}
impl AsContextMut for StoreOpaque {
    fn as_context_mut(&mut self) -> &mut StoreOpaque {
        self
    }
}
impl<T: AsContext + ?Sized> AsContext for &T {
    fn as_context(&self) -> &StoreOpaque {
        (**self).as_context()
    }
}
impl<T: AsContext + ?Sized> AsContext for &mut T {
    fn as_context(&self) -> &StoreOpaque {
        (**self).as_context()
    }
}
impl<T: AsContextMut + ?Sized> AsContextMut for &mut T {
    fn as_context_mut(&mut self) -> &mut StoreOpaque {
        (**self).as_context_mut()
    }
}
