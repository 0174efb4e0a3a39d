//! Relaxed SIMD, compiled deterministically.
//!
//! Every relaxed instruction gets one fixed semantics, the same on every
//! CPU and architecture, so an artifact computes the same results wherever
//! it is loaded (docs/implementation-notes.md lists them). cranelift-wasm
//! implements this when `FuncEnvironment::relaxed_simd_deterministic` is
//! true: each relaxed instruction is translated as its non-relaxed
//! counterpart (`swizzle`, saturating truncation, `bitselect`, `fmin`/`fmax`,
//! saturating Q15 multiply, signed dot product) and `relaxed_madd`/`nmadd`
//! as a fused multiply-add (CLIF `fma`, one rounding).
//!
//! The one gap: on a CPU without FMA instructions (x86-64 below
//! x86-64-v3, our baseline), Cranelift lowers `fma` to a call to a C
//! library function through an absolute relocation, which an artifact cannot
//! carry. [`lower_fma`] therefore rewrites each `fma` before code generation
//! into calls of the `fma_f32`/`fma_f64` builtins, one per lane:
//!
//! ```text
//! v = fma.f32x4 a, b, c
//!   =>
//! a0 = extractlane a, 0 ; b0 = ... ; c0 = ...
//! r0 = bitcast.f32 (call fma_f32(vmctx, bitcast.i32 a0, bitcast.i32 b0, bitcast.i32 c0))
//! ... lanes 1..3 ...
//! v = insertlane (insertlane (insertlane (splat r0), r1, 1), r2, 2), r3, 3
//! ```
//!
//! These calls are added after the frontend computed the stack maps, so they
//! carry none: that is sound because the fma builtins neither collect nor
//! trap, so no frame is ever walked while suspended in one.

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::ir::{self, types, ArgumentPurpose, InstBuilder, MemFlags};
use wasmc_format::builtins::Builtin;

/// Rewrites every `fma` of `func` into calls of the fma builtins (see the
/// module docs). `builtin` declares a builtin's trampoline in `func`.
pub fn lower_fma(
    func: &mut ir::Function,
    mut builtin: impl FnMut(&mut ir::Function, Builtin) -> ir::FuncRef,
) {
    let Some(vmctx) = func.special_param(ArgumentPurpose::VMContext) else {
        return;
    };
    let mut pos = FuncCursor::new(func);
    while pos.next_block().is_some() {
        while let Some(inst) = pos.next_inst() {
            if pos.func.dfg.insts[inst].opcode() != ir::Opcode::Fma {
                continue;
            }
            let [a, b, c] = pos.func.dfg.inst_args(inst) else {
                unreachable!("fma has three operands");
            };
            let (a, b, c) = (*a, *b, *c);
            let ty = pos.func.dfg.ctrl_typevar(inst);
            let (int, b_fn) = match ty.lane_type() {
                types::F32 => (types::I32, Builtin::fma_f32),
                types::F64 => (types::I64, Builtin::fma_f64),
                other => unreachable!("fma of {other}"),
            };
            let f = builtin(pos.func, b_fn);
            let flags = MemFlags::new();
            let lanes = ty.lane_count();
            let mut results = Vec::with_capacity(lanes as usize);
            for lane in 0..lanes {
                let operand = |pos: &mut FuncCursor, v: ir::Value| {
                    let x = if ty.is_vector() {
                        pos.ins().extractlane(v, lane as u8)
                    } else {
                        v
                    };
                    pos.ins().bitcast(int, flags, x)
                };
                let args = [
                    vmctx,
                    operand(&mut pos, a),
                    operand(&mut pos, b),
                    operand(&mut pos, c),
                ];
                let call = pos.ins().call(f, &args);
                results.push(pos.func.dfg.first_result(call));
            }
            let lane_ty = ty.lane_type();
            if ty.is_vector() {
                let first = pos.ins().bitcast(lane_ty, flags, results[0]);
                let mut v = pos.ins().splat(ty, first);
                let last = lanes as usize - 1;
                for (lane, r) in results.iter().enumerate().take(last).skip(1) {
                    let x = pos.ins().bitcast(lane_ty, flags, *r);
                    v = pos.ins().insertlane(v, x, lane as u8);
                }
                let x = pos.ins().bitcast(lane_ty, flags, results[last]);
                // The original instruction becomes the last insertlane, so
                // its result value (and every use of it) stays.
                pos.func.dfg.replace(inst).insertlane(v, x, last as u8);
            } else {
                pos.func.dfg.replace(inst).bitcast(ty, flags, results[0]);
            }
        }
    }
}
