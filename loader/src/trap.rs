//! The public [`Trap`] type: why Wasm stopped, and where.

use std::fmt;
pub use wasmc_format::TrapCode;

/// One Wasm frame of a trap's backtrace, innermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Function index in the module's function index space.
    pub func_index: u32,
    /// Name from the name section, if any.
    pub func_name: Option<String>,
    /// Module name from the name section, if any.
    pub module_name: Option<String>,
    /// Byte offset of the Wasm instruction in the module, if known.
    pub wasm_offset: Option<u32>,
}

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
