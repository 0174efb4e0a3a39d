//! Globals' runtime side: `GlobalData`, the storage behind a public
//! `Global` handle.
//!
//! A `VMGlobalDefinition` is 16 bytes with the value at its start. Defined
//! globals live inline in their instance's VMContext, host-created ones are
//! boxed; importers point at the definition. An externref global holds one
//! reference count on its value.

use crate::vm::gc::externref::{raw_clone, raw_release};
use crate::vm::vmcontext::{VMGlobalDefinition, ValRaw};
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
        // SAFETY: `def` is the fresh box or a definition the caller promised
        // is valid; zeroing it first means `store_raw` releases no count it
        // does not own. `init` is a live value of the global's type (caller
        // contract).
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
        // SAFETY: `def` is the boxed definition owned by self or one valid
        // for the store's life (`new`'s contract), and self lives in the store.
        ValRaw(unsafe { (*self.def).storage })
    }

    /// Writes `v`, cloning a new externref and releasing the old one.
    ///
    /// # Safety
    /// `v` must be a live value of the global's type.
    pub unsafe fn store_raw(&self, v: ValRaw) {
        let old = self.get_raw();
        // SAFETY: `def` is valid (see `get_raw`); for externref globals `v`
        // is null or live (caller contract) and takes a count, and the old
        // value held the global's one count, given up here.
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
