//! The VMContext side of [`FuncEnv`]: the helpers that emit every load of a
//! VMContext field (the vmctx itself, builtins, table bases and lengths,
//! memory definitions, the activations table's bump pointer, the callee of
//! an imported or indirect call), each offset taken from [`VMOffsets`]; the
//! index-width adjustments of 64-bit memories and tables; and the native
//! signature of the builtins.
//!
//! The translation hooks in the parent module (`FuncEnvironment`) say what
//! each Wasm operator becomes and call these for every runtime structure
//! they touch.
//!
//! [`VMOffsets`]: wasmc_format::VMOffsets

use super::{FuncEnv, NS_BUILTIN};
use crate::convert::trap_to_ir;
use cranelift_codegen::cursor::FuncCursor;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::immediates::Offset32;
use cranelift_codegen::ir::{self, types, AbiParam, ArgumentPurpose, InstBuilder, MemFlags};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;
use cranelift_wasm::{MemoryIndex, TableIndex, TypeIndex};
use wasmc_format::builtins::{Builtin, BuiltinType};
use wasmc_format::vmoffsets::FUNCREF_INIT_BIT;
use wasmc_format::{RefType, TrapCode, ValType};

impl<'a> FuncEnv<'a> {
    /// The signature of function `f` (an index the validator checked).
    pub(super) fn func_type_of(&self, f: u32) -> &'a wasmc_format::FuncType {
        &self.module.types[self.funcs[f as usize].type_index as usize]
    }

    pub(super) fn ptr(&self) -> ir::Type {
        self.isa.pointer_type()
    }

    pub(super) fn cc(&self) -> CallConv {
        self.isa.default_call_conv()
    }

    pub(super) fn vmctx(&mut self, func: &mut ir::Function) -> ir::GlobalValue {
        *self
            .vmctx_gv
            .get_or_insert_with(|| func.create_global_value(ir::GlobalValueData::VMContext))
    }

    pub(super) fn load_gv(
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

    pub(super) fn vmctx_val(func: &ir::Function) -> ir::Value {
        func.special_param(ArgumentPurpose::VMContext)
            .expect("wasm function has a vmctx parameter")
    }

    /// The builtin trampoline for `b`, declared in `func`.
    pub(crate) fn builtin(&mut self, func: &mut ir::Function, b: Builtin) -> ir::FuncRef {
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

    pub(super) fn call_builtin(
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
    pub(super) fn table_gvs(
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
    pub(super) fn table_elem_addr(
        &mut self,
        builder: &mut FunctionBuilder,
        table: u32,
        index: ir::Value,
        code: TrapCode,
    ) -> ir::Value {
        let (base_gv, bound_gv) = self.table_gvs(builder.func, table);
        let ptr = self.ptr();
        let mut bound = builder.ins().global_value(types::I32, bound_gv);
        // A 64-bit table (memory64) has an i64 index: compare in 64 bits.
        let ity = builder.func.dfg.value_type(index);
        if ity != types::I32 {
            bound = builder.ins().uextend(ity, bound);
        }
        let oob = builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, bound);
        builder.ins().trapnz(oob, trap_to_ir(code));
        let idx = match ity.bits().cmp(&ptr.bits()) {
            std::cmp::Ordering::Less => builder.ins().uextend(ptr, index),
            std::cmp::Ordering::Equal => index,
            std::cmp::Ordering::Greater => builder.ins().ireduce(ptr, index),
        };
        let shift = self.offsets.size_of_table_element().trailing_zeros();
        let off = builder.ins().ishl_imm(idx, i64::from(shift));
        let base = builder.ins().global_value(ptr, base_gv);
        let addr = builder.ins().iadd(base, off);
        // Keep a mispredicted bounds check from reading past the table.
        let zero = builder.ins().iconst(ptr, 0);
        builder.ins().select_spectre_guard(oob, zero, addr)
    }

    /// Element `index` of funcref table `table`, untagged (a `VMFuncRef`
    /// address or null), trapping with `code` when out of bounds. Funcref
    /// slots hold `0` until initialised, then `ptr | FUNCREF_INIT_BIT`
    /// (`wasmc_format::vmoffsets`); the runtime initialises a lazy slot:
    ///
    /// ```text
    ///     v    = load table[index]            ; trap `code` if OOB
    ///     init = band_imm v, FUNCREF_INIT_BIT
    ///     ptr  = band_imm v, !FUNCREF_INIT_BIT
    ///     brif init, done(ptr), lazy
    /// lazy:                                   ; cold
    ///     r = call table_get_lazy_funcref(vmctx, table, (i32)index)
    ///     jump done(r)
    /// done(func_ref):
    /// ```
    pub(super) fn funcref_table_get(
        &mut self,
        builder: &mut FunctionBuilder,
        table: u32,
        index: ir::Value,
        code: TrapCode,
    ) -> ir::Value {
        let ptr = self.ptr();
        let addr = self.table_elem_addr(builder, table, index, code);
        let v = builder.ins().load(ptr, MemFlags::trusted(), addr, 0);
        let bit = FUNCREF_INIT_BIT as i64;
        let init = builder.ins().band_imm(v, bit);
        let untagged = builder.ins().band_imm(v, !bit);
        let lazy = builder.create_block();
        let done = builder.create_block();
        let func_ref = builder.append_block_param(done, ptr);
        builder.set_cold_block(lazy);
        builder.ins().brif(init, done, &[untagged], lazy, &[]);

        builder.switch_to_block(lazy);
        builder.seal_block(lazy);
        // The index is below the table's size (checked above), so a 64-bit
        // table's fits 32 bits.
        let index32 = if builder.func.dfg.value_type(index) == types::I32 {
            index
        } else {
            builder.ins().ireduce(types::I32, index)
        };
        let t = builder.ins().iconst(types::I32, i64::from(table));
        let r = self
            .call_builtin(
                &mut builder.cursor(),
                Builtin::table_get_lazy_funcref,
                &[t, index32],
            )
            .expect("table_get_lazy_funcref returns");
        builder.ins().jump(done, &[r]);

        builder.switch_to_block(done);
        builder.seal_block(done);
        func_ref
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
    pub(super) fn activations_table_insert(&mut self, builder: &mut FunctionBuilder, v: ir::Value) {
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

    pub(super) fn table_elem(&self, table: TableIndex) -> RefType {
        self.module.tables[table.as_u32() as usize].elem
    }

    pub(super) fn declare_refs(
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

    /// Code pointer and vmctx of imported function `f`, from its
    /// `VMFunctionImport` (read-only after instantiation).
    pub(super) fn imported_callee(
        &mut self,
        builder: &mut FunctionBuilder,
        f: u32,
    ) -> (ir::Value, ir::Value) {
        let vmctx = Self::vmctx_val(builder.func);
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
        (code, callee_vmctx)
    }

    /// Code pointer and vmctx of element `index` of funcref table `table`
    /// for `call_indirect` of type `sig_index`:
    ///
    /// ```text
    ///     func_ref = funcref_table_get(table, index) ; trap UndefinedElement if OOB
    ///     trapz func_ref, IndirectCallToNull
    ///     trapnz func_ref.type_id != vmctx.type_ids[sig_index], BadSignature
    ///     code, callee_vmctx = func_ref.wasm_call, func_ref.vmctx
    /// ```
    pub(super) fn indirect_callee(
        &mut self,
        builder: &mut FunctionBuilder,
        table: TableIndex,
        sig_index: TypeIndex,
        index: ir::Value,
    ) -> (ir::Value, ir::Value) {
        let o = self.offsets;
        let ptr = self.ptr();
        let vmctx = Self::vmctx_val(builder.func);
        let func_ref =
            self.funcref_table_get(builder, table.as_u32(), index, TrapCode::UndefinedElement);
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
        (code, callee_vmctx)
    }

    /// Is `table` a 64-bit table (memory64's table64)?
    pub(super) fn is_table64(&self, table: TableIndex) -> bool {
        self.module.tables[table.as_u32() as usize].table64
    }

    /// An index or length of a table for a table builtin (which takes i32s).
    /// A 64-bit table's operand must fit 32 bits, or the access is out of
    /// bounds whatever else it is (tables never reach 2^32 elements), so it
    /// traps here; a 32-bit operand passes unchanged.
    ///
    /// ```text
    ///     trapnz (v >> 32), TableOutOfBounds
    ///     v32 = ireduce.i32 v
    /// ```
    pub(super) fn table_operand(pos: &mut FuncCursor, v: ir::Value) -> ir::Value {
        if pos.func.dfg.value_type(v) == types::I32 {
            return v;
        }
        let high = pos.ins().ushr_imm(v, 32);
        pos.ins()
            .trapnz(high, trap_to_ir(TrapCode::TableOutOfBounds));
        pos.ins().ireduce(types::I32, v)
    }

    /// `table.grow` of a 64-bit table with builtin `b` (which takes an i32
    /// delta): tables never reach 2^32 elements, so a delta that does not
    /// fit 32 bits fails (-1) without growing; the builtin is then asked to
    /// grow by 0, which changes nothing.
    ///
    /// ```text
    ///     big = delta > u32::MAX
    ///     r = table_grow(t, big ? 0 : (i32)delta, init)
    ///     result = big || r == -1 ? -1 : (u64)r
    /// ```
    pub(super) fn table64_grow(
        &mut self,
        pos: &mut FuncCursor,
        b: Builtin,
        t: ir::Value,
        delta: ir::Value,
        init_value: ir::Value,
    ) -> ir::Value {
        let big = pos
            .ins()
            .icmp_imm(IntCC::UnsignedGreaterThan, delta, i64::from(u32::MAX));
        let narrow = pos.ins().ireduce(types::I32, delta);
        let zero = pos.ins().iconst(types::I32, 0);
        let d32 = pos.ins().select(big, zero, narrow);
        let r = self
            .call_builtin(pos, b, &[t, d32, init_value])
            .expect("table_grow returns");
        let failed = pos.ins().icmp_imm(IntCC::Equal, r, -1);
        let failed = pos.ins().bor(failed, big);
        let wide = pos.ins().uextend(types::I64, r);
        let minus_one = pos.ins().iconst(types::I64, -1);
        pos.ins().select(failed, minus_one, wide)
    }

    /// Is `memory` a 64-bit memory (memory64)?
    pub(super) fn is_memory64(&self, memory: MemoryIndex) -> bool {
        self.module.memories[memory.as_u32() as usize].memory64
    }

    /// `v` as the i64 a memory builtin takes: an address or length of a
    /// 32-bit memory is zero-extended, a 64-bit one passed as it is.
    pub(super) fn to_i64(pos: &mut FuncCursor, v: ir::Value) -> ir::Value {
        if pos.func.dfg.value_type(v) == types::I64 {
            v
        } else {
            pos.ins().uextend(types::I64, v)
        }
    }

    /// (base pointer owner, offset of the VMMemoryDefinition in it) for `memory`.
    pub(super) fn memory_def(
        &mut self,
        func: &mut ir::Function,
        memory: u32,
    ) -> (ir::GlobalValue, u32) {
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
