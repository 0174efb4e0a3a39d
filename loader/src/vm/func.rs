//! Functions at runtime: the store's function records, entering Wasm, and
//! the host shim that Wasm reaches through a host trampoline.
//!
//! **Entering Wasm** ([`call`]): arguments go into an array
//! of 16-byte value slots through a [`ValWriter`] (externrefs are moved into
//! the activations table), the module's entry trampoline for the function's
//! type is called inside [`catch_traps`], and results are read back from the
//! same slots through a [`ValReader`] (externrefs cloned for the host). When
//! the store's outermost activation returns, the activations table is
//! cleared.
//!
//! **Calling the host from Wasm** ([`host_shim`]): a host function is a
//! [`HostCall`] implementation of the API layer, and its `array_call` is
//! `host_shim::<H>` for that type. The shim must not unwind into Wasm: host
//! errors and panics are caught, everything is dropped, and only then does
//! it raise to the entry, where the error is returned or the panic resumed.
//! Raising skips (does not unwind) the frames in between, so nothing with a
//! destructor may be live there.

use crate::vm::store::StoreOpaque;
use crate::vm::traphandlers::{
    catch_traps, raise, thread_setup, HostError, ThreadFloor, UnwindReason,
};
use crate::vm::types::intern;
use crate::vm::values::{ValReader, ValWriter};
use crate::vm::vmcontext::{
    vmctx_header, ArrayCallFn, VMContext, VMFuncRef, VMHostFuncContext, ValRaw,
};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use wasmc_format::vmoffsets::VMHOSTFUNC_MAGIC;
use wasmc_format::FuncType;

/// A message from the runtime itself, carried as a [`HostError`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct RuntimeError(pub String);

/// A host error (a host function's, or the resource limiter's) on its trip
/// through the runtime (a [`HostError`] must be a `std::error::Error`,
/// which `anyhow::Error` is not); `error_from_unwind` unwraps it, so the
/// caller gets the host's error itself.
#[derive(Debug)]
pub(crate) struct HostFailure(pub(crate) anyhow::Error);

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for HostFailure {}

/// Boxes a host error for the trip through the runtime
/// (`error_from_unwind` unboxes it).
pub(crate) fn host_error(e: impl Into<anyhow::Error>) -> HostError {
    Box::new(HostFailure(e.into()))
}

/// A host function body as the runtime calls it from Wasm: the API layer's
/// `Func::new` and `Func::wrap` functions implement it.
pub(crate) trait HostCall: Send + Sync + 'static {
    /// Runs the function for the calling instance `instance` of `store`:
    /// reads the arguments from `slots.args()`, then writes the results with
    /// `slots.results()`.
    fn call(
        &self,
        store: &mut StoreOpaque,
        instance: usize,
        slots: HostSlots<'_>,
    ) -> Result<(), HostError>;
}

/// The value slots of one host call: arguments first, then results in the
/// same slots.
pub(crate) struct HostSlots<'a> {
    slots: &'a mut [ValRaw],
    ty: &'a FuncType,
}

impl<'a> HostSlots<'a> {
    /// The callee's type.
    #[inline]
    pub(crate) fn ty(&self) -> &'a FuncType {
        self.ty
    }

    /// The arguments.
    #[inline]
    pub(crate) fn args(&self) -> ValReader<'_> {
        // SAFETY: `host_shim` made these slots from the host trampoline's
        // array, which holds the arguments of the callee's type `ty` (the
        // trampoline's contract) and has at least `max(params, results)`
        // entries (checked by the shim); externref arguments are held by
        // the caller's live Wasm frames for the whole call.
        unsafe { ValReader::new(self.slots, &self.ty.params) }
    }

    /// The results (overwriting the arguments, so read those first).
    #[inline]
    pub(crate) fn results(&mut self) -> ValWriter<'_> {
        ValWriter::over_args(self.slots, &self.ty.results)
    }
}

/// Everything a host function is made of, independent of any store (a
/// `Linker` keeps these and makes a function per store). Public only so
/// that the API's `IntoFunc` can name it; it has no public API.
#[derive(Clone)]
pub struct HostFuncParts {
    /// Shared by every store function made from these parts.
    ty: Arc<FuncType>,
    /// `ty`'s canonical id, interned once when the parts were made (not at
    /// every instantiation that links them).
    type_id: u32,
    /// The body as the API layer calls it from the host (opaque here).
    host: Arc<dyn Any + Send + Sync>,
    /// `host_shim::<H>`, paired with `call_data`, which points to an `H`.
    array_call: ArrayCallFn,
    call_data: *const (),
    call_owner: Arc<dyn Any + Send + Sync>,
}

// SAFETY: `call_data` points into `call_owner`, an `H: Send + Sync` that is
// only ever accessed through shared references; the other fields are
// `Send + Sync` themselves.
unsafe impl Send for HostFuncParts {}
// SAFETY: `call_data` points into `call_owner`, an `H: Sync` reached only
// through shared references, so sharing `HostFuncParts` between threads
// shares only `&H`; the other fields are `Sync` themselves.
unsafe impl Sync for HostFuncParts {}

impl HostFuncParts {
    /// The function's type.
    pub(crate) fn ty(&self) -> &FuncType {
        &self.ty
    }

    /// The canonical id of its type.
    pub(crate) fn type_id(&self) -> u32 {
        self.type_id
    }

    /// A host function of type `ty` that Wasm calls through `h` and the
    /// host through `host` (which the API layer downcasts).
    pub(crate) fn new<H: HostCall>(
        ty: FuncType,
        h: Arc<H>,
        host: Arc<dyn Any + Send + Sync>,
    ) -> HostFuncParts {
        HostFuncParts {
            type_id: intern(&ty),
            ty: Arc::new(ty),
            host,
            array_call: host_shim::<H>,
            call_data: Arc::as_ptr(&h).cast(),
            call_owner: h,
        }
    }
}

/// A host function's context made once and shared by every store that
/// links it: what a `Linker` keeps for a host definition.
///
/// Instantiating a module that imports it writes the context's address and
/// the importing module's own host trampoline for the import's type into
/// the new instance's VMContext (the import slot and the instance's
/// `VMFuncRef` for it); the store gets no function record until the host
/// asks for the import as a `Func` ([`StoreOpaque::push_shared_host_func`],
/// from `instance::instance_func`). So instantiation costs nothing per
/// host import beyond those two writes, as Wasmtime's linker functions.
/// The context's own `func_ref` is never used (its `wasm_call` stays null):
/// every use goes through an instance's `VMFuncRef`.
pub struct SharedHostFunc {
    parts: HostFuncParts,
    ctx: Box<VMHostFuncContext>,
}

// SAFETY: the context's raw pointers point into the context itself
// (`func_ref.vmctx`) or into `call_owner` (`call_data`, an `H: Send +
// Sync` only accessed through shared references); nothing writes the
// context after construction; the other fields are `Send + Sync`.
unsafe impl Send for SharedHostFunc {}
// SAFETY: as for `Send`: sharing it shares only reads of immutable data.
unsafe impl Sync for SharedHostFunc {}

impl SharedHostFunc {
    pub(crate) fn new(parts: HostFuncParts) -> SharedHostFunc {
        SharedHostFunc {
            ctx: host_context(&parts),
            parts,
        }
    }

    /// The parts, to make a function owned by one store.
    pub(crate) fn parts(&self) -> &HostFuncParts {
        &self.parts
    }

    /// The context an importing instance calls (see the type's docs).
    pub(crate) fn ctx(&self) -> *const VMHostFuncContext {
        &*self.ctx
    }
}

/// A new host context of `parts`, its funcref's `wasm_call` still null.
fn host_context(parts: &HostFuncParts) -> Box<VMHostFuncContext> {
    let mut ctx = Box::new(VMHostFuncContext {
        magic: VMHOSTFUNC_MAGIC,
        array_call: parts.array_call,
        func_ref: VMFuncRef {
            wasm_call: std::ptr::null(),
            vmctx: std::ptr::null_mut(),
            type_id: parts.type_id,
        },
        ty: parts.ty.clone(),
        host: parts.host.clone(),
        call_data: parts.call_data,
        call_owner: parts.call_owner.clone(),
    });
    let ctx_ptr: *mut VMHostFuncContext = &mut *ctx;
    ctx.func_ref.vmctx = ctx_ptr.cast();
    ctx
}

pub(crate) enum FuncKind {
    Host(Box<VMHostFuncContext>),
    /// A [`SharedHostFunc`]'s context, imported by an instance of the store,
    /// which keeps it alive (`InstanceData::keep_alive`) as long as the
    /// store.
    SharedHost(*const VMHostFuncContext),
    Wasm {
        instance: usize,
        type_index: u32,
    },
}

/// A function of a store.
pub(crate) struct FuncData {
    pub kind: FuncKind,
    /// Shared with the module's type (Wasm functions) so that creating a
    /// function per definition at instantiation allocates nothing.
    pub ty: Arc<FuncType>,
    /// The funcref of the function: in its instance's VMContext (Wasm
    /// functions, and shared host functions: the importing instance's), or
    /// in its host context. Alive as long as the store.
    pub func_ref: *mut VMFuncRef,
}

impl FuncData {
    /// The context of a host function the store owns, whose trampoline the
    /// store fills in; `None` for Wasm and shared host functions.
    pub(crate) fn host_ctx_mut(&mut self) -> Option<&mut VMHostFuncContext> {
        match &mut self.kind {
            FuncKind::Host(c) => Some(c),
            FuncKind::SharedHost(_) | FuncKind::Wasm { .. } => None,
        }
    }

    /// The API layer's host-side body of a host function.
    pub(crate) fn host_body(&self) -> Option<&Arc<dyn Any + Send + Sync>> {
        match &self.kind {
            FuncKind::Host(c) => Some(&c.host),
            // SAFETY: the context is alive as long as the store, which
            // owns `self` (see `FuncKind::SharedHost`), and never written.
            FuncKind::SharedHost(c) => Some(unsafe { &(**c).host }),
            FuncKind::Wasm { .. } => None,
        }
    }
}

impl StoreOpaque {
    /// Adds a host function made of `parts`; returns its index.
    pub(crate) fn push_host_func(&mut self, parts: HostFuncParts) -> usize {
        let mut ctx = host_context(&parts);
        let func_ref: *mut VMFuncRef = &mut ctx.func_ref;
        let index = self.funcs.len();
        self.funcs.push(FuncData {
            kind: FuncKind::Host(ctx),
            ty: parts.ty,
            func_ref,
        });
        self.func_by_ref.insert(func_ref as usize, index);
        self.host_func_made(index);
        index
    }

    /// Adds the record of shared host context `ctx` as an instance imported
    /// it, with that instance's funcref for it `func_ref` (found by its
    /// position in the VMContext, not by `func_by_ref`); returns its index.
    ///
    /// # Safety
    /// `ctx` is a [`SharedHostFunc`]'s context that an instance of this
    /// store keeps alive, and `func_ref` that instance's filled-in funcref
    /// of the import.
    pub(crate) unsafe fn push_shared_host_func(
        &mut self,
        ctx: *const VMHostFuncContext,
        func_ref: *mut VMFuncRef,
    ) -> usize {
        // SAFETY: `ctx` is alive (this function's contract) and never
        // written after construction.
        let ty = unsafe { (*ctx).ty.clone() };
        self.funcs.push(FuncData {
            kind: FuncKind::SharedHost(ctx),
            ty,
            func_ref,
        });
        self.funcs.len() - 1
    }
}

/// The `array_call` of a host function whose [`HostCall`] is `H`:
/// `(callee = VMHostFuncContext, caller vmctx, values, len)`.
///
/// # Safety
/// Called only by a host trampoline of the callee's type, with `callee` a
/// host context built by [`StoreOpaque::push_host_func`] from
/// `HostFuncParts::new::<H>`, `caller_vmctx` the calling instance's
/// VMContext and `values` an array of `len` slots holding the arguments.
unsafe extern "C" fn host_shim<H: HostCall>(
    callee: *mut VMHostFuncContext,
    caller_vmctx: *mut VMContext,
    values: *mut ValRaw,
    len: usize,
) {
    // SAFETY: this function's own contract is `host_call`'s.
    let r = unsafe { host_call::<H>(callee, caller_vmctx, values, len) };
    if let Err(reason) = r {
        // SAFETY: we were called by Wasm, so inside an activation, and this
        // frame holds nothing with a destructor (`r` was moved out).
        unsafe { raise(reason) }
    }
}

/// The body of [`host_shim`], which returns instead of raising.
///
/// # Safety
/// As for [`host_shim`].
#[inline(always)]
unsafe fn host_call<H: HostCall>(
    callee: *mut VMHostFuncContext,
    caller_vmctx: *mut VMContext,
    values: *mut ValRaw,
    len: usize,
) -> Result<(), UnwindReason> {
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<(), HostError> {
        // SAFETY: `callee` is a live host context owned by the store (host
        // functions are never freed before their store). Only its `ty` and
        // `call_data` fields are borrowed, which nothing writes after
        // construction; `call_data` points to an `H` inside `call_owner`
        // (`HostFuncParts::new::<H>` paired it with this shim).
        let (ty, h) = unsafe { (&*(*callee).ty, &*((*callee).call_data as *const H)) };
        // SAFETY: `caller_vmctx` is the calling instance's live VMContext.
        let header = unsafe { vmctx_header(caller_vmctx) };
        // SAFETY: a VMContext's `store` is its (boxed) store, alive while its
        // Wasm runs; Wasm holds no reference to it, and the host code that
        // entered Wasm gave up its borrow for the call.
        let store = unsafe { &mut *(header.store as *mut StoreOpaque) };
        if len < ty.params.len().max(ty.results.len()) {
            return Err(RuntimeError("host trampoline passed too few value slots".into()).into());
        }
        // SAFETY: the trampoline passes `len` initialised slots that nothing
        // else accesses during the call.
        let slots = unsafe { std::slice::from_raw_parts_mut(values, len) };
        h.call(store, header.instance as usize, HostSlots { slots, ty })
    }));
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(UnwindReason::Error(e)),
        Err(p) => Err(UnwindReason::Panic(p)),
    }
}

type EntryFn = unsafe extern "C" fn(*mut VMContext, *mut VMContext, *const u8, *mut ValRaw);

/// What entering a Wasm function needs, cached so that a typed call looks
/// nothing up: addresses (so that the API's `TypedFunc` stays `Send`,
/// `Sync` and `Copy`) that are valid as long as the store `store_id`, which
/// [`call`] checks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WasmEntry {
    store_id: u64,
    /// The module's entry trampoline for the function's type.
    entry: usize,
    /// The function's code.
    code: usize,
    /// Its instance's VMContext.
    vmctx: usize,
    /// The function's `FuncType` (inside its `Arc` in the store).
    ty: usize,
}

impl WasmEntry {
    /// The entry of function `idx` of `store`, `None` for a host function.
    pub(crate) fn new(store: &StoreOpaque, idx: usize) -> Option<WasmEntry> {
        let data = &store.funcs[idx];
        let FuncKind::Wasm {
            instance,
            type_index,
        } = data.kind
        else {
            return None;
        };
        let entry = store.instances[instance]
            .module
            .entry_trampoline(type_index)?;
        // SAFETY: a Wasm function's `func_ref` points into its instance's
        // VMContext, which lives as long as the store.
        let (code, vmctx) = unsafe { ((*data.func_ref).wasm_call, (*data.func_ref).vmctx) };
        Some(WasmEntry {
            store_id: store.id,
            entry: entry as usize,
            code: code as usize,
            vmctx: vmctx as usize,
            ty: Arc::as_ptr(&data.ty) as usize,
        })
    }
}

/// Calls the Wasm function of `e` with the arguments `write` writes, and
/// reads its results with `read` (before the activations table is cleared,
/// so externref results can be cloned). The value slots live on the stack
/// for signatures of up to 8 parameters and results.
pub(crate) fn call<R>(
    store: &mut StoreOpaque,
    e: &WasmEntry,
    write: impl FnOnce(&mut StoreOpaque, &mut ValWriter<'_>),
    read: impl FnOnce(&StoreOpaque, &mut ValReader<'_>) -> R,
) -> Result<R, UnwindReason> {
    let floor = thread_setup();
    assert_eq!(
        e.store_id, store.id,
        "function used with a store it does not belong to"
    );
    // SAFETY: `e.ty` points to the `FuncType` of a function of this store
    // (checked just above), inside an `Arc` the store keeps until it drops.
    let ty: &FuncType = unsafe { &*(e.ty as *const FuncType) };
    const SMALL: usize = 8;
    let n = ty.params.len().max(ty.results.len()).max(1);
    let mut small = [ValRaw::default(); SMALL];
    let mut big = Vec::new();
    let slots: &mut [ValRaw] = if n <= SMALL {
        &mut small[..n]
    } else {
        big.resize(n, ValRaw::default());
        &mut big
    };
    write(store, &mut ValWriter::new(slots, &ty.params));
    // SAFETY: `e` belongs to this store, whose VMContexts and code live as
    // long as it; `entry` is the entry trampoline of the function's type,
    // and the slots (max(params, results) of them) hold arguments of that
    // type, written through a `ValWriter` of the type's params.
    let r = unsafe {
        call_entry(
            store,
            e.entry as *const u8,
            e.code as *const u8,
            e.vmctx as *mut VMContext,
            slots.as_mut_ptr(),
            floor,
        )
    };
    // Two exits rather than a `map` of `r`: the success path then hands
    // its value back in registers (a `Result` built on the stack and copied
    // with wide loads stalled on store forwarding, a sixth of a typed call).
    let outermost = store.wasm_depth == 0;
    if let Err(e) = r {
        if outermost {
            // SAFETY: the outermost activation of the store has ended, so
            // no Wasm frame of the store is on the stack.
            unsafe { store.activations.clear() };
        }
        return Err(e);
    }
    // SAFETY: after a normal return, the entry trampoline wrote results of
    // the function's type into the slots; externref results are held by
    // the activations table until it is cleared below.
    let mut reader = unsafe { ValReader::new(slots, &ty.results) };
    let v = read(store, &mut reader);
    if outermost {
        // SAFETY: the outermost activation of the store has returned, so no
        // Wasm frame of the store is on the stack.
        unsafe { store.activations.clear() };
    }
    Ok(v)
}

/// Enters Wasm: calls `code` with `vmctx` through `entry`, catching traps.
///
/// # Safety
/// `entry` must be the entry trampoline of a module of `store` for the type
/// of the function at `code` (whose instance has VMContext `vmctx`, in
/// `store`), and `slots` must have `max(params, results)` entries holding
/// arguments of that type.
#[inline]
unsafe fn call_entry(
    store: &mut StoreOpaque,
    entry: *const u8,
    code: *const u8,
    vmctx: *mut VMContext,
    slots: *mut ValRaw,
    floor: ThreadFloor,
) -> Result<(), UnwindReason> {
    // SAFETY: `entry` is an entry trampoline (caller contract), whose ABI is
    // `EntryFn` (format's `TypeTrampolines::entry` contract).
    let entry: EntryFn = unsafe { std::mem::transmute::<*const u8, EntryFn>(entry) };
    let limits = store.limits_ptr();
    let max_stack = store.max_wasm_stack;
    store.wasm_depth += 1;
    // SAFETY: `limits` are this store's live runtime limits; the closure
    // owns nothing with a destructor and only calls the trampoline with the
    // arguments the caller vouched for.
    let r = unsafe {
        catch_traps(limits, max_stack, floor, || {
            entry(vmctx, vmctx, code, slots);
        })
    };
    store.wasm_depth -= 1;
    r
}
