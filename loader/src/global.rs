//! [`Global`]: the public handle of a global. Storage and reference counts
//! are the runtime's (`vm/global.rs`); the handle converts values with
//! [`Val::to_vm`] / [`Val::from_vm`] and calls the store's type-checked
//! global operations.

use crate::error::Error;
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::values::Val;
use crate::vm::global::GlobalData;
use crate::vm::store::Stored;
use wasmc_format::GlobalType;

/// A global of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Global(pub(crate) Stored);

impl Global {
    /// Creates a host-owned global.
    pub fn new(mut store: impl AsContextMut, ty: GlobalType, v: Val) -> Result<Global, Error> {
        let store = store.as_context_mut().store;
        if v.ty() != ty.ty {
            return Err(Error::mismatch("global initial value", ty.ty, v.ty()));
        }
        v.check_store(store, "global initial value")?;
        let v = v.to_vm(store);
        let i = store
            .new_global(ty, &v)
            .map_err(|t| Error::mismatch("global initial value", t, v.ty()))?;
        Ok(Global(store.stored(i)))
    }

    pub(crate) fn data_of<'a>(&self, store: &'a StoreOpaque) -> &'a GlobalData {
        &store.globals[store.check(self.0, "global")]
    }

    /// The global's type.
    pub fn ty(&self, store: impl AsContext) -> GlobalType {
        self.data_of(store.as_context().store).ty
    }

    /// The current value.
    pub fn get(&self, mut store: impl AsContextMut) -> Val {
        let store = store.as_context_mut().store;
        let v = store.global_get(store.check(self.0, "global"));
        Val::from_vm(store, v)
    }

    /// Sets the value (the global must be mutable).
    pub fn set(&self, mut store: impl AsContextMut, v: Val) -> Result<(), Error> {
        let store = store.as_context_mut().store;
        let idx = store.check(self.0, "global");
        let ty = store.globals[idx].ty;
        if !ty.mutable {
            return Err(Error::msg("cannot set an immutable global"));
        }
        if v.ty() != ty.ty {
            return Err(Error::mismatch("global value", ty.ty, v.ty()));
        }
        v.check_store(store, "global value")?;
        let v = v.to_vm(store);
        store
            .global_set(idx, &v)
            .map_err(|t| Error::mismatch("global value", t, v.ty()))
    }
}
