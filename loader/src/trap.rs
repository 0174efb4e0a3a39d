//! The public [`Trap`] type: why Wasm stopped, and where; and the turning
//! of the runtime's unwind reasons into the public [`Error`].

use crate::error::Error;
use crate::func::HostFailure;
pub use crate::vm::code::FrameInfo;
use crate::vm::func::RuntimeError;
use crate::vm::traphandlers::UnwindReason;
use std::fmt;
pub use wasmc_format::TrapCode;

impl fmt::Display for FrameInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}!", self.module_name.as_deref().unwrap_or("<module>"))?;
        match &self.func_name {
            Some(n) => write!(f, "{n}")?,
            None => write!(f, "<wasm function {}>", self.func_index)?,
        }
        if let Some(o) = self.wasm_offset {
            write!(f, " @ {o:#x}")?;
        }
        Ok(())
    }
}

/// Wasm code trapped.
///
/// `Display` starts with the spec testsuite's text for the code (e.g.
/// "integer divide by zero"), then lists the backtrace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    /// Why.
    pub code: TrapCode,
    /// Wasm frames at the trap, innermost first.
    pub backtrace: Vec<FrameInfo>,
}

impl Trap {
    /// A trap without a backtrace.
    pub fn new(code: TrapCode) -> Trap {
        Trap {
            code,
            backtrace: Vec::new(),
        }
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm trap: {}", self.code)?;
        if !self.backtrace.is_empty() {
            write!(f, "\nwasm backtrace:")?;
            for (i, fr) in self.backtrace.iter().enumerate() {
                write!(f, "\n  {i:>3}: {fr}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Trap {}

/// Turns the reason an activation was left into the public error: a trap
/// with its backtrace, a host function's error as it returned it, or, for a
/// panic, resumes the panic here on the host side of the entry.
pub(crate) fn error_from_unwind(reason: UnwindReason) -> Error {
    match reason {
        UnwindReason::Trap {
            code,
            pcs,
            first_is_trap_pc,
        } => Error::Trap(Trap {
            code,
            backtrace: crate::vm::code::backtrace(&pcs, first_is_trap_pc),
        }),
        UnwindReason::Error(e) => match e.downcast::<HostFailure>() {
            Ok(h) => Error::from_host(h.0),
            Err(e) => match e.downcast::<RuntimeError>() {
                Ok(m) => Error::Msg(m.0),
                Err(e) => Error::from_host(anyhow::Error::from_boxed(e)),
            },
        },
        UnwindReason::Panic(p) => std::panic::resume_unwind(p),
    }
}
