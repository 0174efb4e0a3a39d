//! [`Linker<T>`]: named definitions (`module::field`) that imports are
//! resolved against, including store-independent host functions; and
//! [`InstancePre<T>`]: a module whose imports were resolved (and host
//! functions type-checked) once, instantiated many times.

use crate::engine::Engine;
use crate::error::{Error, LinkError};
use crate::func::{val_host_parts, Caller, Func, IntoFunc};
use crate::instance::Instance;
use crate::module::Module;
use crate::store::{AsContext, AsContextMut, StoreContextMut, StoreOpaque};
use crate::types::ExternType;
use crate::values::{Extern, Val};
use crate::vm::func::{HostFuncParts, SharedHostFunc};
use crate::vm::instance::{SharedHosts, VMImport};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use wasmc_format::FuncType;

#[derive(Clone)]
enum Definition {
    /// An item of the store with this id.
    Extern(u64, Extern),
    /// A host function, made once and shared by every store it is
    /// instantiated in (see `vm::func::SharedHostFunc`).
    HostFunc(Arc<SharedHostFunc>),
}

impl Definition {
    fn host(parts: HostFuncParts) -> Definition {
        Definition::HostFunc(Arc::new(SharedHostFunc::new(parts)))
    }
}

/// Resolves imports by module and field name, for stores with data `T`.
///
/// ```
/// use wasmc_loader::{Caller, Engine, Linker, Module, Store};
/// # let artifact = wasmc_compiler::compile(br#"(module
/// #   (import "host" "add" (func $add (param i32) (result i32)))
/// #   (func (export "run") (result i32) i32.const 2 call $add))"#, &Default::default()).unwrap();
/// let engine = Engine::default();
/// let module = Module::from_bytes(&engine, &artifact)?;
/// let mut linker = Linker::<u32>::new(&engine);
/// // Adds the store's data to its argument.
/// linker.func_wrap("host", "add", |caller: Caller<'_, u32>, x: i32| x + *caller.data() as i32)?;
/// let mut store = Store::new(&engine, 40);
/// let instance = linker.instantiate(&mut store, &module)?;
/// let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
/// assert_eq!(run.call(&mut store, ())?, 42);
/// # Ok::<(), wasmc_loader::Error>(())
/// ```
pub struct Linker<T> {
    engine: Engine,
    defs: HashMap<(String, String), Definition>,
    allow_shadowing: bool,
    _marker: PhantomData<fn(T)>,
}

impl<T> Clone for Linker<T> {
    fn clone(&self) -> Self {
        Linker {
            engine: self.engine.clone(),
            defs: self.defs.clone(),
            allow_shadowing: self.allow_shadowing,
            _marker: PhantomData,
        }
    }
}

impl<T: 'static> Linker<T> {
    /// An empty linker for modules of `engine`. Later definitions replace
    /// earlier ones with the same name (as the spec's `register` needs); see
    /// [`Linker::allow_shadowing`].
    pub fn new(engine: &Engine) -> Linker<T> {
        Linker {
            engine: engine.clone(),
            defs: HashMap::new(),
            allow_shadowing: true,
            _marker: PhantomData,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether a second definition of a name replaces the first (`true`,
    /// the default) or is an error.
    pub fn allow_shadowing(&mut self, allow: bool) -> &mut Self {
        self.allow_shadowing = allow;
        self
    }

    fn insert(&mut self, module: &str, name: &str, d: Definition) -> Result<&mut Self, LinkError> {
        let key = (module.to_string(), name.to_string());
        if !self.allow_shadowing && self.defs.contains_key(&key) {
            return Err(LinkError::Duplicate {
                module: key.0,
                field: key.1,
            });
        }
        self.defs.insert(key, d);
        Ok(self)
    }

    /// Defines `module::name` as `item` (which belongs to `store`; only
    /// instantiations in that store can use it).
    pub fn define(
        &mut self,
        store: impl AsContext<Data = T>,
        module: &str,
        name: &str,
        item: impl Into<Extern>,
    ) -> Result<&mut Self, LinkError> {
        let id = store.as_context().store.id;
        self.insert(module, name, Definition::Extern(id, item.into()))
    }

    /// Defines `module::name` as a host function taking and returning
    /// [`Val`]s (see [`Func::new`]), made once and shared by every store it
    /// is instantiated in (each call gets the calling store's [`Caller`]).
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        f: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> anyhow::Result<()> + Send + Sync + 'static,
    ) -> Result<&mut Self, LinkError> {
        let parts = val_host_parts::<T, _>(ty, f);
        self.insert(module, name, Definition::host(parts))
    }

    /// Defines `module::name` as a typed host function (see
    /// [`Func::wrap`]), made once and shared by every store it is
    /// instantiated in (each call gets the calling store's [`Caller`]).
    pub fn func_wrap<Params, Results>(
        &mut self,
        module: &str,
        name: &str,
        f: impl IntoFunc<T, Params, Results>,
    ) -> Result<&mut Self, LinkError> {
        self.insert(module, name, Definition::host(f.into_parts()))
    }

    /// Defines every export of `instance` under module name `name`.
    pub fn instance(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        name: &str,
        instance: Instance,
    ) -> Result<&mut Self, LinkError> {
        let mut cx = store.as_context_mut();
        let id = cx.store.id;
        for (field, e) in instance.exports(&mut cx) {
            self.insert(name, &field, Definition::Extern(id, e))?;
        }
        Ok(self)
    }

    /// Defines every function import of `module` that has no definition yet
    /// as a host function that fails when called, with an error naming the
    /// import (so a module can be instantiated although it imports
    /// functions it never calls). Other kinds of imports are left alone.
    pub fn define_unknown_imports_as_traps(&mut self, module: &Module) -> Result<(), LinkError> {
        for imp in module.imports() {
            let ExternType::Func(ty) = imp.ty else {
                continue;
            };
            if self
                .defs
                .contains_key(&(imp.module.clone(), imp.name.clone()))
            {
                continue;
            }
            let what = format!("`{}::{}`", imp.module, imp.name);
            let f = move |_: Caller<'_, T>, _: &[Val], _: &mut [Val]| -> anyhow::Result<()> {
                Err(anyhow::anyhow!(
                    "unknown import {what} was called: it is defined as a trap"
                ))
            };
            let parts = val_host_parts::<T, _>(ty, f);
            self.insert(&imp.module, &imp.name, Definition::host(parts))?;
        }
        Ok(())
    }

    /// The definition of `module::name` in `store`.
    pub fn get(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
    ) -> Option<Extern> {
        let store = store.as_context_mut().store;
        let d = self.defs.get(&(module.to_string(), name.to_string()))?;
        resolve(store, d).ok()
    }

    /// The definitions for `module`'s imports, in order; host functions'
    /// types are checked against the imports here.
    fn definitions(&self, module: &Module) -> Result<Linked, Error> {
        if !Engine::same(&self.engine, module.engine()) {
            return Err(Error::msg(
                "the module belongs to another engine than the linker",
            ));
        }
        let mut defs = Vec::with_capacity(module.info().imports.len());
        for imp in module.imports() {
            let d = self
                .defs
                .get(&(imp.module.clone(), imp.name.clone()))
                .ok_or_else(|| LinkError::MissingImport {
                    module: imp.module.clone(),
                    field: imp.name.clone(),
                    kind: imp.ty.kind().to_string(),
                })?;
            if let (Definition::HostFunc(h), ExternType::Func(want)) = (d, &imp.ty) {
                let p = h.parts();
                if p.ty() != want {
                    return Err(LinkError::IncompatibleImport {
                        module: imp.module.clone(),
                        field: imp.name.clone(),
                        expected: format!("func {want}"),
                        found: format!("func {}", p.ty()),
                    }
                    .into());
                }
            }
            defs.push(d.clone());
        }
        if defs.len() != module.info().imports.len() {
            return Err(Error::msg(
                "the module's import metadata is malformed (an import's type index is out of range)",
            ));
        }
        Ok(Linked::new(defs))
    }

    /// Resolves `module`'s imports and instantiates it.
    pub fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<Instance, Error> {
        let linked = self.definitions(module)?;
        linked.instantiate(store.as_context_mut().store, module)
    }

    /// Resolves `module`'s imports once (checking host functions' types),
    /// for instantiating it many times with [`InstancePre::instantiate`].
    pub fn instantiate_pre(&self, module: &Module) -> Result<InstancePre<T>, Error> {
        Ok(InstancePre {
            module: module.clone(),
            linked: Arc::new(self.definitions(module)?),
            _marker: PhantomData,
        })
    }
}

fn resolve(store: &mut StoreOpaque, d: &Definition) -> Result<Extern, LinkError> {
    match d {
        Definition::Extern(id, e) => {
            if *id != store.id {
                return Err(LinkError::ForeignStore("a linker definition"));
            }
            Ok(*e)
        }
        Definition::HostFunc(h) => Ok(Extern::Func(Func::new_host(store, h.parts().clone()))),
    }
}

/// How one import is satisfied: an item of a store, or entry `k` of the
/// shared host functions.
#[derive(Clone, Copy)]
enum Link {
    Store(u64, Extern),
    Shared(u32),
}

/// A module's imports resolved: what [`InstancePre`] keeps, so that an
/// instantiation only checks store ids and writes the VMContext (host
/// functions need no store record, see `vm::func::SharedHostFunc`).
struct Linked {
    links: Vec<Link>,
    /// The host functions among the definitions, in import order.
    shared: Option<SharedHosts>,
}

impl Linked {
    fn new(defs: Vec<Definition>) -> Linked {
        let mut hosts = Vec::new();
        let links = defs
            .into_iter()
            .map(|d| match d {
                Definition::Extern(id, e) => Link::Store(id, e),
                Definition::HostFunc(h) => {
                    hosts.push(h);
                    Link::Shared(hosts.len() as u32 - 1)
                }
            })
            .collect();
        Linked {
            links,
            shared: (!hosts.is_empty()).then(|| SharedHosts::from(hosts)),
        }
    }

    fn instantiate(&self, store: &mut StoreOpaque, module: &Module) -> Result<Instance, Error> {
        let imports = self
            .links
            .iter()
            .map(|l| match *l {
                Link::Store(id, _) if id != store.id => {
                    Err(LinkError::ForeignStore("a linker definition"))
                }
                Link::Store(_, e) => Ok(match e {
                    Extern::Func(f) => VMImport::Func(f.0.index),
                    Extern::Table(t) => VMImport::Table(t.0.index),
                    Extern::Memory(m) => VMImport::Memory(m.0.index),
                    Extern::Global(g) => VMImport::Global(g.0.index),
                }),
                Link::Shared(k) => Ok(VMImport::SharedHost(k)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Instance::new_linked(store, module, &imports, self.shared.as_ref())
    }
}

/// A module with its imports resolved by a [`Linker`]: instantiating it
/// looks nothing up by name and checks no host function's type again.
/// Cheap to clone; usable with any store of its engine (definitions of
/// store items only in their own store).
///
/// ```
/// use wasmc_loader::{Engine, Linker, Module, Store};
/// # let artifact = wasmc_compiler::compile(br#"(module
/// #   (import "host" "one" (func $one (result i32)))
/// #   (func (export "two") (result i32) call $one call $one i32.add))"#, &Default::default()).unwrap();
/// let engine = Engine::default();
/// let module = Module::from_bytes(&engine, &artifact)?;
/// let mut linker = Linker::<()>::new(&engine);
/// linker.func_wrap("host", "one", || 1i32)?;
/// let pre = linker.instantiate_pre(&module)?;
/// for _ in 0..3 {
///     let mut store = Store::new(&engine, ());
///     let instance = pre.instantiate(&mut store)?;
///     let two = instance.get_typed_func::<(), i32>(&mut store, "two")?;
///     assert_eq!(two.call(&mut store, ())?, 2);
/// }
/// # Ok::<(), wasmc_loader::Error>(())
/// ```
pub struct InstancePre<T> {
    module: Module,
    linked: Arc<Linked>,
    _marker: PhantomData<fn(T)>,
}

impl<T> Clone for InstancePre<T> {
    fn clone(&self) -> Self {
        InstancePre {
            module: self.module.clone(),
            linked: self.linked.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for InstancePre<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePre")
            .field("module", &self.module)
            .field("imports", &self.linked.links.len())
            .finish()
    }
}

impl<T> std::fmt::Debug for Linker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self.defs.keys().map(|(m, n)| format!("{m}::{n}")).collect();
        names.sort();
        f.debug_struct("Linker")
            .field("definitions", &names)
            .finish()
    }
}

impl<T: 'static> InstancePre<T> {
    /// The module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Instantiates the module in `store`.
    pub fn instantiate(&self, mut store: impl AsContextMut<Data = T>) -> Result<Instance, Error> {
        let cx: StoreContextMut<'_, T> = store.as_context_mut();
        self.linked.instantiate(cx.store, &self.module)
    }
}
