//! Functions: [`Func`] (host or Wasm), [`Caller`], [`TypedFunc`], the host
//! shim that Wasm reaches through a host trampoline, and the host-to-Wasm
//! call path.
//!
//! Calling Wasm: arguments go into an array of 16-byte value slots
//! (externrefs are inserted into the activations table), the module's entry
//! trampoline for the function's type is called inside
//! [`crate::traphandlers::catch_traps`], results are read back from the same
//! slots (externrefs cloned for the host). When the store's outermost
//! activation returns, the activations table is cleared.
//!
//! Calling the host from Wasm: the host trampoline calls
//! [`array_call_shim`], which must not unwind: host errors and panics are
//! caught, everything is dropped, and the shim raises to the entry, where the
//! error is returned or the panic resumed.

use crate::error::Error;
use crate::instance::Instance;
use crate::store::{AsContext, AsContextMut, StoreOpaque, Stored};
use crate::traphandlers::{catch_traps, into_error, raise, UnwindReason};
use crate::values::{Extern, Val};
use crate::vmcontext::{vmctx_header, VMContext, VMFuncRef, VMHostFuncContext, ValRaw};
use crate::ExternRef;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use wasmc_format::vmoffsets::VMHOSTFUNC_MAGIC;
use wasmc_format::{FuncType, ValType};

/// A host function's body.
pub type HostFn = dyn Fn(Caller<'_>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync;
pub(crate) type HostFuncRef = Arc<HostFn>;

pub(crate) enum FuncKind {
    Host(Box<VMHostFuncContext>),
    Wasm { instance: usize, index: u32 },
}

pub(crate) struct FuncData {
    pub kind: FuncKind,
    pub ty: FuncType,
    pub func_ref: *mut VMFuncRef,
}

impl FuncData {
    pub fn host_ctx_mut(&mut self) -> Option<&mut VMHostFuncContext> {
        match &mut self.kind {
            FuncKind::Host(c) => Some(c),
            FuncKind::Wasm { .. } => None,
        }
    }
}

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
        crate::gc::collect(self.store);
    }

    /// The collector's statistics.
    pub fn gc_stats(&self) -> crate::gc::GcStats {
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

type EntryFn = unsafe extern "C" fn(*mut VMContext, *mut VMContext, *const u8, *mut ValRaw);

impl Func {
    /// A host function of type `ty`.
    pub fn new(
        mut store: impl AsContextMut,
        ty: FuncType,
        f: impl Fn(Caller<'_>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Func {
        Func::new_arc(store.as_context_mut(), ty, Arc::new(f))
    }

    pub(crate) fn new_arc(store: &mut StoreOpaque, ty: FuncType, f: HostFuncRef) -> Func {
        let type_id = crate::types::intern(&ty);
        let mut ctx = Box::new(VMHostFuncContext {
            magic: VMHOSTFUNC_MAGIC,
            array_call: array_call_shim,
            func_ref: VMFuncRef {
                wasm_call: std::ptr::null(),
                vmctx: std::ptr::null_mut(),
                type_id,
            },
            host: f,
            ty: ty.clone(),
        });
        let ctx_ptr: *mut VMHostFuncContext = &mut *ctx;
        ctx.func_ref.vmctx = ctx_ptr.cast();
        let func_ref: *mut VMFuncRef = &mut ctx.func_ref;
        let index = store.funcs.len();
        store.funcs.push(FuncData {
            kind: FuncKind::Host(ctx),
            ty,
            func_ref,
        });
        store.func_by_ref.insert(func_ref as usize, index);
        store.fill_host_trampolines();
        Func(store.stored(index))
    }

    /// The function's type.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        let store = store.as_context();
        store.funcs[store.check(self.0, "function")].ty.clone()
    }

    pub(crate) fn func_ref_ptr(&self, store: &StoreOpaque) -> *mut VMFuncRef {
        store.funcs[store.check(self.0, "function")].func_ref
    }

    pub(crate) fn from_func_ref(store: &StoreOpaque, ptr: *mut u8) -> Option<Func> {
        if ptr.is_null() {
            return None;
        }
        let index = *store.func_by_ref.get(&(ptr as usize))?;
        Some(Func(store.stored(index)))
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
        if let FuncKind::Host(ctx) = &store.funcs[idx].kind {
            let f = ctx.host.clone();
            let result_tys = store.funcs[idx].ty.results.clone();
            for (r, t) in results.iter_mut().zip(&result_tys) {
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
            return check_vals("host function result", &result_tys, results);
        }
        // The value slots live on the stack for the common small signatures.
        const SMALL: usize = 8;
        let n = params.len().max(results.len()).max(1);
        let mut small = [ValRaw::default(); SMALL];
        let mut big = Vec::new();
        let slots: &mut [ValRaw] = if n <= SMALL {
            &mut small[..n]
        } else {
            big.resize(n, ValRaw::default());
            &mut big
        };
        let r = (|| {
            for (slot, p) in slots.iter_mut().zip(params) {
                *slot = p.to_raw_for_wasm(store)?;
            }
            // SAFETY: the slots array has max(params, results) entries, holds
            // arguments of the function's type, and the function is in `store`.
            unsafe { invoke_wasm(store, idx, slots.as_mut_ptr()) }?;
            for (i, r) in results.iter_mut().enumerate() {
                let t = store.funcs[idx].ty.results[i];
                // SAFETY: the entry trampoline wrote results of these types.
                *r = unsafe { Val::from_raw(store, slots[i], t) };
            }
            Ok(())
        })();
        if store.wasm_depth == 0 {
            store.activations.clear();
        }
        r
    }

    /// A typed view of this function; fails if the types differ.
    pub fn typed<P: WasmParams, R: WasmResults>(
        &self,
        store: impl AsContext,
    ) -> Result<TypedFunc<P, R>, Error> {
        let actual = self.ty(store);
        let expected = FuncType {
            params: P::valtypes(),
            results: R::valtypes(),
        };
        if actual != expected {
            return Err(Error::mismatch("function type", expected, actual));
        }
        Ok(TypedFunc {
            func: *self,
            _marker: PhantomData,
        })
    }
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

/// Calls Wasm function `idx` of `store` through its entry trampoline.
///
/// # Safety
/// `slots` must have `max(params, results)` entries holding the arguments.
pub(crate) unsafe fn invoke_wasm(
    store: &mut StoreOpaque,
    idx: usize,
    slots: *mut ValRaw,
) -> Result<(), Error> {
    let FuncKind::Wasm { instance, index } = store.funcs[idx].kind else {
        unreachable!("invoke_wasm on a host function");
    };
    let module = &store.instances[instance].module;
    let t = module.info().functions[index as usize].type_index;
    let entry = module.entry_trampoline(t);
    let func_ref = store.funcs[idx].func_ref;
    // SAFETY: func_ref points into the defining instance's VMContext, alive
    // as long as the store.
    let (code, vmctx) = unsafe { ((*func_ref).wasm_call, (*func_ref).vmctx) };
    // SAFETY: `entry` is the module's entry trampoline for this type, whose
    // ABI is EntryFn (format's TypeTrampolines::entry contract).
    let entry: EntryFn = unsafe { std::mem::transmute::<*const u8, EntryFn>(entry) };
    let limits = store.limits_ptr();
    let max_stack = store.max_wasm_stack;
    store.wasm_depth += 1;
    // SAFETY: limits is the store's; the closure only calls the trampoline.
    let r = unsafe {
        catch_traps(limits, max_stack, || {
            entry(vmctx, vmctx, code, slots);
        })
    };
    store.wasm_depth -= 1;
    r.map_err(into_error)
}

/// The `array_call` of every host function: `(callee = VMHostFuncContext,
/// caller vmctx, values, len)`.
unsafe extern "C" fn array_call_shim(
    callee: *mut VMHostFuncContext,
    caller_vmctx: *mut VMContext,
    values: *mut ValRaw,
    len: usize,
) {
    // SAFETY: called by a host trampoline with the documented arguments.
    let r = unsafe { array_call_inner(callee, caller_vmctx, values, len) };
    if let Err(reason) = r {
        // SAFETY: we are inside a Wasm activation (called from Wasm) and
        // nothing with a destructor is live in this frame (`r` was moved).
        unsafe { raise(reason) }
    }
}

unsafe fn array_call_inner(
    callee: *mut VMHostFuncContext,
    caller_vmctx: *mut VMContext,
    values: *mut ValRaw,
    len: usize,
) -> Result<(), UnwindReason> {
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), Error> {
        // SAFETY: callee is a live host context owned by the store. Host
        // functions are never freed before their store, so borrowing its
        // body and type for the call (instead of cloning them) is sound.
        let (f, ty) = unsafe { (&*(*callee).host, &(*callee).ty) };
        // SAFETY: caller_vmctx is the calling instance's VMContext.
        let header = unsafe { vmctx_header(caller_vmctx) };
        // SAFETY: the store pointer in a VMContext is its (boxed) store, and
        // no other reference to it is used while Wasm runs.
        let store = unsafe { &mut *(header.store as *mut StoreOpaque) };
        let instance = Instance(store.stored(header.instance as usize));
        if len < ty.params.len().max(ty.results.len()) {
            return Err(Error::msg("host trampoline passed too few value slots"));
        }
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
        for (i, (a, t)) in args.iter_mut().zip(&ty.params).enumerate() {
            // SAFETY: the trampoline spilled arguments of these types.
            *a = unsafe { Val::from_raw(store, *values.add(i), *t) };
        }
        for (r, t) in results.iter_mut().zip(&ty.results) {
            *r = Val::default_for(*t);
        }
        f(
            Caller {
                store,
                instance: Some(instance),
            },
            args,
            results,
        )?;
        check_vals("host function result", &ty.results, results)?;
        for (i, r) in results.iter().enumerate() {
            let raw = r.to_raw_for_wasm(store)?;
            // SAFETY: len >= results, checked above.
            unsafe { *values.add(i) = raw };
        }
        Ok(())
    }));
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(UnwindReason::Error(e)),
        Err(p) => Err(UnwindReason::Panic(p)),
    }
}

// ----- typed functions -----

/// A Rust type that is a Wasm value type.
pub trait WasmTy: Sized + 'static {
    /// The Wasm type.
    fn valtype() -> ValType;
    /// Into a `Val`.
    fn into_val(self) -> Val;
    /// From a `Val` of [`Self::valtype`].
    fn from_val(v: Val) -> Self;
}

macro_rules! wasm_ty {
    ($t:ty, $vt:ident, $v:ident => $into:expr, $pat:pat => $from:expr) => {
        impl WasmTy for $t {
            fn valtype() -> ValType {
                ValType::$vt
            }
            fn into_val(self) -> Val {
                let $v = self;
                $into
            }
            fn from_val(v: Val) -> Self {
                match v {
                    $pat => $from,
                    other => panic!("typed function got a {} value", other.ty()),
                }
            }
        }
    };
}

wasm_ty!(i32, I32, v => Val::I32(v), Val::I32(x) => x);
wasm_ty!(u32, I32, v => Val::I32(v as i32), Val::I32(x) => x as u32);
wasm_ty!(i64, I64, v => Val::I64(v), Val::I64(x) => x);
wasm_ty!(u64, I64, v => Val::I64(v as i64), Val::I64(x) => x as u64);
wasm_ty!(f32, F32, v => Val::F32(v.to_bits()), Val::F32(x) => f32::from_bits(x));
wasm_ty!(f64, F64, v => Val::F64(v.to_bits()), Val::F64(x) => f64::from_bits(x));
wasm_ty!(Option<ExternRef>, ExternRef, v => Val::ExternRef(v), Val::ExternRef(x) => x);
wasm_ty!(Option<Func>, FuncRef, v => Val::FuncRef(v), Val::FuncRef(x) => x);

/// Parameters of a typed function: a [`WasmTy`] or a tuple of them.
pub trait WasmParams: Sized {
    /// The parameter types.
    fn valtypes() -> Vec<ValType>;
    /// Into `Val`s.
    fn into_vals(self) -> Vec<Val>;
    /// Calls `f` with the parameters as `Val`s (on the stack for tuples).
    #[doc(hidden)]
    fn with_vals<T>(self, f: impl FnOnce(&[Val]) -> T) -> T {
        f(&self.into_vals())
    }
}

/// Results of a typed function: a [`WasmTy`] or a tuple of them.
pub trait WasmResults: Sized {
    /// The result types.
    fn valtypes() -> Vec<ValType>;
    /// From `Val`s of [`Self::valtypes`].
    fn from_vals(v: Vec<Val>) -> Self;
    /// Calls `f` with default `Val`s of [`Self::valtypes`] to fill in (on
    /// the stack for tuples), then converts them.
    #[doc(hidden)]
    fn from_filled(f: impl FnOnce(&mut [Val]) -> Result<(), Error>) -> Result<Self, Error> {
        let mut v: Vec<Val> = Self::valtypes().into_iter().map(Val::default_for).collect();
        f(&mut v)?;
        Ok(Self::from_vals(v))
    }
}

/// An array of `Val`s (names the element type for empty tuples).
fn val_array<const N: usize>(a: [Val; N]) -> [Val; N] {
    a
}

impl<T: WasmTy> WasmParams for T {
    fn valtypes() -> Vec<ValType> {
        vec![T::valtype()]
    }
    fn into_vals(self) -> Vec<Val> {
        vec![self.into_val()]
    }
    fn with_vals<U>(self, f: impl FnOnce(&[Val]) -> U) -> U {
        f(&[self.into_val()])
    }
}

impl<T: WasmTy> WasmResults for T {
    fn valtypes() -> Vec<ValType> {
        vec![T::valtype()]
    }
    fn from_vals(v: Vec<Val>) -> Self {
        T::from_val(v.into_iter().next().expect("one result"))
    }
    fn from_filled(f: impl FnOnce(&mut [Val]) -> Result<(), Error>) -> Result<Self, Error> {
        let [mut v] = [Val::default_for(T::valtype())];
        f(std::slice::from_mut(&mut v))?;
        Ok(T::from_val(v))
    }
}

macro_rules! tuples {
    ($($t:ident),*) => {
        impl<$($t: WasmTy),*> WasmParams for ($($t,)*) {
            fn valtypes() -> Vec<ValType> {
                vec![$($t::valtype()),*]
            }
            #[allow(non_snake_case)]
            fn into_vals(self) -> Vec<Val> {
                let ($($t,)*) = self;
                vec![$($t.into_val()),*]
            }
            #[allow(non_snake_case)]
            fn with_vals<U>(self, f: impl FnOnce(&[Val]) -> U) -> U {
                let ($($t,)*) = self;
                f(&val_array([$($t.into_val()),*]))
            }
        }
        impl<$($t: WasmTy),*> WasmResults for ($($t,)*) {
            fn valtypes() -> Vec<ValType> {
                vec![$($t::valtype()),*]
            }
            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            fn from_vals(v: Vec<Val>) -> Self {
                let mut it = v.into_iter();
                ($($t::from_val(it.next().expect("result count")),)*)
            }
            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            fn from_filled(
                f: impl FnOnce(&mut [Val]) -> Result<(), Error>,
            ) -> Result<Self, Error> {
                let mut v = val_array([$(Val::default_for($t::valtype())),*]);
                f(&mut v)?;
                let mut it = v.into_iter();
                Ok(($($t::from_val(it.next().expect("result count")),)*))
            }
        }
    };
}

tuples!();
tuples!(A);
tuples!(A, B);
tuples!(A, B, C);
tuples!(A, B, C, D);
tuples!(A, B, C, D, E);
tuples!(A, B, C, D, E, F);
tuples!(A, B, C, D, E, F, G);
tuples!(A, B, C, D, E, F, G, H);

/// A function whose type was checked once, called with Rust values.
pub struct TypedFunc<P, R> {
    func: Func,
    _marker: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, R> Copy for TypedFunc<P, R> {}

impl<P: WasmParams, R: WasmResults> TypedFunc<P, R> {
    /// Calls the function. The types were checked when the `TypedFunc` was
    /// made, so the call does not check them again.
    pub fn call(&self, mut store: impl AsContextMut, params: P) -> Result<R, Error> {
        let store = store.as_context_mut();
        let idx = store.check(self.func.0, "function");
        params.with_vals(|args| {
            R::from_filled(|results| self.func.call_checked(store, idx, args, results))
        })
    }

    /// The untyped function.
    pub fn func(&self) -> Func {
        self.func
    }
}
