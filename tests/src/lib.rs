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

/// An engine with the pooling allocator, for the differential fuzzer's
/// pooled cases: room for the few instances, memories and tables a case
/// has alive at once, memories up to the fuzzer's growth limit (160 pages).
pub fn pooled_engine() -> &'static wasmc_loader::Engine {
    static E: std::sync::OnceLock<wasmc_loader::Engine> = std::sync::OnceLock::new();
    E.get_or_init(|| {
        let mut p = wasmc_loader::PoolingAllocationConfig::default();
        p.total_core_instances(8)
            .total_memories(16)
            .total_tables(16)
            .max_memory_size(160 << 16)
            .table_elements(10_000);
        let mut c = wasmc_loader::Config::new();
        c.allocation_strategy(wasmc_loader::InstanceAllocationStrategy::Pooling(p));
        wasmc_loader::Engine::new(&c).expect("a pooling engine")
    })
}
