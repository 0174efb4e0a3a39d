//! [`Val`]: a Wasm value on the host side, and [`Extern`]: an importable or
//! exportable entity. Conversions to and from the 16-byte value slots that
//! trampolines use live here.

use crate::error::Error;
use crate::externref::ExternRef;
use crate::func::Func;
use crate::global::Global;
use crate::memory::Memory;
use crate::store::StoreOpaque;
use crate::table::Table;
use crate::vmcontext::ValRaw;
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

    /// The raw slot value, borrowing references (no count is taken).
    pub(crate) fn to_raw_borrowed(&self, store: &mut StoreOpaque) -> Result<ValRaw, Error> {
        Ok(match self {
            Val::I32(v) => ValRaw::from_u64(*v as u32 as u64),
            Val::I64(v) => ValRaw::from_u64(*v as u64),
            Val::F32(v) => ValRaw::from_u64(u64::from(*v)),
            Val::F64(v) => ValRaw::from_u64(*v),
            Val::V128(v) => ValRaw::from_u128(*v),
            Val::FuncRef(None) | Val::ExternRef(None) => ValRaw::default(),
            Val::FuncRef(Some(f)) => ValRaw::from_u64(f.func_ref_ptr(store) as usize as u64),
            Val::ExternRef(Some(r)) => ValRaw::from_u64(r.as_raw() as usize as u64),
        })
    }

    /// The raw slot value for passing into Wasm: externrefs are inserted into
    /// the activations table, which keeps them alive while Wasm runs.
    pub(crate) fn to_raw_for_wasm(&self, store: &mut StoreOpaque) -> Result<ValRaw, Error> {
        if let Val::ExternRef(Some(r)) = self {
            // SAFETY: r is a live reference.
            unsafe { store.activations.insert(r.as_raw()) };
        }
        self.to_raw_borrowed(store)
    }

    /// A raw table element of type `elem` (borrowed).
    pub(crate) fn to_table_raw(
        &self,
        store: &mut StoreOpaque,
        elem: RefType,
    ) -> Result<*mut u8, Error> {
        if self.ty() != elem.val_type() {
            return Err(Error::mismatch("table element", elem, self.ty()));
        }
        Ok(self.to_raw_borrowed(store)?.get_ptr())
    }

    /// Reads a value of type `ty` from a raw slot; externrefs are cloned.
    ///
    /// # Safety
    /// `raw` must hold a live value of type `ty` belonging to `store`.
    pub(crate) unsafe fn from_raw(store: &StoreOpaque, raw: ValRaw, ty: ValType) -> Val {
        match ty {
            ValType::I32 => Val::I32(raw.get_u32() as i32),
            ValType::I64 => Val::I64(raw.get_u64() as i64),
            ValType::F32 => Val::F32(raw.get_u32()),
            ValType::F64 => Val::F64(raw.get_u64()),
            ValType::V128 => Val::V128(raw.get_u128()),
            ValType::FuncRef => Val::FuncRef(Func::from_func_ref(store, raw.get_ptr())),
            ValType::ExternRef => {
                // SAFETY: caller contract: raw holds a live externref or null.
                let r = unsafe { ExternRef::clone_from_raw(raw.get_ptr().cast()) };
                Val::ExternRef(r)
            }
        }
    }

    /// Reads a table element.
    ///
    /// # Safety
    /// As for [`Self::from_raw`].
    pub(crate) unsafe fn from_table_raw(store: &StoreOpaque, raw: *mut u8, elem: RefType) -> Val {
        // SAFETY: forwarded.
        unsafe {
            Val::from_raw(
                store,
                ValRaw::from_u64(raw as usize as u64),
                elem.val_type(),
            )
        }
    }
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
