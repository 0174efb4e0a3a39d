//! `FuncEnvironment`: how cranelift-wasm's translation of a function body
//! reaches the VMContext, memories, tables, globals, other functions and the
//! runtime's builtins.
//!
//! This is the only code that emits VMContext accesses, and it takes every
//! offset from [`VMOffsets`]. It is also responsible for marking every SSA value
//! that holds an `externref` as needing a stack map (call results, `table.get`,
//! `global.get`, typed `select`); cranelift-wasm itself only marks locals and
//! block parameters, and a value missed here would be invisible to the
//! collector.
//!
//! cranelift-frontend 0.112 also misses one class on its own: the block
//! parameters that SSA construction synthesizes for a stack-map variable
//! while it looks the variable up (a local live around a loop). Those are
//! marked by [`propagate_stack_map_marks`] once the body is translated, before
//! `FunctionBuilder::finalize` runs the safepoint spiller (issue 10, bug 2).

use crate::convert::{ir_type, trap_to_ir, wasm_signature};
use cranelift_codegen::cursor::FuncCursor;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::immediates::Offset32;
use cranelift_codegen::ir::{self, types, AbiParam, ArgumentPurpose, InstBuilder, MemFlags};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig, TargetIsa};
use cranelift_entity::PrimaryMap;
use cranelift_frontend::FunctionBuilder;
use cranelift_wasm::{
    FuncEnvironment, FuncIndex, FuncTranslationState, GlobalIndex, GlobalVariable, Heap, HeapData,
    HeapStyle, MemoryIndex, TableIndex, TargetEnvironment, TypeConvert, TypeIndex, WasmHeapType,
    WasmResult,
};
use std::collections::{HashMap, HashSet};
use wasmc_format::builtins::{Builtin, BuiltinType};
use wasmc_format::{FuncInfo, MemoryStrategy, ModuleInfo, RefType, TrapCode, VMOffsets, ValType};
use wasmparser::Operator;

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
    /// `table.get`, `global.get`, typed `select`): the seeds from which
    /// [`propagate_stack_map_marks`] finds the rest.
    refs: Vec<ir::Value>,
}

impl<'a> FuncEnv<'a> {
    /// An environment for translating function `func_index` of `module`.
    pub fn new(
        module: &'a ModuleInfo,
        funcs: &'a [FuncInfo],
        isa: &'a dyn TargetIsa,
        memory: MemoryStrategy,
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
        }
    }

    /// Marks `v`, a new externref value, as needing a stack map.
    fn mark_ref(&mut self, builder: &mut FunctionBuilder, v: ir::Value) {
        builder.declare_value_needs_stack_map(v);
        self.refs.push(v);
    }

    /// The signature of function `f` (an index the validator checked).
    fn func_type_of(&self, f: u32) -> &'a wasmc_format::FuncType {
        &self.module.types[self.funcs[f as usize].type_index as usize]
    }

    fn ptr(&self) -> ir::Type {
        self.isa.pointer_type()
    }

    fn cc(&self) -> CallConv {
        self.isa.default_call_conv()
    }

    fn vmctx(&mut self, func: &mut ir::Function) -> ir::GlobalValue {
        *self
            .vmctx_gv
            .get_or_insert_with(|| func.create_global_value(ir::GlobalValueData::VMContext))
    }

    fn load_gv(
        func: &mut ir::Function,
        base: ir::GlobalValue,
        offset: u32,
        ty: ir::Type,
        readonly: bool,
    ) -> ir::GlobalValue {
        let mut flags = MemFlags::trusted();
        if readonly {
            flags = flags.with_readonly();
        }
        func.create_global_value(ir::GlobalValueData::Load {
            base,
            offset: Offset32::new(offset as i32),
            global_type: ty,
            flags,
        })
    }

    fn vmctx_val(func: &ir::Function) -> ir::Value {
        func.special_param(ArgumentPurpose::VMContext)
            .expect("wasm function has a vmctx parameter")
    }

    /// The builtin trampoline for `b`, declared in `func`.
    fn builtin(&mut self, func: &mut ir::Function, b: Builtin) -> ir::FuncRef {
        if let Some(f) = self.builtins.get(&b) {
            return *f;
        }
        let sig = func.import_signature(builtin_signature(b, self.ptr(), self.cc()));
        let name =
            ir::ExternalName::User(func.declare_imported_user_function(ir::UserExternalName {
                namespace: NS_BUILTIN,
                index: b.index(),
            }));
        let f = func.import_function(ir::ExtFuncData {
            name,
            signature: sig,
            colocated: true,
        });
        self.builtins.insert(b, f);
        f
    }

    fn call_builtin(
        &mut self,
        pos: &mut FuncCursor,
        b: Builtin,
        args: &[ir::Value],
    ) -> Option<ir::Value> {
        let f = self.builtin(pos.func, b);
        let vmctx = Self::vmctx_val(pos.func);
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(vmctx);
        all.extend_from_slice(args);
        let call = pos.ins().call(f, &all);
        pos.func.dfg.inst_results(call).first().copied()
    }

    /// (base, current_elements) global values of `table`.
    fn table_gvs(
        &mut self,
        func: &mut ir::Function,
        table: u32,
    ) -> (ir::GlobalValue, ir::GlobalValue) {
        if let Some(t) = self.tables.get(&table) {
            return *t;
        }
        let vmctx = self.vmctx(func);
        let ptr = self.ptr();
        let o = self.offsets;
        let (owner, off) = if table < self.module.num_imported_tables {
            let def = Self::load_gv(func, vmctx, o.vmctx_imported_table(table), ptr, true);
            (def, 0)
        } else {
            (
                vmctx,
                o.vmctx_defined_table(table - self.module.num_imported_tables),
            )
        };
        let base = Self::load_gv(func, owner, off + o.vmtable_definition_base(), ptr, false);
        let bound = Self::load_gv(
            func,
            owner,
            off + o.vmtable_definition_current_elements(),
            types::I32,
            false,
        );
        self.tables.insert(table, (base, bound));
        (base, bound)
    }

    /// Address of element `index` of `table`, trapping with `code` when out of bounds.
    fn table_elem_addr(
        &mut self,
        builder: &mut FunctionBuilder,
        table: u32,
        index: ir::Value,
        code: TrapCode,
    ) -> ir::Value {
        let (base_gv, bound_gv) = self.table_gvs(builder.func, table);
        let ptr = self.ptr();
        let bound = builder.ins().global_value(types::I32, bound_gv);
        let oob = builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, bound);
        builder.ins().trapnz(oob, trap_to_ir(code));
        let idx = builder.ins().uextend(ptr, index);
        let shift = self.offsets.size_of_table_element().trailing_zeros();
        let off = builder.ins().ishl_imm(idx, i64::from(shift));
        let base = builder.ins().global_value(ptr, base_gv);
        let addr = builder.ins().iadd(base, off);
        // Keep a mispredicted bounds check from reading past the table.
        let zero = builder.ins().iconst(ptr, 0);
        builder.ins().select_spectre_guard(oob, zero, addr)
    }

    /// Clones externref `v` (which something else keeps alive: a table or a
    /// global) into the store's activations table, so that it stays alive for
    /// as long as this activation may use it:
    ///
    /// ```text
    ///     brif v, nonnull, done
    /// nonnull:
    ///     act  = load vmctx.activations_table
    ///     next = load act.next ; end = load act.end
    ///     brif (next >= end), slow, fast
    /// fast:
    ///     store v, next ; store next + P, act.next
    ///     atomic_rmw add v.ref_count, 1
    ///     jump done
    /// slow:
    ///     call activations_table_insert_slow(vmctx, v)   ; may collect
    ///     jump done
    /// done:
    /// ```
    fn activations_table_insert(&mut self, builder: &mut FunctionBuilder, v: ir::Value) {
        let o = self.offsets;
        let ptr = self.ptr();
        let vmctx = Self::vmctx_val(builder.func);
        let nonnull = builder.create_block();
        let fast = builder.create_block();
        let slow = builder.create_block();
        let done = builder.create_block();
        builder.set_cold_block(slow);
        builder.ins().brif(v, nonnull, &[], done, &[]);

        builder.switch_to_block(nonnull);
        builder.seal_block(nonnull);
        let flags = MemFlags::trusted();
        let act = builder.ins().load(
            ptr,
            flags.with_readonly(),
            vmctx,
            o.vmctx_activations_table() as i32,
        );
        let next = builder
            .ins()
            .load(ptr, flags, act, o.activations_table_next() as i32);
        let end = builder
            .ins()
            .load(ptr, flags, act, o.activations_table_end() as i32);
        let full = builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, next, end);
        builder.ins().brif(full, slow, &[], fast, &[]);

        builder.switch_to_block(fast);
        builder.seal_block(fast);
        builder.ins().store(flags, v, next, 0);
        let bumped = builder.ins().iadd_imm(next, i64::from(o.ptr));
        builder
            .ins()
            .store(flags, bumped, act, o.activations_table_next() as i32);
        let one = builder.ins().iconst(ptr, 1);
        let count = builder
            .ins()
            .iadd_imm(v, i64::from(o.vm_extern_data_ref_count()));
        builder
            .ins()
            .atomic_rmw(ptr, flags, ir::AtomicRmwOp::Add, count, one);
        builder.ins().jump(done, &[]);

        builder.switch_to_block(slow);
        builder.seal_block(slow);
        self.call_builtin(
            &mut builder.cursor(),
            Builtin::activations_table_insert_slow,
            &[v],
        );
        builder.ins().jump(done, &[]);

        builder.switch_to_block(done);
        builder.seal_block(done);
    }

    fn table_elem(&self, table: TableIndex) -> RefType {
        self.module.tables[table.as_u32() as usize].elem
    }

    fn declare_refs(
        &mut self,
        builder: &mut FunctionBuilder,
        values: &[ir::Value],
        tys: &[ValType],
    ) {
        for (v, t) in values.iter().zip(tys) {
            if *t == ValType::ExternRef {
                self.mark_ref(builder, *v);
            }
        }
    }

    /// (base pointer owner, offset of the VMMemoryDefinition in it) for `memory`.
    fn memory_def(&mut self, func: &mut ir::Function, memory: u32) -> (ir::GlobalValue, u32) {
        let vmctx = self.vmctx(func);
        let o = self.offsets;
        if memory < self.module.num_imported_memories {
            let def = Self::load_gv(
                func,
                vmctx,
                o.vmctx_imported_memory(memory),
                self.ptr(),
                true,
            );
            (def, 0)
        } else {
            (
                vmctx,
                o.vmctx_defined_memory(memory - self.module.num_imported_memories),
            )
        }
    }
}

/// Marks every block parameter that an externref can reach through branch
/// arguments as needing a stack map, starting from `seeds` (every externref
/// value the translation produced other than block parameters).
///
/// cranelift-frontend 0.112 marks the values `use_var` returns and
/// `def_var` receives for a stack-map variable, but not the block parameters
/// its SSA construction adds in *other* blocks while resolving a lookup
/// (upstream fixed this class much later). Such a parameter carries the
/// reference around a loop without being spilled at the calls inside it:
///
/// ```text
/// block1(v9: i64):              ;; synthesized for local $r: not marked
///     call fn0(...)             ;; safepoint: v9 live, not in the stack map
///     brif v3, block1(v9), block2
/// ```
///
/// Every non-parameter externref value is a seed (a function parameter, call
/// result, `table.get`, `global.get`, typed `select`; `ref.null` is null and
/// needs none), and a block parameter holds an externref exactly when one of
/// its incoming arguments does (Wasm validation gives every argument of a
/// parameter the same type), so a forward closure over branch arguments finds
/// them all without ever marking an integer. Aliases (parameters the SSA
/// builder found redundant) are resolved first: the spiller resolves them
/// too before it looks a use up.
///
/// This must run before `FunctionBuilder::finalize`, which runs the spiller.
fn propagate_stack_map_marks(builder: &mut FunctionBuilder, seeds: &[ir::Value]) {
    let func = &*builder.func;
    // Branch argument -> the block parameters it is passed to.
    let mut flows: HashMap<ir::Value, Vec<ir::Value>> = HashMap::new();
    for block in func.layout.blocks() {
        for inst in func.layout.block_insts(block) {
            for call in func.dfg.insts[inst].branch_destination(&func.dfg.jump_tables) {
                let target = call.block(&func.dfg.value_lists);
                let args = call.args_slice(&func.dfg.value_lists);
                for (arg, param) in args.iter().zip(func.dfg.block_params(target)) {
                    flows
                        .entry(func.dfg.resolve_aliases(*arg))
                        .or_default()
                        .push(*param);
                }
            }
        }
    }
    let mut marked: HashSet<ir::Value> = HashSet::new();
    let mut work: Vec<ir::Value> = seeds.iter().map(|v| func.dfg.resolve_aliases(*v)).collect();
    while let Some(v) = work.pop() {
        if marked.insert(v) {
            if let Some(params) = flows.get(&v) {
                work.extend(params.iter().copied());
            }
        }
    }
    // The frontend keeps its marks in a bit set: the order is irrelevant.
    for v in marked {
        builder.declare_value_needs_stack_map(v);
    }
}

/// The native signature of the builtin trampoline (and builtin) `b`.
pub fn builtin_signature(b: Builtin, ptr: ir::Type, cc: CallConv) -> ir::Signature {
    let conv = |t: BuiltinType| match t {
        BuiltinType::I32 => types::I32,
        BuiltinType::I64 => types::I64,
        BuiltinType::Ptr | BuiltinType::Ref => ptr,
    };
    let mut sig = ir::Signature::new(cc);
    sig.params
        .push(AbiParam::special(ptr, ArgumentPurpose::VMContext));
    sig.params
        .extend(b.params().iter().map(|t| AbiParam::new(conv(*t))));
    sig.returns
        .extend(b.result().map(|t| AbiParam::new(conv(t))));
    sig
}

impl TypeConvert for FuncEnv<'_> {
    fn lookup_heap_type(&self, _index: wasmparser::UnpackedIndex) -> WasmHeapType {
        // Typed function references are not enabled, so validation has
        // already rejected every concrete heap type.
        unreachable!("concrete heap types are not enabled")
    }

    fn lookup_type_index(
        &self,
        _index: wasmparser::UnpackedIndex,
    ) -> cranelift_wasm::EngineOrModuleTypeIndex {
        unreachable!("concrete heap types are not enabled")
    }
}

impl TargetEnvironment for FuncEnv<'_> {
    fn target_config(&self) -> TargetFrontendConfig {
        self.isa.frontend_config()
    }

    fn heap_access_spectre_mitigation(&self) -> bool {
        self.isa.flags().enable_heap_access_spectre_mitigation()
    }

    fn proof_carrying_code(&self) -> bool {
        false
    }

    fn reference_type(&self, ty: WasmHeapType) -> (ir::Type, bool) {
        // externrefs are reference counted with deferred counting: the
        // collector must find every one live in a frame. funcrefs point into
        // VMContexts that outlive the call, so they need no stack map.
        (
            self.ptr(),
            matches!(ty, WasmHeapType::Extern | WasmHeapType::NoExtern),
        )
    }
}

impl FuncEnvironment for FuncEnv<'_> {
    fn is_wasm_parameter(&self, _signature: &ir::Signature, index: usize) -> bool {
        // Parameters 0 and 1 are the callee and caller vmctx.
        index >= 2
    }

    fn param_needs_stack_map(&self, signature: &ir::Signature, index: usize) -> bool {
        // Called for the parameters of the function being translated.
        debug_assert_eq!(signature.params.len(), self.func_type.params.len() + 2);
        index >= 2 && self.func_type.params.get(index - 2) == Some(&ValType::ExternRef)
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
        let guard = matches!(self.memory, MemoryStrategy::Guard { .. });
        // In guard mode the base never moves, so it may be loaded once.
        let base = Self::load_gv(func, owner, off + o.vmmemory_definition_base(), ptr, guard);
        let (style, offset_guard_size) = match self.memory {
            MemoryStrategy::Guard { reservation, guard } => {
                (HeapStyle::Static { bound: reservation }, guard)
            }
            MemoryStrategy::Explicit => {
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
            index_type: types::I32,
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
        Ok(func.import_signature(wasm_signature(ty, self.ptr(), self.cc())))
    }

    fn make_direct_func(
        &mut self,
        func: &mut ir::Function,
        index: FuncIndex,
    ) -> WasmResult<ir::FuncRef> {
        let f = index.as_u32();
        let ty = self.func_type_of(f);
        let signature = func.import_signature(wasm_signature(ty, self.ptr(), self.cc()));
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
            let o = self.offsets;
            let base = o.vmctx_imported_function(f);
            let ptr = self.ptr();
            let flags = MemFlags::trusted().with_readonly();
            let code = builder.ins().load(
                ptr,
                flags,
                vmctx,
                (base + o.vmfunction_import_wasm_call()) as i32,
            );
            let callee_vmctx = builder.ins().load(
                ptr,
                flags,
                vmctx,
                (base + o.vmfunction_import_vmctx()) as i32,
            );
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

    fn translate_call_indirect(
        &mut self,
        builder: &mut FunctionBuilder,
        table_index: TableIndex,
        sig_index: TypeIndex,
        sig_ref: ir::SigRef,
        callee: ir::Value,
        call_args: &[ir::Value],
    ) -> WasmResult<Option<ir::Inst>> {
        let o = self.offsets;
        let ptr = self.ptr();
        let vmctx = Self::vmctx_val(builder.func);
        let addr = self.table_elem_addr(
            builder,
            table_index.as_u32(),
            callee,
            TrapCode::UndefinedElement,
        );
        let func_ref = builder.ins().load(ptr, MemFlags::trusted(), addr, 0);
        builder
            .ins()
            .trapz(func_ref, trap_to_ir(TrapCode::IndirectCallToNull));
        let actual = builder.ins().load(
            types::I32,
            MemFlags::trusted(),
            func_ref,
            o.vm_func_ref_type_id() as i32,
        );
        let expected = builder.ins().load(
            types::I32,
            MemFlags::trusted().with_readonly(),
            vmctx,
            o.vmctx_type_id(sig_index.as_u32()) as i32,
        );
        let mismatch = builder.ins().icmp(IntCC::NotEqual, actual, expected);
        builder
            .ins()
            .trapnz(mismatch, trap_to_ir(TrapCode::BadSignature));
        let code = builder.ins().load(
            ptr,
            MemFlags::trusted(),
            func_ref,
            o.vm_func_ref_wasm_call() as i32,
        );
        let callee_vmctx = builder.ins().load(
            ptr,
            MemFlags::trusted(),
            func_ref,
            o.vm_func_ref_vmctx() as i32,
        );
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
        _builder: &mut FunctionBuilder,
        _table_index: TableIndex,
        _sig_index: TypeIndex,
        _sig_ref: ir::SigRef,
        _callee: ir::Value,
        _call_args: &[ir::Value],
    ) -> WasmResult<()> {
        Err(cranelift_wasm::WasmError::Unsupported("tail calls".into()))
    }

    fn translate_return_call_ref(
        &mut self,
        _builder: &mut FunctionBuilder,
        _sig_ref: ir::SigRef,
        _callee: ir::Value,
        _call_args: &[ir::Value],
    ) -> WasmResult<()> {
        Err(cranelift_wasm::WasmError::Unsupported("tail calls".into()))
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
        let delta = pos.ins().uextend(types::I64, val);
        let old = self
            .call_builtin(&mut pos, Builtin::memory_grow, &[mem, delta])
            .expect("memory_grow returns");
        Ok(pos.ins().ireduce(types::I32, old))
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
        Ok(if ptr == types::I32 {
            pages
        } else {
            pos.ins().ireduce(types::I32, pages)
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
        let dst = pos.ins().uextend(types::I64, dst);
        let src = pos.ins().uextend(types::I64, src);
        let len = pos.ins().uextend(types::I64, len);
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
        let dst = pos.ins().uextend(types::I64, dst);
        let len = pos.ins().uextend(types::I64, len);
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
        let dst = pos.ins().uextend(types::I64, dst);
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
        Ok(pos.ins().global_value(types::I32, bound))
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
        Ok(self
            .call_builtin(&mut pos, b, &[t, delta, init_value])
            .expect("table_grow returns"))
    }

    fn translate_table_get(
        &mut self,
        builder: &mut FunctionBuilder,
        table_index: TableIndex,
        index: ir::Value,
    ) -> WasmResult<ir::Value> {
        match self.table_elem(table_index) {
            RefType::FuncRef => {
                let addr = self.table_elem_addr(
                    builder,
                    table_index.as_u32(),
                    index,
                    TrapCode::TableOutOfBounds,
                );
                Ok(builder.ins().load(self.ptr(), MemFlags::trusted(), addr, 0))
            }
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
                builder.ins().store(MemFlags::trusted(), value, addr, 0);
            }
            RefType::ExternRef => {
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
        let vmctx = Self::vmctx_val(pos.func);
        let off = self.offsets.vmctx_func_ref(func_index.as_u32());
        Ok(pos.ins().iadd_imm(vmctx, i64::from(off)))
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

    fn before_translate_operator(
        &mut self,
        op: &Operator,
        _builder: &mut FunctionBuilder,
        state: &FuncTranslationState,
    ) -> WasmResult<()> {
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
        _op: &Operator,
        builder: &mut FunctionBuilder,
        _state: &FuncTranslationState,
    ) -> WasmResult<()> {
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

    fn after_translate_function(
        &mut self,
        builder: &mut FunctionBuilder,
        _state: &FuncTranslationState,
    ) -> WasmResult<()> {
        // The function's externref parameters are seeds too (cranelift-wasm
        // marks them through `param_needs_stack_map`, but we cannot read its
        // marks back). Parameters 0 and 1 are the two vmctx pointers.
        if let Some(entry) = builder.func.layout.entry_block() {
            let params = builder.func.dfg.block_params(entry);
            for (p, t) in params.iter().skip(2).zip(&self.func_type.params) {
                if *t == ValType::ExternRef {
                    self.refs.push(*p);
                }
            }
        }
        let refs = std::mem::take(&mut self.refs);
        propagate_stack_map_marks(builder, &refs);
        Ok(())
    }

    fn is_x86(&self) -> bool {
        self.isa.triple().architecture == target_lexicon::Architecture::X86_64
    }
}
