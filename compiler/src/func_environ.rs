//! `FuncEnvironment`: how cranelift-wasm's translation of a function body
//! reaches the VMContext, memories, tables, globals, other functions and the
//! runtime's builtins.
//!
//! This is the only code that emits VMContext accesses, and it takes every
//! offset from [`VMOffsets`]. It also records every SSA value that holds an
//! `externref` (call results, `table.get`, `global.get`, typed `select`,
//! parameters): the seeds from which `crate::stack_maps` finds every
//! reference live across a call. A value missed here would be invisible to
//! the collector. Nothing is declared to cranelift-frontend's own safepoint
//! spiller, which loses live references (see `stack_maps`).
//!
//! This file holds the translation hooks (what each Wasm operator that
//! touches the runtime becomes); `vmctx` holds the VMContext helpers they
//! call (vmctx, builtins, table and memory definitions, the activations
//! table) and the builtins' native signature; `target` says how Wasm types
//! map to the target (pointer type, which references need stack maps).
use crate::convert::{ir_type, wasm_signature};
use cranelift_codegen::cursor::FuncCursor;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::immediates::Offset32;
use cranelift_codegen::ir::{self, types, InstBuilder, MemFlags};
use cranelift_codegen::isa::TargetIsa;
use cranelift_entity::PrimaryMap;
use cranelift_frontend::FunctionBuilder;
use cranelift_wasm::{
    FuncEnvironment, FuncIndex, FuncTranslationState, GlobalIndex, GlobalVariable, Heap, HeapData,
    HeapStyle, MemoryIndex, TableIndex, TypeIndex, WasmHeapType, WasmResult,
};
use std::collections::HashMap;
use wasmc_format::builtins::Builtin;
use wasmc_format::vmoffsets::FUNCREF_INIT_BIT;
use wasmc_format::{
    FuncInfo, Interruption, MemoryStrategy, ModuleInfo, RefType, TrapCode, VMOffsets, ValType,
};
use wasmparser::Operator;

mod interrupt;
mod target;
mod vmctx;
use interrupt::InterruptState;
pub use vmctx::builtin_signature;

/// `UserExternalName` namespace of defined Wasm functions (index = function index).
pub const NS_WASM_FUNC: u32 = 0;
/// `UserExternalName` namespace of builtin trampolines (index = builtin index).
pub const NS_BUILTIN: u32 = 1;

/// Environment for translating one function.
pub struct FuncEnv<'a> {
    module: &'a ModuleInfo,
    /// The function index space.
    funcs: &'a [FuncInfo],
    isa: &'a dyn TargetIsa,
    offsets: VMOffsets,
    memory: MemoryStrategy,
    heaps: PrimaryMap<Heap, HeapData>,
    vmctx_gv: Option<ir::GlobalValue>,
    builtins: HashMap<Builtin, ir::FuncRef>,
    tables: HashMap<u32, (ir::GlobalValue, ir::GlobalValue)>,
    /// Wasm types of the values a typed `select` is about to produce.
    pending_select: Option<ValType>,
    /// Type of the function being translated.
    func_type: &'a wasmc_format::FuncType,
    /// Every externref value this environment produced (call results,
    /// `table.get`, `global.get`, typed `select`): with the function's
    /// externref parameters, the seeds from which `crate::stack_maps`
    /// finds the rest.
    refs: Vec<ir::Value>,
    /// Epoch and fuel instrumentation.
    interrupt: InterruptState,
}

impl<'a> FuncEnv<'a> {
    /// An environment for translating function `func_index` of `module`.
    pub fn new(
        module: &'a ModuleInfo,
        funcs: &'a [FuncInfo],
        isa: &'a dyn TargetIsa,
        memory: MemoryStrategy,
        interruption: Interruption,
        func_index: u32,
    ) -> Self {
        FuncEnv {
            func_type: &module.types[funcs[func_index as usize].type_index as usize],
            module,
            funcs,
            isa,
            offsets: VMOffsets::for_module(isa.pointer_bytes(), module),
            memory,
            heaps: PrimaryMap::new(),
            vmctx_gv: None,
            builtins: HashMap::new(),
            tables: HashMap::new(),
            pending_select: None,
            refs: Vec::new(),
            interrupt: InterruptState::new(interruption),
        }
    }

    /// Records `v`, a new externref value, for the stack maps.
    fn mark_ref(&mut self, _builder: &mut FunctionBuilder, v: ir::Value) {
        self.refs.push(v);
    }

    /// The externref values of the translated function `func`: those the
    /// translation produced and the function's externref parameters. The
    /// seeds of `crate::stack_maps::insert`.
    pub fn take_refs(&mut self, func: &ir::Function) -> Vec<ir::Value> {
        let mut refs = std::mem::take(&mut self.refs);
        if let Some(entry) = func.layout.entry_block() {
            // Parameters 0 and 1 are the two vmctx pointers.
            let params = func.dfg.block_params(entry);
            for (p, t) in params.iter().skip(2).zip(&self.func_type.params) {
                if *t == ValType::ExternRef {
                    refs.push(*p);
                }
            }
        }
        refs
    }
}

impl FuncEnvironment for FuncEnv<'_> {
    fn is_wasm_parameter(&self, _signature: &ir::Signature, index: usize) -> bool {
        // Parameters 0 and 1 are the callee and caller vmctx.
        index >= 2
    }

    fn param_needs_stack_map(&self, _signature: &ir::Signature, _index: usize) -> bool {
        // Declared to nobody: `crate::stack_maps` takes the parameters from
        // `take_refs` (cranelift-frontend's spiller must not run).
        false
    }

    // cranelift-wasm 0.112.3 (pinned) never calls the two hooks below: call
    // results that hold externrefs are declared in `translate_call` and
    // `translate_call_indirect`. A wrong `false` here would silently drop
    // references from stack maps, so a different version must fail loudly.
    fn sig_ref_result_needs_stack_map(&self, _sig_ref: ir::SigRef, _index: usize) -> bool {
        unreachable!("call results are declared in translate_call_indirect")
    }

    fn func_ref_result_needs_stack_map(
        &self,
        _func: &ir::Function,
        _func_ref: ir::FuncRef,
        _index: usize,
    ) -> bool {
        unreachable!("call results are declared in translate_call")
    }

    fn make_global(
        &mut self,
        func: &mut ir::Function,
        index: GlobalIndex,
    ) -> WasmResult<GlobalVariable> {
        let g = index.as_u32();
        let ty = self.module.globals[g as usize].ty.ty;
        if ty == ValType::ExternRef {
            return Ok(GlobalVariable::Custom);
        }
        let vmctx = self.vmctx(func);
        let o = self.offsets;
        let (gv, offset) = if g < self.module.num_imported_globals {
            (
                Self::load_gv(func, vmctx, o.vmctx_imported_global(g), self.ptr(), true),
                0,
            )
        } else {
            (
                vmctx,
                o.vmctx_defined_global(g - self.module.num_imported_globals),
            )
        };
        Ok(GlobalVariable::Memory {
            gv,
            offset: Offset32::new(offset as i32),
            ty: ir_type(ty, self.ptr()),
        })
    }

    fn heaps(&self) -> &PrimaryMap<Heap, HeapData> {
        &self.heaps
    }

    fn make_heap(&mut self, func: &mut ir::Function, index: MemoryIndex) -> WasmResult<Heap> {
        let m = index.as_u32();
        let mem = self.module.memories[m as usize];
        let (owner, off) = self.memory_def(func, m);
        let o = self.offsets;
        let ptr = self.ptr();
        let guard = self.memory == MemoryStrategy::Guard;
        // In guard mode the base never moves, so it may be loaded once.
        let base = Self::load_gv(func, owner, off + o.vmmemory_definition_base(), ptr, guard);
        let (style, offset_guard_size) = match self.memory {
            // The loader's sizes (format's constants), never chosen per
            // artifact: the loader reserves exactly these for every memory.
            MemoryStrategy::Guard if !mem.memory64 => (
                HeapStyle::Static {
                    bound: wasmc_format::memory::GUARD_RESERVATION,
                },
                wasmc_format::memory::GUARD_SIZE,
            ),
            // A 64-bit index can leave any reservation: every access is
            // compared with the current length, index + offset + size
            // included (no guard region is assumed after the current length:
            // an imported memory's layout is the exporter's).
            MemoryStrategy::Guard | MemoryStrategy::Explicit => {
                let bound_gv = Self::load_gv(
                    func,
                    owner,
                    off + o.vmmemory_definition_current_length(),
                    ptr,
                    false,
                );
                (HeapStyle::Dynamic { bound_gv }, 0)
            }
        };
        let page = wasmc_format::WASM_PAGE_SIZE;
        Ok(self.heaps.push(HeapData {
            base,
            min_size: mem.min.saturating_mul(page),
            max_size: mem.max.map(|m| m.saturating_mul(page)),
            offset_guard_size,
            style,
            index_type: if mem.memory64 { types::I64 } else { types::I32 },
            memory_type: None,
            page_size_log2: 16,
        }))
    }

    fn make_indirect_sig(
        &mut self,
        func: &mut ir::Function,
        index: TypeIndex,
    ) -> WasmResult<ir::SigRef> {
        let ty = &self.module.types[index.as_u32() as usize];
        Ok(func.import_signature(wasm_signature(ty, self.ptr())))
    }

    fn make_direct_func(
        &mut self,
        func: &mut ir::Function,
        index: FuncIndex,
    ) -> WasmResult<ir::FuncRef> {
        let f = index.as_u32();
        let ty = self.func_type_of(f);
        let signature = func.import_signature(wasm_signature(ty, self.ptr()));
        let name =
            ir::ExternalName::User(func.declare_imported_user_function(ir::UserExternalName {
                namespace: NS_WASM_FUNC,
                index: f,
            }));
        Ok(func.import_function(ir::ExtFuncData {
            name,
            signature,
            colocated: true,
        }))
    }

    fn translate_call(
        &mut self,
        builder: &mut FunctionBuilder,
        callee_index: FuncIndex,
        callee: ir::FuncRef,
        call_args: &[ir::Value],
    ) -> WasmResult<ir::Inst> {
        let f = callee_index.as_u32();
        let vmctx = Self::vmctx_val(builder.func);
        let mut args = Vec::with_capacity(call_args.len() + 2);
        let call = if f < self.module.num_imported_funcs {
            // An import: call through its VMFunctionImport.
            let (code, callee_vmctx) = self.imported_callee(builder, f);
            args.push(callee_vmctx);
            args.push(vmctx);
            args.extend_from_slice(call_args);
            let sig = builder.func.dfg.ext_funcs[callee].signature;
            builder.ins().call_indirect(sig, code, &args)
        } else {
            args.push(vmctx);
            args.push(vmctx);
            args.extend_from_slice(call_args);
            builder.ins().call(callee, &args)
        };
        let results = builder.inst_results(call).to_vec();
        let ty = self.func_type_of(f);
        self.declare_refs(builder, &results, &ty.results);
        Ok(call)
    }

    fn translate_return_call(
        &mut self,
        builder: &mut FunctionBuilder,
        callee_index: FuncIndex,
        callee: ir::FuncRef,
        call_args: &[ir::Value],
    ) -> WasmResult<()> {
        // The same arguments as `call`, but the callee replaces this frame
        // (`tail` calling convention). Nothing of this frame is live
        // afterwards, so a return_call is not a safepoint: the references
        // among the arguments are the callee's parameters, which it lists in
        // its own stack maps.
        let f = callee_index.as_u32();
        let vmctx = Self::vmctx_val(builder.func);
        let mut args = Vec::with_capacity(call_args.len() + 2);
        if f < self.module.num_imported_funcs {
            let (code, callee_vmctx) = self.imported_callee(builder, f);
            args.push(callee_vmctx);
            args.push(vmctx);
            args.extend_from_slice(call_args);
            let sig = builder.func.dfg.ext_funcs[callee].signature;
            builder.ins().return_call_indirect(sig, code, &args);
        } else {
            args.push(vmctx);
            args.push(vmctx);
            args.extend_from_slice(call_args);
            builder.ins().return_call(callee, &args);
        }
        Ok(())
    }

    fn translate_call_indirect(
        &mut self,
        builder: &mut FunctionBuilder,
        table_index: TableIndex,
        sig_index: TypeIndex,
        sig_ref: ir::SigRef,
        callee: ir::Value,
        call_args: &[ir::Value],
    ) -> WasmResult<Option<ir::Inst>> {
        let vmctx = Self::vmctx_val(builder.func);
        let (code, callee_vmctx) = self.indirect_callee(builder, table_index, sig_index, callee);
        let mut args = Vec::with_capacity(call_args.len() + 2);
        args.push(callee_vmctx);
        args.push(vmctx);
        args.extend_from_slice(call_args);
        let call = builder.ins().call_indirect(sig_ref, code, &args);
        let results = builder.inst_results(call).to_vec();
        let ty = &self.module.types[sig_index.as_u32() as usize];
        self.declare_refs(builder, &results, &ty.results);
        Ok(Some(call))
    }

    fn translate_return_call_indirect(
        &mut self,
        builder: &mut FunctionBuilder,
        table_index: TableIndex,
        sig_index: TypeIndex,
        sig_ref: ir::SigRef,
        callee: ir::Value,
        call_args: &[ir::Value],
    ) -> WasmResult<()> {
        // The checks of `call_indirect`, then a tail call (see
        // `translate_return_call`).
        let vmctx = Self::vmctx_val(builder.func);
        let (code, callee_vmctx) = self.indirect_callee(builder, table_index, sig_index, callee);
        let mut args = Vec::with_capacity(call_args.len() + 2);
        args.push(callee_vmctx);
        args.push(vmctx);
        args.extend_from_slice(call_args);
        builder.ins().return_call_indirect(sig_ref, code, &args);
        Ok(())
    }

    fn translate_return_call_ref(
        &mut self,
        _builder: &mut FunctionBuilder,
        _sig_ref: ir::SigRef,
        _callee: ir::Value,
        _call_args: &[ir::Value],
    ) -> WasmResult<()> {
        Err(cranelift_wasm::WasmError::Unsupported(
            "typed function references".into(),
        ))
    }

    fn translate_call_ref(
        &mut self,
        _builder: &mut FunctionBuilder,
        _sig_ref: ir::SigRef,
        _callee: ir::Value,
        _call_args: &[ir::Value],
    ) -> WasmResult<ir::Inst> {
        Err(cranelift_wasm::WasmError::Unsupported(
            "typed function references".into(),
        ))
    }

    fn translate_memory_grow(
        &mut self,
        mut pos: FuncCursor,
        index: MemoryIndex,
        _heap: Heap,
        val: ir::Value,
    ) -> WasmResult<ir::Value> {
        let mem = pos.ins().iconst(types::I32, i64::from(index.as_u32()));
        let delta = Self::to_i64(&mut pos, val);
        let old = self
            .call_builtin(&mut pos, Builtin::memory_grow, &[mem, delta])
            .expect("memory_grow returns");
        // The builtin returns the old size in pages or -1 as an i64; a
        // 32-bit memory's result is its low half.
        Ok(if self.is_memory64(index) {
            old
        } else {
            pos.ins().ireduce(types::I32, old)
        })
    }

    fn translate_memory_size(
        &mut self,
        mut pos: FuncCursor,
        index: MemoryIndex,
        _heap: Heap,
    ) -> WasmResult<ir::Value> {
        let ptr = self.ptr();
        let (owner, off) = self.memory_def(pos.func, index.as_u32());
        let len_gv = Self::load_gv(
            pos.func,
            owner,
            off + self.offsets.vmmemory_definition_current_length(),
            ptr,
            false,
        );
        let len = pos.ins().global_value(ptr, len_gv);
        let pages = pos.ins().ushr_imm(len, 16);
        let ty = if self.is_memory64(index) {
            types::I64
        } else {
            types::I32
        };
        Ok(match ptr.bits().cmp(&ty.bits()) {
            std::cmp::Ordering::Equal => pages,
            std::cmp::Ordering::Greater => pos.ins().ireduce(ty, pages),
            std::cmp::Ordering::Less => pos.ins().uextend(ty, pages),
        })
    }

    fn translate_memory_copy(
        &mut self,
        mut pos: FuncCursor,
        src_index: MemoryIndex,
        _src_heap: Heap,
        dst_index: MemoryIndex,
        _dst_heap: Heap,
        dst: ir::Value,
        src: ir::Value,
        len: ir::Value,
    ) -> WasmResult<()> {
        let dst_mem = pos.ins().iconst(types::I32, i64::from(dst_index.as_u32()));
        let src_mem = pos.ins().iconst(types::I32, i64::from(src_index.as_u32()));
        // Each operand is an i64 for a 64-bit memory, an i32 otherwise (the
        // length is an i64 only if both are 64-bit).
        let dst = Self::to_i64(&mut pos, dst);
        let src = Self::to_i64(&mut pos, src);
        let len = Self::to_i64(&mut pos, len);
        self.call_builtin(
            &mut pos,
            Builtin::memory_copy,
            &[dst_mem, dst, src_mem, src, len],
        );
        Ok(())
    }

    fn translate_memory_fill(
        &mut self,
        mut pos: FuncCursor,
        index: MemoryIndex,
        _heap: Heap,
        dst: ir::Value,
        val: ir::Value,
        len: ir::Value,
    ) -> WasmResult<()> {
        let mem = pos.ins().iconst(types::I32, i64::from(index.as_u32()));
        let dst = Self::to_i64(&mut pos, dst);
        let len = Self::to_i64(&mut pos, len);
        self.call_builtin(&mut pos, Builtin::memory_fill, &[mem, dst, val, len]);
        Ok(())
    }

    fn translate_memory_init(
        &mut self,
        mut pos: FuncCursor,
        index: MemoryIndex,
        _heap: Heap,
        seg_index: u32,
        dst: ir::Value,
        src: ir::Value,
        len: ir::Value,
    ) -> WasmResult<()> {
        let mem = pos.ins().iconst(types::I32, i64::from(index.as_u32()));
        let seg = pos.ins().iconst(types::I32, i64::from(seg_index));
        let dst = Self::to_i64(&mut pos, dst);
        self.call_builtin(&mut pos, Builtin::memory_init, &[mem, seg, dst, src, len]);
        Ok(())
    }

    fn translate_data_drop(&mut self, mut pos: FuncCursor, seg_index: u32) -> WasmResult<()> {
        let seg = pos.ins().iconst(types::I32, i64::from(seg_index));
        self.call_builtin(&mut pos, Builtin::data_drop, &[seg]);
        Ok(())
    }

    fn translate_table_size(
        &mut self,
        mut pos: FuncCursor,
        index: TableIndex,
    ) -> WasmResult<ir::Value> {
        let (_, bound) = self.table_gvs(pos.func, index.as_u32());
        let size = pos.ins().global_value(types::I32, bound);
        Ok(if self.is_table64(index) {
            pos.ins().uextend(types::I64, size)
        } else {
            size
        })
    }

    fn translate_table_grow(
        &mut self,
        mut pos: FuncCursor,
        table_index: TableIndex,
        delta: ir::Value,
        init_value: ir::Value,
    ) -> WasmResult<ir::Value> {
        let b = match self.table_elem(table_index) {
            RefType::FuncRef => Builtin::table_grow_func_ref,
            RefType::ExternRef => Builtin::table_grow_externref,
        };
        let t = pos
            .ins()
            .iconst(types::I32, i64::from(table_index.as_u32()));
        Ok(if self.is_table64(table_index) {
            self.table64_grow(&mut pos, b, t, delta, init_value)
        } else {
            self.call_builtin(&mut pos, b, &[t, delta, init_value])
                .expect("table_grow returns")
        })
    }

    fn translate_table_get(
        &mut self,
        builder: &mut FunctionBuilder,
        table_index: TableIndex,
        index: ir::Value,
    ) -> WasmResult<ir::Value> {
        match self.table_elem(table_index) {
            RefType::FuncRef => Ok(self.funcref_table_get(
                builder,
                table_index.as_u32(),
                index,
                TrapCode::TableOutOfBounds,
            )),
            RefType::ExternRef => {
                let addr = self.table_elem_addr(
                    builder,
                    table_index.as_u32(),
                    index,
                    TrapCode::TableOutOfBounds,
                );
                let v = builder.ins().load(self.ptr(), MemFlags::trusted(), addr, 0);
                self.activations_table_insert(builder, v);
                self.mark_ref(builder, v);
                Ok(v)
            }
        }
    }

    fn translate_table_set(
        &mut self,
        builder: &mut FunctionBuilder,
        table_index: TableIndex,
        value: ir::Value,
        index: ir::Value,
    ) -> WasmResult<()> {
        match self.table_elem(table_index) {
            RefType::FuncRef => {
                let addr = self.table_elem_addr(
                    builder,
                    table_index.as_u32(),
                    index,
                    TrapCode::TableOutOfBounds,
                );
                // Stored tagged: an initialised element (`FUNCREF_INIT_BIT`).
                let tagged = builder.ins().bor_imm(value, FUNCREF_INIT_BIT as i64);
                builder.ins().store(MemFlags::trusted(), tagged, addr, 0);
            }
            RefType::ExternRef => {
                let index = Self::table_operand(&mut builder.cursor(), index);
                let t = builder
                    .ins()
                    .iconst(types::I32, i64::from(table_index.as_u32()));
                self.call_builtin(
                    &mut builder.cursor(),
                    Builtin::table_set_externref,
                    &[t, index, value],
                );
            }
        }
        Ok(())
    }

    fn translate_table_copy(
        &mut self,
        mut pos: FuncCursor,
        dst_table_index: TableIndex,
        src_table_index: TableIndex,
        dst: ir::Value,
        src: ir::Value,
        len: ir::Value,
    ) -> WasmResult<()> {
        let dt = pos
            .ins()
            .iconst(types::I32, i64::from(dst_table_index.as_u32()));
        let st = pos
            .ins()
            .iconst(types::I32, i64::from(src_table_index.as_u32()));
        let dst = Self::table_operand(&mut pos, dst);
        let src = Self::table_operand(&mut pos, src);
        let len = Self::table_operand(&mut pos, len);
        self.call_builtin(&mut pos, Builtin::table_copy, &[dt, st, dst, src, len]);
        Ok(())
    }

    fn translate_table_fill(
        &mut self,
        mut pos: FuncCursor,
        table_index: TableIndex,
        dst: ir::Value,
        val: ir::Value,
        len: ir::Value,
    ) -> WasmResult<()> {
        let b = match self.table_elem(table_index) {
            RefType::FuncRef => Builtin::table_fill_func_ref,
            RefType::ExternRef => Builtin::table_fill_externref,
        };
        let t = pos
            .ins()
            .iconst(types::I32, i64::from(table_index.as_u32()));
        let dst = Self::table_operand(&mut pos, dst);
        let len = Self::table_operand(&mut pos, len);
        self.call_builtin(&mut pos, b, &[t, dst, val, len]);
        Ok(())
    }

    fn translate_table_init(
        &mut self,
        mut pos: FuncCursor,
        seg_index: u32,
        table_index: TableIndex,
        dst: ir::Value,
        src: ir::Value,
        len: ir::Value,
    ) -> WasmResult<()> {
        let t = pos
            .ins()
            .iconst(types::I32, i64::from(table_index.as_u32()));
        let seg = pos.ins().iconst(types::I32, i64::from(seg_index));
        let dst = Self::table_operand(&mut pos, dst);
        self.call_builtin(&mut pos, Builtin::table_init, &[t, seg, dst, src, len]);
        Ok(())
    }

    fn translate_elem_drop(&mut self, mut pos: FuncCursor, seg_index: u32) -> WasmResult<()> {
        let seg = pos.ins().iconst(types::I32, i64::from(seg_index));
        self.call_builtin(&mut pos, Builtin::elem_drop, &[seg]);
        Ok(())
    }

    fn translate_ref_null(
        &mut self,
        mut pos: FuncCursor,
        _ty: WasmHeapType,
    ) -> WasmResult<ir::Value> {
        Ok(pos.ins().iconst(self.ptr(), 0))
    }

    fn translate_ref_is_null(
        &mut self,
        mut pos: FuncCursor,
        value: ir::Value,
    ) -> WasmResult<ir::Value> {
        let is_null = pos.ins().icmp_imm(IntCC::Equal, value, 0);
        Ok(pos.ins().uextend(types::I32, is_null))
    }

    fn translate_ref_func(
        &mut self,
        mut pos: FuncCursor,
        func_index: FuncIndex,
    ) -> WasmResult<ir::Value> {
        // The instance's funcrefs are filled in on first use (the loader's
        // lazy initialisation), so the address comes from the runtime:
        //
        //     func_ref = call ref_func(vmctx, func_index)
        let f = pos.ins().iconst(types::I32, i64::from(func_index.as_u32()));
        Ok(self
            .call_builtin(&mut pos, Builtin::ref_func, &[f])
            .expect("ref_func returns"))
    }

    fn translate_custom_global_get(
        &mut self,
        builder: &mut FunctionBuilder,
        global_index: GlobalIndex,
    ) -> WasmResult<ir::Value> {
        let g = global_index.as_u32();
        let o = self.offsets;
        let vmctx = Self::vmctx_val(builder.func);
        let ptr = self.ptr();
        let v = if g < self.module.num_imported_globals {
            let def = builder.ins().load(
                ptr,
                MemFlags::trusted().with_readonly(),
                vmctx,
                o.vmctx_imported_global(g) as i32,
            );
            builder.ins().load(ptr, MemFlags::trusted(), def, 0)
        } else {
            let off = o.vmctx_defined_global(g - self.module.num_imported_globals);
            builder
                .ins()
                .load(ptr, MemFlags::trusted(), vmctx, off as i32)
        };
        self.activations_table_insert(builder, v);
        self.mark_ref(builder, v);
        Ok(v)
    }

    fn translate_custom_global_set(
        &mut self,
        builder: &mut FunctionBuilder,
        global_index: GlobalIndex,
        val: ir::Value,
    ) -> WasmResult<()> {
        let g = builder
            .ins()
            .iconst(types::I32, i64::from(global_index.as_u32()));
        self.call_builtin(
            &mut builder.cursor(),
            Builtin::global_set_externref,
            &[g, val],
        );
        Ok(())
    }

    fn translate_atomic_wait(
        &mut self,
        _pos: FuncCursor,
        _index: MemoryIndex,
        _heap: Heap,
        _addr: ir::Value,
        _expected: ir::Value,
        _timeout: ir::Value,
    ) -> WasmResult<ir::Value> {
        Err(cranelift_wasm::WasmError::Unsupported("threads".into()))
    }

    fn translate_atomic_notify(
        &mut self,
        _pos: FuncCursor,
        _index: MemoryIndex,
        _heap: Heap,
        _addr: ir::Value,
        _count: ir::Value,
    ) -> WasmResult<ir::Value> {
        Err(cranelift_wasm::WasmError::Unsupported("threads".into()))
    }

    fn translate_ref_i31(&mut self, _pos: FuncCursor, _val: ir::Value) -> WasmResult<ir::Value> {
        Err(cranelift_wasm::WasmError::Unsupported("gc".into()))
    }

    fn translate_i31_get_s(
        &mut self,
        _pos: FuncCursor,
        _i31ref: ir::Value,
    ) -> WasmResult<ir::Value> {
        Err(cranelift_wasm::WasmError::Unsupported("gc".into()))
    }

    fn translate_i31_get_u(
        &mut self,
        _pos: FuncCursor,
        _i31ref: ir::Value,
    ) -> WasmResult<ir::Value> {
        Err(cranelift_wasm::WasmError::Unsupported("gc".into()))
    }

    fn after_locals(&mut self, num_locals_defined: usize) {
        self.interrupt.after_locals(num_locals_defined);
    }

    fn before_translate_function(
        &mut self,
        builder: &mut FunctionBuilder,
        _state: &FuncTranslationState,
    ) -> WasmResult<()> {
        self.interrupt_function_entry(builder);
        Ok(())
    }

    fn translate_loop_header(&mut self, builder: &mut FunctionBuilder) -> WasmResult<()> {
        self.interrupt_loop_header(builder);
        Ok(())
    }

    fn handle_before_return(&mut self, _retvals: &[ir::Value], builder: &mut FunctionBuilder) {
        self.interrupt_before_return(builder);
    }

    fn before_translate_operator(
        &mut self,
        op: &Operator,
        builder: &mut FunctionBuilder,
        state: &FuncTranslationState,
    ) -> WasmResult<()> {
        self.interrupt_before_op(op, builder, state.reachable());
        self.pending_select = None;
        if let Operator::TypedSelect { ty } = op {
            if state.reachable() {
                self.pending_select = Some(
                    crate::translate::val_type(*ty)
                        .map_err(|e| cranelift_wasm::WasmError::Unsupported(e.to_string()))?,
                );
            }
        }
        Ok(())
    }

    fn after_translate_operator(
        &mut self,
        op: &Operator,
        builder: &mut FunctionBuilder,
        state: &FuncTranslationState,
    ) -> WasmResult<()> {
        self.interrupt_after_op(op, builder, state.reachable());
        // A typed select of externrefs makes a new reference value: the
        // select just emitted is the last instruction of the current block.
        if self.pending_select.take() == Some(ValType::ExternRef) {
            let block = builder
                .current_block()
                .expect("select emitted into a block");
            let inst = builder
                .func
                .layout
                .last_inst(block)
                .expect("select emitted");
            debug_assert_eq!(builder.func.dfg.insts[inst].opcode(), ir::Opcode::Select);
            let v = builder.func.dfg.first_result(inst);
            self.mark_ref(builder, v);
        }
        Ok(())
    }

    fn relaxed_simd_deterministic(&self) -> bool {
        // One semantics for every relaxed instruction on every host: see
        // `relaxed.rs` and docs/implementation-notes.md.
        true
    }

    fn is_x86(&self) -> bool {
        self.isa.triple().architecture == target_lexicon::Architecture::X86_64
    }
}
