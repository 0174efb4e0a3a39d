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
use crate::vmcontext::{
    vmctx_header, ArrayCallFn, VMContext, VMFuncRef, VMHostFuncContext, ValRaw,
};
use crate::ExternRef;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use wasmc_format::vmoffsets::VMHOSTFUNC_MAGIC;
use wasmc_format::{FuncType, ValType};

/// Everything a host function is made of, independent of any store (a
/// [`crate::Linker`] keeps these and makes a function per store). Public
/// only so that [`crate::IntoFunc`] can name it; it has no public API.
#[derive(Clone)]
pub struct HostFuncParts {
    pub(crate) ty: FuncType,
    /// The body with the `Val` interface (host-side calls).
    pub(crate) host: HostFuncRef,
    /// What the host trampoline calls: [`array_call_shim`] (which calls
    /// `host`) or a shim monomorphized for a typed closure.
    pub(crate) array_call: ArrayCallFn,
    /// For a typed `array_call`: the closure it reads (a pointer into the
    /// owner, which keeps it alive).
    pub(crate) typed: Option<(TypedPtr, Arc<dyn std::any::Any + Send + Sync>)>,
}

/// The address of a typed host closure inside its owner.
#[derive(Clone, Copy)]
pub(crate) struct TypedPtr(pub *const ());

// SAFETY: it points to a `Send + Sync` closure (the owner's contents) and is
// only dereferenced as a shared reference.
unsafe impl Send for TypedPtr {}
// SAFETY: as above.
unsafe impl Sync for TypedPtr {}

/// A host function's body.
pub type HostFn = dyn Fn(Caller<'_>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync;
pub(crate) type HostFuncRef = Arc<HostFn>;

pub(crate) enum FuncKind {
    Host(Box<VMHostFuncContext>),
    Wasm { instance: usize, type_index: u32 },
}

pub(crate) struct FuncData {
    pub kind: FuncKind,
    /// Shared with the module's type (Wasm functions) so that creating a
    /// function per definition at instantiation allocates nothing.
    pub ty: Arc<FuncType>,
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
        Func::new_host(
            store,
            HostFuncParts {
                ty,
                host: f,
                array_call: array_call_shim,
                typed: None,
            },
        )
    }

    /// A host function from its parts (see [`HostFuncParts`]).
    pub(crate) fn new_host(store: &mut StoreOpaque, parts: HostFuncParts) -> Func {
        let HostFuncParts {
            ty,
            host,
            array_call,
            typed,
        } = parts;
        let type_id = crate::types::intern(&ty);
        let mut ctx = Box::new(VMHostFuncContext {
            magic: VMHOSTFUNC_MAGIC,
            array_call,
            func_ref: VMFuncRef {
                wasm_call: std::ptr::null(),
                vmctx: std::ptr::null_mut(),
                type_id,
            },
            host,
            ty: ty.clone(),
            typed: typed.as_ref().map_or(std::ptr::null(), |(p, _)| p.0),
            typed_owner: typed.map(|(_, owner)| owner),
        });
        let ctx_ptr: *mut VMHostFuncContext = &mut *ctx;
        ctx.func_ref.vmctx = ctx_ptr.cast();
        let func_ref: *mut VMFuncRef = &mut ctx.func_ref;
        let index = store.funcs.len();
        store.funcs.push(FuncData {
            kind: FuncKind::Host(ctx),
            ty: Arc::new(ty),
            func_ref,
        });
        store.func_by_ref.insert(func_ref as usize, index);
        store.fill_host_trampolines();
        Func(store.stored(index))
    }

    /// The function's type.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        let store = store.as_context();
        FuncType::clone(&store.funcs[store.check(self.0, "function")].ty)
    }

    pub(crate) fn func_ref_ptr(&self, store: &StoreOpaque) -> *mut VMFuncRef {
        store.funcs[store.check(self.0, "function")].func_ref
    }

    pub(crate) fn from_func_ref(store: &StoreOpaque, ptr: *mut u8) -> Option<Func> {
        if ptr.is_null() {
            return None;
        }
        let p = ptr as usize;
        if let Some(&index) = store.func_by_ref.get(&p) {
            return Some(Func(store.stored(index)));
        }
        // A funcref in an instance's VMContext: its position is the index.
        let (&start, &(end, inst)) = store.func_ref_ranges.range(..=p).next_back()?;
        if p >= end {
            return None;
        }
        let size = store.instances[inst].module.offsets().size_of_vmfunc_ref() as usize;
        let off = p - start;
        if !off.is_multiple_of(size) {
            return None;
        }
        let index = *store.instances[inst].funcs.get(off / size)?;
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
            return check_vals("host function result", &ty.results, results);
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
    let FuncKind::Wasm {
        instance,
        type_index,
    } = store.funcs[idx].kind
    else {
        unreachable!("invoke_wasm on a host function");
    };
    let entry = store.instances[instance]
        .module
        .entry_trampoline(type_index);
    let func_ref = store.funcs[idx].func_ref;
    // SAFETY: func_ref points into the defining instance's VMContext, alive
    // as long as the store.
    let (code, vmctx) = unsafe { ((*func_ref).wasm_call, (*func_ref).vmctx) };
    // SAFETY: forwarded; `entry` is the trampoline of the function's type.
    unsafe { call_entry(store, entry, code, vmctx, slots) }
}

/// Enters Wasm: calls `code` with `vmctx` through `entry`, catching traps.
///
/// # Safety
/// `entry` must be the entry trampoline of a module of `store` for the type
/// of the function at `code` (whose instance has VMContext `vmctx`, in
/// `store`), and `slots` must have `max(params, results)` entries holding
/// the arguments.
#[inline]
unsafe fn call_entry(
    store: &mut StoreOpaque,
    entry: *const u8,
    code: *const u8,
    vmctx: *mut VMContext,
    slots: *mut ValRaw,
) -> Result<(), Error> {
    // SAFETY: `entry` is an entry trampoline, whose ABI is EntryFn (format's
    // TypeTrampolines::entry contract).
    let entry: EntryFn = unsafe { std::mem::transmute::<*const u8, EntryFn>(entry) };
    let limits = store.limits_ptr();
    let max_stack = store.max_wasm_stack;
    store.wasm_depth += 1;
    // SAFETY: limits is the store's; the closure only calls the trampoline
    // with the arguments the caller vouched for.
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
pub(crate) unsafe extern "C" fn array_call_shim(
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
    /// Into a raw slot for Wasm: an externref is moved into the store's
    /// activations table, which keeps it alive while Wasm runs.
    #[doc(hidden)]
    fn into_raw(self, store: &mut StoreOpaque) -> ValRaw;
    /// From a raw slot written by Wasm; an externref is cloned.
    ///
    /// # Safety
    /// `raw` must hold a live value of [`Self::valtype`] belonging to `store`.
    #[doc(hidden)]
    unsafe fn from_raw(store: &StoreOpaque, raw: ValRaw) -> Self;
}

macro_rules! wasm_ty {
    ($t:ty, $vt:ident, $v:ident => $into:expr, $pat:pat => $from:expr,
     $rv:ident => $into_raw:expr, $raw:ident => $from_raw:expr) => {
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
            #[inline]
            fn into_raw(self, _store: &mut StoreOpaque) -> ValRaw {
                let $rv = self;
                $into_raw
            }
            #[inline]
            unsafe fn from_raw(_store: &StoreOpaque, $raw: ValRaw) -> Self {
                $from_raw
            }
        }
    };
}

wasm_ty!(i32, I32, v => Val::I32(v), Val::I32(x) => x,
    v => ValRaw::from_u64(u64::from(v as u32)), r => r.get_u32() as i32);
wasm_ty!(u32, I32, v => Val::I32(v as i32), Val::I32(x) => x as u32,
    v => ValRaw::from_u64(u64::from(v)), r => r.get_u32());
wasm_ty!(i64, I64, v => Val::I64(v), Val::I64(x) => x,
    v => ValRaw::from_u64(v as u64), r => r.get_u64() as i64);
wasm_ty!(u64, I64, v => Val::I64(v as i64), Val::I64(x) => x as u64,
    v => ValRaw::from_u64(v), r => r.get_u64());
wasm_ty!(f32, F32, v => Val::F32(v.to_bits()), Val::F32(x) => f32::from_bits(x),
    v => ValRaw::from_u64(u64::from(v.to_bits())), r => f32::from_bits(r.get_u32()));
wasm_ty!(f64, F64, v => Val::F64(v.to_bits()), Val::F64(x) => f64::from_bits(x),
    v => ValRaw::from_u64(v.to_bits()), r => f64::from_bits(r.get_u64()));

impl WasmTy for Option<ExternRef> {
    fn valtype() -> ValType {
        ValType::ExternRef
    }
    fn into_val(self) -> Val {
        Val::ExternRef(self)
    }
    fn from_val(v: Val) -> Self {
        match v {
            Val::ExternRef(x) => x,
            other => panic!("typed function got a {} value", other.ty()),
        }
    }
    #[inline]
    fn into_raw(self, store: &mut StoreOpaque) -> ValRaw {
        match self {
            None => ValRaw::default(),
            Some(r) => {
                let p = r.into_raw();
                // SAFETY: `p` is live and `into_raw` gave up the handle's
                // count, which the table takes over.
                unsafe { store.activations.insert_owned(p) };
                ValRaw::from_u64(p as usize as u64)
            }
        }
    }
    #[inline]
    unsafe fn from_raw(_store: &StoreOpaque, raw: ValRaw) -> Self {
        // SAFETY: caller contract: the slot holds a live externref or null.
        unsafe { ExternRef::clone_from_raw(raw.get_ptr().cast()) }
    }
}

impl WasmTy for Option<Func> {
    fn valtype() -> ValType {
        ValType::FuncRef
    }
    fn into_val(self) -> Val {
        Val::FuncRef(self)
    }
    fn from_val(v: Val) -> Self {
        match v {
            Val::FuncRef(x) => x,
            other => panic!("typed function got a {} value", other.ty()),
        }
    }
    #[inline]
    fn into_raw(self, store: &mut StoreOpaque) -> ValRaw {
        match self {
            None => ValRaw::default(),
            Some(f) => ValRaw::from_u64(f.func_ref_ptr(store) as usize as u64),
        }
    }
    #[inline]
    unsafe fn from_raw(store: &StoreOpaque, raw: ValRaw) -> Self {
        Func::from_func_ref(store, raw.get_ptr())
    }
}

/// The number of identifiers given.
macro_rules! count {
    () => { 0usize };
    ($h:ident $($t:ident)*) => { 1usize + $crate::func::count!($($t)*) };
}
pub(crate) use count;

/// Most parameters or results a typed function (tuple) has.
pub(crate) const MAX_TYPED_VALUES: usize = 8;

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
    /// Writes the parameters into the first slots (as [`WasmTy::into_raw`]).
    #[doc(hidden)]
    fn store_raw(self, store: &mut StoreOpaque, slots: &mut [ValRaw; MAX_TYPED_VALUES]);
}

/// Results of a typed function: a [`WasmTy`] or a tuple of them.
pub trait WasmResults: Sized {
    /// The number of results.
    #[doc(hidden)]
    const COUNT: usize;
    /// The result types.
    fn valtypes() -> Vec<ValType>;
    /// From `Val`s of [`Self::valtypes`].
    fn from_vals(v: Vec<Val>) -> Self;
    /// Into `Val`s.
    #[doc(hidden)]
    fn into_vals(self) -> Vec<Val>;
    /// Calls `f` with default `Val`s of [`Self::valtypes`] to fill in (on
    /// the stack for tuples), then converts them.
    #[doc(hidden)]
    fn from_filled(f: impl FnOnce(&mut [Val]) -> Result<(), Error>) -> Result<Self, Error> {
        let mut v: Vec<Val> = Self::valtypes().into_iter().map(Val::default_for).collect();
        f(&mut v)?;
        Ok(Self::from_vals(v))
    }
    /// Reads the results from the first slots (as [`WasmTy::from_raw`]).
    ///
    /// # Safety
    /// The slots must hold live values of [`Self::valtypes`] of `store`.
    #[doc(hidden)]
    unsafe fn load_raw(store: &StoreOpaque, slots: &[ValRaw]) -> Self;
    /// Writes the results into the first slots (as [`WasmTy::into_raw`]).
    #[doc(hidden)]
    fn store_raw_results(self, store: &mut StoreOpaque, slots: &mut [ValRaw]);
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
    #[inline]
    fn store_raw(self, store: &mut StoreOpaque, slots: &mut [ValRaw; MAX_TYPED_VALUES]) {
        slots[0] = self.into_raw(store);
    }
}

impl<T: WasmTy> WasmResults for T {
    const COUNT: usize = 1;
    fn valtypes() -> Vec<ValType> {
        vec![T::valtype()]
    }
    fn from_vals(v: Vec<Val>) -> Self {
        T::from_val(v.into_iter().next().expect("one result"))
    }
    fn into_vals(self) -> Vec<Val> {
        vec![self.into_val()]
    }
    fn from_filled(f: impl FnOnce(&mut [Val]) -> Result<(), Error>) -> Result<Self, Error> {
        let [mut v] = [Val::default_for(T::valtype())];
        f(std::slice::from_mut(&mut v))?;
        Ok(T::from_val(v))
    }
    #[inline]
    unsafe fn load_raw(store: &StoreOpaque, slots: &[ValRaw]) -> Self {
        // SAFETY: forwarded.
        unsafe { T::from_raw(store, slots[0]) }
    }
    #[inline]
    fn store_raw_results(self, store: &mut StoreOpaque, slots: &mut [ValRaw]) {
        slots[0] = self.into_raw(store);
    }
}

// The `#[allow]`s below are for the zero-arity expansion (`()`), which leaves
// the slot counter and the bindings unused, and for the type parameters
// doubling as variable names.
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
            #[inline]
            #[allow(non_snake_case, unused_variables, unused_mut, unused_assignments)]
            fn store_raw(self, store: &mut StoreOpaque, slots: &mut [ValRaw; MAX_TYPED_VALUES]) {
                let ($($t,)*) = self;
                let mut i = 0;
                $(slots[i] = $t.into_raw(store); i += 1;)*
            }
        }
        impl<$($t: WasmTy),*> WasmResults for ($($t,)*) {
            const COUNT: usize = count!($($t)*);
            fn valtypes() -> Vec<ValType> {
                vec![$($t::valtype()),*]
            }
            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            fn from_vals(v: Vec<Val>) -> Self {
                let mut it = v.into_iter();
                ($($t::from_val(it.next().expect("result count")),)*)
            }
            #[allow(non_snake_case)]
            fn into_vals(self) -> Vec<Val> {
                let ($($t,)*) = self;
                vec![$($t.into_val()),*]
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
            #[inline]
            #[allow(unused_variables, unused_mut, unused_assignments, clippy::unused_unit)]
            unsafe fn load_raw(store: &StoreOpaque, slots: &[ValRaw]) -> Self {
                let mut i = 0;
                // SAFETY: forwarded; one slot per element, in order.
                ($({ let v = unsafe { $t::from_raw(store, slots[i]) }; i += 1; v },)*)
            }
            #[inline]
            #[allow(non_snake_case, unused_variables, unused_mut, unused_assignments)]
            fn store_raw_results(self, store: &mut StoreOpaque, slots: &mut [ValRaw]) {
                let ($($t,)*) = self;
                let mut i = 0;
                $(slots[i] = $t.into_raw(store); i += 1;)*
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

/// What a [`TypedFunc`] of a Wasm function caches to enter it without
/// looking anything up: addresses (so that `TypedFunc` stays `Send` and
/// `Sync`), valid as long as the function's store, which `call` checks.
#[derive(Clone, Copy)]
struct WasmEntry {
    /// The module's entry trampoline for the function's type.
    entry: usize,
    /// The function's code.
    code: usize,
    /// Its instance's VMContext.
    vmctx: usize,
}

/// A function whose type was checked once, called with Rust values.
pub struct TypedFunc<P, R> {
    func: Func,
    wasm: Option<WasmEntry>,
    _marker: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, R> Copy for TypedFunc<P, R> {}

impl<P: WasmParams, R: WasmResults> TypedFunc<P, R> {
    /// A typed view of `func` (whose type the caller checked).
    fn new(func: Func, store: &StoreOpaque) -> Self {
        let data = &store.funcs[store.check(func.0, "function")];
        let wasm = match data.kind {
            FuncKind::Wasm {
                instance,
                type_index,
            } => {
                let entry = store.instances[instance]
                    .module
                    .entry_trampoline(type_index);
                // SAFETY: a Wasm function's func_ref points into its
                // instance's VMContext, alive as long as the store.
                let (code, vmctx) = unsafe { ((*data.func_ref).wasm_call, (*data.func_ref).vmctx) };
                Some(WasmEntry {
                    entry: entry as usize,
                    code: code as usize,
                    vmctx: vmctx as usize,
                })
            }
            FuncKind::Host(_) => None,
        };
        TypedFunc {
            func,
            wasm,
            _marker: PhantomData,
        }
    }

    /// Calls the function. The types were checked when the `TypedFunc` was
    /// made, so the call does not check them again; a Wasm function is
    /// entered through the trampoline cached then, with the arguments
    /// written straight into the value slots.
    pub fn call(&self, mut store: impl AsContextMut, params: P) -> Result<R, Error> {
        let store = store.as_context_mut();
        let idx = store.check(self.func.0, "function");
        let Some(w) = self.wasm else {
            return params.with_vals(|args| {
                R::from_filled(|results| self.func.call_checked(store, idx, args, results))
            });
        };
        let mut slots = [ValRaw::default(); MAX_TYPED_VALUES];
        params.store_raw(store, &mut slots);
        // SAFETY: `w` was taken from this function of this store (checked
        // above), whose VMContexts and code live as long as the store; the
        // entry trampoline is the one of the function's type, and the slots
        // (at least as many as params and results, tuples have at most
        // MAX_TYPED_VALUES) hold arguments of that type.
        let r = unsafe {
            call_entry(
                store,
                w.entry as *const u8,
                w.code as *const u8,
                w.vmctx as *mut VMContext,
                slots.as_mut_ptr(),
            )
        };
        // SAFETY: after a normal return the entry trampoline wrote results
        // of R's types; externrefs are cloned before the table is cleared.
        let r = r.map(|()| unsafe { R::load_raw(store, &slots) });
        if store.wasm_depth == 0 {
            store.activations.clear();
        }
        r
    }

    /// The untyped function.
    pub fn func(&self) -> Func {
        self.func
    }
}
