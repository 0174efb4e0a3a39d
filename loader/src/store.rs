//! [`Store<T>`]: the public owner of a store's runtime state
//! ([`StoreOpaque`], in `vm/store.rs`) and of the host data `T`; the
//! [`AsContext`] / [`AsContextMut`] traits through which handles reach it
//! from a `Store`, a [`crate::Caller`] or a [`StoreContextMut`]; and the
//! installation of a [`ResourceLimiter`].
//!
//! Handles ([`crate::Func`], [`crate::Memory`], ...) are indices into the
//! store tagged with its id; using one with another store panics. Nothing
//! is freed before the store drops.
//!
//! The `T` lives inside the runtime state (boxed as `dyn Any`, see
//! `vm/store.rs`), so host functions reach it from the calling VMContext;
//! every access downcasts, which cannot fail for the `T` of the
//! `Store<T>` that made the context. `Store<T>` is `Send` when `T` is
//! (`StoreOpaque` is `Send`, and `PhantomData<T>` carries `T`'s), and never
//! `Sync`: a store is used by one thread at a time but may move between
//! threads between calls.

use crate::engine::Engine;
use crate::error::Error;
use crate::vm::gc::GcStats;
pub use crate::vm::store::StoreOpaque;
use crate::vm::store::{LimiterFn, ResourceLimiter};
use std::any::Any;
use std::marker::PhantomData;

/// A collection of instances and the objects they use, with host data `T`.
///
/// ```
/// use wasmc_loader::{Engine, Store};
/// let engine = Engine::default();
/// let mut store = Store::new(&engine, Vec::<String>::new());
/// store.data_mut().push("hello".into());
/// assert_eq!(store.data().len(), 1);
/// assert_eq!(store.into_data(), vec!["hello".to_string()]);
/// ```
///
/// A store moves to another thread when its data can:
///
/// ```
/// # use wasmc_loader::{Engine, Store};
/// let store = Store::new(&Engine::default(), 7u64);
/// let store = std::thread::spawn(move || store).join().unwrap();
/// assert_eq!(*store.data(), 7);
/// ```
///
/// and not otherwise, neither itself nor a context of it:
///
/// ```compile_fail
/// # use wasmc_loader::{Engine, Store};
/// let store = Store::new(&Engine::default(), std::rc::Rc::new(7u64));
/// std::thread::spawn(move || drop(store));
/// ```
///
/// ```compile_fail
/// # use wasmc_loader::{AsContextMut, Engine, Store};
/// fn send<S: Send>(_: S) {}
/// let mut store = Store::new(&Engine::default(), std::rc::Rc::new(7u64));
/// send(store.as_context_mut());
/// ```
pub struct Store<T> {
    inner: Box<StoreOpaque>,
    _marker: PhantomData<T>,
}

/// The host data of a store (checked downcast; see the module docs).
pub(crate) fn data_ref<T: 'static>(s: &StoreOpaque) -> &T {
    s.data
        .downcast_ref::<T>()
        .expect("store data accessed with another type than the store's")
}

fn data_mut<T: 'static>(s: &mut StoreOpaque) -> &mut T {
    downcast_data_mut(&mut *s.data)
}

/// The host data `T` of a store, given as its `dyn Any` (checked downcast;
/// see the module docs).
pub(crate) fn downcast_data_mut<T: 'static>(data: &mut dyn Any) -> &mut T {
    data.downcast_mut::<T>()
        .expect("store data accessed with another type than the store's")
}

pub(crate) fn engine_of(s: &StoreOpaque) -> &Engine {
    s.engine
        .downcast_ref::<Engine>()
        .expect("a store's engine is an Engine")
}

impl<T: 'static> Store<T> {
    /// An empty store of `engine` holding `data`, with the engine's limits.
    pub fn new(engine: &Engine, data: T) -> Store<T> {
        let mut inner = Box::new(StoreOpaque::new(
            Box::new(engine.clone()),
            engine.inner.epoch.clone(),
            Box::new(data),
        ));
        let c = &engine.inner.config;
        inner.max_wasm_stack = c.max_wasm_stack;
        inner.max_memory_pages = c.max_memory_pages;
        inner.max_table_elements = c.max_table_elements;
        inner.pool = engine.inner.pool.clone();
        Store {
            inner,
            _marker: PhantomData,
        }
    }

    /// The host data.
    pub fn data(&self) -> &T {
        data_ref(&self.inner)
    }

    /// The host data, writable.
    pub fn data_mut(&mut self) -> &mut T {
        data_mut(&mut self.inner)
    }

    /// Consumes the store (dropping its instances) and returns the data.
    pub fn into_data(self) -> T {
        let mut inner = self.inner;
        let data = std::mem::replace(&mut inner.data, Box::new(()));
        // Instances, tables and globals go first, then the data is returned.
        drop(inner);
        *data
            .downcast::<T>()
            .expect("store data accessed with another type than the store's")
    }

    /// The engine the store was made with.
    pub fn engine(&self) -> &Engine {
        engine_of(&self.inner)
    }

    /// Gives the store `fuel` units of fuel (replacing what was left) and
    /// turns fuel metering on. Code compiled with `wasmc compile --fuel`
    /// consumes one unit per operator (structural operators are free, see
    /// [`wasmc_format::Interruption`]) and traps with
    /// [`crate::TrapCode::OutOfFuel`] when none is left; the store stays
    /// usable (give it more fuel and call again).
    ///
    /// Errors: the store holds an instance compiled without `--fuel` (its
    /// code would run unmetered). Once fuel is on, instantiating a module
    /// compiled without `--fuel` is refused, and a module compiled with
    /// `--fuel` can only be instantiated after `set_fuel`.
    ///
    /// ```
    /// use wasmc_loader::{Engine, Store};
    /// let mut store = Store::new(&Engine::default(), ());
    /// assert!(store.get_fuel().is_err()); // metering is off
    /// store.set_fuel(10_000).unwrap();
    /// assert_eq!(store.get_fuel().unwrap(), 10_000);
    /// ```
    pub fn set_fuel(&mut self, fuel: u64) -> Result<(), Error> {
        self.inner.set_fuel(fuel).map_err(Error::Interruption)
    }

    /// The fuel left. Errors if fuel metering is off (no
    /// [`Store::set_fuel`] yet). After an [`crate::TrapCode::OutOfFuel`]
    /// trap it is 0; after another trap it may still count the operators
    /// of the trapping block since its last call or branch.
    pub fn get_fuel(&self) -> Result<u64, Error> {
        self.inner.get_fuel().map_err(Error::Interruption)
    }

    /// Sets the store's epoch deadline `ticks` epochs after the engine's
    /// current epoch: once [`Engine::increment_epoch`] has been called
    /// `ticks` times, code compiled with `wasmc compile --epoch-interruption`
    /// traps with [`crate::TrapCode::Interrupted`] at its next function
    /// entry or loop header. The store stays usable: set a new deadline and
    /// call again. Without a call to this the store has no deadline.
    ///
    /// Errors: the store holds an instance compiled without
    /// `--epoch-interruption` (it could not be interrupted). Once a
    /// deadline is set, instantiating such a module is refused.
    ///
    /// ```
    /// use wasmc_loader::{Engine, Store};
    /// let engine = Engine::default();
    /// let mut store = Store::new(&engine, ());
    /// store.set_epoch_deadline(1).unwrap();
    /// // A timer thread would do this; Wasm running in `store` then traps.
    /// engine.increment_epoch();
    /// ```
    pub fn set_epoch_deadline(&mut self, ticks: u64) -> Result<(), Error> {
        self.inner
            .set_epoch_deadline(ticks)
            .map_err(Error::Interruption)
    }

    /// Installs a resource limiter: `f` returns it from the store's data
    /// (as in Wasmtime, `store.limiter(|data| &mut data.limiter)`). It is
    /// asked before memories and tables grow (a refusal makes `memory.grow`
    /// return -1 in Wasm; an error stops the Wasm, and the call that ran it
    /// returns that error, as in Wasmtime) and before each instantiation (instance, memory
    /// and table counts and initial sizes; a refusal is an instantiation
    /// error naming the limit).
    ///
    /// ```
    /// use wasmc_loader::{Engine, ResourceLimiter, Store};
    /// struct Cap(usize);
    /// impl ResourceLimiter for Cap {
    ///     fn memory_growing(&mut self, _: usize, desired: usize, _: Option<usize>)
    ///         -> anyhow::Result<bool> { Ok(desired <= self.0) }
    ///     fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>)
    ///         -> anyhow::Result<bool> { Ok(true) }
    /// }
    /// let mut store = Store::new(&Engine::default(), Cap(1 << 20));
    /// store.limiter(|cap| cap);
    /// ```
    pub fn limiter(
        &mut self,
        mut f: impl (FnMut(&mut T) -> &mut dyn ResourceLimiter) + Send + Sync + 'static,
    ) {
        let erased: LimiterFn = Box::new(move |data: &mut dyn Any| {
            f(data
                .downcast_mut::<T>()
                .expect("store data accessed with another type than the store's"))
        });
        self.inner.limiter = Some(erased);
    }

    /// Sets the most stack Wasm may use, in bytes, counted from the outermost
    /// host-to-Wasm call on a thread (default: the engine's
    /// [`crate::Config::max_wasm_stack`]).
    pub fn set_max_wasm_stack(&mut self, bytes: usize) {
        self.inner.max_wasm_stack = bytes;
    }

    /// Sets the most pages any memory of this store may grow to (default:
    /// the engine's [`crate::Config::max_memory_pages`], which this
    /// replaces for this store, up or down; at most 65,536).
    pub fn set_max_memory_pages(&mut self, pages: u64) {
        self.inner.max_memory_pages = pages.min(wasmc_format::WASM32_MAX_PAGES);
    }

    /// Sets the most elements any table of this store may grow to
    /// (default: the engine's [`crate::Config::max_table_elements`], which
    /// this replaces for this store, up or down).
    pub fn set_max_table_elements(&mut self, n: u32) {
        self.inner.max_table_elements = n;
    }

    /// Runs the externref collector: releases every reference that no Wasm
    /// frame, table, global or host handle holds. From the host (no Wasm of
    /// this store running) that is everything in the activations table;
    /// host functions called from Wasm collect with [`crate::Caller::gc`],
    /// which walks the Wasm frames below them.
    pub fn gc(&mut self) {
        crate::vm::gc::collect(&mut self.inner);
    }

    /// Stress mode for testing the collector: when on, a collection runs at
    /// every safepoint the runtime reaches (every builtin call and every host
    /// function call from Wasm).
    pub fn set_gc_stress(&mut self, on: bool) {
        self.inner.gc_stress = on;
    }

    /// The collector's statistics.
    pub fn gc_stats(&self) -> GcStats {
        self.inner.gc_stats()
    }

    /// Number of function records the store has made: host functions, and
    /// Wasm functions whose reference has left their instance (these are
    /// made on first use, so instantiation does not grow with a module's
    /// functions or element segments). For tests and benchmarks.
    #[doc(hidden)]
    pub fn num_function_records(&self) -> usize {
        self.inner.num_funcs()
    }
}

impl<T: Default + 'static> Default for Store<T> {
    /// A store of a default [`Engine`] with default data.
    fn default() -> Self {
        Store::new(&Engine::default(), T::default())
    }
}

impl<T> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("id", &self.inner.id).finish()
    }
}

impl std::fmt::Debug for StoreOpaque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOpaque").field("id", &self.id).finish()
    }
}

impl<T> std::fmt::Debug for StoreContext<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreContext")
            .field("id", &self.store.id)
            .finish()
    }
}

impl<T> std::fmt::Debug for StoreContextMut<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreContextMut")
            .field("id", &self.store.id)
            .finish()
    }
}

/// A shared borrow of a store with data `T` (what [`AsContext`] gives).
pub struct StoreContext<'a, T> {
    pub(crate) store: &'a StoreOpaque,
    /// Thread-safety as a `&T` (the context reaches the data).
    _marker: PhantomData<&'a T>,
}

/// An exclusive borrow of a store with data `T` (what [`AsContextMut`]
/// gives); handles take it wherever they take a store.
pub struct StoreContextMut<'a, T> {
    pub(crate) store: &'a mut StoreOpaque,
    /// Thread-safety as a `&mut T`: `Send` only when `T` is, since the
    /// context reaches the data (`StoreOpaque` itself is `Send` whatever
    /// the data is).
    _marker: PhantomData<&'a mut T>,
}

impl<'a, T> StoreContext<'a, T> {
    pub(crate) fn new(store: &'a StoreOpaque) -> Self {
        StoreContext {
            store,
            _marker: PhantomData,
        }
    }
}

impl<'a, T> StoreContextMut<'a, T> {
    /// A context for `store`, whose data must be a `T` for the data
    /// accessors to work (they panic otherwise; nothing unsound happens).
    pub(crate) fn new(store: &'a mut StoreOpaque) -> Self {
        StoreContextMut {
            store,
            _marker: PhantomData,
        }
    }
}

impl<T: 'static> StoreContext<'_, T> {
    /// The host data.
    pub fn data(&self) -> &T {
        data_ref(self.store)
    }
    /// The engine.
    pub fn engine(&self) -> &Engine {
        engine_of(self.store)
    }
}

impl<T: 'static> StoreContextMut<'_, T> {
    /// The host data.
    pub fn data(&self) -> &T {
        data_ref(self.store)
    }
    /// The host data, writable.
    pub fn data_mut(&mut self) -> &mut T {
        data_mut(self.store)
    }
    /// The engine.
    pub fn engine(&self) -> &Engine {
        engine_of(self.store)
    }
    /// Runs the externref collector (see [`Store::gc`]).
    pub fn gc(&mut self) {
        crate::vm::gc::collect(self.store);
    }
    /// The fuel left (see [`Store::get_fuel`]).
    pub fn get_fuel(&self) -> Result<u64, Error> {
        self.store.get_fuel().map_err(Error::Interruption)
    }
    /// Sets the fuel (see [`Store::set_fuel`]).
    pub fn set_fuel(&mut self, fuel: u64) -> Result<(), Error> {
        self.store.set_fuel(fuel).map_err(Error::Interruption)
    }
    /// Sets the epoch deadline (see [`Store::set_epoch_deadline`]).
    pub fn set_epoch_deadline(&mut self, ticks: u64) -> Result<(), Error> {
        self.store
            .set_epoch_deadline(ticks)
            .map_err(Error::Interruption)
    }
}

/// Read access to a store: implemented by [`Store`], [`crate::Caller`],
/// [`StoreContext`], [`StoreContextMut`] and references to them.
pub trait AsContext {
    /// The store's host data type.
    type Data;
    /// The store.
    fn as_context(&self) -> StoreContext<'_, Self::Data>;
}

/// Write access to a store.
pub trait AsContextMut: AsContext {
    /// The store.
    fn as_context_mut(&mut self) -> StoreContextMut<'_, Self::Data>;
}

impl<T> AsContext for Store<T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext::new(&self.inner)
    }
}
impl<T> AsContextMut for Store<T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut::new(&mut self.inner)
    }
}
impl<T> AsContext for StoreContext<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext::new(self.store)
    }
}
impl<T> AsContext for StoreContextMut<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext::new(self.store)
    }
}
impl<T> AsContextMut for StoreContextMut<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut::new(self.store)
    }
}
impl<C: AsContext + ?Sized> AsContext for &C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}
impl<C: AsContext + ?Sized> AsContext for &mut C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}
impl<C: AsContextMut + ?Sized> AsContextMut for &mut C {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, C::Data> {
        (**self).as_context_mut()
    }
}
