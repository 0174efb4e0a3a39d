//! Compile -> artifact -> load, on many modules: every spec-testsuite module
//! (also cross-compiled to aarch64) and random wasm-smith modules with
//! byte-flipped variants. One test binary, so one link.

mod feature_header;
mod random_modules;
mod spec_modules;
