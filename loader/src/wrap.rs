//! Typed host functions: [`Func::wrap`] and [`crate::Linker::func_wrap`].
//!
//! A closure `|caller: Caller<'_>, a: i32, b: i64| -> R` (the `Caller` is
//! optional) becomes a host function of type `(i32, i64) -> R`. Its
//! `array_call` is a shim monomorphized for the closure: it reads the
//! arguments straight from the host trampoline's value slots with
//! [`WasmTy::from_raw`], calls the closure, and writes the results back with
//! [`WasmResults::store_raw_results`], with no `Val`s and no allocation. `R`
//! is a [`WasmTy`], a tuple of them, or a `Result` of either with [`Error`].
//!
//! Like the `Val` shim ([`crate::Func::new`]), the typed shim must not
//! unwind into Wasm: a panic is caught and an error returned, everything is
//! dropped, and only then does the shim raise to the entry, where the error
//! is returned (as a trap-free `Err`) or the panic resumed. Raising skips
//! the frames in between, so nothing with a destructor may be live there:
//! the outer shim holds only the moved-out reason.
//!
//! Host-side calls of a wrapped function ([`Func::call`]) go through a `Val`
//! adapter of the same closure.

use crate::error::Error;
use crate::func::{Caller, Func, HostFuncParts, TypedPtr, WasmResults, WasmTy};
use crate::instance::Instance;
use crate::store::{AsContextMut, StoreOpaque};
use crate::traphandlers::{raise, UnwindReason};
use crate::values::Val;
use crate::vmcontext::{vmctx_header, VMContext, VMHostFuncContext, ValRaw};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use wasmc_format::FuncType;

/// What a wrapped host function returns: [`WasmResults`] (a [`WasmTy`] or a
/// tuple), or `Result<T, Error>` of one, whose error reaches the caller of
/// the Wasm function that called the host.
pub trait WasmRet {
    /// The results.
    type Ok: WasmResults;
    /// The results, or the error to raise.
    fn into_result(self) -> Result<Self::Ok, Error>;
}

impl<T: WasmResults> WasmRet for T {
    type Ok = T;
    #[inline]
    fn into_result(self) -> Result<T, Error> {
        Ok(self)
    }
}

impl<T: WasmResults> WasmRet for Result<T, Error> {
    type Ok = T;
    #[inline]
    fn into_result(self) -> Result<T, Error> {
        self
    }
}

/// A closure that [`Func::wrap`] turns into a host function. Implemented for
/// `Fn(Caller<'_>, A1, ..., An) -> R` and `Fn(A1, ..., An) -> R` with up to 8
/// [`WasmTy`] parameters and `R:` [`WasmRet`].
pub trait IntoFunc<Params, Results>: Send + Sync + 'static {
    /// The function's parts.
    #[doc(hidden)]
    fn into_parts(self) -> HostFuncParts;
}

impl Func {
    /// A host function from a typed closure, called from Wasm without `Val`s:
    /// `Func::wrap(&mut store, |caller: Caller<'_>, a: i32, b: i64| a as i64 + b)`.
    /// Its type comes from the closure's parameter and result types.
    pub fn wrap<Params, Results>(
        mut store: impl AsContextMut,
        f: impl IntoFunc<Params, Results>,
    ) -> Func {
        Func::new_host(store.as_context_mut(), f.into_parts())
    }
}

/// Runs a typed host call from a host trampoline: finds the store and the
/// calling instance, checks the slot count, runs `body` (which reads the
/// arguments and calls the closure) and writes its results. Panics and
/// errors come back as the unwind reason.
///
/// # Safety
/// Called from a host trampoline: `caller_vmctx` is the calling instance's
/// VMContext and `values` an array of `len` slots holding arguments of the
/// function's type.
#[inline(always)]
unsafe fn typed_call<R: WasmRet>(
    caller_vmctx: *mut VMContext,
    values: *mut ValRaw,
    len: usize,
    need: usize,
    body: impl FnOnce(&mut StoreOpaque, Instance, &[ValRaw]) -> R,
) -> Result<(), UnwindReason> {
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), Error> {
        // SAFETY: caller_vmctx is the calling instance's VMContext.
        let header = unsafe { vmctx_header(caller_vmctx) };
        // SAFETY: the store pointer in a VMContext is its (boxed) store, and
        // no other reference to it is used while Wasm runs.
        let store = unsafe { &mut *(header.store as *mut StoreOpaque) };
        let instance = Instance(store.stored(header.instance as usize));
        if len < need {
            return Err(Error::msg("host trampoline passed too few value slots"));
        }
        let ret = {
            // SAFETY: the trampoline passes `len` slots, initialised with
            // the arguments; nothing else accesses them during the call.
            let slots = unsafe { std::slice::from_raw_parts(values, len) };
            body(store, instance, slots).into_result()?
        };
        // SAFETY: as above; the shared view above has ended.
        let slots = unsafe { std::slice::from_raw_parts_mut(values, len) };
        ret.store_raw_results(store, slots);
        Ok(())
    }));
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(UnwindReason::Error(e)),
        Err(p) => Err(UnwindReason::Panic(p)),
    }
}

// The `#[allow]`s below are for the zero-argument expansion, which leaves
// the slot counter and the bindings unused, and for the type parameters
// doubling as variable names.
macro_rules! into_func {
    ($($a:ident $v:ident),*) => {
        impl<F, $($a,)* R> IntoFunc<(Caller<'_>, $($a,)*), R> for F
        where
            F: Fn(Caller<'_>, $($a),*) -> R + Send + Sync + 'static,
            $($a: WasmTy,)*
            R: WasmRet,
        {
            #[allow(non_snake_case, unused_variables, unused_mut)]
            fn into_parts(self) -> HostFuncParts {
                /// The host trampoline's `array_call` for `F`.
                ///
                /// # Safety
                /// Called by a host trampoline of `F`'s type with the
                /// documented arguments; `callee.typed` points to an `F`.
                #[allow(unused_assignments, unused_mut, unused_variables)]
                unsafe extern "C" fn shim<F, $($a,)* R>(
                    callee: *mut VMHostFuncContext,
                    caller_vmctx: *mut VMContext,
                    values: *mut ValRaw,
                    len: usize,
                ) where
                    F: Fn(Caller<'_>, $($a),*) -> R + Send + Sync + 'static,
                    $($a: WasmTy,)*
                    R: WasmRet,
                {
                    let need = crate::func::count!($($a)*).max(<R::Ok as WasmResults>::COUNT);
                    // SAFETY: callee is this function's live host context,
                    // whose `typed` points to the closure (kept alive by
                    // `typed_owner` as long as the context); the rest is
                    // forwarded from the trampoline.
                    let r = unsafe {
                        let f = &*((*callee).typed as *const F);
                        typed_call(caller_vmctx, values, len, need, |store, instance, slots| {
                            let mut i = 0;
                            $(
                                // SAFETY: slot i holds an argument of type $a.
                                let $v = $a::from_raw(store, slots[i]);
                                i += 1;
                            )*
                            // A host call is a safepoint; the arguments are
                            // counted by their handles now.
                            crate::gc::stress(store);
                            f(Caller { store, instance: Some(instance) }, $($v),*)
                        })
                    };
                    if let Err(reason) = r {
                        // SAFETY: we are inside a Wasm activation (called
                        // from Wasm) and nothing with a destructor is live
                        // in this frame (`r` was moved).
                        unsafe { raise(reason) }
                    }
                }
                let ty = FuncType {
                    params: vec![$($a::valtype()),*],
                    results: <R::Ok as WasmResults>::valtypes(),
                };
                let f = Arc::new(self);
                let g = f.clone();
                let host: crate::func::HostFuncRef = Arc::new(
                    move |caller: Caller<'_>, args: &[Val], results: &mut [Val]| {
                        let mut it = args.iter().cloned();
                        $(
                            let $v = $a::from_val(it.next().ok_or_else(|| {
                                Error::msg("too few arguments for a wrapped function")
                            })?);
                        )*
                        let r = g(caller, $($v),*).into_result()?;
                        for (slot, v) in results.iter_mut().zip(r.into_vals()) {
                            *slot = v;
                        }
                        Ok(())
                    },
                );
                let ptr = TypedPtr(Arc::as_ptr(&f) as *const ());
                HostFuncParts {
                    ty,
                    host,
                    array_call: shim::<F, $($a,)* R>,
                    typed: Some((ptr, f)),
                }
            }
        }

        impl<F, $($a,)* R> IntoFunc<($($a,)*), R> for F
        where
            F: Fn($($a),*) -> R + Send + Sync + 'static,
            $($a: WasmTy,)*
            R: WasmRet + 'static,
        {
            #[allow(non_snake_case)]
            fn into_parts(self) -> HostFuncParts {
                let with_caller = move |_: Caller<'_>, $($v: $a),*| self($($v),*);
                IntoFunc::<(Caller<'_>, $($a,)*), R>::into_parts(with_caller)
            }
        }
    };
}

into_func!();
into_func!(A1 a1);
into_func!(A1 a1, A2 a2);
into_func!(A1 a1, A2 a2, A3 a3);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8);
