//! wasmc-cli: the `wasmc` binary (`src/main.rs`) and the two tools behind it
//! that need both the compiler and the loader.
//!
//! - [`inspect`]: what an artifact holds, for people and (`--json`) scripts.
//! - [`duration`]: `wasmc run --timeout` durations.
//! - [`sign`]: Ed25519 key files and artifact signing (`keygen`, `sign`,
//!   `compile --sign`).
//! - [`wast`]: the `.wast` script runner (`wasmc wast` and the spec tests):
//!   compile -> artifact -> load -> run, checking every assertion.
//!
//! Nothing depends on this crate but the integration tests; the compiler
//! library carries no runtime and the loader no compiler.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod duration;
pub mod inspect;
pub mod sign;
pub mod wast;
