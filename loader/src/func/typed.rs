//! Typed calls: [`TypedFunc`] and the traits that map Rust types to Wasm
//! values ([`WasmTy`], [`WasmParams`], [`WasmResults`]).
//!
//! A `TypedFunc` checks the function's type once, when it is made, and
//! caches the runtime's entry (`vm::func::WasmEntry`), so a call looks
//! nothing up: the arguments are written straight into the value slots
//! through the runtime's `ValWriter` and the results read back through its
//! `ValReader`, which check each slot's kind, so these traits need no
//! unsafe code (and a wrong implementation of them cannot make a reference
//! out of a number).

use crate::error::Error;
use crate::externref::ExternRef;
use crate::func::Func;
use crate::store::{AsContextMut, StoreOpaque};
use crate::trap::error_from_unwind;
use crate::values::{foreign_value, Val};
use crate::vm::func::WasmEntry;
use crate::vm::values::{ValReader, ValWriter};
use crate::vm::vmcontext::ValRaw;
use std::marker::PhantomData;
use wasmc_format::ValType;

/// A Rust type that is a Wasm value type: `i32`/`u32`, `i64`/`u64`, `f32`,
/// `f64`, `u128` (`v128`), `Option<ExternRef>` and `Option<Func>`.
pub trait WasmTy: Sized + 'static {
    /// The Wasm type.
    fn valtype() -> ValType;
    /// Into a `Val`.
    fn into_val(self) -> Val;
    /// From a `Val` of [`Self::valtype`].
    fn from_val(v: Val) -> Self;
    /// Writes the value into the next value slot (an externref is moved
    /// into the store's activations table, which keeps it alive while Wasm
    /// runs).
    #[doc(hidden)]
    fn write(self, store: &mut StoreOpaque, w: &mut ValWriter<'_>);
    /// Reads the value from the next value slot (an externref is cloned).
    #[doc(hidden)]
    fn read(store: &StoreOpaque, r: &mut ValReader<'_>) -> Self;
    /// Whether the value may be given to `store`: a function reference
    /// must be one of its own (checked before [`Self::write`], which
    /// panics otherwise).
    #[doc(hidden)]
    #[inline]
    fn belongs_to(&self, _store: &StoreOpaque) -> bool {
        true
    }
}

macro_rules! wasm_ty {
    ($t:ty, $vt:ident, $v:ident => $into:expr, $pat:pat => $from:expr,
     $rv:ident => $bits:expr, $raw:ident => $from_bits:expr) => {
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
            fn write(self, _store: &mut StoreOpaque, w: &mut ValWriter<'_>) {
                let $rv = self;
                w.bits($bits)
            }
            #[inline]
            fn read(_store: &StoreOpaque, r: &mut ValReader<'_>) -> Self {
                let $raw = r.bits();
                $from_bits
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
// `v128` as its 128 bits, as `Val::V128` holds it (lane 0 in the low bits).
wasm_ty!(u128, V128, v => Val::V128(v), Val::V128(x) => x,
    v => ValRaw::from_u128(v), r => r.get_u128());

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
    fn write(self, store: &mut StoreOpaque, w: &mut ValWriter<'_>) {
        w.externref(store, self.map(|r| r.0))
    }
    #[inline]
    fn read(_store: &StoreOpaque, r: &mut ValReader<'_>) -> Self {
        r.externref().map(ExternRef)
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
    fn write(self, store: &mut StoreOpaque, w: &mut ValWriter<'_>) {
        let f = self.map(|f| store.check(f.0, "function"));
        w.funcref(store, f)
    }
    #[inline]
    fn read(store: &StoreOpaque, r: &mut ValReader<'_>) -> Self {
        r.funcref(store).map(|i| Func(store.stored(i)))
    }
    #[inline]
    fn belongs_to(&self, store: &StoreOpaque) -> bool {
        self.is_none_or(|f| f.0.store_id == store.id)
    }
}

/// The number of identifiers given.
macro_rules! count {
    () => { 0usize };
    ($h:ident $($t:ident)*) => { 1usize + $crate::func::typed::count!($($t)*) };
}
pub(crate) use count;

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
    /// Writes the parameters into the value slots (as [`WasmTy::write`]).
    #[doc(hidden)]
    fn write_all(self, store: &mut StoreOpaque, w: &mut ValWriter<'_>);
    /// Whether every parameter may be given to `store` (as
    /// [`WasmTy::belongs_to`]).
    #[doc(hidden)]
    fn belongs_to(&self, store: &StoreOpaque) -> bool;
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
    /// Reads the results from the value slots (as [`WasmTy::read`]).
    #[doc(hidden)]
    fn read_all(store: &StoreOpaque, r: &mut ValReader<'_>) -> Self;
    /// Writes the results into the value slots (as [`WasmTy::write`]).
    #[doc(hidden)]
    fn write_all(self, store: &mut StoreOpaque, w: &mut ValWriter<'_>);
    /// Whether every result may be given to `store` (as
    /// [`WasmTy::belongs_to`]).
    #[doc(hidden)]
    fn belongs_to(&self, store: &StoreOpaque) -> bool;
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
    fn write_all(self, store: &mut StoreOpaque, w: &mut ValWriter<'_>) {
        self.write(store, w);
    }
    #[inline]
    fn belongs_to(&self, store: &StoreOpaque) -> bool {
        WasmTy::belongs_to(self, store)
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
    fn read_all(store: &StoreOpaque, r: &mut ValReader<'_>) -> Self {
        T::read(store, r)
    }
    #[inline]
    fn write_all(self, store: &mut StoreOpaque, w: &mut ValWriter<'_>) {
        self.write(store, w);
    }
    #[inline]
    fn belongs_to(&self, store: &StoreOpaque) -> bool {
        WasmTy::belongs_to(self, store)
    }
}

// The `#[allow]`s below are for the zero-arity expansion (`()`), which leaves
// the bindings unused, and for the type parameters doubling as variable
// names.
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
            #[allow(non_snake_case, unused_variables)]
            fn write_all(self, store: &mut StoreOpaque, w: &mut ValWriter<'_>) {
                let ($($t,)*) = self;
                $($t.write(store, w);)*
            }
            #[inline]
            #[allow(non_snake_case, unused_variables)]
            fn belongs_to(&self, store: &StoreOpaque) -> bool {
                let ($($t,)*) = self;
                true $(&& $t.belongs_to(store))*
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
            #[allow(unused_variables, clippy::unused_unit)]
            fn read_all(store: &StoreOpaque, r: &mut ValReader<'_>) -> Self {
                ($($t::read(store, r),)*)
            }
            #[inline]
            #[allow(non_snake_case, unused_variables)]
            fn write_all(self, store: &mut StoreOpaque, w: &mut ValWriter<'_>) {
                let ($($t,)*) = self;
                $($t.write(store, w);)*
            }
            #[inline]
            #[allow(non_snake_case, unused_variables)]
            fn belongs_to(&self, store: &StoreOpaque) -> bool {
                let ($($t,)*) = self;
                true $(&& $t.belongs_to(store))*
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
tuples!(A, B, C, D, E, F, G, H, I);
tuples!(A, B, C, D, E, F, G, H, I, J);
tuples!(A, B, C, D, E, F, G, H, I, J, K);
tuples!(A, B, C, D, E, F, G, H, I, J, K, L);
tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M);
tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);
tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q);

/// A function whose type was checked once, called with Rust values.
pub struct TypedFunc<P, R> {
    func: Func,
    /// The runtime's entry of a Wasm function; `None` for a host function.
    wasm: Option<WasmEntry>,
    _marker: PhantomData<fn(P) -> R>,
}

impl<P, R> std::fmt::Debug for TypedFunc<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedFunc")
            .field("func", &self.func)
            .field("params", &std::any::type_name::<P>())
            .field("results", &std::any::type_name::<R>())
            .finish()
    }
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, R> Copy for TypedFunc<P, R> {}

impl<P: WasmParams, R: WasmResults> TypedFunc<P, R> {
    /// A typed view of `func` (whose type the caller checked).
    pub(crate) fn new(func: Func, store: &StoreOpaque) -> Self {
        TypedFunc {
            func,
            wasm: WasmEntry::new(store, store.check(func.0, "function")),
            _marker: PhantomData,
        }
    }

    /// Calls the function. The types were checked when the `TypedFunc` was
    /// made, so the call does not check them again; a Wasm function is
    /// entered through the entry cached then, with the arguments written
    /// straight into the value slots.
    pub fn call(&self, mut store: impl AsContextMut, params: P) -> Result<R, Error> {
        let store = store.as_context_mut().store;
        let idx = store.check(self.func.0, "function");
        if !params.belongs_to(store) {
            return Err(foreign_value("argument"));
        }
        let Some(w) = self.wasm else {
            return params.with_vals(|args| {
                R::from_filled(|results| self.func.call_checked(store, idx, args, results))
            });
        };
        crate::vm::func::call(
            store,
            &w,
            |store, wr| params.write_all(store, wr),
            |store, rd| R::read_all(store, rd),
        )
        .map_err(|r| error_from_unwind(store, r))
    }

    /// The untyped function.
    pub fn func(&self) -> Func {
        self.func
    }
}
