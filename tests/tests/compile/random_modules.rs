//! Robustness: random valid WebAssembly 2.0 modules (wasm-smith) compile,
//! load and instantiate without a panic, and byte-flipped variants of them are
//! either compiled or rejected with an error — never a panic or a crash.
//!
//! The byte streams come from a fixed-seed generator, so failures reproduce.

use arbitrary::Unstructured;
use wasmc_compiler::{compile, CompileOptions, MemoryStrategy, OptLevel};
use wasmc_loader::{Linker, Module, Store};

/// The engine every module and store of these tests is made with (a module
/// instantiates only in stores of its own engine).
fn engine() -> &'static wasmc_loader::Engine {
    static E: std::sync::OnceLock<wasmc_loader::Engine> = std::sync::OnceLock::new();
    E.get_or_init(wasmc_loader::Engine::default)
}

/// xorshift64*: a tiny deterministic generator for test input bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        bulk_memory_enabled: true,
        reference_types_enabled: true,
        simd_enabled: true,
        multi_value_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        max_imports: 0,
        max_memories: 1,
        max_tables: 4,
        allow_start_export: false,
        max_funcs: 40,
        ..wasm_smith::Config::default()
    }
}

/// Generates `n` modules with `config` from `rng`, compiles each (at
/// `none` or `speed`, with guard pages or explicit bounds checks, varied by
/// index), loads it and tries to instantiate it (an out-of-bounds segment
/// may make that fail; nothing may crash). Returns how many compiled, how
/// many instantiated, and the features their artifacts record.
fn compile_load_instantiate(
    config: wasm_smith::Config,
    rng: &mut Rng,
    n: usize,
) -> (usize, usize, wasmc_format::WasmFeatures) {
    let (mut compiled, mut instantiated, mut used) = (0, 0, wasmc_format::WasmFeatures::EMPTY);
    for i in 0..n {
        let seed = rng.bytes(4096);
        let Ok(m) = wasm_smith::Module::new(config.clone(), &mut Unstructured::new(&seed)) else {
            continue;
        };
        let wasm = m.to_bytes();
        let opts = CompileOptions {
            opt_level: if i % 3 == 0 {
                OptLevel::None
            } else {
                OptLevel::Speed
            },
            memory: if i % 2 == 0 {
                MemoryStrategy::Explicit
            } else {
                CompileOptions::default().memory
            },
            ..CompileOptions::default()
        };
        let artifact = compile(&wasm, &opts)
            .unwrap_or_else(|e| panic!("module {i}: valid module rejected: {e}"));
        compiled += 1;
        let module = Module::from_bytes(engine(), &artifact)
            .unwrap_or_else(|e| panic!("module {i}: load failed: {e}"));
        used = used.union(
            wasmc_loader::artifact::ParsedArtifact::parse(&artifact)
                .unwrap()
                .header()
                .wasm_features,
        );
        let mut store = Store::new(engine(), ());
        if Linker::new(engine())
            .instantiate(&mut store, &module)
            .is_ok()
        {
            instantiated += 1;
        }
    }
    (compiled, instantiated, used)
}

#[test]
fn random_modules_compile_load_and_instantiate() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (compiled, instantiated, _) = compile_load_instantiate(config(), &mut rng, 150);
    assert!(compiled > 100, "only {compiled} modules generated");
    assert!(
        instantiated > 50,
        "only {instantiated} modules instantiated"
    );
}

#[test]
fn corrupted_modules_are_errors_not_panics() {
    let mut rng = Rng(0xbad_c0de_5eed_0002);
    let (mut ok, mut rejected) = (0, 0);
    for _ in 0..60 {
        let seed = rng.bytes(2048);
        let Ok(m) = wasm_smith::Module::new(config(), &mut Unstructured::new(&seed)) else {
            continue;
        };
        let wasm = m.to_bytes();
        for _ in 0..10 {
            let mut bad = wasm.clone();
            let flips = 1 + rng.next() as usize % 4;
            for _ in 0..flips {
                let at = rng.next() as usize % bad.len();
                bad[at] ^= 1 << (rng.next() % 8);
            }
            if rng.next() & 3 == 0 {
                bad.truncate(rng.next() as usize % bad.len());
            }
            match compile(&bad, &CompileOptions::default()) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    rejected += 1;
                }
            }
        }
    }
    assert!(
        rejected > 100,
        "only {rejected} corrupted modules rejected ({ok} still valid)"
    );
}

/// The 2.0 configuration plus the 3.0 features wasmc implements that
/// wasm-smith generates: tail calls, several memories, 64-bit memories and
/// tables, relaxed SIMD.
fn config_wasm3() -> wasm_smith::Config {
    wasm_smith::Config {
        tail_call_enabled: true,
        memory64_enabled: true,
        relaxed_simd_enabled: true,
        max_memories: 3,
        // Keep memories instantiable: the loader refuses (with an error)
        // minimums beyond its limits.
        max_memory32_bytes: 1 << 24,
        max_memory64_bytes: 1 << 24,
        ..config()
    }
}

#[test]
fn random_wasm3_modules_compile_load_and_instantiate() {
    let mut rng = Rng(0x5eed_3333_abcd_0003);
    let (compiled, instantiated, used) = compile_load_instantiate(config_wasm3(), &mut rng, 80);
    assert!(compiled > 50, "only {compiled} modules generated");
    assert!(
        instantiated > 20,
        "only {instantiated} modules instantiated"
    );
    // The generator did exercise the new features.
    for f in [
        wasmc_format::WasmFeatures::TAIL_CALL,
        wasmc_format::WasmFeatures::MULTI_MEMORY,
        wasmc_format::WasmFeatures::MEMORY64,
        wasmc_format::WasmFeatures::RELAXED_SIMD,
    ] {
        assert!(used.contains(f), "no module used {f}");
    }
}
