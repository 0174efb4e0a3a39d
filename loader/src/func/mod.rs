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

use crate::engine::Engine;
use crate::error::Error;
use crate::instance::Instance;
use crate::store::{AsContext, AsContextMut, StoreContext, StoreContextMut, StoreOpaque};
use crate::trap::error_from_unwind;
use crate::values::{Extern, Val};
use crate::vm::func::{HostCall, HostFuncParts, HostSlots, WasmEntry};
use crate::vm::gc::GcStats;
use crate::vm::store::Stored;
use crate::vm::traphandlers::HostError;
use std::marker::PhantomData;
use std::sync::Arc;
use wasmc_format::{FuncType, ValType};

/// A host function's body, as [`Func::new`] and [`crate::Linker::func_new`]
/// take it: the caller (the store with data `T`, the calling instance), the
/// arguments, and the results to fill in.
pub type HostFn<T> = dyn Fn(Caller<'_, T>, &[Val], &mut [Val]) -> anyhow::Result<()> + Send + Sync;

/// A host function's body with the store's data type erased (it builds the
/// `Caller<'_, T>` itself): what the runtime keeps (as `dyn Any`) for
/// host-side calls of every host function, and what Wasm calls for
/// [`Func::new`] functions.
pub(crate) type ErasedHostFn = dyn Fn(&mut StoreOpaque, Option<Instance>, &[Val], &mut [Val]) -> anyhow::Result<()>
    + Send
    + Sync;
/// [`ErasedHostFn`], shared.
pub(crate) type HostFuncRef = Arc<ErasedHostFn>;

/// What a host function gets besides its arguments: the store (with its
/// data `T`) and the calling instance.
///
/// A `Caller` is `Send` when `T` is, but the store's Wasm runs on one thread
/// at a time: while the calling Wasm waits on this thread, calling into the
/// store's Wasm through the `Caller` from another thread is an error, and a
/// collection ([`Caller::gc`]) there frees nothing.
///
/// ```
/// use wasmc_loader::{Caller, Engine, Func, Store};
/// let mut store = Store::new(&Engine::default(), 0u32);
/// let count = Func::wrap(&mut store, |mut caller: Caller<'_, u32>| {
///     *caller.data_mut() += 1;
/// });
/// count.call(&mut store, &[], &mut [])?;
/// assert_eq!(*store.data(), 1);
/// # Ok::<(), wasmc_loader::Error>(())
/// ```
pub struct Caller<'a, T> {
    pub(crate) store: &'a mut StoreOpaque,
    pub(crate) instance: Option<Instance>,
    /// Thread-safety as a `&mut T`: `Send` only when `T` is (the caller
    /// reaches the data; `StoreOpaque` is `Send` whatever the data is).
    pub(crate) _marker: PhantomData<&'a mut T>,
}

impl<T> std::fmt::Debug for Caller<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("store", &self.store.id)
            .field("instance", &self.instance)
            .finish()
    }
}

impl<'a, T> Caller<'a, T> {
    pub(crate) fn new(store: &'a mut StoreOpaque, instance: Option<Instance>) -> Self {
        Caller {
            store,
            instance,
            _marker: PhantomData,
        }
    }
}

impl<T: 'static> Caller<'_, T> {
    /// The store's host data.
    pub fn data(&self) -> &T {
        crate::store::data_ref::<T>(self.store)
    }

    /// The store's host data, writable.
    pub fn data_mut(&mut self) -> &mut T {
        self.store
            .data
            .downcast_mut::<T>()
            .expect("store data accessed with another type than the store's")
    }

    /// The engine of the store.
    pub fn engine(&self) -> &Engine {
        crate::store::engine_of(self.store)
    }
}

impl<T> Caller<'_, T> {
    /// The store's fuel left, as [`crate::Store::get_fuel`]. The calling
    /// Wasm stored its count before calling, so this is exact.
    pub fn get_fuel(&self) -> Result<u64, crate::Error> {
        self.store.get_fuel().map_err(crate::Error::Interruption)
    }

    /// Sets the store's fuel, as [`crate::Store::set_fuel`]; the calling
    /// Wasm continues with it when this host function returns (it reloads
    /// its count after every call).
    pub fn set_fuel(&mut self, fuel: u64) -> Result<(), crate::Error> {
        self.store
            .set_fuel(fuel)
            .map_err(crate::Error::Interruption)
    }

    /// Sets the store's epoch deadline `ticks` epochs after the engine's
    /// current one, as [`crate::Store::set_epoch_deadline`]; the calling
    /// Wasm sees it at its next check (function entry or loop header).
    pub fn set_epoch_deadline(&mut self, ticks: u64) -> Result<(), crate::Error> {
        self.store
            .set_epoch_deadline(ticks)
            .map_err(crate::Error::Interruption)
    }
}

impl<T> Caller<'_, T> {
    /// An export of the calling instance (e.g. its `memory`).
    pub fn get_export(&mut self, name: &str) -> Option<Extern> {
        let inst = self.instance?;
        inst.get_export(StoreContextMut::<T>::new(self.store), name)
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

impl<T> AsContext for Caller<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext::new(self.store)
    }
}
impl<T> AsContextMut for Caller<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut::new(self.store)
    }
}

/// A function of a store: a host function or a Wasm function of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Func(pub(crate) Stored);

pub(crate) use crate::vm::func::{host_error, HostFailure};

/// A [`Func::new`] host function, the closure `F` taking a `Caller<'_, T>`,
/// as the runtime calls it from Wasm. It holds the closure itself rather
/// than the erased [`HostFuncRef`] (which the host-side `Func::call` uses):
/// going through that `dyn Fn` cost a second indirect call, and the erased
/// closure copied the calling instance, just written field by field, with
/// one wide load that could not be forwarded from those stores (about a
/// quarter of a dynamic host call's samples).
pub(crate) struct ValHost<F, T> {
    f: F,
    _marker: PhantomData<fn(T)>,
}

impl<T: 'static, F> HostCall for ValHost<F, T>
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> anyhow::Result<()> + Send + Sync + 'static,
{
    fn call(
        &self,
        store: &mut StoreOpaque,
        instance: usize,
        slots: HostSlots<'_>,
    ) -> Result<(), HostError> {
        // Arguments and results live on the stack for small signatures, in
        // an array no longer than needed: each `Val` is initialised and
        // dropped at every call, so eight of them for an `i32 -> i32`
        // function were a measurable part of it.
        let n = slots.ty().params.len() + slots.ty().results.len();
        let blank = || Val::I32(0);
        if n <= 2 {
            self.call_with(store, instance, slots, &mut [blank(), blank()][..n])
        } else if n <= 8 {
            self.call_with(
                store,
                instance,
                slots,
                &mut std::array::from_fn::<_, 8, _>(|_| blank())[..n],
            )
        } else {
            self.call_with(store, instance, slots, &mut vec![blank(); n])
        }
    }
}

impl<T: 'static, F> ValHost<F, T>
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> anyhow::Result<()> + Send + Sync + 'static,
{
    /// The call, with `vals` holding room for the arguments then the
    /// results.
    #[inline]
    fn call_with(
        &self,
        store: &mut StoreOpaque,
        instance: usize,
        mut slots: HostSlots<'_>,
        vals: &mut [Val],
    ) -> Result<(), HostError> {
        let ty = slots.ty();
        let (args, results) = vals.split_at_mut(ty.params.len());
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
        (self.f)(Caller::new(store, instance), args, results).map_err(host_error)?;
        if !vals_fit(store, &ty.results, results) {
            // Only to build the error: the check above said there is one.
            check_vals(store, "host function result", &ty.results, results).map_err(host_error)?;
        }
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

/// The parts of a [`Func::new`] host function `f` with data type `T`.
pub(crate) fn val_host_parts<T: 'static, F>(ty: FuncType, f: F) -> HostFuncParts
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> anyhow::Result<()> + Send + Sync + 'static,
{
    let h = Arc::new(ValHost {
        f,
        _marker: PhantomData,
    });
    let g = h.clone();
    let erased: HostFuncRef = Arc::new(
        move |store: &mut StoreOpaque,
              instance: Option<Instance>,
              args: &[Val],
              results: &mut [Val]| { (g.f)(Caller::new(store, instance), args, results) },
    );
    HostFuncParts::new(ty, h, Arc::new(erased))
}

impl Func {
    /// A host function of type `ty`, called with [`Val`]s. Its errors
    /// reach the caller of the Wasm function that called it as
    /// [`Error::Host`], whose `source()` is the error returned.
    ///
    /// ```
    /// use wasmc_loader::{Caller, Engine, Func, FuncType, Store, Val, ValType};
    /// let mut store = Store::new(&Engine::default(), ());
    /// let ty = FuncType { params: vec![ValType::I32], results: vec![ValType::I32] };
    /// let double = Func::new(&mut store, ty, |_: Caller<'_, ()>, args, results| {
    ///     let Val::I32(x) = args[0] else { anyhow::bail!("not an i32") };
    ///     results[0] = Val::I32(x * 2);
    ///     Ok(())
    /// });
    /// let mut out = [Val::I32(0)];
    /// double.call(&mut store, &[Val::I32(21)], &mut out)?;
    /// assert!(matches!(out[0], Val::I32(42)));
    /// # Ok::<(), wasmc_loader::Error>(())
    /// ```
    pub fn new<T: 'static>(
        mut store: impl AsContextMut<Data = T>,
        ty: FuncType,
        f: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> anyhow::Result<()> + Send + Sync + 'static,
    ) -> Func {
        Func::new_host(store.as_context_mut().store, val_host_parts::<T, _>(ty, f))
    }

    /// A host function from its parts (see [`HostFuncParts`]).
    pub(crate) fn new_host(store: &mut StoreOpaque, parts: HostFuncParts) -> Func {
        let index = store.push_host_func(parts);
        Func(store.stored(index))
    }

    /// The function's type.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        let store = store.as_context().store;
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
        let store = store.as_context_mut().store;
        let idx = store.check(self.0, "function");
        let ty = &store.funcs[idx].ty;
        check_vals(store, "argument", &ty.params, params)?;
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
        .map_err(|r| error_from_unwind(store, r))
    }

    /// A typed view of this function; fails if the types differ.
    pub fn typed<P: WasmParams, R: WasmResults>(
        &self,
        store: impl AsContext,
    ) -> Result<TypedFunc<P, R>, Error> {
        let store = store.as_context().store;
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
    f(store, None, params, results).map_err(Error::from_host)?;
    check_vals(store, "host function result", &ty.results, results)
}

/// Whether `vals` are of types `tys` and their function references
/// belong to `store`: [`check_vals`] without building a `Result` (an
/// `Error` is large), for paths that run at every call.
#[inline]
fn vals_fit(store: &StoreOpaque, tys: &[ValType], vals: &[Val]) -> bool {
    tys.len() == vals.len()
        && tys
            .iter()
            .zip(vals)
            .all(|(t, v)| v.ty() == *t && v.belongs_to(store))
}

/// Checks that `vals` are of types `tys` and that their function
/// references belong to `store`.
fn check_vals(store: &StoreOpaque, what: &str, tys: &[ValType], vals: &[Val]) -> Result<(), Error> {
    if tys.len() == vals.len() && tys.iter().zip(vals).all(|(t, v)| v.ty() == *t) {
        return vals.iter().try_for_each(|v| v.check_store(store, what));
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
