//! The `#[repr(C)]` structures that compiled code reads and writes.
//!
//! Their layout is fixed by [`wasmc_format::VMOffsets`]; each struct is
//! followed by a test module asserting `offset_of!` against it (pointer size
//! 8). The VMContext itself is a variable-size allocation
//! ([`VMContextAlloc`]) whose fields are reached through `VMOffsets`:
//!
//! ```text
//! VMContext (16-byte aligned)
//! +-------------------+ 0
//! | VMContextHeader   |   magic, runtime_limits, builtins, activations_table,
//! |                   |   instance, store
//! +-------------------+ vmctx_type_ids_begin()
//! | type_ids, imports, defined tables/memories/globals, func_refs
//! +-------------------+ size_of_vmctx()
//! ```

pub(crate) use crate::vm::gc::activations::VMExternRefActivationsTable;
use std::alloc::Layout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use wasmc_format::vmoffsets::VMCONTEXT_MAGIC;
use wasmc_format::VMOffsets;

/// Opaque type of a VMContext pointer.
#[repr(C)]
pub(crate) struct VMContext {
    _opaque: [u8; 0],
}

/// The fixed header of every VMContext.
#[repr(C)]
pub(crate) struct VMContextHeader {
    pub magic: u32,
    pub runtime_limits: *mut VMRuntimeLimits,
    pub builtins: *const *const (),
    pub activations_table: *mut VMExternRefActivationsTable,
    pub instance: *mut (),
    pub store: *mut (),
}

/// Per-store state that compiled code reads (stack limit, epoch deadline
/// and counter), writes (fuel) and trampolines write (exit and entry frames).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct VMRuntimeLimits {
    pub stack_limit: UnsafeCell<usize>,
    pub last_wasm_exit_fp: UnsafeCell<usize>,
    pub last_wasm_exit_pc: UnsafeCell<usize>,
    pub last_wasm_entry_fp: UnsafeCell<usize>,
    /// Minus the fuel left (fuel-instrumented code adds to it; out of fuel
    /// at `>= 0`).
    pub fuel_consumed: UnsafeCell<i64>,
    /// The engine epoch at which epoch-instrumented code traps.
    pub epoch_deadline: UnsafeCell<u64>,
    /// The engine's epoch counter, kept alive by the store
    /// (`StoreOpaque::epoch`).
    pub epoch_ptr: UnsafeCell<*const AtomicU64>,
}

impl VMRuntimeLimits {
    /// Limits reading the epoch counter at `epoch_ptr`, with no deadline
    /// and no fuel.
    pub(crate) fn new(epoch_ptr: *const AtomicU64) -> Self {
        VMRuntimeLimits {
            stack_limit: UnsafeCell::new(usize::MAX),
            last_wasm_exit_fp: UnsafeCell::new(0),
            last_wasm_exit_pc: UnsafeCell::new(0),
            last_wasm_entry_fp: UnsafeCell::new(0),
            fuel_consumed: UnsafeCell::new(0),
            epoch_deadline: UnsafeCell::new(u64::MAX),
            epoch_ptr: UnsafeCell::new(epoch_ptr),
        }
    }
}

/// An imported function: code and the callee's vmctx.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct VMFunctionImport {
    pub wasm_call: *const u8,
    pub vmctx: *mut VMContext,
}

/// A table's elements (one pointer each) and length.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct VMTableDefinition {
    pub base: *mut *mut u8,
    pub current_elements: u32,
}

/// A linear memory's base and length in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct VMMemoryDefinition {
    pub base: *mut u8,
    pub current_length: usize,
}

/// A global's storage: the value at the start, little-endian.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct VMGlobalDefinition {
    pub storage: [u8; 16],
}

/// What a `funcref` points to.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct VMFuncRef {
    pub wasm_call: *const u8,
    pub vmctx: *mut VMContext,
    pub type_id: u32,
}

/// What an `externref` points to: a reference count, then the host value.
#[repr(C)]
pub(crate) struct VMExternData {
    pub ref_count: AtomicUsize,
    pub value: Box<dyn std::any::Any + Send + Sync>,
}

/// `array_call(callee_vmctx, caller_vmctx, values, len)`.
pub(crate) type ArrayCallFn =
    unsafe extern "C" fn(*mut VMHostFuncContext, *mut VMContext, *mut ValRaw, usize);

/// The callee "vmctx" of a host function. Built only by
/// `vm::func::FuncData::new_host` from a `HostFuncParts`, which pairs
/// `array_call` with the `call_data` it reads.
#[repr(C)]
pub(crate) struct VMHostFuncContext {
    pub magic: u32,
    pub array_call: ArrayCallFn,
    /// The function's own funcref (`vmctx` = this context).
    pub func_ref: VMFuncRef,
    /// Its signature.
    pub ty: Arc<wasmc_format::FuncType>,
    /// The body as the API layer calls it from the host (opaque here).
    pub host: Arc<dyn Any + Send + Sync>,
    /// What `array_call` (a shim monomorphized for its type) reads: a
    /// pointer into `call_owner`, which keeps it alive.
    pub call_data: *const (),
    pub call_owner: Arc<dyn Any + Send + Sync>,
}

/// One 16-byte slot of the entry/host trampolines' value array: a scalar
/// little-endian at its start, or a reference as a pointer. Public only so
/// that the typed-function traits can name it; it has no public API.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValRaw(pub(crate) [u8; 16]);

impl ValRaw {
    /// As one 16-byte value (not an 8-byte write and a zeroed rest), so
    /// that a slot made here and copied whole is read with the width it was
    /// written with (a copy of narrower stores stalls on store forwarding).
    #[inline]
    pub(crate) fn from_u64(v: u64) -> ValRaw {
        ValRaw::from_u128(u128::from(v))
    }
    #[inline]
    pub(crate) fn from_u128(v: u128) -> ValRaw {
        ValRaw(v.to_le_bytes())
    }
    pub(crate) fn get_u32(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
    pub(crate) fn get_u64(&self) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
    pub(crate) fn get_u128(&self) -> u128 {
        u128::from_le_bytes(self.0)
    }
    pub(crate) fn get_ptr(&self) -> *mut u8 {
        self.get_u64() as usize as *mut u8
    }
}

/// An owned, zeroed, 16-byte-aligned VMContext allocation.
///
/// Contexts of [`MAPPED_VMCTX_MIN`] bytes or more (a module with thousands
/// of functions: the funcrefs are most of it) are anonymous mappings
/// ([`crate::vm::sys::mmap::Mmap::zeroed_pooled`]: reused, their touched
/// pages discarded when freed), whose untouched pages cost nothing:
/// instantiation fills in a funcref only on first use, so allocating and
/// freeing such a context does not grow with the number of functions (the
/// heap's `calloc` would clear it all). With the pooling allocator, contexts
/// live in the pool's slots instead.
pub(crate) struct VMContextAlloc {
    ptr: NonNull<u8>,
    backing: VMContextBacking,
    pub offsets: VMOffsets,
}

enum VMContextBacking {
    /// From the global allocator, with this layout.
    Heap(Layout),
    /// An anonymous mapping (zero pages until touched).
    Mapped(crate::vm::sys::mmap::Mmap),
    /// A slot of the engine's pooling allocator, zeroed and freed when the
    /// permit drops.
    Pooled(crate::vm::pool::InstancePermit),
}

/// Size from which a VMContext is mapped rather than allocated.
pub(crate) const MAPPED_VMCTX_MIN: usize = 64 * 1024;

impl VMContextAlloc {
    pub fn new(offsets: VMOffsets) -> Option<VMContextAlloc> {
        let size = Self::size_for(&offsets);
        let layout = Layout::from_size_align(size, 16).ok()?;
        let (ptr, backing) = if size >= MAPPED_VMCTX_MIN {
            // Page aligned (so 16-aligned), zero, at least `size` long.
            let m = crate::vm::sys::mmap::Mmap::zeroed_pooled(size).ok()?;
            (NonNull::new(m.as_ptr())?, VMContextBacking::Mapped(m))
        } else {
            // SAFETY: the layout's size is at least that of the header, so
            // it is non-zero, as `alloc_zeroed` requires.
            let p = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
            (p, VMContextBacking::Heap(layout))
        };
        let v = VMContextAlloc {
            ptr,
            backing,
            offsets,
        };
        // SAFETY: `field` checked that the magic (a u32 at a 4-aligned
        // offset of a 16-aligned allocation) lies inside the allocation.
        unsafe { v.field::<u32>(offsets.vmctx_magic()).write(VMCONTEXT_MAGIC) };
        Some(v)
    }

    /// A context in a pool slot (all zero, at least the context's size:
    /// `Pool::acquire_instance` checked it).
    pub fn new_pooled(
        offsets: VMOffsets,
        permit: crate::vm::pool::InstancePermit,
    ) -> Option<VMContextAlloc> {
        if permit.size() < Self::size_for(&offsets) {
            return None;
        }
        let v = VMContextAlloc {
            ptr: NonNull::new(permit.ptr())?,
            backing: VMContextBacking::Pooled(permit),
            offsets,
        };
        // SAFETY: `field` checked that the magic (a u32 at a 4-aligned
        // offset of a page-aligned slot) lies inside the context.
        unsafe { v.field::<u32>(offsets.vmctx_magic()).write(VMCONTEXT_MAGIC) };
        Some(v)
    }

    /// Called as the instance is freed, with the byte ranges of the
    /// context that may have been written: a mapped or pooled context is
    /// then zeroed by clearing only them (now, or when the pool slot is
    /// freed), not by discarding its pages, which the next instance would
    /// fault in again. No effect on a heap context.
    pub fn set_written(&mut self, ranges: Vec<std::ops::Range<usize>>) {
        match &mut self.backing {
            VMContextBacking::Pooled(p) => p.set_written(ranges),
            VMContextBacking::Mapped(m) => {
                let size = m.len();
                for r in ranges {
                    let end = r.end.min(size);
                    if r.start < end {
                        // SAFETY: `[start, end)` lies inside the mapping
                        // (clipped to its length), which is read-write and
                        // owned by this context; the instance is being
                        // dropped, so nothing reads these bytes any more.
                        unsafe {
                            std::ptr::write_bytes(self.ptr.as_ptr().add(r.start), 0, end - r.start)
                        };
                    }
                }
                m.mark_zero();
            }
            VMContextBacking::Heap(_) => {}
        }
    }

    /// Bytes a context of `offsets` needs.
    pub fn size_for(offsets: &VMOffsets) -> usize {
        (offsets.size_of_vmctx() as usize).max(std::mem::size_of::<VMContextHeader>())
    }

    /// Bytes of the allocation usable as the context.
    fn size(&self) -> usize {
        match &self.backing {
            VMContextBacking::Heap(l) => l.size(),
            VMContextBacking::Mapped(m) => m.len(),
            VMContextBacking::Pooled(p) => p.size(),
        }
    }

    pub fn vmctx(&self) -> *mut VMContext {
        self.ptr.as_ptr().cast()
    }

    /// A pointer to the field of type `T` at `offset`, which must come from
    /// this context's `VMOffsets` (so it is aligned for `T`). Panics if the
    /// field does not lie inside the allocation (an index the caller failed
    /// to check): writing through the result is then in bounds.
    pub fn field<T>(&self, offset: u32) -> *mut T {
        let end = (offset as usize).checked_add(std::mem::size_of::<T>());
        assert!(
            end.is_some_and(|e| e <= self.size()),
            "VMContext field at {offset} outside the context"
        );
        self.ptr.as_ptr().wrapping_add(offset as usize).cast()
    }

    pub fn header(&self) -> *mut VMContextHeader {
        self.ptr.as_ptr().cast()
    }
}

impl Drop for VMContextAlloc {
    fn drop(&mut self) {
        if let VMContextBacking::Heap(layout) = self.backing {
            // SAFETY: `ptr` was allocated in `new` with exactly this layout
            // and is freed only here.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
        // A mapped context is unmapped by its `Mmap`.
    }
}

/// Reads the header field `store`/`instance` of a vmctx that compiled code
/// handed to the runtime.
///
/// # Safety
/// `vmctx` must point to a live VMContext created by this loader.
pub(crate) unsafe fn vmctx_header<'a>(vmctx: *mut VMContext) -> &'a VMContextHeader {
    // SAFETY: the caller promises `vmctx` is a live VMContext of this
    // loader, i.e. the start of a `VMContextAlloc`, which begins with a
    // `VMContextHeader`.
    let h = unsafe { &*(vmctx as *const VMContextHeader) };
    debug_assert_eq!(h.magic, VMCONTEXT_MAGIC);
    h
}

#[cfg(test)]
mod test_layout {
    use super::*;
    use std::mem::{offset_of, size_of};
    use wasmc_format::vmoffsets::VMCounts;

    fn offsets() -> VMOffsets {
        VMOffsets::new(
            8,
            VMCounts {
                num_types: 3,
                num_imported_funcs: 1,
                num_defined_globals: 2,
                num_funcs: 4,
                ..Default::default()
            },
        )
    }

    #[test]
    fn header() {
        let o = offsets();
        assert_eq!(offset_of!(VMContextHeader, magic), o.vmctx_magic() as usize);
        assert_eq!(
            offset_of!(VMContextHeader, runtime_limits),
            o.vmctx_runtime_limits() as usize
        );
        assert_eq!(
            offset_of!(VMContextHeader, builtins),
            o.vmctx_builtins() as usize
        );
        assert_eq!(
            offset_of!(VMContextHeader, activations_table),
            o.vmctx_activations_table() as usize
        );
        assert_eq!(
            offset_of!(VMContextHeader, instance),
            o.vmctx_instance() as usize
        );
        assert_eq!(offset_of!(VMContextHeader, store), o.vmctx_store() as usize);
        assert!(size_of::<VMContextHeader>() <= o.vmctx_type_ids_begin() as usize);
    }

    #[test]
    fn runtime_limits() {
        let o = offsets();
        assert_eq!(
            offset_of!(VMRuntimeLimits, stack_limit),
            o.limits_stack_limit() as usize
        );
        assert_eq!(
            offset_of!(VMRuntimeLimits, last_wasm_exit_fp),
            o.limits_last_wasm_exit_fp() as usize
        );
        assert_eq!(
            offset_of!(VMRuntimeLimits, last_wasm_exit_pc),
            o.limits_last_wasm_exit_pc() as usize
        );
        assert_eq!(
            offset_of!(VMRuntimeLimits, last_wasm_entry_fp),
            o.limits_last_wasm_entry_fp() as usize
        );
        assert_eq!(
            offset_of!(VMRuntimeLimits, fuel_consumed),
            o.limits_fuel_consumed() as usize
        );
        assert_eq!(
            offset_of!(VMRuntimeLimits, epoch_deadline),
            o.limits_epoch_deadline() as usize
        );
        assert_eq!(
            offset_of!(VMRuntimeLimits, epoch_ptr),
            o.limits_epoch_ptr() as usize
        );
        assert_eq!(size_of::<VMRuntimeLimits>(), o.size_of_limits() as usize);
    }

    #[test]
    fn function_import() {
        let o = offsets();
        assert_eq!(
            offset_of!(VMFunctionImport, wasm_call),
            o.vmfunction_import_wasm_call() as usize
        );
        assert_eq!(
            offset_of!(VMFunctionImport, vmctx),
            o.vmfunction_import_vmctx() as usize
        );
        assert_eq!(
            size_of::<VMFunctionImport>(),
            o.size_of_vmfunction_import() as usize
        );
    }

    #[test]
    fn table_memory_global() {
        let o = offsets();
        assert_eq!(
            offset_of!(VMTableDefinition, base),
            o.vmtable_definition_base() as usize
        );
        assert_eq!(
            offset_of!(VMTableDefinition, current_elements),
            o.vmtable_definition_current_elements() as usize
        );
        assert_eq!(
            size_of::<VMTableDefinition>(),
            o.size_of_vmtable_definition() as usize
        );
        assert_eq!(size_of::<*mut u8>(), o.size_of_table_element() as usize);
        assert_eq!(
            offset_of!(VMMemoryDefinition, base),
            o.vmmemory_definition_base() as usize
        );
        assert_eq!(
            offset_of!(VMMemoryDefinition, current_length),
            o.vmmemory_definition_current_length() as usize
        );
        assert_eq!(
            size_of::<VMMemoryDefinition>(),
            o.size_of_vmmemory_definition() as usize
        );
        assert_eq!(
            size_of::<VMGlobalDefinition>(),
            wasmc_format::vmoffsets::GLOBAL_SIZE as usize
        );
        assert_eq!(o.vmctx_defined_global(0) % 16, 0);
    }

    #[test]
    fn func_ref_extern_data_host_ctx() {
        let o = offsets();
        assert_eq!(
            offset_of!(VMFuncRef, wasm_call),
            o.vm_func_ref_wasm_call() as usize
        );
        assert_eq!(offset_of!(VMFuncRef, vmctx), o.vm_func_ref_vmctx() as usize);
        assert_eq!(
            offset_of!(VMFuncRef, type_id),
            o.vm_func_ref_type_id() as usize
        );
        assert_eq!(size_of::<VMFuncRef>(), o.size_of_vmfunc_ref() as usize);
        assert_eq!(
            offset_of!(VMExternData, ref_count),
            o.vm_extern_data_ref_count() as usize
        );
        assert_eq!(
            offset_of!(VMHostFuncContext, magic),
            o.vmhostfunc_magic() as usize
        );
        assert_eq!(
            offset_of!(VMHostFuncContext, array_call),
            o.vmhostfunc_array_call() as usize
        );
        assert_eq!(
            offset_of!(VMExternRefActivationsTable, next),
            o.activations_table_next() as usize
        );
        assert_eq!(
            offset_of!(VMExternRefActivationsTable, end),
            o.activations_table_end() as usize
        );
        assert_eq!(size_of::<ValRaw>(), wasmc_format::VALUE_SLOT_SIZE as usize);
    }

    #[test]
    fn vmctx_is_aligned() {
        let a = VMContextAlloc::new(offsets()).unwrap();
        assert_eq!(a.vmctx() as usize % 16, 0);
    }
}
