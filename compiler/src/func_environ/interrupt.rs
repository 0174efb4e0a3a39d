//! Interruption instrumentation of [`FuncEnv`]: epoch deadline checks and
//! fuel counting (`wasmc compile --epoch-interruption`, `--fuel`; the flags
//! are [`Interruption`] in the artifact header).
//!
//! Both kinds of check run at the function entry and at every loop header,
//! so no Wasm code runs unboundedly without passing one (a loop is the only
//! way back to earlier code; a call passes the callee's entry).
//!
//! Epochs: `load *limits.epoch_ptr >= deadline` calls the builtin
//! `epoch_deadline_reached` on a cold path. The epoch is loaded at every
//! check: the engine's epoch moves under the code (another thread). The
//! store's deadline only changes in host code, so the function keeps it in
//! a variable (a register in a loop), loaded at entry and again after every
//! call (a callee may be or reach a host function that sets a new deadline)
//! and after the cold path (whose builtin may extend it). The cold path's
//! call also keeps Cranelift's alias analysis from merging a loop header's
//! epoch load with the entry's (a call clobbers all memory on the path
//! back).
//!
//! Fuel (the design Wasmtime uses): `limits.fuel_consumed` is an `i64` equal
//! to minus the fuel left. The function keeps it in a variable: loaded at
//! entry, incremented by the number of operators counted so far at each
//! basic block boundary (so one `iadd` per block, not per operator), stored
//! back before every call, `return` and `unreachable`, reloaded after every
//! call. A check tests `fuel >= 0`; the cold path stores the variable,
//! calls `out_of_fuel` (which traps, or returns if fuel was added) and
//! reloads. A trap in the middle of a block loses the count of that block's
//! operators since the last store; it is still deterministic.

use super::FuncEnv;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlags};
use cranelift_frontend::{FunctionBuilder, Variable};
use wasmc_format::builtins::Builtin;
use wasmc_format::Interruption;
use wasmparser::Operator;

/// Per-function state of the instrumentation.
pub(super) struct InterruptState {
    /// What to emit.
    pub(super) flags: Interruption,
    /// The store's `VMRuntimeLimits` pointer, loaded once at entry.
    limits_var: Variable,
    /// `fuel_consumed` while the function runs.
    fuel_var: Variable,
    /// The engine's epoch counter pointer, loaded once at entry.
    epoch_ptr_var: Variable,
    /// The store's epoch deadline, loaded at entry and after calls.
    deadline_var: Variable,
    /// Fuel of the operators translated since the last increment of
    /// `fuel_var` (compile-time).
    pending: i64,
}

impl InterruptState {
    pub(super) fn new(flags: Interruption) -> Self {
        InterruptState {
            flags,
            limits_var: Variable::from_u32(0),
            fuel_var: Variable::from_u32(0),
            epoch_ptr_var: Variable::from_u32(0),
            deadline_var: Variable::from_u32(0),
            pending: 0,
        }
    }

    /// Takes the variable numbers after the function's locals.
    pub(super) fn after_locals(&mut self, num_locals: usize) {
        self.limits_var = Variable::from_u32(num_locals as u32);
        self.fuel_var = Variable::from_u32(num_locals as u32 + 1);
        self.epoch_ptr_var = Variable::from_u32(num_locals as u32 + 2);
        self.deadline_var = Variable::from_u32(num_locals as u32 + 3);
    }
}

/// The fuel an operator costs. Operators that only structure the code (and
/// `nop`/`drop`, which compile to nothing) are free, as in Wasmtime.
fn fuel_cost(op: &Operator) -> i64 {
    match op {
        Operator::Nop
        | Operator::Drop
        | Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::Unreachable
        | Operator::Return
        | Operator::Else
        | Operator::End => 0,
        _ => 1,
    }
}

/// Operators after which control leaves the function or enters another one:
/// the count must be in memory first.
fn leaves_function(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Unreachable
            | Operator::Return
            | Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. }
    )
}

/// Operators that end a basic block (or start a loop, whose header must not
/// count the code before it again): the count is added to the variable.
fn ends_block(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::End
            | Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrTable { .. }
            | Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. }
    ) || leaves_function(op)
}

/// Calls, after which the callee's consumption is reloaded.
fn is_call(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Call { .. } | Operator::CallIndirect { .. } | Operator::CallRef { .. }
    )
}

impl FuncEnv<'_> {
    fn limits_flags() -> MemFlags {
        // The limits are the store's, always mapped and aligned; not
        // readonly: the runtime and other functions write them.
        MemFlags::trusted()
    }

    /// Function entry: load the pointers and the fuel count, then check.
    pub(super) fn interrupt_function_entry(&mut self, builder: &mut FunctionBuilder) {
        let flags = self.interrupt.flags;
        if !flags.epochs && !flags.fuel {
            return;
        }
        let ptr = self.ptr();
        let o = self.offsets;
        let vmctx = Self::vmctx_val(builder.func);
        let limits = builder.ins().load(
            ptr,
            MemFlags::trusted().with_readonly(),
            vmctx,
            o.vmctx_runtime_limits() as i32,
        );
        builder.declare_var(self.interrupt.limits_var, ptr);
        builder.def_var(self.interrupt.limits_var, limits);
        if flags.fuel {
            builder.declare_var(self.interrupt.fuel_var, types::I64);
            self.fuel_load(builder);
            self.fuel_check(builder);
        }
        if flags.epochs {
            let epoch_ptr = builder.ins().load(
                ptr,
                Self::limits_flags(),
                limits,
                o.limits_epoch_ptr() as i32,
            );
            builder.declare_var(self.interrupt.epoch_ptr_var, ptr);
            builder.def_var(self.interrupt.epoch_ptr_var, epoch_ptr);
            builder.declare_var(self.interrupt.deadline_var, types::I64);
            self.deadline_load(builder);
            self.epoch_check(builder);
        }
    }

    /// Loop header (the builder is at the start of the loop's body block).
    pub(super) fn interrupt_loop_header(&mut self, builder: &mut FunctionBuilder) {
        if self.interrupt.flags.fuel {
            self.fuel_check(builder);
        }
        if self.interrupt.flags.epochs {
            self.epoch_check(builder);
        }
    }

    /// Counts `op` and keeps the variable and memory up to date around it.
    pub(super) fn interrupt_before_op(
        &mut self,
        op: &Operator,
        builder: &mut FunctionBuilder,
        reachable: bool,
    ) {
        if !self.interrupt.flags.fuel {
            return;
        }
        if !reachable {
            // Code after a trap or branch: nothing pending may leak into the
            // next reachable code.
            self.interrupt.pending = 0;
            return;
        }
        self.interrupt.pending += fuel_cost(op);
        if ends_block(op) {
            self.fuel_increment_var(builder);
        }
        if leaves_function(op) && !matches!(op, Operator::Return) {
            // `return` stores in `handle_before_return`, which also covers
            // the function's final `end`.
            self.fuel_store(builder);
        }
    }

    /// Reloads the count and the deadline after a call. Not after one in
    /// dead code (`reachable`: the translation state's; a call does not
    /// change it): there the builder may still be in the block that the
    /// branch before it filled (that of a `br`, or `br_table`'s edge block,
    /// has a predecessor, so `builder.is_unreachable()` is false), and
    /// nothing may follow its terminator.
    pub(super) fn interrupt_after_op(
        &mut self,
        op: &Operator,
        builder: &mut FunctionBuilder,
        reachable: bool,
    ) {
        if !is_call(op) || !reachable || builder.is_unreachable() {
            return;
        }
        if self.interrupt.flags.fuel {
            self.fuel_load(builder);
        }
        if self.interrupt.flags.epochs {
            self.deadline_load(builder);
        }
    }

    fn deadline_load(&mut self, builder: &mut FunctionBuilder) {
        let limits = builder.use_var(self.interrupt.limits_var);
        let v = builder.ins().load(
            types::I64,
            Self::limits_flags(),
            limits,
            self.offsets.limits_epoch_deadline() as i32,
        );
        builder.def_var(self.interrupt.deadline_var, v);
    }

    /// Before a `return` (explicit or the function's end).
    pub(super) fn interrupt_before_return(&mut self, builder: &mut FunctionBuilder) {
        if self.interrupt.flags.fuel {
            self.fuel_increment_var(builder);
            self.fuel_store(builder);
        }
    }

    fn fuel_increment_var(&mut self, builder: &mut FunctionBuilder) {
        let n = std::mem::take(&mut self.interrupt.pending);
        if n == 0 {
            return;
        }
        let v = builder.use_var(self.interrupt.fuel_var);
        let v = builder.ins().iadd_imm(v, n);
        builder.def_var(self.interrupt.fuel_var, v);
    }

    fn fuel_load(&mut self, builder: &mut FunctionBuilder) {
        let limits = builder.use_var(self.interrupt.limits_var);
        let v = builder.ins().load(
            types::I64,
            Self::limits_flags(),
            limits,
            self.offsets.limits_fuel_consumed() as i32,
        );
        builder.def_var(self.interrupt.fuel_var, v);
    }

    fn fuel_store(&mut self, builder: &mut FunctionBuilder) {
        let limits = builder.use_var(self.interrupt.limits_var);
        let v = builder.use_var(self.interrupt.fuel_var);
        builder.ins().store(
            Self::limits_flags(),
            v,
            limits,
            self.offsets.limits_fuel_consumed() as i32,
        );
    }

    /// `if fuel >= 0 { store; out_of_fuel(); reload }`.
    fn fuel_check(&mut self, builder: &mut FunctionBuilder) {
        self.fuel_increment_var(builder);
        let fuel = builder.use_var(self.interrupt.fuel_var);
        let out = builder
            .ins()
            .icmp_imm(IntCC::SignedGreaterThanOrEqual, fuel, 0);
        let cold = builder.create_block();
        let cont = builder.create_block();
        builder.set_cold_block(cold);
        builder.ins().brif(out, cold, &[], cont, &[]);

        builder.switch_to_block(cold);
        builder.seal_block(cold);
        self.fuel_store(builder);
        self.call_builtin(&mut builder.cursor(), Builtin::out_of_fuel, &[]);
        self.fuel_load(builder);
        builder.ins().jump(cont, &[]);

        builder.switch_to_block(cont);
        builder.seal_block(cont);
    }

    /// `if *epoch_ptr >= deadline { epoch_deadline_reached() }`.
    fn epoch_check(&mut self, builder: &mut FunctionBuilder) {
        let epoch_ptr = builder.use_var(self.interrupt.epoch_ptr_var);
        // A plain aligned 8-byte load is single-copy atomic on every
        // target wasmc supports; the counter only grows.
        let epoch = builder
            .ins()
            .load(types::I64, Self::limits_flags(), epoch_ptr, 0);
        let deadline = builder.use_var(self.interrupt.deadline_var);
        let reached = builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, epoch, deadline);
        let cold = builder.create_block();
        let cont = builder.create_block();
        builder.set_cold_block(cold);
        builder.ins().brif(reached, cold, &[], cont, &[]);

        builder.switch_to_block(cold);
        builder.seal_block(cold);
        self.call_builtin(&mut builder.cursor(), Builtin::epoch_deadline_reached, &[]);
        self.deadline_load(builder);
        builder.ins().jump(cont, &[]);

        builder.switch_to_block(cont);
        builder.seal_block(cont);
    }
}
