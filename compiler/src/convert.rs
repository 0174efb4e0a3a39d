//! The one place where Cranelift's types become the artifact's and back:
//! trap codes, Wasm value types, signatures.

use cranelift_codegen::ir::{self, types, AbiParam, ArgumentPurpose, Signature};
use cranelift_codegen::isa::CallConv;
use wasmc_format::{FuncType, TrapCode, ValType};

/// The Cranelift trap code compiled code uses for `code`. Codes Cranelift has
/// no name for are `User(code as u8)`.
pub fn trap_to_ir(code: TrapCode) -> ir::TrapCode {
    match code {
        TrapCode::StackOverflow => ir::TrapCode::StackOverflow,
        TrapCode::MemoryOutOfBounds => ir::TrapCode::HeapOutOfBounds,
        TrapCode::HeapMisaligned => ir::TrapCode::HeapMisaligned,
        TrapCode::TableOutOfBounds => ir::TrapCode::TableOutOfBounds,
        TrapCode::IndirectCallToNull => ir::TrapCode::IndirectCallToNull,
        TrapCode::BadSignature => ir::TrapCode::BadSignature,
        TrapCode::IntegerOverflow => ir::TrapCode::IntegerOverflow,
        TrapCode::IntegerDivisionByZero => ir::TrapCode::IntegerDivisionByZero,
        TrapCode::BadConversionToInteger => ir::TrapCode::BadConversionToInteger,
        TrapCode::UnreachableCodeReached => ir::TrapCode::UnreachableCodeReached,
        TrapCode::Interrupted => ir::TrapCode::Interrupt,
        TrapCode::NullReference => ir::TrapCode::NullReference,
        TrapCode::UndefinedElement | TrapCode::OutOfFuel => {
            ir::TrapCode::User(u16::from(code as u8))
        }
    }
}

/// The artifact's trap code for a trap Cranelift recorded.
pub fn trap_from_ir(code: ir::TrapCode) -> Option<TrapCode> {
    Some(match code {
        ir::TrapCode::StackOverflow => TrapCode::StackOverflow,
        ir::TrapCode::HeapOutOfBounds => TrapCode::MemoryOutOfBounds,
        ir::TrapCode::HeapMisaligned => TrapCode::HeapMisaligned,
        ir::TrapCode::TableOutOfBounds => TrapCode::TableOutOfBounds,
        ir::TrapCode::IndirectCallToNull => TrapCode::IndirectCallToNull,
        ir::TrapCode::BadSignature => TrapCode::BadSignature,
        ir::TrapCode::IntegerOverflow => TrapCode::IntegerOverflow,
        ir::TrapCode::IntegerDivisionByZero => TrapCode::IntegerDivisionByZero,
        ir::TrapCode::BadConversionToInteger => TrapCode::BadConversionToInteger,
        ir::TrapCode::UnreachableCodeReached => TrapCode::UnreachableCodeReached,
        ir::TrapCode::Interrupt => TrapCode::Interrupted,
        ir::TrapCode::NullReference | ir::TrapCode::NullI31Ref => TrapCode::NullReference,
        ir::TrapCode::User(n) => TrapCode::from_u8(u8::try_from(n).ok()?)?,
    })
}

/// The Cranelift type of a Wasm value.
pub fn ir_type(t: ValType, ptr: ir::Type) -> ir::Type {
    match t {
        ValType::I32 => types::I32,
        ValType::I64 => types::I64,
        ValType::F32 => types::F32,
        ValType::F64 => types::F64,
        ValType::V128 => types::I8X16,
        ValType::FuncRef | ValType::ExternRef => ptr,
    }
}

/// The calling convention of every Wasm function (and of the host
/// trampolines, which Wasm calls like a Wasm function): Cranelift's `tail`,
/// the only one in which `return_call` can replace a frame. It has the same
/// callee-saved registers as System V / AAPCS64 but the callee pops its stack
/// arguments, so a tail call may pass more of them than its caller received.
/// The ABI must be the same in every artifact (modules call each other's
/// functions through imports and tables), whether or not a module uses tail
/// calls. Entry trampolines and builtins keep the platform's C convention.
pub const WASM_CALL_CONV: CallConv = CallConv::Tail;

/// The native signature of a Wasm function of type `ty`:
/// `(callee_vmctx, caller_vmctx, params...) -> results`, in [`WASM_CALL_CONV`].
pub fn wasm_signature(ty: &FuncType, ptr: ir::Type) -> Signature {
    let mut sig = Signature::new(WASM_CALL_CONV);
    sig.params
        .push(AbiParam::special(ptr, ArgumentPurpose::VMContext));
    sig.params.push(AbiParam::new(ptr));
    sig.params
        .extend(ty.params.iter().map(|t| AbiParam::new(ir_type(*t, ptr))));
    sig.returns
        .extend(ty.results.iter().map(|t| AbiParam::new(ir_type(*t, ptr))));
    sig
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_codes_round_trip() {
        for code in TrapCode::ALL {
            assert_eq!(trap_from_ir(trap_to_ir(*code)), Some(*code));
        }
    }
}
