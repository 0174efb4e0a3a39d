//! The trampolines that connect compiled Wasm to the runtime, built as CLIF.
//!
//! - Entry (host -> Wasm), one per distinct signature:
//!   `extern "C" fn(callee_vmctx, caller_vmctx, code, values)`.
//! - Host (Wasm -> host), one per distinct signature, with the Wasm ABI.
//! - Builtin (Wasm -> runtime), one per builtin, with the builtin's signature.
//!
//! The host and builtin trampolines record where Wasm was left
//! (`last_wasm_exit_fp/pc`) before calling out, so the runtime can walk the Wasm
//! frames (backtraces, the externref collector) from any host or runtime code;
//! the entry trampoline records `last_wasm_entry_fp`, where such a walk stops.
//! Both rely on frame pointers: `[fp]` is the caller's frame pointer and
//! `[fp + pointer size]` the return address into the caller.

use crate::convert::{ir_type, wasm_signature};
use crate::func_environ::builtin_signature;
use cranelift_codegen::ir::{
    self, AbiParam, InstBuilder, MemFlags, StackSlotData, StackSlotKind, UserFuncName,
};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use wasmc_format::builtins::Builtin;
use wasmc_format::{FuncType, VMOffsets, VALUE_SLOT_SIZE};

/// Value slots are 16-byte aligned, but claiming it would let Cranelift fold
/// v128 loads into instructions that fault on misalignment: stay safe.
fn slot_flags() -> MemFlags {
    MemFlags::new().with_notrap()
}

/// Records the caller's frame pointer and return address as the last exit from Wasm.
fn record_exit(b: &mut FunctionBuilder, o: &VMOffsets, vmctx: ir::Value, ptr: ir::Type) {
    let flags = MemFlags::trusted();
    let limits = b.ins().load(
        ptr,
        flags.with_readonly(),
        vmctx,
        o.vmctx_runtime_limits() as i32,
    );
    let fp = b.ins().get_frame_pointer(ptr);
    let caller_fp = b.ins().load(ptr, flags, fp, 0);
    let ret_addr = b.ins().load(ptr, flags, fp, i32::from(o.ptr));
    b.ins().store(
        flags,
        caller_fp,
        limits,
        o.limits_last_wasm_exit_fp() as i32,
    );
    b.ins()
        .store(flags, ret_addr, limits, o.limits_last_wasm_exit_pc() as i32);
}

/// The host -> Wasm entry trampoline for `ty`.
pub fn entry_trampoline(isa: &dyn TargetIsa, o: &VMOffsets, ty: &FuncType) -> ir::Function {
    let ptr = isa.pointer_type();
    let mut sig = ir::Signature::new(isa.default_call_conv());
    sig.params.extend([AbiParam::new(ptr); 4]);
    let mut func = ir::Function::with_name_signature(UserFuncName::default(), sig);
    let mut ctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut ctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let [callee_vmctx, caller_vmctx, code, values] =
        b.block_params(block).try_into().expect("4 params");

    let flags = MemFlags::trusted();
    let limits = b.ins().load(
        ptr,
        flags.with_readonly(),
        callee_vmctx,
        o.vmctx_runtime_limits() as i32,
    );
    let fp = b.ins().get_frame_pointer(ptr);
    b.ins()
        .store(flags, fp, limits, o.limits_last_wasm_entry_fp() as i32);

    let mut args = vec![callee_vmctx, caller_vmctx];
    for (i, t) in ty.params.iter().enumerate() {
        let off = (i as u32 * VALUE_SLOT_SIZE) as i32;
        args.push(b.ins().load(ir_type(*t, ptr), slot_flags(), values, off));
    }
    let callee_sig = b.import_signature(wasm_signature(ty, ptr));
    let call = b.ins().call_indirect(callee_sig, code, &args);
    let results = b.inst_results(call).to_vec();
    for (i, v) in results.iter().enumerate() {
        let off = (i as u32 * VALUE_SLOT_SIZE) as i32;
        b.ins().store(slot_flags(), *v, values, off);
    }
    b.ins().return_(&[]);
    b.finalize();
    func
}

/// The Wasm -> host trampoline for `ty`.
pub fn host_trampoline(isa: &dyn TargetIsa, o: &VMOffsets, ty: &FuncType) -> ir::Function {
    let ptr = isa.pointer_type();
    let cc = isa.default_call_conv();
    let mut func =
        ir::Function::with_name_signature(UserFuncName::default(), wasm_signature(ty, ptr));
    let mut ctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut ctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let params = b.block_params(block).to_vec();
    let (callee_vmctx, caller_vmctx) = (params[0], params[1]);

    record_exit(&mut b, o, caller_vmctx, ptr);

    let n = ty.params.len().max(ty.results.len()).max(1) as u32;
    let slot = b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        n * VALUE_SLOT_SIZE,
        4,
    ));
    for (i, v) in params[2..].iter().enumerate() {
        b.ins()
            .stack_store(*v, slot, (i as u32 * VALUE_SLOT_SIZE) as i32);
    }
    let values = b.ins().stack_addr(ptr, slot, 0);
    let array_call = b.ins().load(
        ptr,
        MemFlags::trusted().with_readonly(),
        callee_vmctx,
        o.vmhostfunc_array_call() as i32,
    );
    let mut array_sig = ir::Signature::new(cc);
    array_sig.params.extend([AbiParam::new(ptr); 4]);
    let array_sig = b.import_signature(array_sig);
    let len = b.ins().iconst(ptr, i64::from(n));
    b.ins().call_indirect(
        array_sig,
        array_call,
        &[callee_vmctx, caller_vmctx, values, len],
    );
    let mut results = Vec::new();
    for (i, t) in ty.results.iter().enumerate() {
        results.push(b.ins().stack_load(
            ir_type(*t, ptr),
            slot,
            (i as u32 * VALUE_SLOT_SIZE) as i32,
        ));
    }
    b.ins().return_(&results);
    b.finalize();
    func
}

/// The trampoline through which Wasm calls builtin `builtin`.
pub fn builtin_trampoline(isa: &dyn TargetIsa, o: &VMOffsets, builtin: Builtin) -> ir::Function {
    let ptr = isa.pointer_type();
    let sig = builtin_signature(builtin, ptr, isa.default_call_conv());
    let mut func = ir::Function::with_name_signature(UserFuncName::default(), sig.clone());
    let mut ctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut ctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let params = b.block_params(block).to_vec();
    let vmctx = params[0];

    record_exit(&mut b, o, vmctx, ptr);

    let table = b.ins().load(
        ptr,
        MemFlags::trusted().with_readonly(),
        vmctx,
        o.vmctx_builtins() as i32,
    );
    let target = b.ins().load(
        ptr,
        MemFlags::trusted().with_readonly(),
        table,
        (builtin.index() * u32::from(o.ptr)) as i32,
    );
    let sig_ref = b.import_signature(sig);
    let call = b.ins().call_indirect(sig_ref, target, &params);
    let results = b.inst_results(call).to_vec();
    b.ins().return_(&results);
    b.finalize();
    func
}
