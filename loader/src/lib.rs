//! wasmc-loader: the wasmc runtime.
//!
//! Loads artifacts written by the wasmc compiler (ELF relocatable objects with
//! `.wasmc.*` sections, see [`wasmc_format`]), checks that they fit this host,
//! links them against host functions and other instances, instantiates them and
//! calls their exports. It carries no compiler.
//!
//! The API is shaped like Wasmtime's: [`Module`], [`Store`], [`Linker`],
//! [`Instance`], [`Func`], [`TypedFunc`], [`Memory`], [`Table`], [`Global`],
//! [`ExternRef`], [`Val`], [`Trap`].
//!
//! Unsafe code lives in `sys`, `code`, `vmcontext`, `traphandlers`, `entry`,
//! `libcalls` and `externref`; each `unsafe` block states why it is sound.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod artifact;
mod error;
mod trap;

pub use error::{Error, InstantiationError, LinkError, LoadError};
pub use trap::{FrameInfo, Trap, TrapCode};
pub use wasmc_format as format;

#[cfg(test)]
mod testutil;
