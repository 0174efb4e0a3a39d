//! Differential execution: a wasm-smith module of the WebAssembly 2.0 core
//! (reference types, bulk memory, SIMD, multi-value, sign extension,
//! saturating conversions) runs through wasmc (compiled in memory, loaded
//! with `Module::from_bytes`) and through the `wasmi` interpreter; every
//! export is called in order with the same arguments and the results or
//! traps compared, then every exported memory, global and table.
//!
//! - NaNs: wasm-smith's `canonicalize_nans` rewrites every float operation to
//!   produce the canonical NaN, so memories and results can be compared bit
//!   for bit; results are also compared NaN-insensitively as a second guard.
//! - Termination: wasm-smith's `ensure_termination` gives the module a fuel
//!   global decremented at every function entry and loop header, trapping
//!   (`unreachable`) when it runs out; both engines run the same code, so
//!   they stop at the same point.
//! - Resources: both stores limit memories and tables to the same sizes, so
//!   `memory.grow`/`table.grow` fail at the same point.
//! - Left out, with the reason: imports (the two engines would need the same
//!   host functions; exports cover the same code); threads, relaxed SIMD
//!   (results are implementation-defined), tail calls, exceptions, GC,
//!   memory64, multi-memory (not WebAssembly 2.0, or not supported by wasmc).
//! - A stack overflow on either side (the engines' stack limits differ) ends
//!   the comparison of that module as a skip, not a failure.

use super::{Outcome, Rng};
use arbitrary::Unstructured;
use wasmc_compiler::{compile, CompileOptions, MemoryStrategy, OptLevel};
use wasmc_loader as wc;
use wasmc_loader::format::{ExternKind, ValType};

/// Pages both engines may grow a memory to.
const MAX_PAGES: u64 = 160;
/// Elements both engines may grow a table to.
const MAX_ELEMS: u32 = 10_000;
/// The fuel of `ensure_termination`: also bounds the call depth, below
/// both engines' stack limits as set in `compare`.
const FUEL: u32 = 5_000;

/// The wasm-smith configuration (see the module docs for what is left out).
pub fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        bulk_memory_enabled: true,
        reference_types_enabled: true,
        simd_enabled: true,
        multi_value_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        tail_call_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        memory64_enabled: false,
        canonicalize_nans: true,
        export_everything: true,
        max_imports: 0,
        max_memories: 1,
        max_memory32_bytes: 16 * 65536,
        max_tables: 4,
        max_table_elements: 1000,
        min_funcs: 3,
        max_funcs: 20,
        max_instructions: 200,
        allow_start_export: false,
        ..wasm_smith::Config::default()
    }
}

/// The module of `seed`, or `None` if wasm-smith could not make one.
pub fn module(seed: u64) -> Option<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let n = 4096 + rng.below(28 * 1024) as usize;
    let bytes = rng.bytes(n);
    let mut m = wasm_smith::Module::new(config(), &mut Unstructured::new(&bytes)).ok()?;
    m.ensure_termination(FUEL).ok()?;
    Some(m.to_bytes())
}

/// A value both engines can be given or return, with NaNs canonical.
#[derive(Clone, Debug, PartialEq, Eq)]
enum V {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
    /// A reference: only null-ness is comparable across engines.
    Ref {
        null: bool,
    },
}

fn canon32(b: u32) -> V {
    V::F32(if f32::from_bits(b).is_nan() {
        0x7fc0_0000
    } else {
        b
    })
}

fn canon64(b: u64) -> V {
    V::F64(if f64::from_bits(b).is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        b
    })
}

fn from_wc(v: &wc::Val) -> V {
    match v {
        wc::Val::I32(x) => V::I32(*x),
        wc::Val::I64(x) => V::I64(*x),
        wc::Val::F32(b) => canon32(*b),
        wc::Val::F64(b) => canon64(*b),
        wc::Val::V128(x) => V::V128(*x),
        wc::Val::FuncRef(f) => V::Ref { null: f.is_none() },
        wc::Val::ExternRef(r) => V::Ref { null: r.is_none() },
    }
}

fn from_wi(v: &wasmi::Val) -> V {
    match v {
        wasmi::Val::I32(x) => V::I32(*x),
        wasmi::Val::I64(x) => V::I64(*x),
        wasmi::Val::F32(f) => canon32(f.to_bits()),
        wasmi::Val::F64(f) => canon64(f.to_bits()),
        wasmi::Val::V128(x) => V::V128(x.as_u128()),
        wasmi::Val::FuncRef(f) => V::Ref { null: f.is_null() },
        wasmi::Val::ExternRef(r) => V::Ref { null: r.is_null() },
    }
}

/// Random arguments of type `ty` for both engines.
fn args(rng: &mut Rng, ty: &[ValType]) -> (Vec<wc::Val>, Vec<wasmi::Val>) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for t in ty {
        let x = match rng.below(4) {
            0 => 0,
            1 => rng.below(16) as u64,
            _ => rng.next_u64(),
        };
        let (p, q) = match t {
            ValType::I32 => (wc::Val::I32(x as i32), wasmi::Val::I32(x as i32)),
            ValType::I64 => (wc::Val::I64(x as i64), wasmi::Val::I64(x as i64)),
            ValType::F32 => (
                wc::Val::F32(x as u32),
                wasmi::Val::F32(wasmi::F32::from_bits(x as u32)),
            ),
            ValType::F64 => (wc::Val::F64(x), wasmi::Val::F64(wasmi::F64::from_bits(x))),
            ValType::V128 => {
                let v = (u128::from(x) << 64) | u128::from(rng.next_u64());
                (wc::Val::V128(v), wasmi::Val::V128(wasmi::V128::from(v)))
            }
            ValType::FuncRef => (
                wc::Val::FuncRef(None),
                wasmi::Val::FuncRef(wasmi::Ref::Null),
            ),
            ValType::ExternRef => (
                wc::Val::ExternRef(None),
                wasmi::Val::ExternRef(wasmi::Ref::Null),
            ),
        };
        a.push(p);
        b.push(q);
    }
    (a, b)
}

/// The spec's name of a wasmi trap, comparable with wasmc's `TrapCode`.
fn wi_trap(e: &wasmi::Error) -> Option<wc::TrapCode> {
    use wasmi::TrapCode as T;
    use wc::TrapCode as C;
    // wasmi 1.0 reports an out-of-bounds `table.copy`/`table.init` of a
    // running function as a table error, not as a trap code.
    if let wasmi::errors::ErrorKind::Table(_) = e.kind() {
        return Some(C::TableOutOfBounds);
    }
    Some(match e.as_trap_code()? {
        T::UnreachableCodeReached => C::UnreachableCodeReached,
        T::MemoryOutOfBounds => C::MemoryOutOfBounds,
        T::TableOutOfBounds => C::TableOutOfBounds,
        T::IndirectCallToNull => C::IndirectCallToNull,
        T::IntegerDivisionByZero => C::IntegerDivisionByZero,
        T::IntegerOverflow => C::IntegerOverflow,
        T::BadConversionToInteger => C::BadConversionToInteger,
        T::StackOverflow => C::StackOverflow,
        T::BadSignature => C::BadSignature,
        _ => return None,
    })
}

/// What a call or instantiation did, comparably.
#[derive(Debug, PartialEq, Eq)]
enum Did {
    Returned(Vec<V>),
    Trapped(wc::TrapCode),
    Failed(String),
}

fn wc_did(r: Result<(), wc::Error>, results: &[wc::Val]) -> Did {
    match r {
        Ok(()) => Did::Returned(results.iter().map(from_wc).collect()),
        // `call_indirect` past the end of its table: the spec's "undefined
        // element", which wasmi reports as a table access out of bounds.
        Err(wc::Error::Trap(t)) if t.code == wc::TrapCode::UndefinedElement => {
            Did::Trapped(wc::TrapCode::TableOutOfBounds)
        }
        Err(wc::Error::Trap(t)) => Did::Trapped(t.code),
        Err(e) => Did::Failed(e.to_string()),
    }
}

fn wi_did(r: Result<(), wasmi::Error>, results: &[wasmi::Val]) -> Did {
    match r {
        Ok(()) => Did::Returned(results.iter().map(from_wi).collect()),
        Err(e) => match wi_trap(&e) {
            Some(c) => Did::Trapped(c),
            None => Did::Failed(e.to_string()),
        },
    }
}

fn stack_overflow(d: &Did) -> bool {
    matches!(d, Did::Trapped(wc::TrapCode::StackOverflow))
}

/// The compile options of `seed`'s case (both optimization levels and both
/// bounds-check strategies are covered).
pub fn options(seed: u64) -> CompileOptions {
    let mut o = CompileOptions {
        opt_level: if seed.is_multiple_of(2) {
            OptLevel::Speed
        } else {
            OptLevel::None
        },
        threads: Some(1),
        ..CompileOptions::default()
    };
    if seed.is_multiple_of(3) {
        o.memory = MemoryStrategy::Explicit;
    }
    o
}

/// Runs the case of `seed`.
pub fn run(seed: u64) -> Outcome {
    let Some(wasm) = module(seed) else {
        return Outcome::Skip("wasm-smith made no module".into());
    };
    run_module(seed, &wasm)
}

/// Runs `wasm` (arguments drawn from `seed`) through both engines.
pub fn run_module(seed: u64, wasm: &[u8]) -> Outcome {
    match compare(seed, wasm) {
        Ok(None) => Outcome::Pass,
        Ok(Some(skip)) => Outcome::Skip(skip),
        Err(e) => Outcome::Fail(e),
    }
}

fn compare(seed: u64, wasm: &[u8]) -> Result<Option<String>, String> {
    // The reference.
    let mut cfg = wasmi::Config::default();
    cfg.wasm_simd(true)
        .wasm_reference_types(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .wasm_relaxed_simd(false)
        .wasm_tail_call(false)
        .wasm_multi_memory(false)
        .set_max_recursion_depth(100_000);
    let engine = wasmi::Engine::new(&cfg);
    let wi_module = match wasmi::Module::new(&engine, wasm) {
        Ok(m) => m,
        Err(e) => return Ok(Some(format!("wasmi rejects the module: {e}"))),
    };
    let limits = wasmi::StoreLimitsBuilder::new()
        .memory_size((MAX_PAGES * 65536) as usize)
        .table_elements(MAX_ELEMS as usize)
        .build();
    let mut wi_store = wasmi::Store::new(&engine, limits);
    wi_store.limiter(|l| l);

    // wasmc.
    let art =
        compile(wasm, &options(seed)).map_err(|e| format!("wasmc rejects a valid module: {e}"))?;
    let wc_module =
        wc::Module::from_bytes(crate::engine(), &art).map_err(|e| format!("load: {e}"))?;
    let mut wc_store = wc::Store::new(crate::engine(), ());
    // Within the 8 MiB main-thread stack the fuzz workers run on.
    wc_store.set_max_wasm_stack(4 << 20);
    wc_store.set_max_memory_pages(MAX_PAGES);
    wc_store.set_max_table_elements(MAX_ELEMS);

    let wi_inst = wasmi::Linker::<wasmi::StoreLimits>::new(&engine)
        .instantiate_and_start(&mut wi_store, &wi_module);
    let wc_inst = wc::Linker::new(crate::engine()).instantiate(&mut wc_store, &wc_module);
    let (wi_inst, wc_inst) = match (wi_inst, wc_inst) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) => {
            let (a, b) = (wi_did(Err(a), &[]), wc_did(Err(b), &[]));
            if stack_overflow(&a) || stack_overflow(&b) {
                return Ok(Some("stack overflow in the start function".into()));
            }
            // Both failed: a trap must be the same trap; other failures
            // (a segment out of bounds) have engine-specific messages.
            // wasmc reports a segment out of bounds as an instantiation
            // error whose message starts with the spec's trap text.
            return match (&a, &b) {
                (Did::Trapped(x), Did::Trapped(y)) if x != y => {
                    Err(format!("instantiation: wasmi {a:?}, wasmc {b:?}"))
                }
                (Did::Trapped(x), Did::Failed(m)) if !m.starts_with(&x.to_string()) => {
                    Err(format!("instantiation: wasmi {a:?}, wasmc {b:?}"))
                }
                _ => Ok(None),
            };
        }
        (a, b) => {
            return Err(format!(
                "instantiation: wasmi {}, wasmc {}",
                a.map(|_| "ok".to_string())
                    .unwrap_or_else(|e| e.to_string()),
                b.map(|_| "ok".to_string())
                    .unwrap_or_else(|e| e.to_string())
            ))
        }
    };

    let mut rng = Rng::new(seed ^ 0xa5a5_a5a5);
    let exports = wc_module.info().exports.clone();
    // Every exported function, in export order, three times with new
    // arguments (state carries over between calls, as it would in use).
    let funcs: Vec<_> = exports
        .iter()
        .filter(|e| e.kind == ExternKind::Func)
        .collect();
    for e in funcs.iter().cycle().take(3 * funcs.len()) {
        let wcf = wc_inst
            .get_func(&mut wc_store, &e.name)
            .ok_or_else(|| format!("wasmc: no export {}", e.name))?;
        let wif = wi_inst
            .get_func(&wi_store, &e.name)
            .ok_or_else(|| format!("wasmi: no export {}", e.name))?;
        let ty = wcf.ty(&wc_store);
        let (a, b) = args(&mut rng, &ty.params);
        let mut wc_res: Vec<wc::Val> = ty
            .results
            .iter()
            .map(|t| wc::Val::default_for(*t))
            .collect();
        let mut wi_res: Vec<wasmi::Val> = wif
            .ty(&wi_store)
            .results()
            .iter()
            .map(|t| wasmi::Val::default(*t))
            .collect();
        let x = wc_did(wcf.call(&mut wc_store, &a, &mut wc_res), &wc_res);
        let y = wi_did(wif.call(&mut wi_store, &b, &mut wi_res), &wi_res);
        if stack_overflow(&x) || stack_overflow(&y) {
            return Ok(Some(format!("stack overflow in `{}`", e.name)));
        }
        if x != y {
            return Err(format!(
                "export `{}` with {a:?}: wasmc {x:?}, wasmi {y:?}",
                e.name
            ));
        }
        if std::env::var_os("WASMC_FUZZ_VERBOSE").is_some() {
            eprintln!("call `{}`: {x:?}", e.name);
        }
    }

    for e in &exports {
        match e.kind {
            ExternKind::Memory => {
                let m = wc_inst.get_memory(&mut wc_store, &e.name).ok_or("memory")?;
                let n = wi_inst.get_memory(&wi_store, &e.name).ok_or("memory")?;
                let (x, y) = (m.data(&wc_store), n.data(&wi_store));
                if x.len() != y.len() {
                    return Err(format!(
                        "memory `{}`: {} bytes in wasmc, {} in wasmi",
                        e.name,
                        x.len(),
                        y.len()
                    ));
                }
                if let Some(at) = x.iter().zip(y).position(|(p, q)| p != q) {
                    return Err(format!(
                        "memory `{}` differs at {at:#x}: wasmc {:#04x}, wasmi {:#04x}",
                        e.name, x[at], y[at]
                    ));
                }
            }
            ExternKind::Global => {
                let g = wc_inst.get_global(&mut wc_store, &e.name).ok_or("global")?;
                let h = wi_inst.get_global(&wi_store, &e.name).ok_or("global")?;
                let (x, y) = (from_wc(&g.get(&mut wc_store)), from_wi(&h.get(&wi_store)));
                if x != y {
                    return Err(format!("global `{}`: wasmc {x:?}, wasmi {y:?}", e.name));
                }
            }
            ExternKind::Table => {
                let t = wc_inst.get_table(&mut wc_store, &e.name).ok_or("table")?;
                let u = wi_inst.get_table(&wi_store, &e.name).ok_or("table")?;
                let (n, m) = (t.size(&wc_store), u.size(&wi_store));
                if u64::from(n) != m {
                    return Err(format!(
                        "table `{}`: size {n} in wasmc, {m} in wasmi",
                        e.name
                    ));
                }
                for i in 0..n {
                    let x = t.get(&mut wc_store, i).map(|v| from_wc(&v));
                    let y = u.get(&wi_store, u64::from(i)).map(|r| from_wi(&r));
                    if x != y {
                        return Err(format!("table `{}`[{i}]: wasmc {x:?}, wasmi {y:?}", e.name));
                    }
                }
            }
            ExternKind::Func => {}
        }
    }
    Ok(None)
}
