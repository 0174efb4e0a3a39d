//! Typed host functions: [`Func::wrap`] and [`crate::Linker::func_wrap`].
//!
//! A closure `|caller: Caller<'_, T>, a: i32, b: i64| -> R` (the `Caller` is
//! optional) becomes a host function of type `(i32, i64) -> R`. Called from
//! Wasm, it is a `vm::func::HostCall` ([`Wrapped`]) for which the runtime's
//! host shim is monomorphized: the arguments are read straight from the
//! host trampoline's value slots with [`WasmTy::read`], the closure is
//! called, and the results written back with [`WasmResults::write_all`],
//! with no `Val`s and no allocation. `R` is a [`WasmTy`], a tuple of them,
//! or a `Result` of either with an error convertible to `anyhow::Error`.
//!
//! Errors and panics are the shim's business (see `vm/func.rs`): they reach
//! the caller of the Wasm function that called the host. Host-side calls of
//! a wrapped function ([`Func::call`]) go through a `Val` adapter of the
//! same closure.

use crate::error::Error;
use crate::func::{host_error, Caller, Func, HostFuncRef};
use crate::func::{WasmResults, WasmTy};
use crate::instance::Instance;
use crate::store::{AsContextMut, StoreOpaque};
use crate::values::{foreign_value, Val};
use crate::vm::func::{HostCall, HostFuncParts, HostSlots};
use crate::vm::traphandlers::HostError;
use std::marker::PhantomData;
use std::sync::Arc;
use wasmc_format::FuncType;

/// What a wrapped host function returns: [`WasmResults`] (a [`WasmTy`] or a
/// tuple), or `Result<T, E>` of one with `E: Into<anyhow::Error>` (so
/// `anyhow::Result`, this crate's [`Error`], `std::io::Error`, ...), whose
/// error reaches the caller of the Wasm function that called the host.
pub trait WasmRet {
    /// The results.
    type Ok: WasmResults;
    /// The results, or the error to raise.
    fn into_result(self) -> anyhow::Result<Self::Ok>;
}

impl<T: WasmResults> WasmRet for T {
    type Ok = T;
    #[inline]
    fn into_result(self) -> anyhow::Result<T> {
        Ok(self)
    }
}

impl<T: WasmResults, E: Into<anyhow::Error>> WasmRet for Result<T, E> {
    type Ok = T;
    #[inline]
    fn into_result(self) -> anyhow::Result<T> {
        self.map_err(Into::into)
    }
}

/// A closure that [`Func::wrap`] turns into a host function of a store with
/// data `T`. Implemented for `Fn(Caller<'_, T>, A1, ..., An) -> R` and
/// `Fn(A1, ..., An) -> R` with up to 17 [`WasmTy`] parameters and `R:`
/// [`WasmRet`].
pub trait IntoFunc<T, Params, Results>: Send + Sync + 'static {
    /// The function's parts.
    #[doc(hidden)]
    fn into_parts(self) -> HostFuncParts;
}

impl Func {
    /// A host function from a typed closure, called from Wasm without `Val`s.
    /// Its type comes from the closure's parameter and result types; a
    /// `Caller<'_, T>` first parameter is optional.
    ///
    /// ```
    /// use wasmc_loader::{Caller, Engine, Func, Store};
    /// let mut store = Store::new(&Engine::default(), 10i64);
    /// let add = Func::wrap(&mut store, |caller: Caller<'_, i64>, a: i32, b: i64| {
    ///     a as i64 + b + *caller.data()
    /// });
    /// let f = add.typed::<(i32, i64), i64>(&store)?;
    /// assert_eq!(f.call(&mut store, (1, 2))?, 13);
    /// # Ok::<(), wasmc_loader::Error>(())
    /// ```
    pub fn wrap<T: 'static, Params, Results>(
        mut store: impl AsContextMut<Data = T>,
        f: impl IntoFunc<T, Params, Results>,
    ) -> Func {
        Func::new_host(store.as_context_mut().store, f.into_parts())
    }
}

/// A typed closure `F` taking `Caller` and the parameters `P` (a tuple),
/// returning `R`, as the runtime calls it from Wasm.
pub(crate) struct Wrapped<F, T, P, R> {
    f: F,
    _marker: PhantomData<fn(T, P) -> R>,
}

// The `#[allow]`s below are for the zero-argument expansion, which leaves
// the reader and the argument iterator unused and reads a `()` of
// arguments, and for the type parameters doubling as variable names.
macro_rules! into_func {
    ($($a:ident $v:ident),*) => {
        impl<T: 'static, F, $($a,)* R> HostCall for Wrapped<F, T, ($($a,)*), R>
        where
            F: Fn(Caller<'_, T>, $($a),*) -> R + Send + Sync + 'static,
            $($a: WasmTy,)*
            R: WasmRet + 'static,
        {
            #[allow(unused_variables, unused_mut, clippy::unused_unit)]
            #[inline]
            fn call(
                &self,
                store: &mut StoreOpaque,
                instance: usize,
                mut slots: HostSlots<'_>,
            ) -> Result<(), HostError> {
                let ($($v,)*) = {
                    let mut r = slots.args();
                    ($($a::read(store, &mut r),)*)
                };
                // A host call is a safepoint; the arguments are counted by
                // their handles now.
                crate::vm::gc::stress(store);
                let instance = Some(Instance(store.stored(instance)));
                let ret = (self.f)(Caller::new(store, instance), $($v),*)
                    .into_result()
                    .map_err(host_error)?;
                if !ret.belongs_to(store) {
                    return Err(host_error(foreign_value("host function result")));
                }
                ret.write_all(store, &mut slots.results());
                Ok(())
            }
        }

        impl<T: 'static, F, $($a,)* R> IntoFunc<T, (Caller<'_, T>, $($a,)*), R> for F
        where
            F: Fn(Caller<'_, T>, $($a),*) -> R + Send + Sync + 'static,
            $($a: WasmTy,)*
            R: WasmRet + 'static,
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn into_parts(self) -> HostFuncParts {
                let ty = FuncType {
                    params: vec![$($a::valtype()),*],
                    results: <R::Ok as WasmResults>::valtypes(),
                };
                let w = Arc::new(Wrapped::<F, T, ($($a,)*), R> {
                    f: self,
                    _marker: PhantomData,
                });
                let g = w.clone();
                let host: HostFuncRef = Arc::new(
                    move |store: &mut StoreOpaque,
                          instance: Option<Instance>,
                          args: &[Val],
                          results: &mut [Val]| {
                        let mut it = args.iter().cloned();
                        $(
                            let $v = $a::from_val(it.next().ok_or_else(|| {
                                Error::msg("too few arguments for a wrapped function")
                            })?);
                        )*
                        let r = (g.f)(Caller::new(store, instance), $($v),*).into_result()?;
                        for (slot, v) in results.iter_mut().zip(r.into_vals()) {
                            *slot = v;
                        }
                        Ok(())
                    },
                );
                HostFuncParts::new(ty, w, Arc::new(host))
            }
        }

        impl<T: 'static, F, $($a,)* R> IntoFunc<T, ($($a,)*), R> for F
        where
            F: Fn($($a),*) -> R + Send + Sync + 'static,
            $($a: WasmTy,)*
            R: WasmRet + 'static,
        {
            #[allow(non_snake_case)]
            fn into_parts(self) -> HostFuncParts {
                let with_caller = move |_: Caller<'_, T>, $($v: $a),*| self($($v),*);
                IntoFunc::<T, (Caller<'_, T>, $($a,)*), R>::into_parts(with_caller)
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
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8, A9 a9);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8, A9 a9, A10 a10);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8, A9 a9, A10 a10, A11 a11);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8, A9 a9, A10 a10, A11 a11, A12 a12);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8, A9 a9, A10 a10, A11 a11, A12 a12, A13 a13);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8, A9 a9, A10 a10, A11 a11, A12 a12, A13 a13, A14 a14);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8, A9 a9, A10 a10, A11 a11, A12 a12, A13 a13, A14 a14, A15 a15);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8, A9 a9, A10 a10, A11 a11, A12 a12, A13 a13, A14 a14, A15 a15, A16 a16);
into_func!(A1 a1, A2 a2, A3 a3, A4 a4, A5 a5, A6 a6, A7 a7, A8 a8, A9 a9, A10 a10, A11 a11, A12 a12, A13 a13, A14 a14, A15 a15, A16 a16, A17 a17);
