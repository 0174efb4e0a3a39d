//! Values crossing between the API layer and the runtime.
//!
//! - [`VMVal`]: a value with its references resolved for the runtime: a
//!   funcref is a function *index* of the store (checked when used, never a
//!   pointer the API made up), an externref an owned [`VMExternRef`]. The
//!   public `Val` converts to and from it without unsafe code.
//! - [`ValReader`] / [`ValWriter`]: typed access to the 16-byte value slots
//!   of the entry and host trampolines. They know each slot's type, so a
//!   reference is only ever read from a slot that holds one, and only a
//!   reference of the right kind is ever written into a reference slot.

use crate::vm::gc::externref::VMExternRef;
use crate::vm::store::StoreOpaque;
use crate::vm::vmcontext::ValRaw;
use wasmc_format::ValType;

/// A Wasm value as the runtime takes and returns it (see the module docs).
#[derive(Clone)]
pub(crate) enum VMVal {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
    /// A function of the store, by index (`None` = null).
    FuncRef(Option<usize>),
    /// `None` = null.
    ExternRef(Option<VMExternRef>),
}

fn is_ref(t: ValType) -> bool {
    matches!(t, ValType::FuncRef | ValType::ExternRef)
}

impl VMVal {
    pub(crate) fn ty(&self) -> ValType {
        match self {
            VMVal::I32(_) => ValType::I32,
            VMVal::I64(_) => ValType::I64,
            VMVal::F32(_) => ValType::F32,
            VMVal::F64(_) => ValType::F64,
            VMVal::V128(_) => ValType::V128,
            VMVal::FuncRef(_) => ValType::FuncRef,
            VMVal::ExternRef(_) => ValType::ExternRef,
        }
    }

    /// The raw slot value, borrowing references: an externref pointer stays
    /// valid while `self` is alive, a funcref pointer while the store is.
    /// Panics if a funcref index is not a function of `store`.
    #[inline]
    pub(crate) fn to_raw_borrowed(&self, store: &StoreOpaque) -> ValRaw {
        match self {
            VMVal::I32(v) => ValRaw::from_u64(u64::from(*v as u32)),
            VMVal::I64(v) => ValRaw::from_u64(*v as u64),
            VMVal::F32(v) => ValRaw::from_u64(u64::from(*v)),
            VMVal::F64(v) => ValRaw::from_u64(*v),
            VMVal::V128(v) => ValRaw::from_u128(*v),
            VMVal::FuncRef(None) | VMVal::ExternRef(None) => ValRaw::default(),
            VMVal::FuncRef(Some(i)) => ValRaw::from_u64(store.funcs[*i].func_ref as usize as u64),
            VMVal::ExternRef(Some(r)) => ValRaw::from_u64(r.as_raw() as usize as u64),
        }
    }

    /// The raw slot value for Wasm: an externref is moved into the store's
    /// activations table, which keeps it alive while Wasm runs.
    #[inline]
    pub(crate) fn into_raw_for_wasm(self, store: &mut StoreOpaque) -> ValRaw {
        match self {
            VMVal::ExternRef(Some(r)) => {
                let raw = ValRaw::from_u64(r.as_raw() as usize as u64);
                store.activations.insert_handle(r);
                raw
            }
            other => other.to_raw_borrowed(store),
        }
    }

    /// Reads a value of type `ty` from a raw slot; an externref is cloned, a
    /// funcref looked up among the store's functions.
    ///
    /// # Safety
    /// If `ty` is `externref`, `raw` must hold null or a live `VMExternData`.
    pub(crate) unsafe fn from_raw(store: &StoreOpaque, raw: ValRaw, ty: ValType) -> VMVal {
        match ty {
            ValType::I32 => VMVal::I32(raw.get_u32() as i32),
            ValType::I64 => VMVal::I64(raw.get_u64() as i64),
            ValType::F32 => VMVal::F32(raw.get_u32()),
            ValType::F64 => VMVal::F64(raw.get_u64()),
            ValType::V128 => VMVal::V128(raw.get_u128()),
            ValType::FuncRef => VMVal::FuncRef(store.func_index_of_ref(raw.get_ptr())),
            ValType::ExternRef => {
                // SAFETY: for externref the caller promises the slot holds
                // null or a live `VMExternData`.
                let r = unsafe { VMExternRef::clone_from_raw(raw.get_ptr().cast()) };
                VMVal::ExternRef(r)
            }
        }
    }
}

/// Reads the values of value slots whose types are known, in order. Public
/// only so that the typed-function traits can name it; it has no public API.
pub struct ValReader<'a> {
    slots: &'a [ValRaw],
    tys: &'a [ValType],
    pos: usize,
}

impl<'a> ValReader<'a> {
    /// A reader of `tys.len()` values.
    ///
    /// # Safety
    /// `slots` must have at least `tys.len()` entries and each `slots[i]`
    /// must hold a value of type `tys[i]`; an externref one null or a live
    /// `VMExternData` for as long as the reader is used.
    #[inline]
    pub(crate) unsafe fn new(slots: &'a [ValRaw], tys: &'a [ValType]) -> ValReader<'a> {
        assert!(slots.len() >= tys.len(), "fewer value slots than values");
        ValReader { slots, tys, pos: 0 }
    }

    #[inline]
    fn next_slot(&mut self) -> (ValRaw, ValType) {
        let i = self.pos;
        let ty = *self
            .tys
            .get(i)
            .unwrap_or_else(|| panic!("reading value {i} of {}", self.tys.len()));
        self.pos += 1;
        (self.slots[i], ty)
    }

    /// The next value's bits (for a numeric value; a reference's bits are
    /// only a number).
    #[inline]
    pub(crate) fn bits(&mut self) -> ValRaw {
        self.next_slot().0
    }

    /// The next value, which must be an externref (a cloned handle).
    #[inline]
    pub(crate) fn externref(&mut self) -> Option<VMExternRef> {
        let (raw, ty) = self.next_slot();
        assert_eq!(ty, ValType::ExternRef, "value read as externref");
        // SAFETY: the slot's type is externref, so by `new`'s contract it
        // holds null or a live `VMExternData`.
        unsafe { VMExternRef::clone_from_raw(raw.get_ptr().cast()) }
    }

    /// The next value, which must be a funcref (a function index of
    /// `store`, `None` for null or a pointer that is no function of it).
    #[inline]
    pub(crate) fn funcref(&mut self, store: &StoreOpaque) -> Option<usize> {
        let (raw, ty) = self.next_slot();
        assert_eq!(ty, ValType::FuncRef, "value read as funcref");
        store.func_index_of_ref(raw.get_ptr())
    }

    /// The next value, whatever its type.
    pub(crate) fn val(&mut self, store: &StoreOpaque) -> VMVal {
        let (raw, ty) = self.next_slot();
        // SAFETY: `ty` is the slot's type, which by `new`'s contract it holds
        // (a null or live externref if `ty` is externref).
        unsafe { VMVal::from_raw(store, raw, ty) }
    }
}

/// Writes values into value slots whose types are known, in order, so that
/// each slot holds a valid value of its type for Wasm: slots start zeroed
/// (zero is a valid value of every type, null for references; a host
/// call's results zero only their reference slots, see `over_args`) and a
/// write of the wrong kind panics. Public only so that the typed-function
/// traits can name it; it has no public API.
pub struct ValWriter<'a> {
    slots: &'a mut [ValRaw],
    tys: &'a [ValType],
    pos: usize,
}

impl<'a> ValWriter<'a> {
    /// A writer of `tys.len()` values into `slots` (at least that long),
    /// zeroing them first.
    #[inline]
    pub(crate) fn new(slots: &'a mut [ValRaw], tys: &'a [ValType]) -> ValWriter<'a> {
        assert!(slots.len() >= tys.len(), "fewer value slots than values");
        slots[..tys.len()].fill(ValRaw::default());
        ValWriter { slots, tys, pos: 0 }
    }

    /// A writer of a host call's results `tys` into `slots`, which hold its
    /// arguments: only the reference slots are zeroed first (an argument's
    /// bits are a valid value of any numeric type, but a stale pointer is
    /// no reference), as zeroing them all was a loop of its own in every
    /// typed host call.
    #[inline]
    pub(crate) fn over_args(slots: &'a mut [ValRaw], tys: &'a [ValType]) -> ValWriter<'a> {
        assert!(slots.len() >= tys.len(), "fewer value slots than values");
        for (s, t) in slots.iter_mut().zip(tys) {
            if is_ref(*t) {
                *s = ValRaw::default();
            }
        }
        ValWriter { slots, tys, pos: 0 }
    }

    #[inline]
    fn next_slot(&mut self) -> (usize, ValType) {
        let i = self.pos;
        let ty = *self
            .tys
            .get(i)
            .unwrap_or_else(|| panic!("writing value {i} of {}", self.tys.len()));
        self.pos += 1;
        (i, ty)
    }

    /// Writes a numeric value's bits; panics if the slot is a reference.
    #[inline]
    pub(crate) fn bits(&mut self, v: ValRaw) {
        let (i, ty) = self.next_slot();
        assert!(!is_ref(ty), "a number written into a {ty} value slot");
        self.slots[i] = v;
    }

    /// Writes an externref, moving it into the store's activations table;
    /// panics if the slot is not an externref.
    #[inline]
    pub(crate) fn externref(&mut self, store: &mut StoreOpaque, r: Option<VMExternRef>) {
        let (i, ty) = self.next_slot();
        assert_eq!(ty, ValType::ExternRef, "value written as externref");
        self.slots[i] = VMVal::ExternRef(r).into_raw_for_wasm(store);
    }

    /// Writes a funcref (a function index of `store`); panics if the slot is
    /// not a funcref or the index is no function of `store`.
    #[inline]
    pub(crate) fn funcref(&mut self, store: &StoreOpaque, f: Option<usize>) {
        let (i, ty) = self.next_slot();
        assert_eq!(ty, ValType::FuncRef, "value written as funcref");
        self.slots[i] = VMVal::FuncRef(f).to_raw_borrowed(store);
    }

    /// Writes `v`; `Err` (nothing written) if it is not of the slot's type.
    #[inline]
    pub(crate) fn val(&mut self, store: &mut StoreOpaque, v: VMVal) -> Result<(), ValType> {
        let ty = *self.tys.get(self.pos).ok_or(v.ty())?;
        if v.ty() != ty {
            return Err(ty);
        }
        self.pos += 1;
        self.slots[self.pos - 1] = v.into_raw_for_wasm(store);
        Ok(())
    }
}
