//! Functions: [`Func`] (host or Wasm) and [`Caller`]; typed calls
//! ([`TypedFunc`], `typed.rs`) and typed host functions ([`Func::wrap`],
//! `wrap.rs`) are submodules.
//!
//! Calling Wasm goes through `vm::func::call`, which writes the arguments
//! into the trampolines' value slots, enters Wasm catching traps and reads
//! the results. A host function is a `vm::func::HostCall` (here [`ValHost`]
//! for [`Func::new`], `wrap::Wrapped` for [`Func::wrap`]); the runtime's
//! host shim calls it from Wasm, catches its errors and panics, and raises
//! them to the entry, where [`crate::trap::error_from_unwind`] returns the
//! error or resumes the panic.

mod typed;
mod wrap;

pub use typed::{TypedFunc, WasmParams, WasmResults, WasmTy};
pub use wrap::{IntoFunc, WasmRet};

use crate::error::Error;
use crate::instance::Instance;
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::trap::error_from_unwind;
use crate::values::{Extern, Val};
use crate::vm::func::{HostCall, HostFuncParts, HostSlots, WasmEntry};
use crate::vm::gc::GcStats;
use crate::vm::store::Stored;
use crate::vm::traphandlers::HostError;
use std::sync::Arc;
use wasmc_format::{FuncType, ValType};

/// A host function's body.
pub type HostFn = dyn Fn(Caller<'_>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync;
/// A host function's body, shared; what the runtime keeps (as `dyn Any`)
/// for host-side calls of every host function.
pub(crate) type HostFuncRef = Arc<HostFn>;

/// What a host function gets besides its arguments: the store and the
/// calling instance.
pub struct Caller<'a> {
    pub(crate) store: &'a mut StoreOpaque,
    pub(crate) instance: Option<Instance>,
}

impl Caller<'_> {
    /// An export of the calling instance (e.g. its `memory`).
    pub fn get_export(&mut self, name: &str) -> Option<Extern> {
        let inst = self.instance?;
        inst.get_export(&mut *self.store, name)
    }

    /// The calling instance, if the function was called from Wasm.
    pub fn instance(&self) -> Option<Instance> {
        self.instance
    }

    /// Runs the externref collector, walking the Wasm frames below this host
    /// function (and those of enclosing activations of the store).
    pub fn gc(&mut self) {
        crate::vm::gc::collect(self.store);
    }

    /// The collector's statistics.
    pub fn gc_stats(&self) -> GcStats {
        self.store.gc_stats()
    }
}

impl AsContext for Caller<'_> {
    fn as_context(&self) -> &StoreOpaque {
        self.store
    }
}
impl AsContextMut for Caller<'_> {
    fn as_context_mut(&mut self) -> &mut StoreOpaque {
        self.store
    }
}

/// A function of a store: a host function or a Wasm function of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Func(pub(crate) Stored);

/// Boxes a host function's error for the trip through the runtime
/// (`error_from_unwind` unboxes it).
fn host_error(e: Error) -> HostError {
    Box::new(e)
}

/// A [`Func::new`] host function as the runtime calls it from Wasm.
pub(crate) struct ValHost(HostFuncRef);

impl HostCall for ValHost {
    fn call(
        &self,
        store: &mut StoreOpaque,
        instance: usize,
        mut slots: HostSlots<'_>,
    ) -> Result<(), HostError> {
        let ty = slots.ty();
        // Arguments and results live on the stack for small signatures.
        const SMALL: usize = 8;
        let (np, nr) = (ty.params.len(), ty.results.len());
        let mut small: [Val; SMALL] = std::array::from_fn(|_| Val::I32(0));
        let mut big = Vec::new();
        let vals: &mut [Val] = if np + nr <= SMALL {
            &mut small[..np + nr]
        } else {
            big.resize(np + nr, Val::I32(0));
            &mut big
        };
        let (args, results) = vals.split_at_mut(np);
        {
            let mut r = slots.args();
            for a in args.iter_mut() {
                *a = Val::from_vm(store, r.val(store));
            }
        }
        for (r, t) in results.iter_mut().zip(&ty.results) {
            *r = Val::default_for(*t);
        }
        let instance = Some(Instance(store.stored(instance)));
        (self.0)(Caller { store, instance }, args, results).map_err(host_error)?;
        check_vals("host function result", &ty.results, results).map_err(host_error)?;
        let mut w = slots.results();
        for r in results.iter() {
            let v = r.to_vm(store);
            // The types were checked just above.
            if let Err(t) = w.val(store, v) {
                return Err(host_error(Error::mismatch(
                    "host function result",
                    t,
                    r.ty(),
                )));
            }
        }
        Ok(())
    }
}

/// The parts of a [`Func::new`] host function.
pub(crate) fn val_host_parts(ty: FuncType, f: HostFuncRef) -> HostFuncParts {
    HostFuncParts::new(ty, Arc::new(ValHost(f.clone())), Arc::new(f))
}

impl Func {
    /// A host function of type `ty`.
    pub fn new(
        mut store: impl AsContextMut,
        ty: FuncType,
        f: impl Fn(Caller<'_>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Func {
        Func::new_host(store.as_context_mut(), val_host_parts(ty, Arc::new(f)))
    }

    /// A host function from its parts (see [`HostFuncParts`]).
    pub(crate) fn new_host(store: &mut StoreOpaque, parts: HostFuncParts) -> Func {
        let index = store.push_host_func(parts);
        Func(store.stored(index))
    }

    /// The function's type.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        let store = store.as_context();
        FuncType::clone(&store.funcs[store.check(self.0, "function")].ty)
    }

    /// Calls the function with `params`, writing `results` (whose length must
    /// be the number of results).
    pub fn call(
        &self,
        mut store: impl AsContextMut,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), Error> {
        let store = store.as_context_mut();
        let idx = store.check(self.0, "function");
        let ty = &store.funcs[idx].ty;
        check_vals("argument", &ty.params, params)?;
        if results.len() != ty.results.len() {
            return Err(Error::mismatch(
                "number of results",
                ty.results.len(),
                results.len(),
            ));
        }
        self.call_checked(store, idx, params, results)
    }

    /// [`Func::call`] after the argument and result types were checked.
    fn call_checked(
        &self,
        store: &mut StoreOpaque,
        idx: usize,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), Error> {
        let Some(e) = WasmEntry::new(store, idx) else {
            return call_host(store, idx, params, results);
        };
        crate::vm::func::call(
            store,
            &e,
            |store, w| {
                for p in params {
                    let v = p.to_vm(store);
                    // The types were checked by `call`.
                    let r = w.val(store, v);
                    debug_assert!(r.is_ok());
                }
            },
            |store, r| {
                for out in results.iter_mut() {
                    *out = Val::from_vm(store, r.val(store));
                }
            },
        )
        .map_err(error_from_unwind)
    }

    /// A typed view of this function; fails if the types differ.
    pub fn typed<P: WasmParams, R: WasmResults>(
        &self,
        store: impl AsContext,
    ) -> Result<TypedFunc<P, R>, Error> {
        let store = store.as_context();
        let actual = &*store.funcs[store.check(self.0, "function")].ty;
        let expected = FuncType {
            params: P::valtypes(),
            results: R::valtypes(),
        };
        if *actual != expected {
            return Err(Error::mismatch("function type", expected, actual));
        }
        Ok(TypedFunc::new(*self, store))
    }
}

/// Calls host function `idx` from the host, with checked `params`.
fn call_host(
    store: &mut StoreOpaque,
    idx: usize,
    params: &[Val],
    results: &mut [Val],
) -> Result<(), Error> {
    let f: HostFuncRef = store.funcs[idx]
        .host_body()
        .and_then(|b| b.downcast_ref::<HostFuncRef>())
        .cloned()
        .ok_or_else(|| Error::msg("a host function without a host-side body"))?;
    // The store stays borrowed by the Caller: keep the type by Arc.
    let ty = store.funcs[idx].ty.clone();
    for (r, t) in results.iter_mut().zip(&ty.results) {
        *r = Val::default_for(*t);
    }
    f(
        Caller {
            store,
            instance: None,
        },
        params,
        results,
    )?;
    check_vals("host function result", &ty.results, results)
}

fn check_vals(what: &str, tys: &[ValType], vals: &[Val]) -> Result<(), Error> {
    if tys.len() == vals.len() && tys.iter().zip(vals).all(|(t, v)| v.ty() == *t) {
        return Ok(());
    }
    let found: Vec<ValType> = vals.iter().map(Val::ty).collect();
    let list = |v: &[ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Error::mismatch(
        format!("{what} types"),
        format!("({})", list(tys)),
        format!("({})", list(&found)),
    ))
}
