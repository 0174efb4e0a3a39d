//! [`Table`]: the public handle of a table. Elements, their reference
//! counts and growth are the runtime's (`vm/table.rs`); the handle converts
//! values with [`Val::to_vm`] / [`Val::from_vm`] and calls the store's
//! type-checked table operations.

use crate::error::Error;
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::values::Val;
use crate::vm::store::{Stored, TableOpError};
use crate::vm::table::TableData;
use wasmc_format::{RefType, TableType};

/// A table of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table(pub(crate) Stored);

/// Checks that `v` is an element of type `elem`.
fn check_elem(v: &Val, elem: RefType) -> Result<(), Error> {
    if v.ty() != elem.val_type() {
        return Err(Error::mismatch("table element", elem, v.ty()));
    }
    Ok(())
}

fn table_error(e: TableOpError, elem: RefType) -> Error {
    match e {
        TableOpError::Type(t) => Error::mismatch("table element", elem, t),
        TableOpError::Trap(c) => Error::msg(c.message()),
        TableOpError::Limiter(e) => Error::from_host(e),
    }
}

impl Table {
    /// Creates a host-owned table of `ty.min` copies of `init`. It counts
    /// towards the store's table limit and its size is asked of the store's
    /// [`ResourceLimiter`](crate::ResourceLimiter), as for the tables of an
    /// instantiation.
    pub fn new(mut store: impl AsContextMut, ty: TableType, init: Val) -> Result<Table, Error> {
        let store = store.as_context_mut().store;
        check_elem(&init, ty.elem)?;
        init.check_store(store, "table element")?;
        let v = init.to_vm(store);
        let i = store
            .new_table(ty, &v)
            .map_err(crate::InstantiationError::Resource)?;
        Ok(Table(store.stored(i)))
    }

    pub(crate) fn data_of<'a>(&self, store: &'a StoreOpaque) -> &'a TableData {
        &store.tables[store.check(self.0, "table")]
    }

    /// The table's type; `min` is the current size.
    pub fn ty(&self, store: impl AsContext) -> TableType {
        let t = self.data_of(store.as_context().store);
        TableType {
            min: t.size(),
            ..t.ty
        }
    }

    /// Number of elements.
    pub fn size(&self, store: impl AsContext) -> u32 {
        self.data_of(store.as_context().store).size()
    }

    /// Element `i`, or `None` if out of bounds.
    pub fn get(&self, mut store: impl AsContextMut, i: u32) -> Option<Val> {
        let store = store.as_context_mut().store;
        let idx = store.check(self.0, "table");
        let v = store.table_get(idx, i)?;
        Some(Val::from_vm(store, v))
    }

    /// Stores `v` at `i`.
    pub fn set(&self, mut store: impl AsContextMut, i: u32, v: Val) -> Result<(), Error> {
        let store = store.as_context_mut().store;
        let idx = store.check(self.0, "table");
        let elem = store.tables[idx].ty.elem;
        check_elem(&v, elem)?;
        v.check_store(store, "table element")?;
        let v = v.to_vm(store);
        store
            .table_set(idx, i, &v)
            .map_err(|e| table_error(e, elem))
    }

    /// Grows by `delta` elements of `init`; returns the old size.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u32, init: Val) -> Result<u32, Error> {
        let store = store.as_context_mut().store;
        let idx = store.check(self.0, "table");
        let elem = store.tables[idx].ty.elem;
        check_elem(&init, elem)?;
        init.check_store(store, "table element")?;
        let v = init.to_vm(store);
        store
            .table_grow(idx, delta, &v)
            .map_err(|e| table_error(e, elem))?
            .ok_or_else(|| Error::msg("failed to grow table"))
    }
}
