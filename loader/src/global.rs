//! Globals: [`Global`] (the handle) and `GlobalData`.
//!
//! A `VMGlobalDefinition` is 16 bytes with the value at its start. Defined
//! globals live inline in their instance's VMContext, host-created ones are
//! boxed; importers point at the definition. An externref global holds one
//! reference count on its value.

use crate::error::Error;
use crate::externref::{raw_clone, raw_release};
use crate::store::{AsContext, AsContextMut, Stored};
use crate::values::Val;
use crate::vmcontext::{VMGlobalDefinition, ValRaw};
use wasmc_format::{GlobalType, ValType};

pub(crate) struct GlobalData {
    def: *mut VMGlobalDefinition,
    _own_def: Option<Box<VMGlobalDefinition>>,
    pub ty: GlobalType,
}

impl GlobalData {
    /// A global stored at `def`, initialised with `init` (externrefs are
    /// cloned).
    ///
    /// # Safety
    /// `def` must be valid for the life of the store (or null, for a boxed
    /// definition); `init` must be a live value of `ty.ty`.
    pub unsafe fn new(ty: GlobalType, def: *mut VMGlobalDefinition, init: ValRaw) -> GlobalData {
        let (def, own) = if def.is_null() {
            let mut b = Box::<VMGlobalDefinition>::default();
            (&mut *b as *mut VMGlobalDefinition, Some(b))
        } else {
            (def, None)
        };
        let g = GlobalData {
            def,
            _own_def: own,
            ty,
        };
        // SAFETY: def is valid; a fresh definition holds no reference yet.
        unsafe {
            (*def).storage = [0; 16];
            g.store_raw(init);
        }
        g
    }

    pub fn def(&self) -> *mut VMGlobalDefinition {
        self.def
    }

    pub fn get_raw(&self) -> ValRaw {
        // SAFETY: def is live for the store's life.
        ValRaw(unsafe { (*self.def).storage })
    }

    /// Writes `v`, cloning a new externref and releasing the old one.
    ///
    /// # Safety
    /// `v` must be a live value of the global's type.
    pub unsafe fn store_raw(&self, v: ValRaw) {
        let old = self.get_raw();
        // SAFETY: def is live; for externrefs the old value held one count.
        unsafe {
            if self.ty.ty == ValType::ExternRef {
                raw_clone(v.get_ptr().cast());
                raw_release(old.get_ptr().cast());
            }
            (*self.def).storage = v.0;
        }
    }
}

impl Drop for GlobalData {
    fn drop(&mut self) {
        if self.ty.ty == ValType::ExternRef {
            // SAFETY: the global holds one count on its value; the definition
            // is still live (globals drop before instances).
            unsafe {
                raw_release(self.get_raw().get_ptr().cast());
                (*self.def).storage = [0; 16];
            }
        }
    }
}

/// A global of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Global(pub(crate) Stored);

impl Global {
    /// Creates a host-owned global.
    pub fn new(mut store: impl AsContextMut, ty: GlobalType, v: Val) -> Result<Global, Error> {
        let store = store.as_context_mut();
        if v.ty() != ty.ty {
            return Err(Error::mismatch("global initial value", ty.ty, v.ty()));
        }
        let raw = v.to_raw_borrowed(store)?;
        // SAFETY: null def = boxed; raw is a live value of the right type.
        let g = unsafe { GlobalData::new(ty, std::ptr::null_mut(), raw) };
        store.globals.push(g);
        Ok(Global(store.stored(store.globals.len() - 1)))
    }

    pub(crate) fn data_of<'a>(&self, store: &'a crate::StoreOpaque) -> &'a GlobalData {
        &store.globals[store.check(self.0, "global")]
    }

    /// The global's type.
    pub fn ty(&self, store: impl AsContext) -> GlobalType {
        self.data_of(store.as_context()).ty
    }

    /// The current value.
    pub fn get(&self, mut store: impl AsContextMut) -> Val {
        let store = store.as_context_mut();
        let g = self.data_of(store);
        let (raw, ty) = (g.get_raw(), g.ty.ty);
        // SAFETY: the global holds a live value of its type.
        unsafe { Val::from_raw(store, raw, ty) }
    }

    /// Sets the value (the global must be mutable).
    pub fn set(&self, mut store: impl AsContextMut, v: Val) -> Result<(), Error> {
        let store = store.as_context_mut();
        let g = self.data_of(store);
        if !g.ty.mutable {
            return Err(Error::msg("cannot set an immutable global"));
        }
        if v.ty() != g.ty.ty {
            return Err(Error::mismatch("global value", g.ty.ty, v.ty()));
        }
        let raw = v.to_raw_borrowed(store)?;
        // SAFETY: type checked; the value is live while `v` is.
        unsafe { self.data_of(store).store_raw(raw) };
        Ok(())
    }
}
