//! The public [`Trap`] type: why Wasm stopped, and where (its backtrace and,
//! for an access stopped by a guard region, the [`MemoryFault`]); and the
//! turning of the runtime's unwind reasons into the public [`Error`], which
//! places a fault's address in the store's memories.

use crate::error::{shown, Error};
use crate::func::HostFailure;
use crate::memory::Memory;
use crate::store::StoreOpaque;
pub use crate::vm::code::FrameInfo;
use crate::vm::func::RuntimeError;
use crate::vm::store::FaultSite;
use crate::vm::traphandlers::{FaultAddress, UnwindReason};
use std::fmt;
pub use wasmc_format::TrapCode;

impl fmt::Display for FrameInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names come from the artifact: shown escaped (`error::shown`).
        let module = self.module_name.as_deref().map_or("<module>".into(), shown);
        write!(f, "{module}!")?;
        match &self.func_name {
            Some(n) => write!(f, "{}", shown(n))?,
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
/// "integer divide by zero"), then, for an access stopped by a linear
/// memory's guard region, the [`MemoryFault`] (as Wasmtime words it), then
/// lists the backtrace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    /// Why.
    pub code: TrapCode,
    /// Wasm frames at the trap, innermost first.
    pub backtrace: Vec<FrameInfo>,
    /// For an out-of-bounds memory access that faulted inside a linear
    /// memory's reservation or guard region: where. `None` for every other
    /// trap, including an access that an explicit bounds check stopped.
    pub memory_fault: Option<MemoryFault>,
}

/// Where an out-of-bounds access that only the guard layout stopped pointed:
/// the fault happened inside `memory`'s reservation or guard region, and
/// `wasm_address` is the faulting address as the Wasm program sees it
/// (fault address minus the memory's base).
///
/// Code compiled with explicit bounds checks ([`MemoryStrategy::Explicit`],
/// and every access to a 64-bit memory) never produces one: such a check
/// traps before the access (or, with Spectre mitigation, makes it fault at
/// address null, which is not in any memory). A `MemoryFault` from that code
/// is a missing bounds check, a compiler bug. (A memory access that faults
/// outside every memory of the store is one too, and worse: the loader
/// then prints the trap and aborts the process, as Wasmtime does.)
///
/// [`MemoryStrategy::Explicit`]: crate::format::memory::MemoryStrategy::Explicit
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryFault {
    /// The memory whose reservation holds the faulting address.
    pub memory: Memory,
    /// The faulting address relative to the memory's base: the first byte
    /// the failed access touched that was not accessible (for an access
    /// straddling the end of memory, possibly past the Wasm address the
    /// instruction computed).
    pub wasm_address: u64,
    /// The memory's size in bytes when the fault happened.
    pub memory_size: u64,
}

impl fmt::Display for MemoryFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory fault at wasm address {:#x} in linear memory of size {:#x}",
            self.wasm_address, self.memory_size
        )
    }
}

impl Trap {
    /// A trap without a backtrace.
    pub fn new(code: TrapCode) -> Trap {
        Trap {
            code,
            backtrace: Vec::new(),
            memory_fault: None,
        }
    }

    /// The Wasm address of the faulting access, for an out-of-bounds access
    /// stopped by a memory's guard region ([`Trap::memory_fault`]).
    pub fn fault_address(&self) -> Option<u64> {
        self.memory_fault.map(|m| m.wasm_address)
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm trap: {}", self.code)?;
        if let Some(m) = &self.memory_fault {
            write!(f, "\n{m}")?;
        }
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

/// Turns the reason an activation of `store` was left into the public
/// error: a trap with its backtrace (and, for a fault in one of the store's
/// memories, the [`MemoryFault`]), a host function's error as it returned
/// it, or, for a panic, resumes the panic here on the host side of the
/// entry.
pub(crate) fn error_from_unwind(store: &StoreOpaque, reason: UnwindReason) -> Error {
    match reason {
        UnwindReason::Trap {
            code,
            pcs,
            first_is_trap_pc,
            fault,
        } => {
            // Only an out-of-bounds memory access is placed: a null
            // funcref's or a spectre-guarded table access's load faults
            // near null, which is in no memory anyway.
            let site = fault
                .filter(|_| code == TrapCode::MemoryOutOfBounds)
                .map(|a| store.fault_site(a));
            let memory_fault = match site {
                None | Some(FaultSite::NearNull) => None,
                Some(FaultSite::Memory {
                    index,
                    wasm_address,
                    size,
                }) => Some(MemoryFault {
                    memory: Memory(store.stored(index)),
                    wasm_address,
                    memory_size: size,
                }),
                // As Wasmtime does: a memory access that left every
                // reservation means the compiled code is not confined to
                // its memories (a code generator bug); this time it hit
                // unmapped memory, the next time it may not. Going on
                // would hide that, so stop the process.
                Some(FaultSite::Outside) => {
                    eprintln!(
                        "wasmc: Wasm code faulted on a memory access outside every linear \
                         memory of its store ({}): its bounds check is missing, a compiler \
                         bug; aborting\n{}",
                        match fault {
                            Some(FaultAddress::At(a)) => format!("host address {a:#x}"),
                            _ => "a non-canonical address".to_string(),
                        },
                        Trap {
                            code,
                            backtrace: crate::vm::code::backtrace(&pcs, first_is_trap_pc),
                            memory_fault: None,
                        }
                    );
                    std::process::abort()
                }
            };
            Error::Trap(Trap {
                code,
                backtrace: crate::vm::code::backtrace(&pcs, first_is_trap_pc),
                memory_fault,
            })
        }
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
