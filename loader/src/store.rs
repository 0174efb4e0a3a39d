//! [`Store`]: the public owner of a store's runtime state
//! ([`StoreOpaque`], in `vm/store.rs`), and the [`AsContext`] /
//! [`AsContextMut`] traits through which handles reach it from a `Store` or
//! a [`crate::Caller`].
//!
//! Handles ([`crate::Func`], [`crate::Memory`], ...) are indices into the
//! store tagged with its id; using one with another store panics. Nothing
//! is freed before the store drops. The store is single-threaded (not
//! `Send`).

use crate::vm::gc::GcStats;
pub use crate::vm::store::StoreOpaque;

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
            inner: Box::new(StoreOpaque::new(Default::default())),
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
        crate::vm::gc::collect(&mut self.inner);
    }

    /// Stress mode for testing the collector: when on, a collection runs at
    /// every safepoint the runtime reaches (every builtin call and every host
    /// function call from Wasm).
    pub fn set_gc_stress(&mut self, on: bool) {
        self.inner.gc_stress = on;
    }

    /// The collector's statistics.
    pub fn gc_stats(&self) -> GcStats {
        self.inner.gc_stats()
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
