//! Module translation: validates a Wasm binary with wasmparser and builds the
//! [`ModuleInfo`] the artifact carries, plus the function bodies to compile.
//!
//! Function bodies are handed to cranelift-wasm one at a time (see
//! `func_environ.rs`); everything else (types, imports, element and data
//! segments with arbitrary constant expressions, names) is parsed here, because
//! cranelift-wasm's own module parser does not support expression-based element
//! segments.

use crate::features::{self, val_type_feature};
use crate::CompileError;
use wasmc_format::segments::{layout_data, DataLayout, SegmentSource};
use wasmc_format::{
    ConstExpr, ConstOp, ElementItems, ElementMode, ElementSegment, Export, ExternKind, FuncInfo,
    FuncType, GlobalInfo, GlobalType, Import, ImportType, MemoryType, ModuleInfo, RefType,
    TableType, ValType, WasmFeatures,
};
use wasmparser::{
    FuncToValidate, FunctionBody, KnownCustom, Name, Operator, Parser, Payload, TypeRef,
    ValidPayload, Validator, ValidatorResources,
};

/// A function body waiting to be compiled.
pub struct FunctionToCompile<'data> {
    /// Index in the function index space.
    pub index: u32,
    /// Its validator (validation happens during translation).
    pub validator: FuncToValidate<ValidatorResources>,
    /// The body.
    pub body: FunctionBody<'data>,
}

/// The result of translating a module's non-code sections.
pub struct Translation<'data> {
    /// Metadata; trampolines are filled in after compilation.
    pub info: ModuleInfo,
    /// The function index space (imports first); code ranges are filled in
    /// after compilation.
    pub funcs: Vec<FuncInfo>,
    /// Bodies of the defined functions, in index order.
    pub functions: Vec<FunctionToCompile<'data>>,
    /// `.wasmc.segments` and `.wasmc.data` (memory images and segment
    /// bytes); the matching `info` fields are filled in.
    pub data: DataLayout,
    /// Features the module's types, imports, definitions and segments use
    /// (function bodies are scanned when they are compiled).
    pub features: WasmFeatures,
}

fn invalid(e: wasmparser::BinaryReaderError) -> CompileError {
    CompileError::Invalid {
        offset: e.offset(),
        message: e.message().to_string(),
    }
}

fn unsupported(msg: impl Into<String>) -> CompileError {
    CompileError::Unsupported(msg.into())
}

pub(crate) fn val_type(t: wasmparser::ValType) -> Result<ValType, CompileError> {
    Ok(match t {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(r) => ref_type(r)?.val_type(),
    })
}

fn ref_type(r: wasmparser::RefType) -> Result<RefType, CompileError> {
    if r == wasmparser::RefType::FUNCREF {
        Ok(RefType::FuncRef)
    } else if r == wasmparser::RefType::EXTERNREF {
        Ok(RefType::ExternRef)
    } else {
        Err(unsupported(format!("reference type {r:?}")))
    }
}

fn table_type(t: &wasmparser::TableType) -> Result<TableType, CompileError> {
    if t.shared {
        return Err(unsupported("shared tables"));
    }
    // 32-bit tables have 32-bit limits (validated); a 64-bit table cannot
    // start with 2^32 elements in any runtime. Its maximum is kept as
    // declared: it can never be reached, but import matching compares it.
    let min = u32::try_from(t.initial).map_err(|_| {
        unsupported(format!(
            "a table of {} initial elements (at most 2^32 - 1)",
            t.initial
        ))
    })?;
    Ok(TableType {
        elem: ref_type(t.element_type)?,
        min,
        max: t.maximum,
        table64: t.table64,
    })
}

fn memory_type(m: &wasmparser::MemoryType) -> Result<MemoryType, CompileError> {
    if m.shared || m.page_size_log2.is_some() {
        return Err(unsupported("shared memories or custom page sizes"));
    }
    Ok(MemoryType {
        min: m.initial,
        max: m.maximum,
        memory64: m.memory64,
        shared: false,
    })
}

fn global_type(g: &wasmparser::GlobalType) -> Result<GlobalType, CompileError> {
    Ok(GlobalType {
        ty: val_type(g.content_type)?,
        mutable: g.mutable,
    })
}

fn const_expr(
    e: &wasmparser::ConstExpr<'_>,
    used: &mut WasmFeatures,
) -> Result<ConstExpr, CompileError> {
    let mut ops = Vec::new();
    let mut reader = e.get_operators_reader();
    loop {
        let op = reader.read().map_err(invalid)?;
        // `ref.null` and `ref.func` are reference types' operators.
        if matches!(op, Operator::RefNull { .. } | Operator::RefFunc { .. }) {
            used.set(WasmFeatures::REFERENCE_TYPES, true);
        }
        ops.push(match op {
            Operator::End => break,
            Operator::I32Const { value } => ConstOp::I32Const(value),
            Operator::I64Const { value } => ConstOp::I64Const(value),
            Operator::F32Const { value } => ConstOp::F32Const(value.bits()),
            Operator::F64Const { value } => ConstOp::F64Const(value.bits()),
            Operator::V128Const { value } => {
                ConstOp::V128Const(u128::from_le_bytes(*value.bytes()))
            }
            Operator::RefNull { hty } => ConstOp::RefNull(match hty {
                wasmparser::HeapType::Abstract {
                    ty: wasmparser::AbstractHeapType::Func,
                    ..
                } => RefType::FuncRef,
                wasmparser::HeapType::Abstract {
                    ty: wasmparser::AbstractHeapType::Extern,
                    ..
                } => RefType::ExternRef,
                other => return Err(unsupported(format!("ref.null {other:?}"))),
            }),
            Operator::RefFunc { function_index } => ConstOp::RefFunc(function_index),
            Operator::GlobalGet { global_index } => ConstOp::GlobalGet(global_index),
            Operator::I32Add => ConstOp::I32Add,
            Operator::I32Sub => ConstOp::I32Sub,
            Operator::I32Mul => ConstOp::I32Mul,
            Operator::I64Add => ConstOp::I64Add,
            Operator::I64Sub => ConstOp::I64Sub,
            Operator::I64Mul => ConstOp::I64Mul,
            other => {
                return Err(unsupported(format!(
                    "constant expression operator {other:?}"
                )))
            }
        });
    }
    if ops.iter().any(|op| {
        matches!(
            op,
            ConstOp::I32Add
                | ConstOp::I32Sub
                | ConstOp::I32Mul
                | ConstOp::I64Add
                | ConstOp::I64Sub
                | ConstOp::I64Mul
        )
    }) {
        used.set(WasmFeatures::EXTENDED_CONST, true);
    }
    Ok(ConstExpr(ops))
}

/// Validates `wasm` with the features of `requested` that wasmc implements
/// and parses everything but the function bodies.
pub fn translate(wasm: &[u8], requested: WasmFeatures) -> Result<Translation<'_>, CompileError> {
    let enabled = features::effective(requested);
    let mut validator = Validator::new_with_features(features::validator_features(enabled));
    // wasmparser 0.217 lets some constructs of 2.0's bulk memory and
    // reference types through with the feature off (the data count
    // section, passive data segments and element expressions without bulk
    // memory, declarative element segments without reference types):
    // refuse them here, or the header would record a feature the options
    // turned off.
    let require = |f: WasmFeatures, offset: usize| -> Result<(), CompileError> {
        if enabled.contains(f) {
            return Ok(());
        }
        Err(CompileError::Disabled {
            feature: f.names().concat(),
            offset,
        })
    };
    let mut used = WasmFeatures::EMPTY;
    let mut info = ModuleInfo::default();
    let mut functions = Vec::new();
    let mut funcs: Vec<FuncInfo> = Vec::new();
    let mut data: Vec<SegmentSource<'_>> = Vec::new();
    let mut names: Vec<(u32, String)> = Vec::new();

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        if let ValidPayload::Func(validator, body) = validator.payload(&payload).map_err(invalid)? {
            let index = info.num_imported_funcs + functions.len() as u32;
            functions.push(FunctionToCompile {
                index,
                validator,
                body,
            });
        }
        match payload {
            Payload::TypeSection(types) => {
                for ty in types.into_iter_err_on_gc_types() {
                    let ty = ty.map_err(invalid)?;
                    for t in ty.params().iter().chain(ty.results()) {
                        used = used.union(val_type_feature(*t));
                    }
                    if ty.results().len() > 1 {
                        used.set(WasmFeatures::MULTI_VALUE, true);
                    }
                    info.types.push(FuncType {
                        params: ty
                            .params()
                            .iter()
                            .map(|t| val_type(*t))
                            .collect::<Result<_, _>>()?,
                        results: ty
                            .results()
                            .iter()
                            .map(|t| val_type(*t))
                            .collect::<Result<_, _>>()?,
                    });
                }
            }
            Payload::ImportSection(imports) => {
                for imp in imports {
                    let imp = imp.map_err(invalid)?;
                    let ty = match imp.ty {
                        TypeRef::Func(t) => {
                            funcs.push(FuncInfo {
                                type_index: t,
                                name: None,
                                code: None,
                            });
                            info.num_imported_funcs += 1;
                            ImportType::Func(t)
                        }
                        TypeRef::Table(t) => {
                            used = used.union(table_type_feature(&t));
                            let t = table_type(&t)?;
                            info.tables.push(t);
                            info.num_imported_tables += 1;
                            ImportType::Table(t)
                        }
                        TypeRef::Memory(m) => {
                            used = used.union(memory_type_feature(&m));
                            let m = memory_type(&m)?;
                            info.memories.push(m);
                            info.num_imported_memories += 1;
                            ImportType::Memory(m)
                        }
                        TypeRef::Global(g) => {
                            used = used.union(global_type_feature(&g));
                            let g = global_type(&g)?;
                            info.globals.push(GlobalInfo { ty: g, init: None });
                            info.num_imported_globals += 1;
                            ImportType::Global(g)
                        }
                        TypeRef::Tag(_) => return Err(unsupported("exception tags")),
                    };
                    info.imports.push(Import {
                        module: imp.module.to_string(),
                        field: imp.name.to_string(),
                        ty,
                    });
                }
            }
            Payload::FunctionSection(section) => {
                for f in section {
                    funcs.push(FuncInfo {
                        type_index: f.map_err(invalid)?,
                        name: None,
                        code: None,
                    });
                }
            }
            Payload::TableSection(tables) => {
                for t in tables {
                    let t = t.map_err(invalid)?;
                    if let wasmparser::TableInit::Expr(_) = t.init {
                        return Err(unsupported("table initializer expressions"));
                    }
                    used = used.union(table_type_feature(&t.ty));
                    info.tables.push(table_type(&t.ty)?);
                }
            }
            Payload::MemorySection(mems) => {
                for m in mems {
                    let m = m.map_err(invalid)?;
                    used = used.union(memory_type_feature(&m));
                    info.memories.push(memory_type(&m)?);
                }
            }
            Payload::GlobalSection(globals) => {
                for g in globals {
                    let g = g.map_err(invalid)?;
                    used = used.union(val_type_feature(g.ty.content_type));
                    info.globals.push(GlobalInfo {
                        ty: global_type(&g.ty)?,
                        init: Some(const_expr(&g.init_expr, &mut used)?),
                    });
                }
            }
            Payload::ExportSection(exports) => {
                for e in exports {
                    let e = e.map_err(invalid)?;
                    let kind = match e.kind {
                        wasmparser::ExternalKind::Func => ExternKind::Func,
                        wasmparser::ExternalKind::Table => ExternKind::Table,
                        wasmparser::ExternalKind::Memory => ExternKind::Memory,
                        wasmparser::ExternalKind::Global => {
                            if info
                                .globals
                                .get(e.index as usize)
                                .is_some_and(|g| g.ty.mutable)
                            {
                                used.set(WasmFeatures::MUTABLE_GLOBAL, true);
                            }
                            ExternKind::Global
                        }
                        wasmparser::ExternalKind::Tag => return Err(unsupported("exception tags")),
                    };
                    info.exports.push(Export {
                        name: e.name.to_string(),
                        kind,
                        index: e.index,
                    });
                }
            }
            Payload::StartSection { func, .. } => info.start = Some(func),
            Payload::DataCountSection { range, .. } => {
                require(WasmFeatures::BULK_MEMORY, range.start)?;
                used.set(WasmFeatures::BULK_MEMORY, true)
            }
            Payload::ElementSection(elems) => {
                for e in elems {
                    let e = e.map_err(invalid)?;
                    let mode = match e.kind {
                        wasmparser::ElementKind::Passive => {
                            used.set(WasmFeatures::BULK_MEMORY, true);
                            ElementMode::Passive
                        }
                        wasmparser::ElementKind::Declared => {
                            // The validator wants bulk memory for these;
                            // they came with reference types.
                            require(WasmFeatures::REFERENCE_TYPES, e.range.start)?;
                            used.set(WasmFeatures::BULK_MEMORY, true);
                            used.set(WasmFeatures::REFERENCE_TYPES, true);
                            ElementMode::Declared
                        }
                        wasmparser::ElementKind::Active {
                            table_index,
                            offset_expr,
                        } => {
                            if table_index.unwrap_or(0) != 0 {
                                used.set(WasmFeatures::REFERENCE_TYPES, true);
                            }
                            ElementMode::Active {
                                table: table_index.unwrap_or(0),
                                offset: const_expr(&offset_expr, &mut used)?,
                            }
                        }
                    };
                    let (elem_type, items) = match e.items {
                        wasmparser::ElementItems::Functions(r) => (
                            RefType::FuncRef,
                            ElementItems::Functions(
                                r.into_iter().collect::<Result<_, _>>().map_err(invalid)?,
                            ),
                        ),
                        wasmparser::ElementItems::Expressions(rt, r) => {
                            // The encoding came with bulk memory; the
                            // validator wants reference types for its
                            // element type (funcref too).
                            require(WasmFeatures::BULK_MEMORY, e.range.start)?;
                            used.set(WasmFeatures::BULK_MEMORY, true);
                            used.set(WasmFeatures::REFERENCE_TYPES, true);
                            let mut exprs = Vec::new();
                            for ex in r {
                                exprs.push(const_expr(&ex.map_err(invalid)?, &mut used)?);
                            }
                            (ref_type(rt)?, ElementItems::Exprs(exprs))
                        }
                    };
                    info.elements.push(ElementSegment {
                        mode,
                        elem_type,
                        items,
                    });
                }
            }
            Payload::DataSection(segs) => {
                for d in segs {
                    let d = d.map_err(invalid)?;
                    let active = match d.kind {
                        wasmparser::DataKind::Passive => {
                            require(WasmFeatures::BULK_MEMORY, d.range.start)?;
                            used.set(WasmFeatures::BULK_MEMORY, true);
                            None
                        }
                        wasmparser::DataKind::Active {
                            memory_index,
                            offset_expr,
                        } => Some((memory_index, const_expr(&offset_expr, &mut used)?)),
                    };
                    data.push(SegmentSource {
                        active,
                        bytes: d.data,
                    });
                }
            }
            Payload::CustomSection(c) => {
                // A malformed name section is not an error in Wasm: names are
                // best effort, so stop reading at the first bad entry.
                if let KnownCustom::Name(reader) = c.as_known() {
                    for n in reader.into_iter().map_while(Result::ok) {
                        match n {
                            Name::Module { name, .. } => info.name = Some(name.to_string()),
                            Name::Function(map) => {
                                for naming in map.into_iter().map_while(Result::ok) {
                                    names.push((naming.index, naming.name.to_string()));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for (index, name) in names {
        if let Some(f) = funcs.get_mut(index as usize) {
            f.name = Some(name);
        }
    }
    if info.memories.len() > 1 {
        used.set(WasmFeatures::MULTI_MEMORY, true);
    }
    if info.tables.len() > 1 {
        used.set(WasmFeatures::REFERENCE_TYPES, true);
    }
    info.num_funcs = u32::try_from(funcs.len())
        .map_err(|_| CompileError::Unsupported("more than 2^32 functions".into()))?;
    info.num_data_segments =
        u32::try_from(data.len()).map_err(|_| unsupported("more than 2^32 data segments"))?;
    let data = layout_data(&data, &info.memories, info.num_imported_memories, true)
        .map_err(unsupported)?;
    info.data_offset_exprs = data.offset_exprs.clone();
    info.memory_images = data.images.clone();
    info.image_segments = data.image_segments;
    Ok(Translation {
        info,
        funcs,
        functions,
        data,
        features: used,
    })
}

fn global_type_feature(g: &wasmparser::GlobalType) -> WasmFeatures {
    let mut f = val_type_feature(g.content_type);
    if g.mutable {
        f.set(WasmFeatures::MUTABLE_GLOBAL, true);
    }
    f
}

fn table_type_feature(t: &wasmparser::TableType) -> WasmFeatures {
    let mut f = WasmFeatures::EMPTY;
    if t.element_type != wasmparser::RefType::FUNCREF {
        f.set(WasmFeatures::REFERENCE_TYPES, true);
    }
    if t.table64 {
        f.set(WasmFeatures::MEMORY64, true);
    }
    f
}

fn memory_type_feature(m: &wasmparser::MemoryType) -> WasmFeatures {
    let mut f = WasmFeatures::EMPTY;
    if m.memory64 {
        f.set(WasmFeatures::MEMORY64, true);
    }
    f
}
