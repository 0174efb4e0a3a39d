//! Wasm types as the public API names them: [`FuncType`], [`ValType`],
//! [`RefType`], [`TableType`], [`MemoryType`], [`GlobalType`] (defined in
//! `wasmc-format`, shared with the compiler), and the descriptors of a
//! module's imports and exports ([`ExternType`], [`ImportType`],
//! [`ExportType`]). Canonical type ids live in `vm::types`.

use std::fmt;
pub use wasmc_format::{FuncType, GlobalType, MemoryType, RefType, TableType, ValType};

/// The type of an importable or exportable entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternType {
    /// A function.
    Func(FuncType),
    /// A table.
    Table(TableType),
    /// A linear memory.
    Memory(MemoryType),
    /// A global.
    Global(GlobalType),
}

impl ExternType {
    /// The function type, if this is a function.
    pub fn func(&self) -> Option<&FuncType> {
        match self {
            ExternType::Func(f) => Some(f),
            _ => None,
        }
    }

    /// "function", "table", "memory" or "global".
    pub fn kind(&self) -> &'static str {
        match self {
            ExternType::Func(_) => "function",
            ExternType::Table(_) => "table",
            ExternType::Memory(_) => "memory",
            ExternType::Global(_) => "global",
        }
    }
}

impl fmt::Display for ExternType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternType::Func(t) => write!(f, "function {t}"),
            ExternType::Table(t) => write!(f, "table {t:?}"),
            ExternType::Memory(t) => write!(f, "memory {t:?}"),
            ExternType::Global(t) => write!(f, "global {t:?}"),
        }
    }
}

/// An import of a module: `module::name` of type `ty`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportType {
    /// The import's module name.
    pub module: String,
    /// The import's field name.
    pub name: String,
    /// What must be provided.
    pub ty: ExternType,
}

/// An export of a module: `name` of type `ty`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportType {
    /// The export's name.
    pub name: String,
    /// What is exported.
    pub ty: ExternType,
}
