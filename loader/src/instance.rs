//! Instantiation and [`Instance`].
//!
//! Follows the spec's order: check imports; allocate the VMContext and fill
//! its header, type ids, imports and `func_refs`; evaluate globals; create
//! tables and memories; apply element segments, then data segments, in order
//! (an out-of-bounds segment stops instantiation with the spec's message, the
//! segments before it stay applied); run the start function.
//!
//! A partly initialised instance stays in the store: an element segment may
//! already have put its functions into an imported table.

use crate::code::Module;
use crate::error::{Error, InstantiationError, LinkError, LoadError};
use crate::externref::raw_release;
use crate::func::{Func, FuncData, FuncKind, TypedFunc, WasmParams, WasmResults};
use crate::global::{Global, GlobalData};
use crate::memory::{Memory, MemoryData};
use crate::store::{AsContextMut, StoreOpaque, Stored};
use crate::table::{Table, TableData};
use crate::types::{describe_global, describe_memory, describe_table, limits_match};
use crate::values::Extern;
use crate::vmcontext::{
    VMContextAlloc, VMFuncRef, VMFunctionImport, VMGlobalDefinition, VMMemoryDefinition,
    VMTableDefinition, ValRaw,
};
use wasmc_format::{
    ConstExpr, ConstOp, DataMode, ElementItems, ElementMode, ExternKind, ImportType, RefType,
};

/// An element segment kept for `table.init`: raw references, each externref
/// holding one count.
pub(crate) struct ElemSeg {
    pub ty: RefType,
    pub items: Vec<*mut u8>,
}

pub(crate) struct InstanceData {
    pub module: Module,
    pub vmctx: VMContextAlloc,
    pub funcs: Vec<usize>,
    pub tables: Vec<usize>,
    pub memories: Vec<usize>,
    pub globals: Vec<usize>,
    /// `None` once dropped (or for active/declared segments).
    pub elems: Vec<Option<ElemSeg>>,
    pub dropped_data: Vec<bool>,
}

impl InstanceData {
    pub fn release_segments(&mut self) {
        for seg in self.elems.iter_mut() {
            if let Some(s) = seg.take() {
                release_seg(s);
            }
        }
    }
}

pub(crate) fn release_seg(s: ElemSeg) {
    if s.ty == RefType::ExternRef {
        for r in s.items {
            // SAFETY: each externref item holds one count.
            unsafe { raw_release(r.cast()) };
        }
    }
}

/// An instance of a module in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance(pub(crate) Stored);

fn incompatible(imp: &wasmc_format::Import, expected: String, found: String) -> Error {
    Error::Link(LinkError::IncompatibleImport {
        module: imp.module.clone(),
        field: imp.field.clone(),
        expected,
        found,
    })
}

fn describe_extern(store: &StoreOpaque, e: &Extern) -> String {
    match e {
        Extern::Func(f) => format!("func {}", *store.funcs[store.check(f.0, "function")].ty),
        Extern::Table(t) => {
            let d = t.data_of(store);
            describe_table(&wasmc_format::TableType {
                min: d.size(),
                ..d.ty
            })
        }
        Extern::Memory(m) => describe_memory(&m.data_of(store).current_type()),
        Extern::Global(g) => describe_global(&g.data_of(store).ty),
    }
}

fn check_import(
    store: &StoreOpaque,
    module: &Module,
    imp: &wasmc_format::Import,
    ext: &Extern,
) -> Result<(), Error> {
    let found = || describe_extern(store, ext);
    match (&imp.ty, ext) {
        (ImportType::Func(t), Extern::Func(f)) => {
            let expected = &module.info().types[*t as usize];
            let actual = &store.funcs[store.check(f.0, "function")].ty;
            if expected != &**actual {
                return Err(incompatible(imp, format!("func {expected}"), found()));
            }
        }
        (ImportType::Table(ty), Extern::Table(t)) => {
            let d = t.data_of(store);
            let ok = d.ty.elem == ty.elem
                && d.ty.table64 == ty.table64
                && limits_match(
                    u64::from(d.size()),
                    d.ty.max.map(u64::from),
                    u64::from(ty.min),
                    ty.max.map(u64::from),
                );
            if !ok {
                return Err(incompatible(imp, describe_table(ty), found()));
            }
        }
        (ImportType::Memory(ty), Extern::Memory(m)) => {
            let d = m.data_of(store);
            if d.ty.memory64 != ty.memory64 || !limits_match(d.pages(), d.ty.max, ty.min, ty.max) {
                return Err(incompatible(imp, describe_memory(ty), found()));
            }
            if !d.fits_strategy(module.memory_strategy()) {
                return Err(incompatible(
                    imp,
                    format!("memory with {}", module.memory_strategy()),
                    format!("memory with {}", d.strategy),
                ));
            }
        }
        (ImportType::Global(ty), Extern::Global(g)) => {
            if g.data_of(store).ty != *ty {
                return Err(incompatible(imp, describe_global(ty), found()));
            }
        }
        (ty, _) => {
            let expected = match ty {
                ImportType::Func(t) => format!("func {}", module.info().types[*t as usize]),
                ImportType::Table(t) => describe_table(t),
                ImportType::Memory(m) => describe_memory(m),
                ImportType::Global(g) => describe_global(g),
            };
            return Err(incompatible(imp, expected, found()));
        }
    }
    Ok(())
}

/// Evaluates a constant expression of instance `inst`.
fn eval_const(store: &StoreOpaque, inst: usize, e: &ConstExpr) -> Result<ValRaw, Error> {
    let data = &store.instances[inst];
    let mut stack: Vec<ValRaw> = Vec::new();
    let bad = |m: &str| Error::Instantiation(InstantiationError::ConstExpr(m.to_string()));
    for op in &e.0 {
        let v = match *op {
            ConstOp::I32Const(v) => ValRaw::from_u64(v as u32 as u64),
            ConstOp::I64Const(v) => ValRaw::from_u64(v as u64),
            ConstOp::F32Const(v) => ValRaw::from_u64(u64::from(v)),
            ConstOp::F64Const(v) => ValRaw::from_u64(v),
            ConstOp::V128Const(v) => ValRaw::from_u128(v),
            ConstOp::RefNull(_) => ValRaw::default(),
            ConstOp::RefFunc(f) => {
                let off = data.vmctx.offsets.vmctx_func_ref(f);
                // SAFETY: f < num_funcs (validated), so the field is inside the vmctx.
                let p: *mut VMFuncRef = unsafe { data.vmctx.field(off) };
                ValRaw::from_u64(p as usize as u64)
            }
            ConstOp::GlobalGet(g) => {
                let gi = *data
                    .globals
                    .get(g as usize)
                    .ok_or_else(|| bad("global.get of a global not yet initialised"))?;
                store.globals[gi].get_raw()
            }
            ConstOp::I32Add | ConstOp::I32Sub | ConstOp::I32Mul => {
                let (b, a) = (stack.pop(), stack.pop());
                let (Some(a), Some(b)) = (a, b) else {
                    return Err(bad("stack underflow"));
                };
                let (a, b) = (a.get_u32(), b.get_u32());
                let r = match op {
                    ConstOp::I32Add => a.wrapping_add(b),
                    ConstOp::I32Sub => a.wrapping_sub(b),
                    _ => a.wrapping_mul(b),
                };
                ValRaw::from_u64(u64::from(r))
            }
            ConstOp::I64Add | ConstOp::I64Sub | ConstOp::I64Mul => {
                let (b, a) = (stack.pop(), stack.pop());
                let (Some(a), Some(b)) = (a, b) else {
                    return Err(bad("stack underflow"));
                };
                let (a, b) = (a.get_u64(), b.get_u64());
                let r = match op {
                    ConstOp::I64Add => a.wrapping_add(b),
                    ConstOp::I64Sub => a.wrapping_sub(b),
                    _ => a.wrapping_mul(b),
                };
                ValRaw::from_u64(r)
            }
        };
        stack.push(v);
    }
    match (stack.pop(), stack.is_empty()) {
        (Some(v), true) => Ok(v),
        _ => Err(bad("expression does not produce exactly one value")),
    }
}

impl Instance {
    /// Instantiates `module` with `imports` given in the module's import order.
    pub fn new(
        mut store: impl AsContextMut,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance, Error> {
        let store = store.as_context_mut();
        let info = module.info();
        if imports.len() != info.imports.len() {
            return Err(LinkError::ImportCount {
                expected: info.imports.len(),
                found: imports.len(),
            }
            .into());
        }
        for (imp, ext) in info.imports.iter().zip(imports) {
            let id = match ext {
                Extern::Func(f) => f.0,
                Extern::Table(t) => t.0,
                Extern::Memory(m) => m.0,
                Extern::Global(g) => g.0,
            };
            if id.store_id != store.id {
                return Err(LinkError::ForeignStore("an import").into());
            }
            check_import(store, module, imp, ext)?;
        }
        store.add_module(module);

        let offsets = *module.offsets();
        let vmctx = VMContextAlloc::new(offsets)
            .ok_or_else(|| InstantiationError::Resource("cannot allocate the VMContext".into()))?;
        let inst = store.instances.len();
        if info.num_funcs > 0 {
            let start = vmctx.vmctx() as usize + offsets.vmctx_func_ref(0) as usize;
            let len = info.num_funcs as usize * offsets.size_of_vmfunc_ref() as usize;
            store.func_ref_ranges.insert(start, (start + len, inst));
        }
        // SAFETY: the header lies at the start of the fresh allocation; every
        // pointer stored is owned by the store and outlives the instance.
        unsafe {
            let h = vmctx.header();
            (*h).runtime_limits = store.limits_ptr();
            (*h).builtins = crate::libcalls::builtin_table();
            (*h).activations_table = store.activations_ptr();
            (*h).instance = inst as *mut ();
            (*h).store = store as *mut StoreOpaque as *mut ();
            for (t, id) in module.type_ids().iter().enumerate() {
                vmctx
                    .field::<u32>(offsets.vmctx_type_id(t as u32))
                    .write(*id);
            }
        }
        store.instances.push(InstanceData {
            module: module.clone(),
            vmctx,
            funcs: Vec::new(),
            tables: Vec::new(),
            memories: Vec::new(),
            globals: Vec::new(),
            elems: Vec::new(),
            dropped_data: vec![false; info.data.len()],
        });
        let handle = Instance(store.stored(inst));
        handle.initialize(store, module, imports)?;
        Ok(handle)
    }

    fn initialize(
        &self,
        store: &mut StoreOpaque,
        module: &Module,
        imports: &[Extern],
    ) -> Result<(), Error> {
        let inst = self.0.index;
        let info = module.info();
        let offsets = *module.offsets();
        let vmctx_ptr = store.instances[inst].vmctx.vmctx();
        macro_rules! field {
            ($t:ty, $off:expr) => {
                // SAFETY: offsets come from this module's VMOffsets and the
                // index was validated against the module's counts.
                unsafe { store.instances[inst].vmctx.field::<$t>($off) }
            };
        }

        // Imports.
        let (mut nf, mut nt, mut nm, mut ng) = (0u32, 0u32, 0u32, 0u32);
        for (imp, ext) in info.imports.iter().zip(imports) {
            match (ext, &imp.ty) {
                (Extern::Func(f), ImportType::Func(t)) => {
                    let fi = f.0.index;
                    let fd = &store.funcs[fi];
                    let (wasm_call, callee) = match &fd.kind {
                        FuncKind::Host(ctx) => (
                            module.host_trampoline(*t),
                            &**ctx as *const _ as *mut crate::vmcontext::VMContext,
                        ),
                        // SAFETY: a Wasm func_ref points into a live VMContext.
                        FuncKind::Wasm { .. } => unsafe {
                            ((*fd.func_ref).wasm_call, (*fd.func_ref).vmctx)
                        },
                    };
                    let p = field!(VMFunctionImport, offsets.vmctx_imported_function(nf));
                    // SAFETY: p is inside the vmctx.
                    unsafe {
                        p.write(VMFunctionImport {
                            wasm_call,
                            vmctx: callee,
                        })
                    };
                    let r = field!(VMFuncRef, offsets.vmctx_func_ref(nf));
                    // SAFETY: as above.
                    unsafe {
                        r.write(VMFuncRef {
                            wasm_call,
                            vmctx: callee,
                            type_id: module.type_id(*t),
                        })
                    };
                    store.instances[inst].funcs.push(fi);
                    nf += 1;
                }
                (Extern::Table(t), _) => {
                    let def = store.tables[t.0.index].def();
                    let p = field!(*mut VMTableDefinition, offsets.vmctx_imported_table(nt));
                    // SAFETY: p is inside the vmctx.
                    unsafe { p.write(def) };
                    store.instances[inst].tables.push(t.0.index);
                    nt += 1;
                }
                (Extern::Memory(m), _) => {
                    let def = store.memories[m.0.index].def();
                    let p = field!(*mut VMMemoryDefinition, offsets.vmctx_imported_memory(nm));
                    // SAFETY: p is inside the vmctx.
                    unsafe { p.write(def) };
                    store.instances[inst].memories.push(m.0.index);
                    nm += 1;
                }
                (Extern::Global(g), _) => {
                    let def = store.globals[g.0.index].def();
                    let p = field!(*mut VMGlobalDefinition, offsets.vmctx_imported_global(ng));
                    // SAFETY: p is inside the vmctx.
                    unsafe { p.write(def) };
                    store.instances[inst].globals.push(g.0.index);
                    ng += 1;
                }
                _ => unreachable!("import kinds were checked"),
            }
        }

        // Defined functions' funcrefs. Each record is checked as it is read.
        let funcs = module.funcs();
        let defined = (info.num_funcs - nf) as usize;
        store.funcs.reserve(defined);
        store.instances[inst].funcs.reserve(defined);
        for i in nf..info.num_funcs {
            let (type_index, code) = funcs.defined(i).map_err(LoadError::from)?;
            let r = field!(VMFuncRef, offsets.vmctx_func_ref(i));
            // SAFETY: r is inside the vmctx; the code range was checked to
            // lie inside `.text`.
            unsafe {
                r.write(VMFuncRef {
                    wasm_call: module.text_addr(code.range.offset),
                    vmctx: vmctx_ptr,
                    type_id: module.type_id(type_index),
                })
            };
            let fi = store.funcs.len();
            store.funcs.push(FuncData {
                kind: FuncKind::Wasm {
                    instance: inst,
                    type_index,
                },
                ty: module.func_type(type_index).clone(),
                func_ref: r,
            });
            store.instances[inst].funcs.push(fi);
        }

        // Globals, in order (an initializer may read earlier globals).
        for (i, g) in info.globals.iter().enumerate().skip(ng as usize) {
            let init = g.init.as_ref().expect("defined global has an initializer");
            let v = eval_const(store, inst, init)?;
            let def = field!(
                VMGlobalDefinition,
                offsets.vmctx_defined_global(i as u32 - ng)
            );
            // SAFETY: def is inside the vmctx (lives as long as the store); v
            // is a live value of the global's type (validated module).
            let gd = unsafe { GlobalData::new(g.ty, def, v) };
            store.globals.push(gd);
            let gi = store.globals.len() - 1;
            store.instances[inst].globals.push(gi);
        }

        // Tables.
        for (i, ty) in info.tables.iter().enumerate().skip(nt as usize) {
            let limit = store.max_table_elements;
            // SAFETY: null is a valid element of any table.
            let mut t = unsafe { TableData::new(*ty, std::ptr::null_mut(), limit) }
                .map_err(InstantiationError::Resource)?;
            let def = field!(
                VMTableDefinition,
                offsets.vmctx_defined_table(i as u32 - nt)
            );
            // SAFETY: def lives in the vmctx as long as the store.
            unsafe { t.set_def(def) };
            store.tables.push(t);
            let ti = store.tables.len() - 1;
            store.instances[inst].tables.push(ti);
        }

        // Memories.
        for (i, ty) in info.memories.iter().enumerate().skip(nm as usize) {
            let mut m = MemoryData::new(*ty, module.memory_strategy(), store.max_memory_pages)
                .map_err(InstantiationError::Resource)?;
            let def = field!(
                VMMemoryDefinition,
                offsets.vmctx_defined_memory(i as u32 - nm)
            );
            // SAFETY: def lives in the vmctx as long as the store.
            unsafe { m.set_def(def) };
            store.memories.push(m);
            let mi = store.memories.len() - 1;
            store.instances[inst].memories.push(mi);
        }

        // Element segments: evaluate all, apply active ones in order.
        store.instances[inst].elems = (0..info.elements.len()).map(|_| None).collect();
        for (si, seg) in info.elements.iter().enumerate() {
            let mut items = Vec::with_capacity(seg.items.len());
            match &seg.items {
                ElementItems::Functions(fs) => {
                    for f in fs {
                        let r: *mut VMFuncRef = field!(VMFuncRef, offsets.vmctx_func_ref(*f));
                        items.push(r.cast::<u8>());
                    }
                }
                ElementItems::Exprs(es) => {
                    for e in es {
                        items.push(eval_const(store, inst, e)?.get_ptr());
                    }
                }
            }
            match &seg.mode {
                ElementMode::Passive => {
                    if seg.elem_type == RefType::ExternRef {
                        for r in &items {
                            // SAFETY: items are live references (globals'
                            // values or null); the segment takes a count.
                            unsafe { crate::externref::raw_clone(r.cast()) };
                        }
                    }
                    store.instances[inst].elems[si] = Some(ElemSeg {
                        ty: seg.elem_type,
                        items,
                    });
                }
                ElementMode::Declared => {}
                ElementMode::Active { table, offset } => {
                    // An i64 offset for a 64-bit table; one that does not
                    // fit 32 bits is out of bounds of any table.
                    let off = eval_const(store, inst, offset)?;
                    let off = if info.tables[*table as usize].table64 {
                        u32::try_from(off.get_u64()).unwrap_or(u32::MAX)
                    } else {
                        off.get_u32()
                    };
                    let ti = store.instances[inst].tables[*table as usize];
                    // SAFETY: items are live references of the segment's type,
                    // which validation matched with the table's.
                    unsafe { store.tables[ti].set_range(off, &items) }.map_err(|_| {
                        InstantiationError::ElementSegmentOutOfBounds {
                            segment: si as u32,
                            table: *table,
                        }
                    })?;
                }
            }
        }

        // Data segments.
        for (di, seg) in info.data.iter().enumerate() {
            if let DataMode::Active { memory, offset } = &seg.mode {
                // An i64 offset for a 64-bit memory, an i32 otherwise.
                let off = eval_const(store, inst, offset)?;
                let off = if info.memories[*memory as usize].memory64 {
                    off.get_u64()
                } else {
                    u64::from(off.get_u32())
                };
                let mi = store.instances[inst].memories[*memory as usize];
                let bytes = &module.data_section()
                    [seg.offset as usize..seg.offset as usize + seg.len as usize];
                let mem = store.memories[mi].bytes_mut();
                let end = off.checked_add(u64::from(seg.len));
                let Some(end) = end.filter(|e| *e <= mem.len() as u64) else {
                    return Err(InstantiationError::DataSegmentOutOfBounds {
                        segment: di as u32,
                        memory: *memory,
                    }
                    .into());
                };
                mem[off as usize..end as usize].copy_from_slice(bytes);
                store.instances[inst].dropped_data[di] = true;
            }
        }

        // Start function.
        if let Some(s) = info.start {
            let fi = store.instances[inst].funcs[s as usize];
            Func(store.stored(fi)).call(&mut *store, &[], &mut [])?;
        }
        Ok(())
    }

    fn data<'a>(&self, store: &'a StoreOpaque) -> &'a InstanceData {
        &store.instances[store.check(self.0, "instance")]
    }

    /// The module this instance was created from.
    pub fn module(&self, mut store: impl AsContextMut) -> Module {
        self.data(store.as_context_mut()).module.clone()
    }

    /// The export called `name`.
    pub fn get_export(&self, mut store: impl AsContextMut, name: &str) -> Option<Extern> {
        let store = store.as_context_mut();
        let d = self.data(store);
        let e = d.module.info().export(name)?;
        let i = e.index as usize;
        Some(match e.kind {
            ExternKind::Func => Extern::Func(Func(store.stored(*d.funcs.get(i)?))),
            ExternKind::Table => Extern::Table(Table(store.stored(*d.tables.get(i)?))),
            ExternKind::Memory => Extern::Memory(Memory(store.stored(*d.memories.get(i)?))),
            ExternKind::Global => Extern::Global(Global(store.stored(*d.globals.get(i)?))),
        })
    }

    /// Every export, in the module's export order.
    pub fn exports(&self, mut store: impl AsContextMut) -> Vec<(String, Extern)> {
        let store = store.as_context_mut();
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
                let e = self.get_export(&mut *store, &n)?;
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
        let store = store.as_context_mut();
        let f = self
            .get_func(&mut *store, name)
            .ok_or_else(|| Error::msg(format!("no exported function `{name}`")))?;
        f.typed(store)
    }
}
