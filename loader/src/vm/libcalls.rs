//! The builtin functions compiled code calls, and the table of pointers to
//! them that every VMContext's `builtins` field points at.
//!
//! Rules (Wasmtime's `libcalls.rs` has the same ones):
//! - Each builtin is `unsafe extern "C" fn(vmctx, params...) -> result` with
//!   only i32/i64/pointer parameters, in [`wasmc_format::foreach_builtin!`]
//!   order; the table is generated from that list and each entry's signature
//!   is checked at compile time against the list's kinds.
//! - The work is done by an inner function returning `Result<_, TrapCode>`
//!   (or `Stop`, for the builtins that run the resource limiter, whose
//!   error stops the Wasm); the extern wrapper raises the trap or error only
//!   after everything it owned was dropped, because raising skips (does not
//!   unwind) the frames in between.
//! - Indices (memory, table, global, segment) are in the calling module's
//!   index spaces and were validated by the compiler; they are still looked
//!   up with checks, and a bad one is a trap, never undefined behaviour.
//! - Host code can run inside a builtin: the store's resource limiter (asked
//!   by `memory.grow` and `table.grow`) and the `Drop` of a host value whose
//!   last count a builtin releases (`table.set`, `global.set`, fills,
//!   copies, `elem.drop`, a collection). Its panics are caught ([`catch`])
//!   and raised to the activation's entry, where the panic is resumed on the
//!   host side: an `extern "C"` function cannot unwind, so a panic leaving a
//!   builtin would abort the process.

use crate::vm::func::host_error;
use crate::vm::instance::release_seg;
use crate::vm::store::StoreOpaque;
use crate::vm::traphandlers::{raise, raise_trap, HostError, UnwindReason};
use crate::vm::vmcontext::{vmctx_header, VMContext, VMExternData};
use std::panic::{catch_unwind, AssertUnwindSafe};
use wasmc_format::builtins::Builtin;
use wasmc_format::TrapCode;

/// The builtin table: `Builtin::COUNT` function pointers.
pub(crate) struct BuiltinTable([*const (); Builtin::COUNT]);

// SAFETY: the table holds addresses of functions and is never written after
// its static initialisation, so sharing it between threads is only reading.
unsafe impl Sync for BuiltinTable {}

pub(crate) fn builtin_table() -> *const *const () {
    BUILTINS.0.as_ptr()
}

macro_rules! builtin_ty {
    (i32) => { u32 };
    (i64) => { u64 };
    (ptr) => { *mut u8 };
    (ref) => { *mut VMExternData };
}

macro_rules! builtin_table {
    ($($(#[$doc:meta])* $name:ident($($p:ident),*) $(-> $r:ident)?;)*) => {
        static BUILTINS: BuiltinTable = BuiltinTable([$({
            let f: unsafe extern "C" fn(*mut VMContext $(, builtin_ty!($p))*) $(-> builtin_ty!($r))? =
                raw::$name;
            f as *const ()
        }),*]);
    };
}

wasmc_format::foreach_builtin!(builtin_table);

type R<T> = Result<T, TrapCode>;

/// Why a builtin that runs the resource limiter (`memory.grow`,
/// `table.grow`) stopped: a trap, or the limiter's error, which stops the
/// Wasm that grew and reaches its caller as the host's error, as in
/// Wasmtime (a refusal, `Ok(false)`, is a failed grow instead: -1).
enum Stop {
    Trap(TrapCode),
    Host(HostError),
}

impl From<TrapCode> for Stop {
    fn from(c: TrapCode) -> Stop {
        Stop::Trap(c)
    }
}

/// The store and instance index of a vmctx.
///
/// # Safety
/// `vmctx` must be a live VMContext passed by compiled code, and the store
/// must not be otherwise borrowed while the result is used.
unsafe fn ctx<'a>(vmctx: *mut VMContext) -> (&'a mut StoreOpaque, usize) {
    // SAFETY: the caller passes a live VMContext from compiled code.
    let h = unsafe { vmctx_header(vmctx) };
    // SAFETY: the store pointer was set at instantiation to the (boxed)
    // store, which is alive while its Wasm runs; the host code that entered
    // Wasm gave up its borrow for the call, and the caller uses no other.
    (
        unsafe { &mut *(h.store as *mut StoreOpaque) },
        h.instance as usize,
    )
}

fn mem_index(s: &StoreOpaque, inst: usize, m: u32) -> R<usize> {
    s.instances[inst]
        .memories
        .get(m as usize)
        .copied()
        .ok_or(TrapCode::MemoryOutOfBounds)
}

fn table_index(s: &StoreOpaque, inst: usize, t: u32) -> R<usize> {
    s.instances[inst]
        .tables
        .get(t as usize)
        .copied()
        .ok_or(TrapCode::TableOutOfBounds)
}

fn global_index(s: &StoreOpaque, inst: usize, g: u32) -> R<usize> {
    s.instances[inst]
        .globals
        .get(g as usize)
        .copied()
        .ok_or(TrapCode::UnreachableCodeReached)
}

fn range(start: u64, len: u64, size: usize) -> R<std::ops::Range<usize>> {
    let end = start.checked_add(len).ok_or(TrapCode::MemoryOutOfBounds)?;
    if end > size as u64 {
        return Err(TrapCode::MemoryOutOfBounds);
    }
    Ok(start as usize..end as usize)
}

/// What a builtin's body ended with: its value, a trap, or the panic of
/// host code it ran.
type Outcome<T, E = TrapCode> = std::thread::Result<Result<T, E>>;

/// Runs a builtin's body `f` on `s`, then the stress collection (a builtin
/// call is a safepoint: the body has counted every reference it was
/// given), catching a panic of the host code either runs (see the module
/// docs).
///
/// Asserting unwind safety is right because every builtin leaves the store
/// consistent wherever host code can run in it: a limiter is asked before
/// anything changes, a host value is dropped only after the element or
/// global that held it was overwritten (counted first), and a collection
/// interrupted by a panic has only failed to release some counts (their
/// values leak; nothing is freed while still referenced). The Wasm frames
/// that were using the store are skipped by the raise, never resumed.
#[inline]
fn catch<T, E>(
    s: &mut StoreOpaque,
    f: impl FnOnce(&mut StoreOpaque) -> Result<T, E>,
) -> Outcome<T, E> {
    catch_unwind(AssertUnwindSafe(|| {
        let r = f(s);
        crate::vm::gc::stress(s);
        r
    }))
}

/// The value of `r`, or raises its trap or its panic.
///
/// # Safety
/// Must be called from a builtin that compiled code called (so inside a
/// Wasm activation, with the exit frame recorded by the builtin trampoline),
/// with nothing that has a destructor live in the builtin's frame: raising
/// skips the frames up to the activation's entry.
unsafe fn trap_on_err<T, E: Into<Stop>>(r: Outcome<T, E>) -> T {
    match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => match e.into() {
            // SAFETY: the caller's contract is `raise_trap`'s; this frame
            // owns nothing with a destructor (`r` and the `Stop` were
            // consumed, `c` is `Copy`).
            Stop::Trap(c) => unsafe { raise_trap(c) },
            // SAFETY: the caller's contract is `raise`'s; the error, the
            // only thing this frame owns, is moved into the reason.
            Stop::Host(h) => unsafe { raise(UnwindReason::Error(h)) },
        },
        // SAFETY: the caller's contract is `raise`'s; the payload, the only
        // thing this frame owns, is moved into the reason.
        Err(p) => unsafe { raise(UnwindReason::Panic(p)) },
    }
}

mod imp {
    use super::*;

    pub fn memory_grow(s: &mut StoreOpaque, inst: usize, m: u32, delta: u64) -> Result<u64, Stop> {
        let mi = mem_index(s, inst, m)?;
        // A limiter's refusal is a failed grow (-1) for Wasm; its error
        // stops the Wasm (`Stop`). `grow_memory` fails only with it.
        match s.grow_memory(mi, delta) {
            Ok(old) => Ok(old.unwrap_or(u64::MAX)),
            Err(e) => Err(Stop::Host(host_error(e))),
        }
    }

    pub fn memory_fill(
        s: &mut StoreOpaque,
        inst: usize,
        m: u32,
        dst: u64,
        val: u32,
        len: u64,
    ) -> R<()> {
        let mi = mem_index(s, inst, m)?;
        let bytes = s.memories[mi].bytes_mut();
        let r = range(dst, len, bytes.len())?;
        bytes[r].fill(val as u8);
        Ok(())
    }

    pub fn memory_copy(
        s: &mut StoreOpaque,
        inst: usize,
        dm: u32,
        dst: u64,
        sm: u32,
        src: u64,
        len: u64,
    ) -> R<()> {
        let (dmi, smi) = (mem_index(s, inst, dm)?, mem_index(s, inst, sm)?);
        let (dbase, dlen) = (s.memories[dmi].base(), s.memories[dmi].len());
        let (sbase, slen) = (s.memories[smi].base(), s.memories[smi].len());
        let d = range(dst, len, dlen)?;
        let sr = range(src, len, slen)?;
        // SAFETY: both ranges were checked against their memories' current
        // lengths, which are mapped read-write; `copy` allows overlap (the
        // same memory).
        unsafe { std::ptr::copy(sbase.add(sr.start), dbase.add(d.start), d.len()) };
        Ok(())
    }

    pub fn memory_init(
        s: &mut StoreOpaque,
        inst: usize,
        m: u32,
        seg: u32,
        dst: u64,
        src: u32,
        len: u32,
    ) -> R<()> {
        let mi = mem_index(s, inst, m)?;
        let module = s.instances[inst].module.clone();
        let rec = module
            .segments()
            .and_then(|t| t.get(seg))
            .map_err(|_| TrapCode::MemoryOutOfBounds)?;
        let d = &s.instances[inst];
        // Active segments are dropped once instantiation has applied them.
        // (One that was never applied, because instantiation failed first,
        // and that lives in a memory image has no bytes of its own: it reads
        // as dropped.)
        let dropped = d.dropped_data.get(seg as usize) == Some(&true)
            || (rec.is_active() && seg < d.data_applied);
        let seg_bytes: &[u8] = match rec.bytes_range() {
            Some(r) if !dropped => module
                .data_section()
                .get(r)
                .ok_or(TrapCode::MemoryOutOfBounds)?,
            _ => &[],
        };
        let sr = range(u64::from(src), u64::from(len), seg_bytes.len())?;
        let bytes = s.memories[mi].bytes_mut();
        let d = range(dst, u64::from(len), bytes.len())?;
        bytes[d].copy_from_slice(&seg_bytes[sr]);
        Ok(())
    }

    /// `ref.func`: makes the function's funcref on first use.
    pub fn ref_func(s: &mut StoreOpaque, inst: usize, f: u32) -> R<*mut u8> {
        // The compiler validated `f`; a bad index (or a corrupted function
        // record) is a trap, never a bad pointer.
        crate::vm::instance::func_ref(s, inst, f)
            .map(|p| p.cast())
            .map_err(|_| TrapCode::UnreachableCodeReached)
    }

    /// The cold path of a funcref `table.get`/`call_indirect` that read an
    /// uninitialised element: initialises it; the element, untagged.
    pub fn table_get_lazy_funcref(s: &mut StoreOpaque, inst: usize, t: u32, i: u32) -> R<*mut u8> {
        let ti = table_index(s, inst, t)?;
        crate::vm::table::get(s, ti, i)
    }

    pub fn data_drop(s: &mut StoreOpaque, inst: usize, seg: u32) -> R<()> {
        let n = s.instances[inst].module.info().num_data_segments as usize;
        let d = &mut s.instances[inst].dropped_data;
        if (seg as usize) < n {
            if d.is_empty() {
                d.resize(n, false);
            }
            d[seg as usize] = true;
        }
        Ok(())
    }

    pub fn table_grow(
        s: &mut StoreOpaque,
        inst: usize,
        t: u32,
        delta: u32,
        init: *mut u8,
    ) -> Result<u32, Stop> {
        let ti = table_index(s, inst, t)?;
        let cur = s.tables[ti].size();
        let max = s.tables[ti].ty.max;
        // A limiter's refusal is a failed grow (-1) for Wasm; its error
        // stops the Wasm (`Stop`).
        if delta > 0
            && !s
                .table_growing(cur, cur.saturating_add(delta), max)
                .map_err(|e| Stop::Host(host_error(e)))?
        {
            return Ok(u32::MAX);
        }
        let limit = s.max_table_elements;
        // SAFETY: compiled code passes null or a live reference of the
        // table's type (the builtin's signature names the element type).
        Ok(unsafe { s.tables[ti].grow(delta, init, limit) }.unwrap_or(u32::MAX))
    }

    pub fn table_fill(
        s: &mut StoreOpaque,
        inst: usize,
        t: u32,
        dst: u32,
        v: *mut u8,
        len: u32,
    ) -> R<()> {
        let ti = table_index(s, inst, t)?;
        // SAFETY: compiled code passes null or a live reference of the
        // table's type (the builtin's signature names the element type).
        unsafe { s.tables[ti].fill(dst, v, len) }
    }

    pub fn table_copy(
        s: &mut StoreOpaque,
        inst: usize,
        dt: u32,
        st: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> R<()> {
        let (dti, sti) = (table_index(s, inst, dt)?, table_index(s, inst, st)?);
        // A lazy source's elements are initialised before they are copied:
        // an uninitialised `0` never reaches another table (or another
        // place of this one, where it would read as a different element).
        crate::vm::table::materialise(s, sti, src, len)?;
        let items = s.tables[sti].get_range(src, len)?;
        let dend = dst.checked_add(len).ok_or(TrapCode::TableOutOfBounds)?;
        if dend > s.tables[dti].size() {
            return Err(TrapCode::TableOutOfBounds);
        }
        // SAFETY: the items are elements of table `st`, so null or live
        // references, of the same type as `dt` (validated module).
        unsafe { s.tables[dti].set_range(dst, &items) }
    }

    pub fn table_init(
        s: &mut StoreOpaque,
        inst: usize,
        t: u32,
        seg: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> R<()> {
        let ti = table_index(s, inst, t)?;
        let items: Vec<*mut u8> = match s.instances[inst].elems.get(seg as usize) {
            Some(Some(e)) => {
                let end = src.checked_add(len).ok_or(TrapCode::TableOutOfBounds)?;
                e.items
                    .get(src as usize..end as usize)
                    .ok_or(TrapCode::TableOutOfBounds)?
                    .to_vec()
            }
            Some(None) if src == 0 && len == 0 => Vec::new(),
            _ => return Err(TrapCode::TableOutOfBounds),
        };
        let dend = dst.checked_add(len).ok_or(TrapCode::TableOutOfBounds)?;
        if dend > s.tables[ti].size() {
            return Err(TrapCode::TableOutOfBounds);
        }
        // SAFETY: a kept segment's items are null or live references (each
        // externref counted by the segment) of the table's type.
        unsafe { s.tables[ti].set_range(dst, &items) }
    }

    pub fn elem_drop(s: &mut StoreOpaque, inst: usize, seg: u32) -> R<()> {
        if let Some(slot) = s.instances[inst].elems.get_mut(seg as usize) {
            if let Some(e) = slot.take() {
                release_seg(e);
            }
        }
        Ok(())
    }

    pub fn table_set_externref(
        s: &mut StoreOpaque,
        inst: usize,
        t: u32,
        i: u32,
        v: *mut VMExternData,
    ) -> R<()> {
        let ti = table_index(s, inst, t)?;
        // SAFETY: compiled code passes null or a live externref (held by its
        // frame, counted by the activations table).
        unsafe { s.tables[ti].set(i, v.cast()) }
    }

    pub fn global_set_externref(
        s: &mut StoreOpaque,
        inst: usize,
        g: u32,
        v: *mut VMExternData,
    ) -> R<()> {
        let gi = global_index(s, inst, g)?;
        // SAFETY: compiled code passes null or a live externref (held by its
        // frame, counted by the activations table).
        unsafe {
            s.globals[gi].store_raw(crate::vm::vmcontext::ValRaw::from_u64(v as usize as u64))
        };
        Ok(())
    }

    pub fn activations_table_insert_slow(
        s: &mut StoreOpaque,
        _inst: usize,
        r: *mut VMExternData,
    ) -> R<()> {
        // SAFETY: compiled code passes null or a live externref, and this is
        // a builtin of `s`'s compiled code.
        unsafe { crate::vm::gc::insert_slow(s, r) };
        Ok(())
    }

    pub fn epoch_deadline_reached(s: &mut StoreOpaque, _inst: usize) -> R<()> {
        // The code saw the epoch at or past the deadline; a host function
        // may have moved the deadline since, so ask again.
        if s.epoch_deadline_reached() {
            return Err(TrapCode::Interrupted);
        }
        Ok(())
    }

    pub fn out_of_fuel(s: &mut StoreOpaque, _inst: usize) -> R<()> {
        if s.out_of_fuel() {
            return Err(TrapCode::OutOfFuel);
        }
        Ok(())
    }
}

/// The `extern "C"` entry points, one per builtin.
mod raw {
    use super::*;

    macro_rules! wrap {
        ($name:ident => $imp:ident ( $($a:ident: $t:ty),* ) $(-> $ret:ty)?) => {
            /// # Safety
            /// Called by compiled code with its own live vmctx.
            pub unsafe extern "C" fn $name(vmctx: *mut VMContext $(, $a: $t)*) $(-> $ret)? {
                // SAFETY: compiled code passes its own live vmctx, and `s` is
                // the only reference to the store used in this call.
                let (s, inst) = unsafe { ctx(vmctx) };
                let r = catch(s, |s| imp::$imp(s, inst $(, $a)*));
                // SAFETY: called by compiled code through the builtin
                // trampoline; this frame holds nothing with a destructor.
                unsafe { trap_on_err(r) }
            }
        };
    }

    wrap!(memory_grow => memory_grow(m: u32, delta: u64) -> u64);
    wrap!(memory_fill => memory_fill(m: u32, dst: u64, val: u32, len: u64));
    wrap!(memory_copy => memory_copy(dm: u32, dst: u64, sm: u32, src: u64, len: u64));
    wrap!(memory_init => memory_init(m: u32, seg: u32, dst: u64, src: u32, len: u32));
    wrap!(data_drop => data_drop(seg: u32));
    wrap!(table_copy => table_copy(dt: u32, st: u32, dst: u32, src: u32, len: u32));
    wrap!(table_init => table_init(t: u32, seg: u32, dst: u32, src: u32, len: u32));
    wrap!(elem_drop => elem_drop(seg: u32));
    wrap!(table_set_externref => table_set_externref(t: u32, i: u32, v: *mut VMExternData));
    wrap!(global_set_externref => global_set_externref(g: u32, v: *mut VMExternData));
    wrap!(activations_table_insert_slow => activations_table_insert_slow(r: *mut VMExternData));
    wrap!(epoch_deadline_reached => epoch_deadline_reached());
    wrap!(out_of_fuel => out_of_fuel());
    wrap!(ref_func => ref_func(f: u32) -> *mut u8);
    wrap!(table_get_lazy_funcref => table_get_lazy_funcref(t: u32, i: u32) -> *mut u8);

    /// Fused multiply-add of `f32` bit patterns (relaxed SIMD on CPUs
    /// without FMA). Touches no store: not a safepoint, never traps.
    pub extern "C" fn fma_f32(_vmctx: *mut VMContext, a: u32, b: u32, c: u32) -> u32 {
        // `mul_add` rounds once (libm's `fmaf` when the CPU has no FMA).
        f32::from_bits(a)
            .mul_add(f32::from_bits(b), f32::from_bits(c))
            .to_bits()
    }

    /// Fused multiply-add of `f64` bit patterns, as `fma_f32`.
    pub extern "C" fn fma_f64(_vmctx: *mut VMContext, a: u64, b: u64, c: u64) -> u64 {
        f64::from_bits(a)
            .mul_add(f64::from_bits(b), f64::from_bits(c))
            .to_bits()
    }

    /// # Safety
    /// Called by compiled code with its own live vmctx.
    pub unsafe extern "C" fn table_grow_func_ref(
        vmctx: *mut VMContext,
        t: u32,
        delta: u32,
        init: *mut u8,
    ) -> u32 {
        // SAFETY: compiled code passes its own live vmctx, and `s` is the
        // only reference to the store used in this call.
        let (s, inst) = unsafe { ctx(vmctx) };
        let r = catch(s, |s| imp::table_grow(s, inst, t, delta, init));
        // SAFETY: called by compiled code through the builtin trampoline;
        // this frame holds nothing with a destructor.
        unsafe { trap_on_err(r) }
    }

    /// # Safety
    /// Called by compiled code with its own live vmctx.
    pub unsafe extern "C" fn table_grow_externref(
        vmctx: *mut VMContext,
        t: u32,
        delta: u32,
        init: *mut VMExternData,
    ) -> u32 {
        // SAFETY: compiled code passes its own live vmctx, and `s` is the
        // only reference to the store used in this call.
        let (s, inst) = unsafe { ctx(vmctx) };
        let r = catch(s, |s| imp::table_grow(s, inst, t, delta, init.cast()));
        // SAFETY: called by compiled code through the builtin trampoline;
        // this frame holds nothing with a destructor.
        unsafe { trap_on_err(r) }
    }

    /// # Safety
    /// Called by compiled code with its own live vmctx.
    pub unsafe extern "C" fn table_fill_func_ref(
        vmctx: *mut VMContext,
        t: u32,
        dst: u32,
        v: *mut u8,
        len: u32,
    ) {
        // SAFETY: compiled code passes its own live vmctx, and `s` is the
        // only reference to the store used in this call.
        let (s, inst) = unsafe { ctx(vmctx) };
        let r = catch(s, |s| imp::table_fill(s, inst, t, dst, v, len));
        // SAFETY: called by compiled code through the builtin trampoline;
        // this frame holds nothing with a destructor.
        unsafe { trap_on_err(r) }
    }

    /// # Safety
    /// Called by compiled code with its own live vmctx.
    pub unsafe extern "C" fn table_fill_externref(
        vmctx: *mut VMContext,
        t: u32,
        dst: u32,
        v: *mut VMExternData,
        len: u32,
    ) {
        // SAFETY: compiled code passes its own live vmctx, and `s` is the
        // only reference to the store used in this call.
        let (s, inst) = unsafe { ctx(vmctx) };
        let r = catch(s, |s| imp::table_fill(s, inst, t, dst, v.cast(), len));
        // SAFETY: called by compiled code through the builtin trampoline;
        // this frame holds nothing with a destructor.
        unsafe { trap_on_err(r) }
    }
}
