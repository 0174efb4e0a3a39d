//! Tables' runtime side: `TableData`, the elements behind a public `Table`
//! handle.
//!
//! Elements are one pointer each: `*const VMFuncRef` for funcref tables,
//! `*mut VMExternData` for externref tables (each non-null element holds one
//! reference count, released when overwritten or when the store drops). The
//! `VMTableDefinition` (base, length) is inline in the defining instance's
//! VMContext, or boxed for host-created tables; it is rewritten whenever the
//! element vector moves.

use crate::vm::gc::externref::{raw_clone, raw_release};
use crate::vm::pool::Pool;
use crate::vm::vmcontext::VMTableDefinition;
use std::sync::Arc;
use wasmc_format::{RefType, TableType, TrapCode};

pub(crate) struct TableData {
    elements: Vec<*mut u8>,
    def: *mut VMTableDefinition,
    own_def: Option<Box<VMTableDefinition>>,
    pub ty: TableType,
    /// The pool the element vector came from (pooling allocator); it goes
    /// back there, cleared, when the table is freed.
    pool: Option<Arc<Pool>>,
}

impl TableData {
    /// A table of `ty.min` elements, each `init` (a raw reference; for
    /// externref tables each copy takes a count).
    ///
    /// # Safety
    /// `init` must be null or a live reference of the table's type.
    pub unsafe fn new(
        ty: TableType,
        init: *mut u8,
        max_elements: u32,
    ) -> Result<TableData, String> {
        // SAFETY: this function's contract.
        unsafe { Self::new_in(ty, init, max_elements, None) }
    }

    /// [`Self::new`] with the elements in a vector taken from `pool`
    /// (`Err` names the pool's limit it exceeds).
    ///
    /// # Safety
    /// As for [`Self::new`].
    pub unsafe fn new_pooled(
        ty: TableType,
        init: *mut u8,
        max_elements: u32,
        pool: &Arc<Pool>,
    ) -> Result<TableData, String> {
        // SAFETY: this function's contract.
        unsafe { Self::new_in(ty, init, max_elements, Some(pool)) }
    }

    /// # Safety
    /// As for [`Self::new`].
    unsafe fn new_in(
        ty: TableType,
        init: *mut u8,
        max_elements: u32,
        pool: Option<&Arc<Pool>>,
    ) -> Result<TableData, String> {
        if ty.min > max_elements {
            return Err(format!(
                "table minimum of {} elements exceeds the limit of {max_elements}",
                ty.min
            ));
        }
        let mut own_def = Box::new(VMTableDefinition {
            base: std::ptr::null_mut(),
            current_elements: 0,
        });
        let elements = match pool {
            Some(p) => p.take_table(ty.min)?,
            None => Vec::new(),
        };
        let mut t = TableData {
            elements,
            def: &mut *own_def,
            own_def: Some(own_def),
            ty,
            pool: pool.cloned(),
        };
        t.elements.resize(ty.min as usize, std::ptr::null_mut());
        for e in &mut t.elements {
            *e = init;
        }
        if ty.elem == RefType::ExternRef {
            for _ in 0..ty.min {
                // SAFETY: the caller promises `init` is null or a live
                // reference of the table's type (externref here); each copy
                // in the table takes its own count.
                unsafe { raw_clone(init.cast()) };
            }
        }
        t.sync();
        Ok(t)
    }

    /// Makes `def` (inside a VMContext) the authoritative definition.
    ///
    /// # Safety
    /// `def` must stay valid as long as this table.
    pub unsafe fn set_def(&mut self, def: *mut VMTableDefinition) {
        self.own_def = None;
        self.def = def;
        self.sync();
    }

    pub fn def(&self) -> *mut VMTableDefinition {
        self.def
    }

    fn sync(&mut self) {
        // SAFETY: `def` is `own_def` (boxed, owned by self) or, after
        // `set_def`, a definition its caller promised outlives this table.
        unsafe {
            (*self.def).base = self.elements.as_mut_ptr();
            (*self.def).current_elements = self.elements.len() as u32;
        }
    }

    pub fn size(&self) -> u32 {
        self.elements.len() as u32
    }

    fn is_extern(&self) -> bool {
        self.ty.elem == RefType::ExternRef
    }

    pub fn get(&self, i: u32) -> Option<*mut u8> {
        self.elements.get(i as usize).copied()
    }

    /// Stores `v` at `i`, with precise reference counting.
    ///
    /// # Safety
    /// `v` must be null or a live reference of the table's type.
    pub unsafe fn set(&mut self, i: u32, v: *mut u8) -> Result<(), TrapCode> {
        let ext = self.is_extern();
        let slot = self
            .elements
            .get_mut(i as usize)
            .ok_or(TrapCode::TableOutOfBounds)?;
        let old = std::mem::replace(slot, v);
        if ext {
            // Count first: `v` may be `old` itself, held only by this slot.
            // SAFETY: `v` is null or a live externref (caller contract) and
            // the slot takes a count on it; `old` was an element, which held
            // one count, now given up.
            unsafe {
                raw_clone(v.cast());
                raw_release(old.cast());
            }
        }
        Ok(())
    }

    /// Grows by `delta` elements of `init`; the old size or `None`.
    ///
    /// # Safety
    /// As for [`Self::set`].
    pub unsafe fn grow(&mut self, delta: u32, init: *mut u8, limit: u32) -> Option<u32> {
        let old = self.size();
        let new = old.checked_add(delta)?;
        // A pooled table stays inside its vector's capacity.
        let pooled = self
            .pool
            .as_ref()
            .map_or(u32::MAX, |p| p.limits().table_elements);
        if new > self.ty.max.unwrap_or(u32::MAX).min(limit).min(pooled) {
            return None;
        }
        self.elements.try_reserve(delta as usize).ok()?;
        self.elements.resize(new as usize, init);
        if self.is_extern() {
            for _ in 0..delta {
                // SAFETY: `init` is null or a live externref (caller
                // contract); each new element takes its own count.
                unsafe { raw_clone(init.cast()) };
            }
        }
        self.sync();
        Some(old)
    }

    /// `table.fill`.
    ///
    /// # Safety
    /// As for [`Self::set`].
    pub unsafe fn fill(&mut self, dst: u32, v: *mut u8, len: u32) -> Result<(), TrapCode> {
        let end = dst.checked_add(len).ok_or(TrapCode::TableOutOfBounds)?;
        if end > self.size() {
            return Err(TrapCode::TableOutOfBounds);
        }
        // `set` counts `v` before it releases the element it replaces, so `v`
        // stays live even if its only other count was in the filled range.
        for i in dst..end {
            // SAFETY: `v` is null or a live reference of the table's type
            // (this function's contract, the same as `set`'s).
            unsafe { self.set(i, v)? };
        }
        Ok(())
    }

    /// The raw elements `[s, s + len)`, borrowed: no count is taken, so they
    /// stay live only until the table changes (hand them to
    /// [`Self::set_range`], which counts them before it releases anything).
    pub fn get_range(&self, s: u32, len: u32) -> Result<Vec<*mut u8>, TrapCode> {
        let end = s.checked_add(len).ok_or(TrapCode::TableOutOfBounds)?;
        self.elements
            .get(s as usize..end as usize)
            .map(<[_]>::to_vec)
            .ok_or(TrapCode::TableOutOfBounds)
    }

    /// Stores `items` at `d..`, all or nothing.
    ///
    /// `items` may alias the elements being overwritten (`table.copy` within
    /// one table, or between two imports of the same table, snapshots the
    /// source range with [`Self::get_range`], which takes no counts). So every
    /// item is counted *before* any old element is released: otherwise a
    /// store could free an item that a later store in the same range still
    /// has to write (issue 10, bug 1). The old elements are released only
    /// after the whole range is written, so the table is consistent whenever
    /// a host value's destructor runs.
    ///
    /// # Safety
    /// Every item must be null or a live reference of the table's type.
    pub unsafe fn set_range(&mut self, d: u32, items: &[*mut u8]) -> Result<(), TrapCode> {
        let end = u32::try_from(items.len())
            .ok()
            .and_then(|n| d.checked_add(n))
            .ok_or(TrapCode::TableOutOfBounds)?;
        let ext = self.is_extern();
        let slots = self
            .elements
            .get_mut(d as usize..end as usize)
            .ok_or(TrapCode::TableOutOfBounds)?;
        if !ext {
            slots.copy_from_slice(items);
            return Ok(());
        }
        for v in items {
            // SAFETY: each item is null or a live externref (this function's
            // contract) until the first release below, and this count keeps
            // it live after that.
            unsafe { raw_clone(v.cast()) };
        }
        let mut old = Vec::with_capacity(items.len());
        for (slot, v) in slots.iter_mut().zip(items) {
            old.push(std::mem::replace(slot, *v));
        }
        for o in old {
            // SAFETY: each overwritten element held one count, now ours; the
            // new elements were counted above, so none of them is freed here.
            unsafe { raw_release(o.cast()) };
        }
        Ok(())
    }
}

impl Drop for TableData {
    fn drop(&mut self) {
        if self.is_extern() {
            for e in self.elements.drain(..) {
                // SAFETY: each element of an externref table holds one
                // count, released once as the elements are drained.
                unsafe { raw_release(e.cast()) };
            }
        }
        if let Some(p) = self.pool.take() {
            p.return_table(std::mem::take(&mut self.elements));
        }
    }
}
