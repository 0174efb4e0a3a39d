//! The layout of every runtime structure that compiled code touches.
//!
//! The compiler emits loads and stores at these offsets and the loader's
//! `#[repr(C)]` structs are checked against them (`offset_of!` assertions in
//! the loader), so the two sides cannot drift apart. All offsets depend only on
//! the pointer size `P` and the module's counts.
//!
//! ```text
//! struct VMContext {                       // 16-byte aligned
//!     magic: u32, _pad: u32                 // VMCONTEXT_MAGIC, for debug checks
//!     runtime_limits: *mut VMRuntimeLimits  // the store's, shared by its instances
//!     builtins: *const [fn; Builtin::COUNT] // libcall table, in builtin order
//!     activations_table: *mut VMExternRefActivationsTable
//!     instance: *mut ()                     // runtime-private
//!     store: *mut ()                        // runtime-private
//!     type_ids: [u32; num_types]            // runtime id of each type, for call_indirect
//!     imported_functions: [VMFunctionImport; num_imported_funcs]
//!     imported_tables: [*mut VMTableDefinition; num_imported_tables]
//!     imported_memories: [*mut VMMemoryDefinition; num_imported_memories]
//!     imported_globals: [*mut VMGlobalDefinition; num_imported_globals]
//!     defined_tables: [VMTableDefinition; num_defined_tables]
//!     defined_memories: [VMMemoryDefinition; num_defined_memories]
//!     defined_globals: [VMGlobalDefinition; num_defined_globals]   // 16-byte aligned
//!     func_refs: [VMFuncRef; num_funcs]     // one per function, imported ones too
//! }
//!
//! struct VMRuntimeLimits { stack_limit: usize, last_wasm_exit_fp: usize,
//!                          last_wasm_exit_pc: usize, last_wasm_entry_fp: usize,
//!                          fuel_consumed: i64,      // 8-aligned; minus the fuel left
//!                          epoch_deadline: u64,
//!                          epoch_ptr: *const AtomicU64 } // the engine's epoch
//! struct VMFunctionImport { wasm_call: *const u8, vmctx: *mut VMContext }
//! struct VMTableDefinition { base: *mut *mut u8, current_elements: u32, _pad }
//! struct VMMemoryDefinition { base: *mut u8, current_length: usize }
//! struct VMGlobalDefinition { storage: [u8; 16] }  // value at the start, LE
//! struct VMFuncRef { wasm_call: *const u8, vmctx: *mut VMContext, type_id: u32, _pad }
//! struct VMExternData { ref_count: usize, .. }      // what an externref points to
//! struct VMExternRefActivationsTable { next: *mut *mut VMExternData,
//!                                      end: *mut *mut VMExternData, .. }
//! struct VMHostFuncContext { magic: u32, _pad, array_call: fn, .. }
//! ```
//!
//! Calling conventions (all on the platform's C ABI, frame pointers kept):
//! - Wasm function: `fn(callee_vmctx, caller_vmctx, params...) -> results`.
//!   A `funcref` is a `*const VMFuncRef` (null for `ref.null`); an `externref`
//!   is a `*mut VMExternData` (null for `ref.null`); table elements are one
//!   pointer each. A *funcref table* element is tagged (see
//!   [`FUNCREF_INIT_BIT`]): `0` is "not initialised yet", anything else is
//!   `funcref | FUNCREF_INIT_BIT`. externref table elements are untagged.
//! - Builtin: `extern "C" fn(vmctx, args...) -> result`, see [`crate::builtins`];
//!   Wasm calls it through a compiled builtin trampoline that records the exit
//!   frame first.
//! - Host function: `VMHostFuncContext::array_call(callee_vmctx, caller_vmctx,
//!   values: *mut [u8; 16], len: usize)`, reached through the type's host
//!   trampoline ([`crate::TypeTrampolines`]).

use crate::ModuleInfo;

/// `VMContext::magic`.
pub const VMCONTEXT_MAGIC: u32 = u32::from_le_bytes(*b"wsmc");
/// `VMHostFuncContext::magic`.
pub const VMHOSTFUNC_MAGIC: u32 = u32::from_le_bytes(*b"host");
/// Tag bit of an initialised funcref table element (Wasmtime's
/// `FUNCREF_INIT_BIT`): a slot holds `0` until its element is initialised,
/// then `ptr | FUNCREF_INIT_BIT`, where `ptr` is a `*const VMFuncRef` or null
/// (an initialised null is `FUNCREF_INIT_BIT`). `VMFuncRef`s are at least
/// pointer-aligned, so the bit is free.
///
/// Compiled code reads a slot, and if the bit is clear calls the
/// `table_get_lazy_funcref` builtin, which initialises it from the module's
/// constant element segments (the loader decides which tables start
/// uninitialised; the others start with every element tagged). Every store
/// into a funcref table, compiled or runtime, sets the bit.
pub const FUNCREF_INIT_BIT: usize = 1;

/// Size of a `VMGlobalDefinition`.
pub const GLOBAL_SIZE: u32 = 16;

/// Counts that determine a VMContext's layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VMCounts {
    /// Entries of the type section.
    pub num_types: u32,
    /// Imported functions.
    pub num_imported_funcs: u32,
    /// Imported tables.
    pub num_imported_tables: u32,
    /// Imported memories.
    pub num_imported_memories: u32,
    /// Imported globals.
    pub num_imported_globals: u32,
    /// Defined tables.
    pub num_defined_tables: u32,
    /// Defined memories.
    pub num_defined_memories: u32,
    /// Defined globals.
    pub num_defined_globals: u32,
    /// All functions, imported and defined.
    pub num_funcs: u32,
}

impl VMCounts {
    /// The counts of a module.
    pub fn for_module(m: &ModuleInfo) -> VMCounts {
        VMCounts {
            num_types: m.types.len() as u32,
            num_imported_funcs: m.num_imported_funcs,
            num_imported_tables: m.num_imported_tables,
            num_imported_memories: m.num_imported_memories,
            num_imported_globals: m.num_imported_globals,
            num_defined_tables: m.tables.len() as u32 - m.num_imported_tables,
            num_defined_memories: m.memories.len() as u32 - m.num_imported_memories,
            num_defined_globals: m.globals.len() as u32 - m.num_imported_globals,
            num_funcs: m.num_funcs,
        }
    }
}

/// Offsets of the VMContext of one module and of the runtime structures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VMOffsets {
    /// Pointer size in bytes.
    pub ptr: u8,
    /// The counts the layout was computed from.
    pub counts: VMCounts,
    type_ids: u32,
    imported_functions: u32,
    imported_tables: u32,
    imported_memories: u32,
    imported_globals: u32,
    defined_tables: u32,
    defined_memories: u32,
    defined_globals: u32,
    func_refs: u32,
    size: u32,
}

fn align(v: u32, a: u32) -> u32 {
    v.div_ceil(a) * a
}

impl VMOffsets {
    /// Layout for `counts` with `ptr`-byte pointers.
    ///
    /// # Panics
    /// If the VMContext would exceed 4 GiB (the loader rejects such modules
    /// earlier through [`VMOffsets::checked`]).
    pub fn new(ptr: u8, counts: VMCounts) -> VMOffsets {
        Self::checked(ptr, counts).expect("VMContext size overflows u32")
    }

    /// Layout for `counts`, or `None` if it would not fit in 4 GiB.
    pub fn checked(ptr: u8, counts: VMCounts) -> Option<VMOffsets> {
        let p = u32::from(ptr);
        let arr = |start: u32, n: u32, size: u32| -> Option<u32> {
            start.checked_add(n.checked_mul(size)?)
        };
        let type_ids = 6 * p;
        let imported_functions = align(arr(type_ids, counts.num_types, 4)?, p);
        let imported_tables = arr(imported_functions, counts.num_imported_funcs, 2 * p)?;
        let imported_memories = arr(imported_tables, counts.num_imported_tables, p)?;
        let imported_globals = arr(imported_memories, counts.num_imported_memories, p)?;
        let defined_tables = arr(imported_globals, counts.num_imported_globals, p)?;
        let defined_memories = arr(defined_tables, counts.num_defined_tables, 2 * p)?;
        let defined_globals = align(
            arr(defined_memories, counts.num_defined_memories, 2 * p)?,
            16,
        );
        let func_refs = arr(defined_globals, counts.num_defined_globals, GLOBAL_SIZE)?;
        let size = align(arr(func_refs, counts.num_funcs, 3 * p)?, 16);
        Some(VMOffsets {
            ptr,
            counts,
            type_ids,
            imported_functions,
            imported_tables,
            imported_memories,
            imported_globals,
            defined_tables,
            defined_memories,
            defined_globals,
            func_refs,
            size,
        })
    }

    /// Layout for a module.
    pub fn for_module(ptr: u8, m: &ModuleInfo) -> VMOffsets {
        Self::new(ptr, VMCounts::for_module(m))
    }

    fn p(&self) -> u32 {
        u32::from(self.ptr)
    }

    // ----- VMContext header -----

    /// `VMContext::magic` (u32).
    pub fn vmctx_magic(&self) -> u32 {
        0
    }
    /// `VMContext::runtime_limits`.
    pub fn vmctx_runtime_limits(&self) -> u32 {
        self.p()
    }
    /// `VMContext::builtins`.
    pub fn vmctx_builtins(&self) -> u32 {
        2 * self.p()
    }
    /// `VMContext::activations_table`.
    pub fn vmctx_activations_table(&self) -> u32 {
        3 * self.p()
    }
    /// `VMContext::instance` (runtime-private).
    pub fn vmctx_instance(&self) -> u32 {
        4 * self.p()
    }
    /// `VMContext::store` (runtime-private).
    pub fn vmctx_store(&self) -> u32 {
        5 * self.p()
    }

    // ----- VMContext arrays -----

    /// Start of `type_ids`.
    pub fn vmctx_type_ids_begin(&self) -> u32 {
        self.type_ids
    }
    /// `type_ids[index]` (u32).
    pub fn vmctx_type_id(&self, index: u32) -> u32 {
        assert!(index < self.counts.num_types);
        self.type_ids + 4 * index
    }
    /// Start of `imported_functions`.
    pub fn vmctx_imported_functions_begin(&self) -> u32 {
        self.imported_functions
    }
    /// `imported_functions[index]`.
    pub fn vmctx_imported_function(&self, index: u32) -> u32 {
        assert!(index < self.counts.num_imported_funcs);
        self.imported_functions + index * self.size_of_vmfunction_import()
    }
    /// `imported_tables[index]` (a pointer).
    pub fn vmctx_imported_table(&self, index: u32) -> u32 {
        assert!(index < self.counts.num_imported_tables);
        self.imported_tables + index * self.p()
    }
    /// `imported_memories[index]` (a pointer).
    pub fn vmctx_imported_memory(&self, index: u32) -> u32 {
        assert!(index < self.counts.num_imported_memories);
        self.imported_memories + index * self.p()
    }
    /// `imported_globals[index]` (a pointer).
    pub fn vmctx_imported_global(&self, index: u32) -> u32 {
        assert!(index < self.counts.num_imported_globals);
        self.imported_globals + index * self.p()
    }
    /// `defined_tables[index]` (defined index).
    pub fn vmctx_defined_table(&self, index: u32) -> u32 {
        assert!(index < self.counts.num_defined_tables);
        self.defined_tables + index * self.size_of_vmtable_definition()
    }
    /// `defined_memories[index]` (defined index).
    pub fn vmctx_defined_memory(&self, index: u32) -> u32 {
        assert!(index < self.counts.num_defined_memories);
        self.defined_memories + index * self.size_of_vmmemory_definition()
    }
    /// `defined_globals[index]` (defined index).
    pub fn vmctx_defined_global(&self, index: u32) -> u32 {
        assert!(index < self.counts.num_defined_globals);
        self.defined_globals + index * GLOBAL_SIZE
    }
    /// `func_refs[index]` (function index space).
    pub fn vmctx_func_ref(&self, index: u32) -> u32 {
        assert!(index < self.counts.num_funcs);
        self.func_refs + index * self.size_of_vmfunc_ref()
    }
    /// Size of the whole VMContext (a multiple of 16).
    pub fn size_of_vmctx(&self) -> u32 {
        self.size
    }

    // ----- VMRuntimeLimits -----

    /// `VMRuntimeLimits::stack_limit`.
    pub fn limits_stack_limit(&self) -> u32 {
        0
    }
    /// `VMRuntimeLimits::last_wasm_exit_fp`.
    pub fn limits_last_wasm_exit_fp(&self) -> u32 {
        self.p()
    }
    /// `VMRuntimeLimits::last_wasm_exit_pc`.
    pub fn limits_last_wasm_exit_pc(&self) -> u32 {
        2 * self.p()
    }
    /// `VMRuntimeLimits::last_wasm_entry_fp`.
    pub fn limits_last_wasm_entry_fp(&self) -> u32 {
        3 * self.p()
    }
    /// `VMRuntimeLimits::fuel_consumed` (i64, 8-byte aligned): minus the
    /// fuel left; the code runs out of fuel when it reaches 0.
    pub fn limits_fuel_consumed(&self) -> u32 {
        align(4 * self.p(), 8)
    }
    /// `VMRuntimeLimits::epoch_deadline` (u64): the engine epoch at which
    /// the store's Wasm is interrupted.
    pub fn limits_epoch_deadline(&self) -> u32 {
        self.limits_fuel_consumed() + 8
    }
    /// `VMRuntimeLimits::epoch_ptr`: pointer to the engine's epoch counter
    /// (a `u64`, read with plain loads).
    pub fn limits_epoch_ptr(&self) -> u32 {
        self.limits_epoch_deadline() + 8
    }
    /// Size of `VMRuntimeLimits`.
    pub fn size_of_limits(&self) -> u32 {
        align(self.limits_epoch_ptr() + self.p(), 8)
    }

    // ----- other structures -----

    /// `VMFunctionImport::wasm_call`.
    pub fn vmfunction_import_wasm_call(&self) -> u32 {
        0
    }
    /// `VMFunctionImport::vmctx`.
    pub fn vmfunction_import_vmctx(&self) -> u32 {
        self.p()
    }
    /// Size of `VMFunctionImport`.
    pub fn size_of_vmfunction_import(&self) -> u32 {
        2 * self.p()
    }
    /// `VMTableDefinition::base`.
    pub fn vmtable_definition_base(&self) -> u32 {
        0
    }
    /// `VMTableDefinition::current_elements` (u32).
    pub fn vmtable_definition_current_elements(&self) -> u32 {
        self.p()
    }
    /// Size of `VMTableDefinition`.
    pub fn size_of_vmtable_definition(&self) -> u32 {
        2 * self.p()
    }
    /// Size of one table element (a pointer, for both reference types).
    pub fn size_of_table_element(&self) -> u32 {
        self.p()
    }
    /// `VMMemoryDefinition::base`.
    pub fn vmmemory_definition_base(&self) -> u32 {
        0
    }
    /// `VMMemoryDefinition::current_length` (usize, bytes).
    pub fn vmmemory_definition_current_length(&self) -> u32 {
        self.p()
    }
    /// Size of `VMMemoryDefinition`.
    pub fn size_of_vmmemory_definition(&self) -> u32 {
        2 * self.p()
    }
    /// `VMFuncRef::wasm_call`.
    pub fn vm_func_ref_wasm_call(&self) -> u32 {
        0
    }
    /// `VMFuncRef::vmctx`.
    pub fn vm_func_ref_vmctx(&self) -> u32 {
        self.p()
    }
    /// `VMFuncRef::type_id` (u32).
    pub fn vm_func_ref_type_id(&self) -> u32 {
        2 * self.p()
    }
    /// Size of `VMFuncRef`.
    pub fn size_of_vmfunc_ref(&self) -> u32 {
        3 * self.p()
    }
    /// `VMExternData::ref_count` (usize).
    pub fn vm_extern_data_ref_count(&self) -> u32 {
        0
    }
    /// `VMExternRefActivationsTable::next`.
    pub fn activations_table_next(&self) -> u32 {
        0
    }
    /// `VMExternRefActivationsTable::end`.
    pub fn activations_table_end(&self) -> u32 {
        self.p()
    }
    /// `VMHostFuncContext::magic` (u32).
    pub fn vmhostfunc_magic(&self) -> u32 {
        0
    }
    /// `VMHostFuncContext::array_call`.
    pub fn vmhostfunc_array_call(&self) -> u32 {
        self.p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_ordered_and_aligned() {
        let counts = VMCounts {
            num_types: 3,
            num_imported_funcs: 2,
            num_imported_tables: 1,
            num_imported_memories: 1,
            num_imported_globals: 2,
            num_defined_tables: 2,
            num_defined_memories: 1,
            num_defined_globals: 3,
            num_funcs: 5,
        };
        let o = VMOffsets::new(8, counts);
        assert_eq!(o.vmctx_type_id(0), 48);
        assert_eq!(o.vmctx_imported_function(0), 64);
        assert_eq!(o.vmctx_imported_table(0), 64 + 32);
        assert_eq!(o.vmctx_defined_global(0) % 16, 0);
        assert!(o.vmctx_func_ref(4) + o.size_of_vmfunc_ref() <= o.size_of_vmctx());
        assert_eq!(o.size_of_vmctx() % 16, 0);
    }

    #[test]
    fn runtime_limits_layout() {
        let o = VMOffsets::new(8, VMCounts::default());
        assert_eq!(o.limits_fuel_consumed(), 32);
        assert_eq!(o.limits_epoch_deadline(), 40);
        assert_eq!(o.limits_epoch_ptr(), 48);
        assert_eq!(o.size_of_limits(), 56);
        let o = VMOffsets::new(4, VMCounts::default());
        assert_eq!(o.limits_fuel_consumed(), 16);
        assert_eq!(o.limits_epoch_ptr(), 32);
        assert_eq!(o.size_of_limits(), 40);
    }

    #[test]
    fn huge_counts_are_refused() {
        let counts = VMCounts {
            num_funcs: u32::MAX,
            ..Default::default()
        };
        assert!(VMOffsets::checked(8, counts).is_none());
    }
}
