//! Instance state and instantiation.
//!
//! [`InstanceData`] is one instance in its store: its module, its VMContext
//! and the store indices of its functions, tables, memories and globals.
//! [`instantiate`] follows the spec's order: check the imports' types;
//! allocate the VMContext, the tables and the memories (all before the
//! instance enters the store, so that a refused allocation keeps nothing);
//! fill the VMContext's header, type ids, imports and `func_refs`; evaluate
//! globals; move the tables' and memories' definitions in; apply element
//! segments, then data segments, in order (memory images first, mapped
//! copy-on-write where possible, for the prefix of segments they stand for;
//! an out-of-bounds segment stops instantiation with the spec's message, the
//! segments before it stay applied). The API layer runs the start function afterwards.
//!
//! A partly initialised instance stays in the store: an element segment may
//! already have put its functions into an imported table.
//!
//! The active segments of a lazy funcref table (`vm::table`) are not applied
//! here: each element is initialised on its first read, so instantiation
//! does not grow with their length.
//!
//! Every index read from the module's metadata is looked up with a check
//! here (a bad one is an error naming it), even though the artifact reader
//! validated them: the VMContext writes below rely on them.

use crate::vm::code::RuntimeModule;
use crate::vm::func::{FuncData, FuncKind, SharedHostFunc};
use crate::vm::gc::externref::{raw_clone, raw_release};
use crate::vm::global::GlobalData;
use crate::vm::memory::MemoryData;
use crate::vm::pool::SlotKey;
use crate::vm::store::StoreOpaque;
use crate::vm::table::{LazyInit, TableData};
use crate::vm::types::{describe_global, describe_memory, describe_table, limits_match};
use crate::vm::vmcontext::{
    VMContext, VMContextAlloc, VMFuncRef, VMFunctionImport, VMGlobalDefinition, VMMemoryDefinition,
    VMTableDefinition, ValRaw,
};
use std::collections::HashMap;
use std::sync::Arc;
use wasmc_format::segments::Placement;
use wasmc_format::{
    ConstExpr, ConstOp, ElementItems, ElementMode, FormatError, ImportType, RefType, TableType,
};

/// An element segment kept for `table.init`: raw references, each externref
/// holding one count.
pub(crate) struct ElemSeg {
    pub ty: RefType,
    pub items: Vec<*mut u8>,
}

pub(crate) struct InstanceData {
    pub module: Arc<RuntimeModule>,
    pub vmctx: VMContextAlloc,
    /// Store indices of the imported functions, in import order; for a
    /// shared host function whose record is not made yet (it is on first
    /// use, see [`instance_func`]), [`UNMADE`] plus its index in
    /// `shared_hosts`.
    pub funcs: Vec<usize>,
    /// Store indices of the defined functions made so far, by function
    /// index: filled in on first use (see [`instance_func`]).
    pub defined_funcs: HashMap<u32, usize>,
    pub tables: Vec<usize>,
    pub memories: Vec<usize>,
    pub globals: Vec<usize>,
    /// `None` once dropped (or for active/declared segments).
    pub elems: Vec<Option<ElemSeg>>,
    /// Data segments `[0, data_applied)` have been processed by
    /// instantiation: the active ones among them are dropped.
    pub data_applied: u32,
    /// Segments dropped by `data.drop`; empty until the first one, so that
    /// instantiation does not grow with the number of segments.
    pub dropped_data: Vec<bool>,
    /// The shared host functions this instance imports
    /// (`VMImport::SharedHost`), kept alive: its VMContext points at their
    /// contexts, and so do the store's records of them (made on first use).
    pub shared_hosts: Option<SharedHosts>,
}

/// Host functions made once and shared by the stores that import them (a
/// linker's definitions), in the order an instantiation's
/// `VMImport::SharedHost` indices refer to them.
pub(crate) type SharedHosts = Arc<[Arc<SharedHostFunc>]>;

/// In [`InstanceData::funcs`], added to an index into `shared_hosts`: an
/// imported shared host function without a store record yet. No store has
/// that many functions.
pub(crate) const UNMADE: usize = 1 << (usize::BITS - 1);

impl InstanceData {
    pub fn release_segments(&mut self) {
        for seg in self.elems.iter_mut() {
            if let Some(s) = seg.take() {
                release_seg(s);
            }
        }
    }

    /// The address of funcref `f` in this instance's VMContext, `None` if
    /// the module has no function `f`. A defined function's is all zero
    /// until [`instance_func`] fills it in.
    pub fn func_ref_addr(&self, f: u32) -> Option<*mut VMFuncRef> {
        (f < self.module.info().num_funcs)
            .then(|| self.vmctx.field(self.vmctx.offsets.vmctx_func_ref(f)))
    }

    /// The store index of function `f` if it was made ([`instance_func`]);
    /// `None` otherwise or if out of range.
    pub fn func_index(&self, f: u32) -> Option<usize> {
        let imported = self.funcs.len() as u32;
        if f < imported {
            self.funcs.get(f as usize).copied().filter(|&i| i < UNMADE)
        } else {
            self.defined_funcs.get(&f).copied()
        }
    }
}

/// The store index of function `f` of instance `inst` (imports first),
/// making it on first use: a defined function's `VMFuncRef` in the
/// VMContext and its `FuncData` are created here, not at instantiation, so
/// that instantiation does not grow with the number of functions.
///
/// Every way a function's reference can leave its instance goes through
/// here first: `ref.func` (the `ref_func` builtin, and constant expressions
/// at instantiation), element segments, exports. So a funcref pointer that
/// compiled code, a table, a global or the host holds always points at a
/// filled-in `VMFuncRef`, and the store has its `FuncData`.
pub(crate) fn instance_func(
    store: &mut StoreOpaque,
    inst: usize,
    f: u32,
) -> Result<usize, FormatError> {
    let d = &store.instances[inst];
    let bad = |detail: String| FormatError::Invalid {
        what: "module info",
        detail,
    };
    if let Some(i) = d.func_index(f) {
        return Ok(i);
    }
    if f < d.funcs.len() as u32 {
        // An imported shared host function (the only imports without a
        // record): its record points at this instance's funcref of it.
        let r = d
            .func_ref_addr(f)
            .ok_or_else(|| bad(format!("function {f} out of range")))?;
        let ctx = d.funcs[f as usize]
            .checked_sub(UNMADE)
            .and_then(|k| d.shared_hosts.as_ref()?.get(k))
            .ok_or_else(|| bad(format!("imported function {f} not linked")))?
            .ctx();
        // SAFETY: `ctx` is the context of a shared host function this
        // instance keeps alive (`shared_hosts`) as long as the store, and
        // `r` the funcref instantiation filled in for it (with this
        // module's trampoline and `ctx`).
        let i = unsafe { store.push_shared_host_func(ctx, r) };
        store.instances[inst].funcs[f as usize] = i;
        return Ok(i);
    }
    let module = d.module.clone();
    let r = d
        .func_ref_addr(f)
        .ok_or_else(|| bad(format!("function {f} out of range")))?;
    let (type_index, code) = module.funcs().defined(f)?;
    let wasm_call = module
        .text_addr(code.range.offset)
        .ok_or_else(|| bad(format!("function {f}: code outside `.text`")))?;
    let ty = module
        .func_type(type_index)
        .ok_or_else(|| bad(format!("function {f}: type out of range")))?
        .clone();
    let type_id = module
        .type_id(type_index)
        .ok_or_else(|| bad(format!("function {f}: type out of range")))?;
    // SAFETY: `r` is the in-bounds, aligned funcref field of `f` in the
    // instance's live VMContext (`func_ref_addr` checked `f`, and
    // `VMContextAlloc::field` the bounds); nothing else refers to it yet (it
    // was all zero: no pointer to it was handed out). The code address was
    // checked to lie inside `.text`.
    unsafe {
        r.write(VMFuncRef {
            wasm_call,
            vmctx: d.vmctx.vmctx(),
            type_id,
        })
    };
    let fi = store.funcs.len();
    store.funcs.push(FuncData {
        kind: FuncKind::Wasm {
            instance: inst,
            type_index,
        },
        ty,
        func_ref: r,
    });
    store.instances[inst].defined_funcs.insert(f, fi);
    Ok(fi)
}

impl InstanceData {}

/// Most funcrefs made for which a pooled VMContext is zeroed entry by
/// entry when freed; past this, its pages are discarded.
const WRITTEN_FUNCREFS_MAX: usize = 256;

impl Drop for InstanceData {
    fn drop(&mut self) {
        // Everything before the funcrefs of the defined functions is written
        // at instantiation (header, type ids, imports, definitions, the
        // imported functions' funcrefs); after it, only the funcrefs made.
        let o = self.vmctx.offsets;
        let size = o.size_of_vmfunc_ref() as usize;
        if self.defined_funcs.len() <= WRITTEN_FUNCREFS_MAX {
            let nimp = self.funcs.len() as u32;
            let head = if nimp < self.module.info().num_funcs {
                o.vmctx_func_ref(nimp)
            } else {
                o.size_of_vmctx()
            } as usize;
            let mut ranges = Vec::with_capacity(1 + self.defined_funcs.len());
            ranges.push(0..head);
            for f in self.defined_funcs.keys() {
                let at = o.vmctx_func_ref(*f) as usize;
                ranges.push(at..at + size);
            }
            self.vmctx.set_written(ranges);
        }
    }
}

pub(crate) fn release_seg(s: ElemSeg) {
    if s.ty == RefType::ExternRef {
        for r in s.items {
            // SAFETY: each externref item of a kept segment holds one count,
            // given up exactly once here (the segment is consumed).
            unsafe { raw_release(r.cast()) };
        }
    }
}

/// What an instance imports: entities of its store, by index (the API layer
/// checked that they belong to the store).
#[derive(Clone, Copy, Debug)]
pub(crate) enum VMImport {
    Func(usize),
    /// Entry `k` of the shared host functions given to [`instantiate`].
    SharedHost(u32),
    Table(usize),
    Memory(usize),
    Global(usize),
}

/// Why [`instantiate`] failed.
#[derive(Debug)]
pub(crate) enum InstantiateError {
    /// Not one import per declared import.
    ImportCount {
        expected: usize,
        found: usize,
    },
    /// Import `index` does not fit: what the module expects, what it got.
    Incompatible {
        index: usize,
        expected: String,
        found: String,
    },
    /// A bad index in the module's metadata, or a malformed function record.
    Format(FormatError),
    Resource(String),
    /// The module's epoch/fuel instrumentation does not fit the store's
    /// settings (the reason).
    Interruption(String),
    ConstExpr(String),
    DataSegmentOutOfBounds {
        segment: u32,
        memory: u32,
    },
    ElementSegmentOutOfBounds {
        segment: u32,
        table: u32,
    },
}

impl From<FormatError> for InstantiateError {
    fn from(e: FormatError) -> Self {
        InstantiateError::Format(e)
    }
}

fn bad_index(detail: String) -> InstantiateError {
    InstantiateError::Format(FormatError::Invalid {
        what: "module info",
        detail,
    })
}

/// How an import of the store is described in messages.
fn describe_import(store: &StoreOpaque, e: VMImport, shared: &[Arc<SharedHostFunc>]) -> String {
    match e {
        VMImport::Func(f) => format!("func {}", *store.funcs[f].ty),
        VMImport::SharedHost(k) => match shared.get(k as usize) {
            Some(h) => format!("func {}", h.parts().ty()),
            None => format!("shared host function {k} (not given)"),
        },
        VMImport::Table(t) => {
            let d = &store.tables[t];
            describe_table(&TableType {
                min: d.size(),
                ..d.ty
            })
        }
        VMImport::Memory(m) => describe_memory(&store.memories[m].current_type()),
        VMImport::Global(g) => describe_global(&store.globals[g].ty),
    }
}

/// Checks import `index` (`e`) against the module's declaration `ty`.
fn check_import(
    store: &StoreOpaque,
    module: &RuntimeModule,
    index: usize,
    ty: &ImportType,
    e: VMImport,
    shared: &[Arc<SharedHostFunc>],
) -> Result<(), InstantiateError> {
    let found = || describe_import(store, e, shared);
    let types = &module.info().types;
    let func_type = |t: u32| {
        types
            .get(t as usize)
            .ok_or_else(|| bad_index(format!("import {index}: type {t} out of range")))
    };
    let incompatible = |expected: String, found: String| InstantiateError::Incompatible {
        index,
        expected,
        found,
    };
    match (ty, e) {
        (ImportType::Func(t), VMImport::Func(f)) => {
            let expected = func_type(*t)?;
            if expected != &*store.funcs[f].ty {
                return Err(incompatible(format!("func {expected}"), found()));
            }
        }
        (ImportType::Func(t), VMImport::SharedHost(k)) => {
            let expected = func_type(*t)?;
            // Canonical type ids are equal exactly when the types are.
            let fits = shared
                .get(k as usize)
                .is_some_and(|h| module.type_ids().get(*t as usize) == Some(&h.parts().type_id()));
            if !fits {
                return Err(incompatible(format!("func {expected}"), found()));
            }
        }
        (ImportType::Table(ty), VMImport::Table(t)) => {
            let d = &store.tables[t];
            let ok = d.ty.elem == ty.elem
                && d.ty.table64 == ty.table64
                && limits_match(u64::from(d.size()), d.ty.max, u64::from(ty.min), ty.max);
            if !ok {
                return Err(incompatible(describe_table(ty), found()));
            }
        }
        (ImportType::Memory(ty), VMImport::Memory(m)) => {
            let d = &store.memories[m];
            if d.ty.memory64 != ty.memory64 || !limits_match(d.pages(), d.ty.max, ty.min, ty.max) {
                return Err(incompatible(describe_memory(ty), found()));
            }
        }
        (ImportType::Global(ty), VMImport::Global(g)) => {
            if store.globals[g].ty != *ty {
                return Err(incompatible(describe_global(ty), found()));
            }
        }
        (ty, _) => {
            let expected = match ty {
                ImportType::Func(t) => format!("func {}", func_type(*t)?),
                ImportType::Table(t) => describe_table(t),
                ImportType::Memory(m) => describe_memory(m),
                ImportType::Global(g) => describe_global(g),
            };
            return Err(incompatible(expected, found()));
        }
    }
    Ok(())
}

/// The value of `op` if it pushes one without popping any (a constant,
/// `ref.null`, `ref.func` or `global.get`); `None` for arithmetic.
fn const_operand(
    store: &mut StoreOpaque,
    inst: usize,
    op: &ConstOp,
) -> Result<Option<ValRaw>, InstantiateError> {
    Ok(Some(match *op {
        ConstOp::I32Const(v) => ValRaw::from_u64(v as u32 as u64),
        ConstOp::I64Const(v) => ValRaw::from_u64(v as u64),
        ConstOp::F32Const(v) => ValRaw::from_u64(u64::from(v)),
        ConstOp::F64Const(v) => ValRaw::from_u64(v),
        ConstOp::V128Const(v) => ValRaw::from_u128(v),
        ConstOp::RefNull(_) => ValRaw::default(),
        ConstOp::RefFunc(f) => ValRaw::from_u64(func_ref_of(store, inst, f)? as usize as u64),
        ConstOp::GlobalGet(g) => {
            let gi = *store.instances[inst]
                .globals
                .get(g as usize)
                .ok_or_else(|| {
                    InstantiateError::ConstExpr("global.get of a global not yet initialised".into())
                })?;
            store.globals[gi].get_raw()
        }
        ConstOp::I32Add
        | ConstOp::I32Sub
        | ConstOp::I32Mul
        | ConstOp::I64Add
        | ConstOp::I64Sub
        | ConstOp::I64Mul => return Ok(None),
    }))
}

/// Evaluates a constant expression of instance `inst`.
fn eval_const(
    store: &mut StoreOpaque,
    inst: usize,
    e: &ConstExpr,
) -> Result<ValRaw, InstantiateError> {
    // Nearly every initializer is one operand: no stack for it (a `Vec`
    // push allocates, once per global or segment offset of every
    // instantiation).
    if let [op] = e.0.as_slice() {
        if let Some(v) = const_operand(store, inst, op)? {
            return Ok(v);
        }
    }
    let mut stack: Vec<ValRaw> = Vec::new();
    let bad = |m: &str| InstantiateError::ConstExpr(m.to_string());
    for op in &e.0 {
        if let Some(v) = const_operand(store, inst, op)? {
            stack.push(v);
            continue;
        }
        let v = match *op {
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
            _ => unreachable!("`const_operand` takes every other operator"),
        };
        stack.push(v);
    }
    match (stack.pop(), stack.is_empty()) {
        (Some(v), true) => Ok(v),
        _ => Err(bad("expression does not produce exactly one value")),
    }
}

/// The address of instance `inst`'s funcref of function `f`, made on first
/// use ([`instance_func`]).
pub(crate) fn func_ref(
    store: &mut StoreOpaque,
    inst: usize,
    f: u32,
) -> Result<*mut VMFuncRef, FormatError> {
    instance_func(store, inst, f)?;
    store.instances[inst]
        .func_ref_addr(f)
        .ok_or_else(|| FormatError::Invalid {
            what: "module info",
            detail: format!("function {f} out of range"),
        })
}

/// [`func_ref`] for instantiation.
fn func_ref_of(
    store: &mut StoreOpaque,
    inst: usize,
    f: u32,
) -> Result<*mut VMFuncRef, InstantiateError> {
    Ok(func_ref(store, inst, f)?)
}

/// Instantiates `module` in `store` with `imports` (in the module's import
/// order); the new instance's index. See the module docs.
/// Checks the store's instance, memory and table counts (the resource
/// limiter's, or without one the defaults, as in Wasmtime: a store that
/// instantiates in a loop stops at 10,000 instances, long before its
/// memories' reservations would exhaust the process's address space), and
/// asks the limiter (if any) about each defined memory's and table's
/// initial size, before anything is created.
fn check_limits(
    store: &mut StoreOpaque,
    module: &RuntimeModule,
    imports: &[VMImport],
) -> Result<(), InstantiateError> {
    let info = module.info();
    let imported = |f: fn(&VMImport) -> bool| imports.iter().filter(|i| f(i)).count();
    let new_mems = info
        .memories
        .len()
        .saturating_sub(imported(|i| matches!(i, VMImport::Memory(_))));
    let new_tables = info
        .tables
        .len()
        .saturating_sub(imported(|i| matches!(i, VMImport::Table(_))));
    let (n_inst, n_mem, n_tab) = (
        store.instances.len(),
        store.memories.len(),
        store.tables.len(),
    );
    let (who, max_inst, max_mem, max_tab) = store.count_limits();
    let refuse = |what: String| Err(InstantiateError::Resource(what));
    if n_inst + 1 > max_inst {
        return refuse(format!(
            "{who} allows {max_inst} instances, this would be instance {}",
            n_inst + 1
        ));
    }
    if n_mem + new_mems > max_mem {
        return refuse(format!(
            "{who} allows {max_mem} memories, this instantiation needs {}",
            n_mem + new_mems
        ));
    }
    if n_tab + new_tables > max_tab {
        return refuse(format!(
            "{who} allows {max_tab} tables, this instantiation needs {}",
            n_tab + new_tables
        ));
    }
    if store.limiter.is_none() {
        return Ok(());
    }
    let err = |e: anyhow::Error| InstantiateError::Resource(format!("{e:#}"));
    for (i, ty) in info
        .memories
        .iter()
        .enumerate()
        .skip(info.memories.len() - new_mems)
    {
        if !store.memory_growing(0, ty.min, ty.max).map_err(err)? {
            return refuse(format!(
                "memory {i} of {} pages ({} bytes) refused by the store's limiter",
                ty.min,
                ty.min.saturating_mul(wasmc_format::WASM_PAGE_SIZE)
            ));
        }
    }
    for (i, ty) in info
        .tables
        .iter()
        .enumerate()
        .skip(info.tables.len() - new_tables)
    {
        if !store.table_growing(0, ty.min, ty.max).map_err(err)? {
            return refuse(format!(
                "table {i} of {} elements refused by the store's limiter",
                ty.min
            ));
        }
    }
    Ok(())
}

pub(crate) fn instantiate(
    store: &mut StoreOpaque,
    module: &Arc<RuntimeModule>,
    imports: &[VMImport],
    shared: Option<&SharedHosts>,
) -> Result<usize, InstantiateError> {
    let shared_list: &[Arc<SharedHostFunc>] = shared.map_or(&[], |s| s);
    let info = module.info();
    if imports.len() != info.imports.len() {
        return Err(InstantiateError::ImportCount {
            expected: info.imports.len(),
            found: imports.len(),
        });
    }
    for (i, (imp, e)) in info.imports.iter().zip(imports).enumerate() {
        check_import(store, module, i, &imp.ty, *e, shared_list)?;
    }
    store
        .check_interruption(module)
        .map_err(InstantiateError::Interruption)?;
    check_limits(store, module, imports)?;
    let offsets = *module.offsets();
    let vmctx = match &store.pool {
        Some(p) => {
            let permit = p
                .acquire_instance(VMContextAlloc::size_for(&offsets))
                .map_err(InstantiateError::Resource)?;
            VMContextAlloc::new_pooled(offsets, permit)
        }
        None => VMContextAlloc::new(offsets),
    }
    .ok_or_else(|| InstantiateError::Resource("cannot allocate the VMContext".into()))?;
    let inst = store.instances.len();
    // Every table and memory is allocated before the instance enters the
    // store: a refusal here (a pool limit, a size) drops them and the
    // VMContext again, so a failed allocation keeps no pool slot (the
    // instance is not in the store, which would hold them until it drops).
    let (tables, memories) = allocate(store, module, inst)?;
    store.add_module(module);

    if info.num_funcs > 0 {
        let start = vmctx.vmctx() as usize + offsets.vmctx_func_ref(0) as usize;
        let len = info.num_funcs as usize * offsets.size_of_vmfunc_ref() as usize;
        store.func_ref_ranges.insert(start, (start + len, inst));
    }
    let h = vmctx.header();
    // SAFETY: `h` is the header at the start of the fresh allocation (which
    // is at least a header long); every pointer stored is owned by the store,
    // which outlives the instance.
    unsafe {
        (*h).runtime_limits = store.limits_ptr();
        (*h).builtins = crate::vm::libcalls::builtin_table();
        (*h).activations_table = store.activations_ptr();
        (*h).instance = inst as *mut ();
        (*h).store = store as *mut StoreOpaque as *mut ();
    }
    for (t, id) in module.type_ids().iter().enumerate() {
        let p = vmctx.field::<u32>(offsets.vmctx_type_id(t as u32));
        // SAFETY: `field` checked the slot lies inside the context, and
        // VMOffsets places it u32-aligned.
        unsafe { p.write(*id) };
    }
    // Sized up front: pushing one by one reallocated `funcs` four times
    // for esbuild's 22 imports, at every instantiation.
    store.instances.push(InstanceData {
        module: module.clone(),
        vmctx,
        funcs: Vec::with_capacity(info.num_imported_funcs as usize),
        defined_funcs: HashMap::new(),
        tables: Vec::with_capacity(info.tables.len()),
        memories: Vec::with_capacity(info.memories.len()),
        globals: Vec::with_capacity(info.globals.len()),
        elems: Vec::new(),
        data_applied: 0,
        dropped_data: Vec::new(),
        shared_hosts: shared.cloned(),
    });
    initialize(store, inst, module, imports, shared_list, tables, memories)?;
    Ok(inst)
}

/// Evaluates every element segment of instance `inst` and applies the
/// active ones in order (see [`instantiate`]), except those of lazy tables
/// (`vm::table`), which their elements' first reads apply. `at` is left at
/// the index of the segment being processed, the failing one on `Err`.
fn element_segments(
    store: &mut StoreOpaque,
    inst: usize,
    at: &mut u32,
) -> Result<(), InstantiateError> {
    let module = store.instances[inst].module.clone();
    let info = module.info();
    store.instances[inst].elems = (0..info.elements.len()).map(|_| None).collect();
    for (si, seg) in info.elements.iter().enumerate() {
        *at = si as u32;
        if let ElementMode::Active { table, .. } = &seg.mode {
            if module.lazy_runs(*table).is_some() {
                continue;
            }
        }
        let mut items = Vec::with_capacity(seg.items.len());
        match &seg.items {
            ElementItems::Functions(fs) => {
                for f in fs {
                    let r = func_ref_of(store, inst, *f).map_err(|_| {
                        bad_index(format!("element segment {si}: function {f} out of range"))
                    })?;
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
                        // SAFETY: the items are null or live references
                        // (globals' values); the kept segment takes a count.
                        unsafe { raw_clone(r.cast()) };
                    }
                }
                store.instances[inst].elems[si] = Some(ElemSeg {
                    ty: seg.elem_type,
                    items,
                });
            }
            ElementMode::Declared => {}
            ElementMode::Active { table, offset } => {
                let off = eval_const(store, inst, offset)?;
                let ti = *store.instances[inst]
                    .tables
                    .get(*table as usize)
                    .ok_or_else(|| bad_index(format!("element segment {si}: table {table}")))?;
                // An i64 offset for a 64-bit table; one that does not fit 32
                // bits is out of bounds of any table.
                let off = if store.tables[ti].ty.table64 {
                    u32::try_from(off.get_u64()).unwrap_or(u32::MAX)
                } else {
                    off.get_u32()
                };
                if store.tables[ti].ty.elem != seg.elem_type {
                    return Err(bad_index(format!(
                        "element segment {si}: element type differs from table {table}'s"
                    )));
                }
                // SAFETY: the items are null or live references of the
                // segment's type, which was just checked to be the table's.
                unsafe { store.tables[ti].set_range(off, &items) }.map_err(|_| {
                    InstantiateError::ElementSegmentOutOfBounds {
                        segment: si as u32,
                        table: *table,
                    }
                })?;
            }
        }
    }

    Ok(())
}

/// Writes function import `n`'s slot in `vmctx` and the instance's funcref
/// of it: called through `wasm_call` with `callee` as its VMContext.
fn write_func_import(
    vmctx: &VMContextAlloc,
    n: u32,
    wasm_call: *const u8,
    callee: *mut VMContext,
    type_id: u32,
) {
    let o = vmctx.offsets;
    let p = vmctx.field::<VMFunctionImport>(o.vmctx_imported_function(n));
    // SAFETY: `field` checked that the slot lies inside the VMContext, and
    // VMOffsets aligns it for its type.
    unsafe {
        p.write(VMFunctionImport {
            wasm_call,
            vmctx: callee,
        })
    };
    let r = vmctx.field::<VMFuncRef>(o.vmctx_func_ref(n));
    // SAFETY: `field` checked that the funcref lies inside the VMContext,
    // and VMOffsets aligns it for its type.
    unsafe {
        r.write(VMFuncRef {
            wasm_call,
            vmctx: callee,
            type_id,
        })
    };
}

/// The defined tables and memories of an instance of `module` that will be
/// instance `inst` of `store`, in module order: all or none, so that a
/// refusal leaves nothing taken (see [`instantiate`]).
fn allocate(
    store: &StoreOpaque,
    module: &Arc<RuntimeModule>,
    inst: usize,
) -> Result<(Vec<TableData>, Vec<MemoryData>), InstantiateError> {
    let info = module.info();
    let nt = info.num_imported_tables as usize;
    let nm = info.num_imported_memories as usize;
    let mut tables = Vec::with_capacity(info.tables.len().saturating_sub(nt));
    for (i, ty) in info.tables.iter().enumerate().skip(nt) {
        // A lazy table starts uninitialised, and its segments are applied
        // element by element on first read (`vm::table`).
        let lazy = module.lazy_runs(i as u32).map(|_| LazyInit {
            owner: inst,
            module: module.clone(),
            table: i as u32,
            // None yet: see `element_segments` in `initialize`.
            applied: 0,
        });
        let t = TableData::new_defined(*ty, store.max_table_elements, store.pool.as_ref(), lazy)
            .map_err(InstantiateError::Resource)?;
        tables.push(t);
    }
    let mut memories = Vec::with_capacity(info.memories.len().saturating_sub(nm));
    for (i, ty) in info.memories.iter().enumerate().skip(nm) {
        let max_pages = store.max_memory_pages;
        let key = SlotKey {
            module: module.id(),
            memory: i as u32,
        };
        let m = match &store.pool {
            Some(p) => MemoryData::new_pooled(*ty, max_pages, p, key),
            None => MemoryData::new(*ty, max_pages, Some(key)),
        }
        .map_err(InstantiateError::Resource)?;
        memories.push(m);
    }
    Ok((tables, memories))
}

fn initialize(
    store: &mut StoreOpaque,
    inst: usize,
    module: &RuntimeModule,
    imports: &[VMImport],
    shared: &[Arc<SharedHostFunc>],
    tables: Vec<TableData>,
    memories: Vec<MemoryData>,
) -> Result<(), InstantiateError> {
    let info = module.info();
    let offsets = *module.offsets();
    // Each `field!` pointer was bounds-checked by `VMContextAlloc::field`
    // and is aligned for its type (its offset comes from VMOffsets).
    macro_rules! field {
        ($t:ty, $off:expr) => {
            store.instances[inst].vmctx.field::<$t>($off)
        };
    }
    let type_id = |t: u32| {
        module
            .type_id(t)
            .ok_or_else(|| bad_index(format!("type {t} out of range")))
    };

    // Imports (their types were checked by `instantiate`).
    let (mut nf, mut nt, mut nm, mut ng) = (0u32, 0u32, 0u32, 0u32);
    for (imp, e) in info.imports.iter().zip(imports) {
        match (*e, &imp.ty) {
            (VMImport::Func(fi), ImportType::Func(t)) => {
                let fd = &store.funcs[fi];
                let trampoline = || {
                    module
                        .host_trampoline(*t)
                        .ok_or_else(|| bad_index(format!("type {t} out of range")))
                };
                let (wasm_call, callee) = match &fd.kind {
                    FuncKind::Host(ctx) => (trampoline()?, &**ctx as *const _ as *mut VMContext),
                    FuncKind::SharedHost(ctx) => (trampoline()?, *ctx as *mut VMContext),
                    // SAFETY: a Wasm function's func_ref points into its
                    // instance's VMContext, which lives as long as the store.
                    FuncKind::Wasm { .. } => unsafe {
                        ((*fd.func_ref).wasm_call, (*fd.func_ref).vmctx)
                    },
                };
                let tid = type_id(*t)?;
                let d = &mut store.instances[inst];
                write_func_import(&d.vmctx, nf, wasm_call, callee, tid);
                d.funcs.push(fi);
                nf += 1;
            }
            (VMImport::SharedHost(k), ImportType::Func(t)) => {
                // No store record (see `SharedHostFunc`): the import slot
                // and this instance's funcref get the context and this
                // module's host trampoline for the type.
                let ctx = shared
                    .get(k as usize)
                    .ok_or_else(|| bad_index(format!("shared host function {k} not given")))?
                    .ctx() as *mut VMContext;
                let wasm_call = module
                    .host_trampoline(*t)
                    .ok_or_else(|| bad_index(format!("type {t} out of range")))?;
                let tid = type_id(*t)?;
                let d = &mut store.instances[inst];
                write_func_import(&d.vmctx, nf, wasm_call, ctx, tid);
                d.funcs.push(UNMADE + k as usize);
                nf += 1;
            }
            (VMImport::Table(ti), _) => {
                let def = store.tables[ti].def();
                let p = field!(*mut VMTableDefinition, offsets.vmctx_imported_table(nt));
                // SAFETY: `p` is an in-bounds, aligned field (see `field!`).
                unsafe { p.write(def) };
                store.instances[inst].tables.push(ti);
                nt += 1;
            }
            (VMImport::Memory(mi), _) => {
                let def = store.memories[mi].def();
                let p = field!(*mut VMMemoryDefinition, offsets.vmctx_imported_memory(nm));
                // SAFETY: `p` is an in-bounds, aligned field (see `field!`).
                unsafe { p.write(def) };
                store.instances[inst].memories.push(mi);
                nm += 1;
            }
            (VMImport::Global(gi), _) => {
                let def = store.globals[gi].def();
                let p = field!(*mut VMGlobalDefinition, offsets.vmctx_imported_global(ng));
                // SAFETY: `p` is an in-bounds, aligned field (see `field!`).
                unsafe { p.write(def) };
                store.instances[inst].globals.push(gi);
                ng += 1;
            }
            (VMImport::Func(_) | VMImport::SharedHost(_), _) => {
                return Err(bad_index(
                    "a function given for a non-function import".into(),
                ))
            }
        }
    }

    // Defined functions' funcrefs and records are made on first use
    // (`instance_func`): nothing per function here.

    // Globals, in order (an initializer may read earlier globals).
    store
        .globals
        .reserve(info.globals.len().saturating_sub(ng as usize));
    for (i, g) in info.globals.iter().enumerate().skip(ng as usize) {
        let init = g
            .init
            .as_ref()
            .ok_or_else(|| bad_index(format!("defined global {i} has no initializer")))?;
        let v = eval_const(store, inst, init)?;
        let def = field!(
            VMGlobalDefinition,
            offsets.vmctx_defined_global(i as u32 - ng)
        );
        // SAFETY: `def` is an in-bounds, aligned field of the VMContext,
        // which lives as long as the store; `v` is a value of the global's
        // type (validated module), a reference one null, a funcref of this
        // instance or the live value of an earlier global.
        let gd = unsafe { GlobalData::new(g.ty, def, v) };
        store.globals.push(gd);
        let gi = store.globals.len() - 1;
        store.instances[inst].globals.push(gi);
    }

    // Tables and memories, allocated by `allocate`: their definitions move
    // into the VMContext.
    if tables.len() != info.tables.len() - nt as usize
        || memories.len() != info.memories.len() - nm as usize
    {
        return Err(bad_index("tables or memories not allocated".into()));
    }
    for (k, mut t) in tables.into_iter().enumerate() {
        let def = field!(VMTableDefinition, offsets.vmctx_defined_table(k as u32));
        // SAFETY: `def` is an in-bounds field of the VMContext, which lives
        // as long as the store and so as the table.
        unsafe { t.set_def(def) };
        store.tables.push(t);
        let ti = store.tables.len() - 1;
        store.instances[inst].tables.push(ti);
    }

    for (k, mut m) in memories.into_iter().enumerate() {
        let def = field!(VMMemoryDefinition, offsets.vmctx_defined_memory(k as u32));
        // SAFETY: `def` is an in-bounds field of the VMContext, which lives
        // as long as the store and so as the memory.
        unsafe { m.set_def(def) };
        store.memories.push(m);
        let mi = store.memories.len() - 1;
        store.instances[inst].memories.push(mi);
    }

    // Element segments. A pooled memory may already hold its initial
    // contents (its slot's last user was this same memory); if an element
    // segment fails, the data segments would not have been applied, so
    // such a memory is made zero again (functions of this instance that an
    // earlier segment put into an imported table can still read it).
    let mut at = 0;
    let r = element_segments(store, inst, &mut at);
    // The lazy tables' segments count as applied in order with the others:
    // all of them, or on failure those before the failing segment `at`.
    let applied = if r.is_ok() { u32::MAX } else { at };
    for k in nt as usize..store.instances[inst].tables.len() {
        let ti = store.instances[inst].tables[k];
        store.tables[ti].set_lazy_applied(applied);
    }
    if let Err(e) = r {
        let mems = store.instances[inst].memories[nm as usize..].to_vec();
        for mi in mems {
            store.memories[mi]
                .forget_initial_contents()
                .map_err(InstantiateError::Resource)?;
        }
        return Err(e);
    }

    // Data segments. The memory images stand for the first
    // `image_segments` (all in bounds of the fresh memories, so applying them
    // cannot fail: wasmc_format::segments); they are applied here, after the
    // element segments, where the spec applies those segments. The rest are
    // copied one by one; an out-of-bounds one stops instantiation with the
    // ones before it applied.
    let segs = module.segments()?;
    for (ii, img) in info.memory_images.iter().enumerate() {
        let mi = *store.instances[inst]
            .memories
            .get(img.memory as usize)
            .ok_or_else(|| bad_index(format!("memory image {ii}: memory {}", img.memory)))?;
        if store.memories[mi].initialized() {
            // A pool slot that already holds this memory's initial contents.
            continue;
        }
        let src = module
            .memory_image_source(img)
            .ok_or_else(|| bad_index(format!("memory image {ii} outside `.wasmc.data`")))?;
        store.memories[mi]
            .apply_image(img.memory_offset, src)
            .map_err(|e| InstantiateError::Resource(format!("memory image {ii}: {e}")))?;
    }
    // Every defined memory now holds its initial contents: a pool slot may
    // be reused as is by the same memory.
    for k in nm as usize..store.instances[inst].memories.len() {
        let mi = store.instances[inst].memories[k];
        store.memories[mi].set_initialized();
    }
    store.instances[inst].data_applied = segs.image_segments();
    for di in segs.image_segments()..segs.len() {
        let seg = segs.get(di)?;
        if seg.placement == Placement::Passive {
            store.instances[inst].data_applied = di + 1;
            continue;
        }
        let mi = *store.instances[inst]
            .memories
            .get(seg.memory as usize)
            .ok_or_else(|| bad_index(format!("data segment {di}: memory {}", seg.memory)))?;
        let off = match seg.placement {
            Placement::Const(off) => u64::from(off),
            Placement::Expr(e) => {
                let expr = info
                    .data_offset_exprs
                    .get(e as usize)
                    .ok_or_else(|| bad_index(format!("data segment {di}: expression {e}")))?;
                let off = eval_const(store, inst, expr)?;
                // An i64 offset for a 64-bit memory, an i32 otherwise.
                if store.memories[mi].ty.memory64 {
                    off.get_u64()
                } else {
                    u64::from(off.get_u32())
                }
            }
            Placement::Passive | Placement::Image => {
                return Err(bad_index(format!(
                    "data segment {di}: in an image but after the image prefix"
                )))
            }
        };
        let bytes = seg
            .bytes_range()
            .and_then(|r| module.data_section().get(r))
            .ok_or_else(|| bad_index(format!("data segment {di} outside `.wasmc.data`")))?;
        let mem = store.memories[mi].bytes_mut();
        let end = off.checked_add(u64::from(seg.len));
        let Some(end) = end.filter(|e| *e <= mem.len() as u64) else {
            return Err(InstantiateError::DataSegmentOutOfBounds {
                segment: di,
                memory: seg.memory,
            });
        };
        mem[off as usize..end as usize].copy_from_slice(bytes);
        store.instances[inst].data_applied = di + 1;
    }
    Ok(())
}
