//! [`Val`]: a Wasm value on the host side, and [`Extern`]: an importable or
//! exportable entity. `Val` converts to and from the runtime's `VMVal`
//! (`vm/values.rs`), which resolves functions to store indices; the value
//! slots of the trampolines are the runtime's business.

use crate::error::Error;
use crate::externref::ExternRef;
use crate::func::Func;
use crate::global::Global;
use crate::memory::Memory;
use crate::store::StoreOpaque;
use crate::table::Table;
use crate::vm::values::VMVal;
use wasmc_format::{RefType, ValType};

/// A Wasm value.
#[derive(Clone, Debug)]
pub enum Val {
    /// `i32`
    I32(i32),
    /// `i64`
    I64(i64),
    /// `f32`, as bits
    F32(u32),
    /// `f64`, as bits
    F64(u64),
    /// `v128`
    V128(u128),
    /// `funcref` (`None` = null)
    FuncRef(Option<Func>),
    /// `externref` (`None` = null)
    ExternRef(Option<ExternRef>),
}

impl Val {
    /// The value's type.
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::V128(_) => ValType::V128,
            Val::FuncRef(_) => ValType::FuncRef,
            Val::ExternRef(_) => ValType::ExternRef,
        }
    }

    /// The null reference of `ty`.
    pub fn null(ty: RefType) -> Val {
        match ty {
            RefType::FuncRef => Val::FuncRef(None),
            RefType::ExternRef => Val::ExternRef(None),
        }
    }

    /// The zero value of `ty` (null for references).
    pub fn default_for(ty: ValType) -> Val {
        match ty {
            ValType::I32 => Val::I32(0),
            ValType::I64 => Val::I64(0),
            ValType::F32 => Val::F32(0),
            ValType::F64 => Val::F64(0),
            ValType::V128 => Val::V128(0),
            ValType::FuncRef => Val::FuncRef(None),
            ValType::ExternRef => Val::ExternRef(None),
        }
    }

    /// The `i32`, if this is one.
    pub fn i32(&self) -> Option<i32> {
        match self {
            Val::I32(v) => Some(*v),
            _ => None,
        }
    }

    /// The `i64`, if this is one.
    pub fn i64(&self) -> Option<i64> {
        match self {
            Val::I64(v) => Some(*v),
            _ => None,
        }
    }

    /// The `f32`, if this is one.
    pub fn f32(&self) -> Option<f32> {
        match self {
            Val::F32(v) => Some(f32::from_bits(*v)),
            _ => None,
        }
    }

    /// The `f64`, if this is one.
    pub fn f64(&self) -> Option<f64> {
        match self {
            Val::F64(v) => Some(f64::from_bits(*v)),
            _ => None,
        }
    }

    /// The externref, if this is one.
    pub fn externref(&self) -> Option<Option<&ExternRef>> {
        match self {
            Val::ExternRef(v) => Some(v.as_ref()),
            _ => None,
        }
    }

    /// The funcref, if this is one.
    pub fn funcref(&self) -> Option<Option<&Func>> {
        match self {
            Val::FuncRef(v) => Some(v.as_ref()),
            _ => None,
        }
    }

    /// Checks that a function reference belongs to `store`: a value of
    /// another store given to this one (as an argument, a result, a table
    /// element or a global's value) is an error naming `what`, as in
    /// Wasmtime, not the panic that using a handle with another store is.
    /// Externrefs belong to no store.
    pub(crate) fn check_store(&self, store: &StoreOpaque, what: &str) -> Result<(), Error> {
        if self.belongs_to(store) {
            Ok(())
        } else {
            Err(foreign_value(what))
        }
    }

    /// Whether the value may be given to `store` ([`Val::check_store`]
    /// without an error to build).
    #[inline]
    pub(crate) fn belongs_to(&self, store: &StoreOpaque) -> bool {
        !matches!(self, Val::FuncRef(Some(f)) if f.0.store_id != store.id)
    }

    /// The runtime's view of this value: a function becomes its index in
    /// `store` (panics if it belongs to another store: callers check with
    /// [`Val::check_store`] first), an externref a new count on the same
    /// value.
    pub(crate) fn to_vm(&self, store: &StoreOpaque) -> VMVal {
        match self {
            Val::I32(v) => VMVal::I32(*v),
            Val::I64(v) => VMVal::I64(*v),
            Val::F32(v) => VMVal::F32(*v),
            Val::F64(v) => VMVal::F64(*v),
            Val::V128(v) => VMVal::V128(*v),
            Val::FuncRef(f) => VMVal::FuncRef(f.map(|f| store.check(f.0, "function"))),
            Val::ExternRef(r) => VMVal::ExternRef(r.as_ref().map(|r| r.0.clone())),
        }
    }

    /// The host's view of a runtime value of `store`.
    pub(crate) fn from_vm(store: &StoreOpaque, v: VMVal) -> Val {
        match v {
            VMVal::I32(v) => Val::I32(v),
            VMVal::I64(v) => Val::I64(v),
            VMVal::F32(v) => Val::F32(v),
            VMVal::F64(v) => Val::F64(v),
            VMVal::V128(v) => Val::V128(v),
            VMVal::FuncRef(f) => Val::FuncRef(f.map(|i| Func(store.stored(i)))),
            VMVal::ExternRef(r) => Val::ExternRef(r.map(ExternRef)),
        }
    }
}

/// The error for a function reference of another store given as `what`.
pub(crate) fn foreign_value(what: &str) -> Error {
    Error::msg(format!(
        "{what}: a function of another store (values cannot cross stores)"
    ))
}

impl From<i32> for Val {
    fn from(v: i32) -> Val {
        Val::I32(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I64(v)
    }
}
impl From<f32> for Val {
    fn from(v: f32) -> Val {
        Val::F32(v.to_bits())
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::F64(v.to_bits())
    }
}
impl From<Option<ExternRef>> for Val {
    fn from(v: Option<ExternRef>) -> Val {
        Val::ExternRef(v)
    }
}

/// Something a module can import or export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extern {
    /// A function.
    Func(Func),
    /// A table.
    Table(Table),
    /// A linear memory.
    Memory(Memory),
    /// A global.
    Global(Global),
}

impl Extern {
    /// The function, if this is one.
    pub fn into_func(self) -> Option<Func> {
        match self {
            Extern::Func(f) => Some(f),
            _ => None,
        }
    }
    /// The table, if this is one.
    pub fn into_table(self) -> Option<Table> {
        match self {
            Extern::Table(t) => Some(t),
            _ => None,
        }
    }
    /// The memory, if this is one.
    pub fn into_memory(self) -> Option<Memory> {
        match self {
            Extern::Memory(m) => Some(m),
            _ => None,
        }
    }
    /// The global, if this is one.
    pub fn into_global(self) -> Option<Global> {
        match self {
            Extern::Global(g) => Some(g),
            _ => None,
        }
    }
    /// Kind name (`func`, `table`, `memory`, `global`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Extern::Func(_) => "func",
            Extern::Table(_) => "table",
            Extern::Memory(_) => "memory",
            Extern::Global(_) => "global",
        }
    }
}

impl From<Func> for Extern {
    fn from(f: Func) -> Extern {
        Extern::Func(f)
    }
}
impl From<Table> for Extern {
    fn from(t: Table) -> Extern {
        Extern::Table(t)
    }
}
impl From<Memory> for Extern {
    fn from(m: Memory) -> Extern {
        Extern::Memory(m)
    }
}
impl From<Global> for Extern {
    fn from(g: Global) -> Extern {
        Extern::Global(g)
    }
}
