//! Builds the tiny C helper that wraps `sigsetjmp`/`siglongjmp` (Rust cannot
//! call `setjmp` soundly itself: it returns twice).

fn main() {
    println!("cargo:rerun-if-changed=src/vm/helpers.c");
    cc::Build::new()
        .file("src/vm/helpers.c")
        .warnings(true)
        .compile("wasmc_loader_helpers");
}
