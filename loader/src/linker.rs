//! [`Linker`]: named definitions (`module::field`) that imports are resolved
//! against, including store-independent host functions.

use crate::error::{Error, LinkError};
use crate::func::{val_host_parts, Caller, Func, IntoFunc};
use crate::instance::Instance;
use crate::module::Module;
use crate::store::{AsContextMut, StoreOpaque};
use crate::values::{Extern, Val};
use crate::vm::func::HostFuncParts;
use std::collections::HashMap;
use std::sync::Arc;
use wasmc_format::FuncType;

#[derive(Clone)]
enum Definition {
    Extern(u64, Extern),
    HostFunc(HostFuncParts),
}

/// Resolves imports by module and field name.
#[derive(Clone, Default)]
pub struct Linker {
    defs: HashMap<(String, String), Definition>,
    allow_shadowing: bool,
}

impl Linker {
    /// An empty linker. Later definitions replace earlier ones with the same
    /// name (as the spec's `register` needs); see [`Linker::allow_shadowing`].
    pub fn new() -> Linker {
        Linker {
            defs: HashMap::new(),
            allow_shadowing: true,
        }
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

    /// Defines `module::name` as `item` (which belongs to `store`).
    pub fn define(
        &mut self,
        store: &impl crate::store::AsContext,
        module: &str,
        name: &str,
        item: impl Into<Extern>,
    ) -> Result<&mut Self, LinkError> {
        let id = store.as_context().id;
        self.insert(module, name, Definition::Extern(id, item.into()))
    }

    /// Defines `module::name` as a host function, created in each store it
    /// is instantiated in.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        f: impl Fn(Caller<'_>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Result<&mut Self, LinkError> {
        let parts = val_host_parts(ty, Arc::new(f));
        self.insert(module, name, Definition::HostFunc(parts))
    }

    /// Defines `module::name` as a typed host function (see
    /// [`Func::wrap`]), created in each store it is instantiated in.
    pub fn func_wrap<Params, Results>(
        &mut self,
        module: &str,
        name: &str,
        f: impl IntoFunc<Params, Results>,
    ) -> Result<&mut Self, LinkError> {
        self.insert(module, name, Definition::HostFunc(f.into_parts()))
    }

    /// Defines every export of `instance` under module name `name`.
    pub fn instance(
        &mut self,
        mut store: impl AsContextMut,
        name: &str,
        instance: &Instance,
    ) -> Result<&mut Self, LinkError> {
        let store = store.as_context_mut();
        let id = store.id;
        for (field, e) in instance.exports(&mut *store) {
            self.insert(name, &field, Definition::Extern(id, e))?;
        }
        Ok(self)
    }

    /// The definition of `module::name` in `store`.
    pub fn get(&self, mut store: impl AsContextMut, module: &str, name: &str) -> Option<Extern> {
        let store = store.as_context_mut();
        let d = self.defs.get(&(module.to_string(), name.to_string()))?;
        self.resolve(store, d).ok()
    }

    fn resolve(&self, store: &mut StoreOpaque, d: &Definition) -> Result<Extern, LinkError> {
        match d {
            Definition::Extern(id, e) => {
                if *id != store.id {
                    return Err(LinkError::ForeignStore("a linker definition"));
                }
                Ok(*e)
            }
            Definition::HostFunc(parts) => Ok(Extern::Func(Func::new_host(store, parts.clone()))),
        }
    }

    /// Resolves `module`'s imports and instantiates it.
    pub fn instantiate(
        &self,
        mut store: impl AsContextMut,
        module: &Module,
    ) -> Result<Instance, Error> {
        let store = store.as_context_mut();
        let mut imports = Vec::with_capacity(module.info().imports.len());
        for imp in &module.info().imports {
            let d = self
                .defs
                .get(&(imp.module.clone(), imp.field.clone()))
                .ok_or_else(|| LinkError::MissingImport {
                    module: imp.module.clone(),
                    field: imp.field.clone(),
                    kind: imp.ty.kind().to_string(),
                })?;
            imports.push(self.resolve(store, d)?);
        }
        Instance::new(store, module, &imports)
    }
}
