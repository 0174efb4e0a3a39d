//! The CLI's integration tests, one test binary (one link) for all of them.
//! Each module drives the `wasmc` binary built with these tests
//! (`CARGO_BIN_EXE_wasmc`), or the library behind it in-process.

mod cli_probes;
mod common;
mod compile;
mod features;
mod inspect;
mod run;
mod trust;
mod wasi_c;
mod wasi_guest;
mod wasi_testsuite;
mod wasm3_probes;
mod wast;
