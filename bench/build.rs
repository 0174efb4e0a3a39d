//! Builds the native copy of the CPU-bound kernels (programs/cpu.c) so the
//! `cpu` benchmark compares wasmc and Wasmtime with native code from the
//! same source.
fn main() {
    println!("cargo:rerun-if-changed=programs/cpu.c");
    // clang, the compiler that builds cpu.wasm: gcc and clang may evaluate
    // the chaotic n-body kernel differently, and the checksums must agree.
    cc::Build::new()
        .compiler("clang")
        .file("programs/cpu.c")
        .opt_level(2)
        .compile("wasmc_bench_cpu");
}
