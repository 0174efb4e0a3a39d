//! `ModuleInfo`: what the loader needs to know about a compiled module.
//!
//! Written by the compiler as bincode after the header in `.wasmc.meta`.
//! Per-function data is not here: it grows with the code, so it lives in
//! `.wasmc.funcs` and `.wasmc.names`, read in place ([`crate::funcs`]).
//! Everything in it is untrusted when read back: [`ModuleInfo::validate`]
//! checks every index and range against the module's own counts and the sizes
//! of `.text` and `.wasmc.data` before the loader uses any of it.
//!
//! Index spaces follow Wasm: functions, tables, memories and globals number
//! imports first, then definitions. `num_imported_*` splits them.

use crate::FormatError;
use serde::{Deserialize, Serialize};

/// A Wasm value type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValType {
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `v128`
    V128,
    /// `funcref`
    FuncRef,
    /// `externref`
    ExternRef,
}

impl ValType {
    /// True for `funcref` and `externref`.
    pub fn is_ref(self) -> bool {
        matches!(self, ValType::FuncRef | ValType::ExternRef)
    }
}

impl core::fmt::Display for ValType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::FuncRef => "funcref",
            ValType::ExternRef => "externref",
        })
    }
}

/// A reference type: the element type of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefType {
    /// `funcref`
    FuncRef,
    /// `externref`
    ExternRef,
}

impl RefType {
    /// The value type of this reference type.
    pub fn val_type(self) -> ValType {
        match self {
            RefType::FuncRef => ValType::FuncRef,
            RefType::ExternRef => ValType::ExternRef,
        }
    }
}

impl core::fmt::Display for RefType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.val_type().fmt(f)
    }
}

/// A function signature.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FuncType {
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types.
    pub results: Vec<ValType>,
}

impl core::fmt::Display for FuncType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let list = |v: &[ValType]| {
            v.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "({}) -> ({})", list(&self.params), list(&self.results))
    }
}

/// A table type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableType {
    /// Element type.
    pub elem: RefType,
    /// Initial size in elements.
    pub min: u32,
    /// Maximum size in elements, as declared: a 64-bit table's may be above
    /// 2^32 - 1 (no table grows that far, but import matching compares the
    /// declared limits).
    pub max: Option<u64>,
    /// 64-bit indices (memory64's table64): `table.*` operands, the
    /// `call_indirect` index and element-segment offsets are i64.
    pub table64: bool,
}

/// A memory type; sizes are in Wasm pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemoryType {
    /// Initial size in pages.
    pub min: u64,
    /// Maximum size in pages.
    pub max: Option<u64>,
    /// 64-bit addresses (memory64).
    pub memory64: bool,
    /// Shared memory (threads; refused by this version).
    pub shared: bool,
}

impl MemoryType {
    /// The most pages a memory of this index type may have: 2^16 for 32-bit
    /// memories, 2^48 for 64-bit ones (the whole 64-bit address space).
    pub fn max_pages_limit(&self) -> u64 {
        if self.memory64 {
            crate::WASM64_MAX_PAGES
        } else {
            crate::WASM32_MAX_PAGES
        }
    }
}

/// A global's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GlobalType {
    /// Value type.
    pub ty: ValType,
    /// `mut`
    pub mutable: bool,
}

/// One instruction of a constant expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConstOp {
    /// `i32.const`
    I32Const(i32),
    /// `i64.const`
    I64Const(i64),
    /// `f32.const`, as bits
    F32Const(u32),
    /// `f64.const`, as bits
    F64Const(u64),
    /// `v128.const`, little-endian
    V128Const(u128),
    /// `ref.null`
    RefNull(RefType),
    /// `ref.func`
    RefFunc(u32),
    /// `global.get` (of an imported global, or any earlier global)
    GlobalGet(u32),
    /// `i32.add` (extended-const)
    I32Add,
    /// `i32.sub` (extended-const)
    I32Sub,
    /// `i32.mul` (extended-const)
    I32Mul,
    /// `i64.add` (extended-const)
    I64Add,
    /// `i64.sub` (extended-const)
    I64Sub,
    /// `i64.mul` (extended-const)
    I64Mul,
}

/// A constant expression, evaluated by the loader at instantiation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConstExpr(pub Vec<ConstOp>);

/// What an import or export refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExternKind {
    /// A function.
    Func,
    /// A table.
    Table,
    /// A memory.
    Memory,
    /// A global.
    Global,
}

impl core::fmt::Display for ExternKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ExternKind::Func => "func",
            ExternKind::Table => "table",
            ExternKind::Memory => "memory",
            ExternKind::Global => "global",
        })
    }
}

/// The type of an import.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImportType {
    /// A function of type index `.0`.
    Func(u32),
    /// A table.
    Table(TableType),
    /// A memory.
    Memory(MemoryType),
    /// A global.
    Global(GlobalType),
}

impl ImportType {
    /// The kind of entity imported.
    pub fn kind(&self) -> ExternKind {
        match self {
            ImportType::Func(_) => ExternKind::Func,
            ImportType::Table(_) => ExternKind::Table,
            ImportType::Memory(_) => ExternKind::Memory,
            ImportType::Global(_) => ExternKind::Global,
        }
    }
}

/// An import.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Import {
    /// Module name.
    pub module: String,
    /// Field name.
    pub field: String,
    /// What is imported.
    pub ty: ImportType,
}

/// An export.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Export {
    /// Export name.
    pub name: String,
    /// Kind of entity.
    pub kind: ExternKind,
    /// Index in the kind's index space.
    pub index: u32,
}

/// A byte range in `.text`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeRange {
    /// Offset from the start of `.text`.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

impl CodeRange {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        u64::from(self.offset) + u64::from(self.len)
    }

    /// True if `.text` offset `off` is inside the range.
    pub fn contains(&self, off: u32) -> bool {
        off >= self.offset && u64::from(off) < self.end()
    }
}

/// A function of the function index space, as the compiler describes it.
/// Artifacts carry these as fixed-size records in `.wasmc.funcs` and names
/// in `.wasmc.names`, read in place ([`crate::funcs`]), never in
/// [`ModuleInfo`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FuncInfo {
    /// Type index.
    pub type_index: u32,
    /// Name from the name section.
    pub name: Option<String>,
    /// Machine code, for defined functions; `None` for imports.
    pub code: Option<DefinedFunc>,
}

/// Where a defined function's code is. Its ELF symbol is
/// [`crate::sections::func_symbol`] of its index and name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DefinedFunc {
    /// Code range in `.text`.
    pub range: CodeRange,
    /// Byte offset of the function body in the Wasm module.
    pub wasm_offset: u32,
}

/// A global of the global index space.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GlobalInfo {
    /// Type.
    pub ty: GlobalType,
    /// Initializer, for defined globals; `None` for imports.
    pub init: Option<ConstExpr>,
}

/// How an element segment is used.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ElementMode {
    /// Used by `table.init`.
    Passive,
    /// Only declares functions for `ref.func`; dropped at instantiation.
    Declared,
    /// Copied into `table` at `offset` at instantiation, then dropped.
    Active {
        /// Table index.
        table: u32,
        /// Offset expression (an `i32`).
        offset: ConstExpr,
    },
}

/// The items of an element segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ElementItems {
    /// Function indices.
    Functions(Vec<u32>),
    /// Constant expressions producing references.
    Exprs(Vec<ConstExpr>),
}

impl ElementItems {
    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            ElementItems::Functions(v) => v.len(),
            ElementItems::Exprs(v) => v.len(),
        }
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An element segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ElementSegment {
    /// Mode.
    pub mode: ElementMode,
    /// Element type.
    pub elem_type: RefType,
    /// Items.
    pub items: ElementItems,
}

/// The trampolines compiled for one function type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypeTrampolines {
    /// Host-to-Wasm entry trampoline:
    /// `extern "C" fn(callee_vmctx, caller_vmctx, code, values: *mut [u8; 16])`.
    /// It records its own frame pointer as `last_wasm_entry_fp`, loads the
    /// arguments from `values`, calls `code` with the Wasm ABI and stores the
    /// results back into `values`.
    pub entry: CodeRange,
    /// Wasm-to-host trampoline with the Wasm ABI of this type. It records the
    /// caller's frame pointer and return address as `last_wasm_exit_fp/pc`,
    /// spills the arguments to an array of value slots and calls the host
    /// function `VMHostFuncContext::array_call(callee_vmctx, caller_vmctx,
    /// values, len)`, then loads the results from the same array.
    pub host: CodeRange,
}

/// Everything the loader needs to know about a compiled module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// Module name from the name section.
    pub name: Option<String>,
    /// The type section.
    pub types: Vec<FuncType>,
    /// Trampolines, one per entry of `types`.
    pub trampolines: Vec<TypeTrampolines>,
    /// Imports in section order.
    pub imports: Vec<Import>,
    /// Number of functions in the function index space, imports included.
    /// Their records are in `.wasmc.funcs` ([`crate::funcs::FuncTable`]).
    pub num_funcs: u32,
    /// Number of imported functions (a prefix of the function index space).
    pub num_imported_funcs: u32,
    /// Table index space.
    pub tables: Vec<TableType>,
    /// Number of imported tables.
    pub num_imported_tables: u32,
    /// Memory index space.
    pub memories: Vec<MemoryType>,
    /// Number of imported memories.
    pub num_imported_memories: u32,
    /// Global index space.
    pub globals: Vec<GlobalInfo>,
    /// Number of imported globals.
    pub num_imported_globals: u32,
    /// Exports in section order.
    pub exports: Vec<Export>,
    /// Start function.
    pub start: Option<u32>,
    /// Element segments.
    pub elements: Vec<ElementSegment>,
    /// Number of data segments; their records are in `.wasmc.segments`
    /// ([`crate::segments::SegmentTable`]), read in place.
    pub num_data_segments: u32,
    /// Offset expressions of the active data segments whose offset reads a
    /// global ([`crate::segments::Placement::Expr`] indexes them).
    pub data_offset_exprs: Vec<ConstExpr>,
    /// Memory images, per memory sorted by offset ([`crate::segments`]).
    pub memory_images: Vec<crate::segments::MemoryImage>,
    /// Data segments `[0, image_segments)` are applied by `memory_images`.
    pub image_segments: u32,
    /// Code ranges of the builtin trampolines, indexed by builtin; `None`
    /// (or no entry) for builtins the module never calls. For backtraces and
    /// `inspect`: compiled code reaches its trampolines by direct calls.
    pub builtin_trampolines: Vec<Option<CodeRange>>,
}

fn invalid(detail: String) -> FormatError {
    FormatError::Invalid {
        what: concat!(crate::sections::section_what!(meta), ": module info"),
        detail,
    }
}

impl ModuleInfo {
    /// Number of defined functions.
    pub fn num_defined_funcs(&self) -> u32 {
        self.num_funcs.saturating_sub(self.num_imported_funcs)
    }

    /// The export called `name`.
    pub fn export(&self, name: &str) -> Option<&Export> {
        self.exports.iter().find(|e| e.name == name)
    }

    /// Checks every index and range against the module's own counts, the size
    /// of `.text` (`text_len`) and of `.wasmc.data` (`data_len`), so that the
    /// loader can index without further checks.
    pub fn validate(&self, text_len: u64, data_len: u64) -> Result<(), FormatError> {
        let nt = self.types.len();
        let nf = self.num_funcs as usize;
        // `what` is only formatted on failure: loading must not cost an
        // allocation per type or trampoline.
        let code_ok = |what: &dyn Fn() -> String, r: &CodeRange| {
            if r.end() > text_len {
                Err(invalid(format!(
                    "{}: code range {}+{} exceeds `.text` length {text_len}",
                    what(),
                    r.offset,
                    r.len
                )))
            } else {
                Ok(())
            }
        };
        if self.trampolines.len() != nt {
            return Err(invalid(format!(
                "{} trampoline entries for {nt} types",
                self.trampolines.len()
            )));
        }
        for (i, t) in self.trampolines.iter().enumerate() {
            code_ok(&|| format!("type {i} entry trampoline"), &t.entry)?;
            code_ok(&|| format!("type {i} host trampoline"), &t.host)?;
        }
        if self.builtin_trampolines.len() > crate::builtins::Builtin::COUNT {
            return Err(invalid(format!(
                "{} builtin trampoline entries, at most {}",
                self.builtin_trampolines.len(),
                crate::builtins::Builtin::COUNT
            )));
        }
        for (i, r) in self.builtin_trampolines.iter().enumerate() {
            if let Some(r) = r {
                code_ok(&|| format!("builtin trampoline {i}"), r)?;
            }
        }
        let counts = [
            ("functions", self.num_imported_funcs, nf),
            ("tables", self.num_imported_tables, self.tables.len()),
            ("memories", self.num_imported_memories, self.memories.len()),
            ("globals", self.num_imported_globals, self.globals.len()),
        ];
        for (what, imported, total) in counts {
            if imported as usize > total {
                return Err(invalid(format!("{imported} imported {what} of {total}")));
            }
        }
        let mut imported = [0u32; 4];
        for (i, imp) in self.imports.iter().enumerate() {
            match &imp.ty {
                ImportType::Func(t) => {
                    imported[0] += 1;
                    if *t as usize >= nt {
                        return Err(invalid(format!("import {i}: bad function type {t}")));
                    }
                }
                ImportType::Table(_) => imported[1] += 1,
                ImportType::Memory(_) => imported[2] += 1,
                ImportType::Global(_) => imported[3] += 1,
            }
        }
        let declared = [
            self.num_imported_funcs,
            self.num_imported_tables,
            self.num_imported_memories,
            self.num_imported_globals,
        ];
        if imported != declared {
            return Err(invalid(format!(
                "import counts {imported:?} disagree with {declared:?}"
            )));
        }
        for (i, m) in self.memories.iter().enumerate() {
            if m.shared {
                return Err(invalid(format!(
                    "memory {i}: shared memories are not supported"
                )));
            }
            let limit = m.max_pages_limit();
            if m.min > limit || m.max.is_some_and(|max| max > limit || max < m.min) {
                return Err(invalid(format!(
                    "memory {i}: limits {}..{} pages exceed {limit} pages or are reversed",
                    m.min,
                    m.max
                        .map_or("(no maximum)".to_string(), |max| max.to_string())
                )));
            }
        }
        let ng = self.globals.len();
        let check_expr =
            |what: &str, e: &ConstExpr, max_global: usize| -> Result<(), FormatError> {
                for op in &e.0 {
                    match op {
                        ConstOp::RefFunc(f) if *f as usize >= nf => {
                            return Err(invalid(format!("{what}: ref.func {f} of {nf}")))
                        }
                        ConstOp::GlobalGet(g) if *g as usize >= max_global => {
                            return Err(invalid(format!("{what}: global.get {g} out of range")))
                        }
                        _ => {}
                    }
                }
                if e.0.is_empty() {
                    return Err(invalid(format!("{what}: empty constant expression")));
                }
                Ok(())
            };
        for (i, g) in self.globals.iter().enumerate() {
            match (&g.init, i < self.num_imported_globals as usize) {
                (None, true) => {}
                (Some(e), false) => check_expr(&format!("global {i}"), e, i)?,
                _ => {
                    return Err(invalid(format!(
                        "global {i}: initializer disagrees with imports"
                    )))
                }
            }
        }
        for (i, e) in self.exports.iter().enumerate() {
            let n = match e.kind {
                ExternKind::Func => nf,
                ExternKind::Table => self.tables.len(),
                ExternKind::Memory => self.memories.len(),
                ExternKind::Global => ng,
            };
            if e.index as usize >= n {
                return Err(invalid(format!(
                    "export {i} `{}`: {} index {} of {n}",
                    e.name, e.kind, e.index
                )));
            }
        }
        if let Some(s) = self.start {
            if s as usize >= nf {
                return Err(invalid(format!("start function {s} of {nf}")));
            }
        }
        for (i, seg) in self.elements.iter().enumerate() {
            let what = format!("element segment {i}");
            if let ElementMode::Active { table, offset } = &seg.mode {
                if *table as usize >= self.tables.len() {
                    return Err(invalid(format!("{what}: table {table} out of range")));
                }
                check_expr(&what, offset, ng)?;
            }
            match &seg.items {
                ElementItems::Functions(fs) => {
                    if let Some(f) = fs.iter().find(|f| **f as usize >= nf) {
                        return Err(invalid(format!("{what}: function {f} of {nf}")));
                    }
                }
                ElementItems::Exprs(es) => {
                    for e in es {
                        check_expr(&what, e, ng)?;
                    }
                }
            }
        }
        for (i, e) in self.data_offset_exprs.iter().enumerate() {
            check_expr(&format!("data offset expression {i}"), e, ng)?;
        }
        if self.image_segments > self.num_data_segments {
            return Err(invalid(format!(
                "{} image segments of {} data segments",
                self.image_segments, self.num_data_segments
            )));
        }
        crate::segments::validate_images(
            &self.memory_images,
            &self.memories,
            self.num_imported_memories,
            data_len,
        )?;
        Ok(())
    }
}
