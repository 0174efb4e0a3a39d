//! Wasm types as the public API names them: [`FuncType`], [`ValType`],
//! [`RefType`], [`TableType`], [`MemoryType`], [`GlobalType`] (defined in
//! `wasmc-format`, shared with the compiler). Canonical type ids live in
//! `vm::types`.

pub use wasmc_format::{FuncType, GlobalType, MemoryType, RefType, TableType, ValType};
