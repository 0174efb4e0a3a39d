//! The module-level parts of the report, from `ModuleInfo`: types, imports,
//! exports, tables, memories, globals, data and element segments.

use super::count;
use super::schema::{
    DataSegmentReport, ElementSegmentReport, ExportReport, GlobalReport, ImportReport,
    MemoryImageReport, MemoryReport, TableReport, TypeReport,
};
use wasmc_format::segments::{Placement, SegmentTable};
use wasmc_format::{ConstExpr, ConstOp, ElementItems, ElementMode, ImportType, ModuleInfo};

/// `i32.const 16`, `global.get 0 i32.const 4 i32.add`.
pub(super) fn const_expr_text(e: &ConstExpr) -> String {
    e.0.iter()
        .map(|op| match op {
            ConstOp::I32Const(v) => format!("i32.const {v}"),
            ConstOp::I64Const(v) => format!("i64.const {v}"),
            ConstOp::F32Const(b) => format!("f32.const {}", f32::from_bits(*b)),
            ConstOp::F64Const(b) => format!("f64.const {}", f64::from_bits(*b)),
            ConstOp::V128Const(v) => format!("v128.const i64x2 {:#x} {:#x}", *v as u64, v >> 64),
            ConstOp::RefNull(t) => format!("ref.null {t}"),
            ConstOp::RefFunc(f) => format!("ref.func {f}"),
            ConstOp::GlobalGet(g) => format!("global.get {g}"),
            ConstOp::I32Add => "i32.add".to_string(),
            ConstOp::I32Sub => "i32.sub".to_string(),
            ConstOp::I32Mul => "i32.mul".to_string(),
            ConstOp::I64Add => "i64.add".to_string(),
            ConstOp::I64Sub => "i64.sub".to_string(),
            ConstOp::I64Mul => "i64.mul".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn limits(min: impl std::fmt::Display, max: Option<impl std::fmt::Display>) -> String {
    match max {
        Some(m) => format!("{min}..{m}"),
        None => format!("{min}.."),
    }
}

fn import_type_text(info: &ModuleInfo, ty: &ImportType) -> String {
    match ty {
        ImportType::Func(t) => match info.types.get(*t as usize) {
            Some(ft) => format!("type {t} {ft}"),
            None => format!("type {t}"),
        },
        ImportType::Table(t) => format!(
            "{}{} {}",
            if t.table64 { "i64 " } else { "" },
            t.elem,
            limits(t.min, t.max)
        ),
        ImportType::Memory(m) => format!(
            "{}{} pages",
            if m.memory64 { "i64 " } else { "" },
            limits(m.min, m.max)
        ),
        ImportType::Global(g) => {
            if g.mutable {
                format!("mut {}", g.ty)
            } else {
                g.ty.to_string()
            }
        }
    }
}

/// Whether entry `i` of an index space whose first `n` entries are imports
/// is imported.
fn imported(n: u32, i: usize) -> bool {
    (i as u64) < u64::from(n)
}

/// The type section.
pub(super) fn types(info: &ModuleInfo) -> Vec<TypeReport> {
    info.types
        .iter()
        .enumerate()
        .map(|(i, t)| TypeReport {
            index: count(i),
            params: t.params.iter().map(|v| v.to_string()).collect(),
            results: t.results.iter().map(|v| v.to_string()).collect(),
            signature: t.to_string(),
        })
        .collect()
}

/// Imports, in section order.
pub(super) fn imports(info: &ModuleInfo) -> Vec<ImportReport> {
    info.imports
        .iter()
        .enumerate()
        .map(|(i, imp)| ImportReport {
            index: count(i),
            module: imp.module.clone(),
            field: imp.field.clone(),
            kind: imp.ty.kind().to_string(),
            ty: import_type_text(info, &imp.ty),
        })
        .collect()
}

/// Exports, in section order.
pub(super) fn exports(info: &ModuleInfo) -> Vec<ExportReport> {
    info.exports
        .iter()
        .map(|e| ExportReport {
            name: e.name.clone(),
            kind: e.kind.to_string(),
            index: e.index,
        })
        .collect()
}

/// Tables.
pub(super) fn tables(info: &ModuleInfo) -> Vec<TableReport> {
    info.tables
        .iter()
        .enumerate()
        .map(|(i, t)| TableReport {
            index: count(i),
            imported: imported(info.num_imported_tables, i),
            elem_type: t.elem.to_string(),
            min: t.min,
            max: t.max,
            index_type: if t.table64 { "i64" } else { "i32" },
        })
        .collect()
}

/// Memories.
pub(super) fn memories(info: &ModuleInfo) -> Vec<MemoryReport> {
    info.memories
        .iter()
        .enumerate()
        .map(|(i, m)| MemoryReport {
            index: count(i),
            imported: imported(info.num_imported_memories, i),
            min_pages: m.min,
            max_pages: m.max,
            index_type: if m.memory64 { "i64" } else { "i32" },
        })
        .collect()
}

/// Globals.
pub(super) fn globals(info: &ModuleInfo) -> Vec<GlobalReport> {
    info.globals
        .iter()
        .enumerate()
        .map(|(i, g)| GlobalReport {
            index: count(i),
            imported: imported(info.num_imported_globals, i),
            ty: g.ty.ty.to_string(),
            mutable: g.ty.mutable,
            init: g.init.as_ref().map(const_expr_text),
        })
        .collect()
}

/// Data segments, from their records (a record that does not read is
/// reported with kind `invalid` and its error).
pub(super) fn data_segments(info: &ModuleInfo, table: &SegmentTable<'_>) -> Vec<DataSegmentReport> {
    // Why the segments after the image prefix are copied: the first one
    // decides (an offset that reads a global, an imported memory, or out of
    // bounds of the initial memory).
    let mut why_copied = "after the image prefix";
    (0..table.len())
        .map(|i| {
            let r = match table.get(i) {
                Ok(r) => r,
                Err(e) => {
                    return DataSegmentReport {
                        index: i,
                        kind: "invalid".into(),
                        memory: None,
                        offset_expr: Some(e.to_string()),
                        data_offset: 0,
                        size: None,
                        init: None,
                    }
                }
            };
            let imported = r.memory < info.num_imported_memories;
            let (kind, offset_expr, init) = match r.placement {
                Placement::Passive => ("passive", None, None),
                Placement::Image => ("active", None, Some("image")),
                Placement::Const(o) => {
                    if i == info.image_segments {
                        why_copied = if imported {
                            "copy: imported memory"
                        } else {
                            "copy: out of bounds of the initial memory"
                        };
                    }
                    (
                        "active",
                        Some(format!("i32.const {o}")),
                        Some(if i == info.image_segments {
                            why_copied
                        } else {
                            "copy"
                        }),
                    )
                }
                Placement::Expr(e) => {
                    if i == info.image_segments {
                        why_copied = "copy: offset reads a global";
                    }
                    let text = info
                        .data_offset_exprs
                        .get(e as usize)
                        .map(const_expr_text)
                        .unwrap_or_else(|| format!("<expression {e}>"));
                    ("active", Some(text), Some("copy: offset reads a global"))
                }
            };
            DataSegmentReport {
                index: i,
                kind: kind.into(),
                memory: (r.is_active() && r.placement != Placement::Image).then_some(r.memory),
                offset_expr,
                data_offset: r.data_offset,
                // An image segment's length is not stored.
                size: (r.placement != Placement::Image).then_some(r.len),
                init: init.map(str::to_string),
            }
        })
        .collect()
}

/// Memory images.
pub(super) fn memory_images(info: &ModuleInfo) -> Vec<MemoryImageReport> {
    info.memory_images
        .iter()
        .map(|m| MemoryImageReport {
            memory: m.memory,
            memory_offset: m.memory_offset,
            data_offset: m.data_offset,
            size: m.len,
        })
        .collect()
}

/// Element segments.
pub(super) fn element_segments(info: &ModuleInfo) -> Vec<ElementSegmentReport> {
    info.elements
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (kind, table, offset_expr) = match &e.mode {
                ElementMode::Passive => ("passive", None, None),
                ElementMode::Declared => ("declared", None, None),
                ElementMode::Active { table, offset } => {
                    ("active", Some(*table), Some(const_expr_text(offset)))
                }
            };
            ElementSegmentReport {
                index: count(i),
                kind: kind.into(),
                table,
                offset_expr,
                elem_type: e.elem_type.to_string(),
                size: count(e.items.len()),
                functions: match &e.items {
                    ElementItems::Functions(f) => Some(f.clone()),
                    ElementItems::Exprs(_) => None,
                },
            }
        })
        .collect()
}
