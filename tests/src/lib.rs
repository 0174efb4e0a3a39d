//! Shared helpers of wasmc's integration tests.

use std::path::PathBuf;

/// The spec testsuite: `$WASMC_TESTSUITE`, else `../shared/testsuite` relative
/// to the repository root. `None` if neither exists.
pub fn testsuite_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WASMC_TESTSUITE") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = root.join("../shared/testsuite");
    p.is_dir().then_some(p)
}

pub mod fuzz;
pub mod tracked;

/// The engine the shared test helpers and fuzzers load modules with.
pub fn engine() -> &'static wasmc_loader::Engine {
    static E: std::sync::OnceLock<wasmc_loader::Engine> = std::sync::OnceLock::new();
    E.get_or_init(wasmc_loader::Engine::default)
}
