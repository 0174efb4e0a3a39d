//! [`Instance`]: an instance of a module in a store.
//!
//! [`Instance::new`] checks that the imports belong to the store, then the
//! runtime (`vm::instance::instantiate`) checks their types and builds the
//! instance in the spec's order (VMContext, globals, tables, memories,
//! element then data segments); the start function runs last. A partly
//! initialised instance stays in the store: an element segment may already
//! have put its functions into an imported table.

use crate::engine::Engine;
use crate::error::{Error, InstantiationError, LinkError, LoadError};
use crate::func::{Func, TypedFunc, WasmParams, WasmResults};
use crate::global::Global;
use crate::memory::Memory;
use crate::module::Module;
use crate::store::{AsContext, AsContextMut, StoreContext, StoreContextMut, StoreOpaque};
use crate::table::Table;
use crate::values::Extern;
use crate::vm::instance::{instantiate, InstanceData, InstantiateError, SharedHosts, VMImport};
use crate::vm::store::Stored;
use wasmc_format::ExternKind;

/// An instance of a module in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance(pub(crate) Stored);

/// The public error for a failed instantiation of `module`.
fn instantiation_error(module: &Module, e: InstantiateError) -> Error {
    match e {
        InstantiateError::ImportCount { expected, found } => {
            LinkError::ImportCount { expected, found }.into()
        }
        InstantiateError::Incompatible {
            index,
            expected,
            found,
        } => {
            let imp = &module.info().imports[index];
            LinkError::IncompatibleImport {
                module: imp.module.clone(),
                field: imp.field.clone(),
                expected,
                found,
            }
            .into()
        }
        InstantiateError::Format(e) => LoadError::Format(e).into(),
        InstantiateError::Resource(m) => InstantiationError::Resource(m).into(),
        InstantiateError::Interruption(m) => InstantiationError::Interruption(m).into(),
        InstantiateError::ConstExpr(m) => InstantiationError::ConstExpr(m).into(),
        InstantiateError::DataSegmentOutOfBounds { segment, memory } => {
            InstantiationError::DataSegmentOutOfBounds { segment, memory }.into()
        }
        InstantiateError::ElementSegmentOutOfBounds { segment, table } => {
            InstantiationError::ElementSegmentOutOfBounds { segment, table }.into()
        }
    }
}

impl Instance {
    /// Instantiates `module` with `imports` given in the module's import order.
    pub fn new(
        mut store: impl AsContextMut,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance, Error> {
        let store = store.as_context_mut().store;
        Instance::new_opaque(store, module, imports)
    }

    /// [`Instance::new`] on the store's runtime state.
    pub(crate) fn new_opaque(
        store: &mut StoreOpaque,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance, Error> {
        let info = module.info();
        if imports.len() != info.imports.len() {
            return Err(LinkError::ImportCount {
                expected: info.imports.len(),
                found: imports.len(),
            }
            .into());
        }
        let mut vm_imports = Vec::with_capacity(imports.len());
        for ext in imports {
            let (id, import) = match ext {
                Extern::Func(f) => (f.0, VMImport::Func(f.0.index)),
                Extern::Table(t) => (t.0, VMImport::Table(t.0.index)),
                Extern::Memory(m) => (m.0, VMImport::Memory(m.0.index)),
                Extern::Global(g) => (g.0, VMImport::Global(g.0.index)),
            };
            if id.store_id != store.id {
                return Err(LinkError::ForeignStore("an import").into());
            }
            vm_imports.push(import);
        }
        Instance::new_linked(store, module, &vm_imports, None)
    }

    /// Instantiates `module` with imports of the store and shared host
    /// functions (`crate::vm::instance::instantiate`), then runs its start
    /// function.
    pub(crate) fn new_linked(
        store: &mut StoreOpaque,
        module: &Module,
        vm_imports: &[VMImport],
        shared: Option<&SharedHosts>,
    ) -> Result<Instance, Error> {
        let engine_ok = store
            .engine
            .downcast_ref::<Engine>()
            .is_some_and(|e| Engine::same(e, module.engine()));
        if !engine_ok {
            return Err(Error::msg(
                "cannot instantiate a module in a store of another engine",
            ));
        }
        let info = module.info();
        let inst = instantiate(store, module.runtime(), vm_imports, shared)
            .map_err(|e| instantiation_error(module, e))?;
        if let Some(s) = info.start {
            // Made on first use, like every function record.
            let fi = crate::vm::instance::instance_func(store, inst, s)
                .map_err(|e| Error::msg(format!("start function {s}: {e}")))?;
            Func(store.stored(fi)).call(StoreContextMut::<()>::new(store), &[], &mut [])?;
        }
        Ok(Instance(store.stored(inst)))
    }

    fn data<'a>(&self, store: &'a StoreOpaque) -> &'a InstanceData {
        &store.instances[store.check(self.0, "instance")]
    }

    /// The module this instance was created from.
    pub fn module(&self, store: impl AsContext) -> Module {
        let store = store.as_context().store;
        let engine = store
            .engine
            .downcast_ref::<Engine>()
            .expect("a store's engine is an Engine")
            .clone();
        Module::from_runtime(engine, self.data(store).module.clone())
    }

    /// The export called `name`.
    pub fn get_export(&self, mut store: impl AsContextMut, name: &str) -> Option<Extern> {
        let store = store.as_context_mut().store;
        let inst = store.check(self.0, "instance");
        let e = store.instances[inst].module.info().export(name)?;
        let (kind, index) = (e.kind, e.index);
        let i = index as usize;
        let d = &store.instances[inst];
        Some(match kind {
            // Made on first use (instantiation makes no function records).
            ExternKind::Func => {
                let f = crate::vm::instance::instance_func(store, inst, index).ok()?;
                Extern::Func(Func(store.stored(f)))
            }
            ExternKind::Table => Extern::Table(Table(store.stored(*d.tables.get(i)?))),
            ExternKind::Memory => Extern::Memory(Memory(store.stored(*d.memories.get(i)?))),
            ExternKind::Global => Extern::Global(Global(store.stored(*d.globals.get(i)?))),
        })
    }

    /// Every export, in the module's export order.
    pub fn exports(&self, mut store: impl AsContextMut) -> Vec<(String, Extern)> {
        let store = store.as_context_mut().store;
        let names: Vec<String> = self
            .data(store)
            .module
            .info()
            .exports
            .iter()
            .map(|e| e.name.clone())
            .collect();
        names
            .into_iter()
            .filter_map(|n| {
                let e = self.get_export(StoreContextMut::<()>::new(store), &n)?;
                Some((n, e))
            })
            .collect()
    }

    /// The exported function `name`.
    pub fn get_func(&self, store: impl AsContextMut, name: &str) -> Option<Func> {
        self.get_export(store, name)?.into_func()
    }

    /// The exported memory `name`.
    pub fn get_memory(&self, store: impl AsContextMut, name: &str) -> Option<Memory> {
        self.get_export(store, name)?.into_memory()
    }

    /// The exported table `name`.
    pub fn get_table(&self, store: impl AsContextMut, name: &str) -> Option<Table> {
        self.get_export(store, name)?.into_table()
    }

    /// The exported global `name`.
    pub fn get_global(&self, store: impl AsContextMut, name: &str) -> Option<Global> {
        self.get_export(store, name)?.into_global()
    }

    /// The exported function `name` with its type checked against `P -> R`.
    pub fn get_typed_func<P: WasmParams, R: WasmResults>(
        &self,
        mut store: impl AsContextMut,
        name: &str,
    ) -> Result<TypedFunc<P, R>, Error> {
        let store = store.as_context_mut().store;
        let f = self
            .get_func(StoreContextMut::<()>::new(store), name)
            .ok_or_else(|| Error::msg(format!("no exported function `{name}`")))?;
        f.typed(StoreContext::<()>::new(store))
    }
}
