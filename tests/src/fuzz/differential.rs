//! Differential execution: a wasm-smith module runs through wasmc (compiled
//! in memory, loaded with `Module::from_bytes`) and through the `wasmi`
//! interpreter; every export is called in order with the same arguments and
//! the results or traps compared, then every exported memory, global and
//! table.
//!
//! - Profiles: a seed's module is of the WebAssembly 2.0 core (reference
//!   types, bulk memory, SIMD, multi-value, sign extension, saturating
//!   conversions; [`Profile::Wasm2`], a third of the seeds), of that plus
//!   the 3.0 features wasmc implements ([`Profile::Wasm3`]): memory64
//!   (64-bit memories and tables), multi-memory (up to four memories), tail
//!   calls (`return_call`, `return_call_indirect`) and extended constant
//!   expressions. wasm-smith 0.217 has no switch for the last: the generated
//!   module's integer constant expressions (global initializers, segment
//!   offsets) are rewritten into equal `add`/`sub`/`mul` trees
//!   ([`rewrite`]); or one of [`super::edges`]' modules aimed at the edges of
//!   bounds checks and tail calls, with imports from a provider instance
//!   and a host function ([`Profile::Edges`], a fifth of the seeds or so).
//!   The profile is drawn from the seed apart from the compile options, so
//!   every profile meets every option.
//! - wasmc's side ([`options`]): both optimization levels, both bounds-check
//!   strategies (guard pages, explicit checks), fuel and epoch checks on a
//!   quarter of the cases (with limits never reached: the instrumentation
//!   must change nothing); the pooling allocator on a quarter, where the
//!   case runs twice in fresh stores so that its memories and tables reuse
//!   the slots of the first round.
//! - NaNs: wasm-smith's `canonicalize_nans` rewrites every float operation to
//!   produce the canonical NaN, so memories and results can be compared bit
//!   for bit; results are also compared NaN-insensitively as a second guard.
//! - Termination: wasm-smith's `ensure_termination` gives the module a fuel
//!   global decremented at every function entry and loop header, trapping
//!   (`unreachable`) when it runs out; both engines run the same code, so
//!   they stop at the same point. A `return_call` enters its callee, so a
//!   tail-call loop burns fuel as a `call` recursion does (and, needing no
//!   stack, ends by fuel, never by overflow). In the 3.0 profile the fuel
//!   global is exported ([`FUEL_EXPORT`]) and refilled before every call.
//! - Resources: both stores limit every memory (32- or 64-bit) and table to
//!   the same sizes, so `memory.grow`/`table.grow` fail at the same point;
//!   wasm-smith's initial and maximum sizes stay far below those limits.
//! - Arguments: with the 3.0 and edges profiles, integer arguments are also
//!   drawn near the edges a bounds check must get right (a page multiple,
//!   2^32, 2^64), minus a little, since a 64-bit address reaches them only
//!   through them.
//! - Left out, with the reason: imports in wasm-smith's modules (the two
//!   engines would need the same host functions; exports cover the same
//!   code; the edges profile has its own); threads, relaxed SIMD (results
//!   are implementation-defined), exceptions, GC (not supported by wasmc).
//! - Missing bounds checks ([`missing_bounds_check`]): the comparison alone
//!   cannot see one, since the guard region turns an unchecked access out
//!   of bounds into the reference's own trap. So a memory trap of wasmc
//!   that faulted in a memory's guard region ([`wc::Trap::memory_fault`])
//!   fails the case wherever the code should have checked: explicit-check
//!   cases, and 64-bit memories under either strategy. An unchecked access
//!   that leaves every memory's reservation (a 64-bit index can) makes the
//!   loader abort the process: the campaign reports the worker's crash with
//!   its seed.
//! - A stack overflow on either side (the engines' stack limits differ) ends
//!   the comparison of that module as a skip, not a failure; except in the
//!   edges profile, whose modules need one frame at a time (see
//!   [`super::edges`]).

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
/// both engines' stack limits as set in `compare` and `round`.
const FUEL: u32 = 5_000;

/// Which WebAssembly a seed's module is made of (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// The 2.0 core: what every seed generated before the 3.0 features were
    /// added (so the seeds of earlier reports still make the same module).
    Wasm2,
    /// 2.0 plus memory64, multi-memory, tail calls and extended constant
    /// expressions.
    Wasm3,
    /// Small handwritten-style modules at the edges of bounds checks and tail
    /// calls ([`super::edges`]), with extended constant expressions.
    Edges,
}

/// The profile of `seed`: 2.0 for a third of the seeds, edges for a third of
/// the rest, 3.0 for the others. Drawn from a hash of the seed, not from
/// `seed % n`, so that it is independent of the compile options (`options`
/// uses `seed % 2` and `seed % 3`).
pub fn profile(seed: u64) -> Profile {
    let mut r = Rng::new(seed ^ 0x3_0000_0003);
    if r.below(3) == 0 {
        Profile::Wasm2
    } else if r.below(3) == 0 {
        Profile::Edges
    } else {
        Profile::Wasm3
    }
}

/// The wasm-smith configuration of `profile` (see the module docs for what
/// is left out).
pub fn config(profile: Profile) -> wasm_smith::Config {
    let wasm2 = wasm_smith::Config {
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
    };
    match profile {
        Profile::Wasm2 => wasm2,
        // Not made by wasm-smith; the 3.0 configuration is as good as any.
        Profile::Wasm3 | Profile::Edges => wasm_smith::Config {
            // Each memory and each table is 64-bit with probability 1/2.
            memory64_enabled: true,
            // Without a maximum, a 64-bit memory's sizes would reach 2^64
            // bytes; the same 16 pages as a 32-bit one.
            max_memory64_bytes: 16 * 65536,
            // wasm-smith 0.217 has no multi-memory switch: more than one
            // memory is the proposal.
            max_memories: 4,
            tail_call_enabled: true,
            // With no type, wasm-smith makes no function (most of the 2.0
            // profile's modules have none); with no memory, none of the
            // memory64 or multi-memory code is reached.
            min_types: 1,
            min_memories: 1,
            ..wasm2
        },
    }
}

/// The module of `seed`, or `None` if wasm-smith could not make one.
pub fn module(seed: u64) -> Option<Vec<u8>> {
    module_of(seed, profile(seed))
}

/// The module `seed` makes in `profile`.
pub fn module_of(seed: u64, profile: Profile) -> Option<Vec<u8>> {
    let mut rng = Rng::new(seed);
    if profile == Profile::Edges {
        let m = super::edges::modules(&mut rng);
        let provider = wat::parse_str(&m.provider).ok()?;
        let provider = rewrite(&provider, Rng::new(seed ^ 0x9e0_71de), None)?;
        let main = wat::parse_str(&m.main).ok()?;
        let mut main = rewrite(&main, Rng::new(seed ^ 0xe87e_4ded), None)?;
        // A custom section (id 0, then its size and contents) may follow
        // the last section.
        main.push(0);
        wasm_encoder::Encode::encode(
            &wasm_encoder::CustomSection {
                name: PROVIDER_SECTION.into(),
                data: provider.into(),
            },
            &mut main,
        );
        return Some(main);
    }
    let n = 4096 + rng.below(28 * 1024) as usize;
    let bytes = rng.bytes(n);
    let mut cfg = config(profile);
    // A third of the 3.0 profile's modules trap only by running out of fuel
    // or stack (wasm-smith guards every access, division and conversion,
    // and leaves out what it cannot guard): calls run
    // to their end instead of stopping at the first access out of bounds,
    // so more of the accesses in bounds, 64-bit ones included, are reached.
    if profile == Profile::Wasm3 && Rng::new(seed ^ 0x0d15_a110).below(3) == 0 {
        cfg.disallow_traps = true;
    }
    let mut m = wasm_smith::Module::new(cfg, &mut Unstructured::new(&bytes)).ok()?;
    let fuel = m.ensure_termination(FUEL).ok()?;
    let wasm = m.to_bytes();
    match profile {
        Profile::Wasm2 => Some(wasm),
        _ => rewrite(&wasm, Rng::new(seed ^ 0xe87e_4ded), Some(fuel)),
    }
}

/// The custom section of a module of the edges profile that holds its
/// provider module (instantiated first, its exports the imports of module
/// `p`), so that a case stays one module (and one reproducer file).
pub const PROVIDER_SECTION: &str = "wasmc-fuzz-provider";

/// The provider module embedded in `wasm`, if any (see [`PROVIDER_SECTION`]).
pub fn provider_of(wasm: &[u8]) -> Option<Vec<u8>> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .find_map(|p| match p {
            Ok(wasmparser::Payload::CustomSection(c)) if c.name() == PROVIDER_SECTION => {
                Some(c.data().to_vec())
            }
            _ => None,
        })
}

/// The name under which the 3.0 profile exports the fuel global of
/// `ensure_termination`, so that every call starts with `FUEL` (else the
/// first call that loops takes all of it, and every later call traps at its
/// first fuel check: most of a module's code would never run).
pub const FUEL_EXPORT: &str = "\u{0}fuel";

/// Rewrites `wasm`'s integer constant expressions (`i32.const v`,
/// `i64.const v` alone: global initializers, data and element offsets,
/// including those of 64-bit memories and tables) into extended constant
/// expressions of the same value: trees of `add`, `sub` and `mul` whose
/// arithmetic wraps, so both engines must evaluate them exactly. Also
/// exports global `fuel`, if any, as [`FUEL_EXPORT`]. `None` if the module
/// does not re-encode (it always should).
pub fn rewrite(wasm: &[u8], rng: Rng, fuel: Option<u32>) -> Option<Vec<u8>> {
    use wasm_encoder::reencode::{utils, Error, Reencode};
    use wasm_encoder::{ConstExpr, Encode, Instruction};

    struct Extend(Rng, Option<u32>);

    impl Extend {
        /// An operand: small, or any bits (wrapping is part of the test).
        fn operand(&mut self) -> i64 {
            if self.0.chance(1, 2) {
                i64::from(self.0.below(1000)) - 500
            } else {
                self.0.next_u64() as i64
            }
        }

        /// Appends instructions leaving `v` on the stack (an `i64` if
        /// `wide`, else the `i32` of its low bits), at most `depth` operators
        /// deep.
        fn tree(&mut self, v: i64, wide: bool, depth: u32, out: &mut Vec<u8>) {
            let (add, sub, mul) = if wide {
                (
                    Instruction::I64Add,
                    Instruction::I64Sub,
                    Instruction::I64Mul,
                )
            } else {
                (
                    Instruction::I32Add,
                    Instruction::I32Sub,
                    Instruction::I32Mul,
                )
            };
            match if depth == 0 { 0 } else { self.0.below(4) } {
                0 if wide => Instruction::I64Const(v).encode(out),
                0 => Instruction::I32Const(v as i32).encode(out),
                1 => {
                    let a = self.operand();
                    self.tree(a, wide, depth - 1, out);
                    self.tree(v.wrapping_sub(a), wide, depth - 1, out);
                    add.encode(out);
                }
                2 => {
                    let a = self.operand();
                    self.tree(v.wrapping_add(a), wide, depth - 1, out);
                    self.tree(a, wide, depth - 1, out);
                    sub.encode(out);
                }
                _ => {
                    // a * b + (v - a * b); the low 32 bits of a 64-bit
                    // product are those of the 32-bit one, so one formula
                    // serves both widths.
                    let (a, b) = (self.operand(), self.operand());
                    self.tree(a, wide, depth - 1, out);
                    self.tree(b, wide, depth - 1, out);
                    mul.encode(out);
                    self.tree(v.wrapping_sub(a.wrapping_mul(b)), wide, depth - 1, out);
                    add.encode(out);
                }
            }
        }
    }

    impl Reencode for Extend {
        type Error = std::convert::Infallible;

        fn const_expr(
            &mut self,
            e: wasmparser::ConstExpr,
        ) -> Result<ConstExpr, Error<Self::Error>> {
            let mut ops = e.get_operators_reader();
            let first = ops.read().map_err(Error::ParseError)?;
            let alone = ops
                .read()
                .is_ok_and(|op| matches!(op, wasmparser::Operator::End))
                && ops.eof();
            let (v, wide) = match first {
                wasmparser::Operator::I32Const { value } if alone => (i64::from(value), false),
                wasmparser::Operator::I64Const { value } if alone => (value, true),
                _ => return utils::const_expr(self, e),
            };
            // One in four stays as it was (the plain form must keep working).
            if self.0.chance(1, 4) {
                return utils::const_expr(self, e);
            }
            let mut out = Vec::new();
            let depth = self.0.range(1, 3);
            self.tree(v, wide, depth, &mut out);
            Ok(ConstExpr::raw(out))
        }

        fn parse_export_section(
            &mut self,
            exports: &mut wasm_encoder::ExportSection,
            section: wasmparser::ExportSectionReader<'_>,
        ) -> Result<(), Error<Self::Error>> {
            utils::parse_export_section(self, exports, section)?;
            // wasm-smith's names never start with a NUL in practice; one
            // that does makes an invalid module, which is skipped.
            if let Some(fuel) = self.1 {
                exports.export(FUEL_EXPORT, wasm_encoder::ExportKind::Global, fuel);
            }
            Ok(())
        }
    }

    let mut out = wasm_encoder::Module::new();
    Extend(rng, fuel)
        .parse_core_module(&mut out, wasmparser::Parser::new(0), wasm)
        .ok()?;
    Some(out.finish())
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

/// A number just below an edge that a bounds check must get right: a page
/// multiple up to `MAX_PAGES` pages (mostly up to 8, near the sizes of the
/// generated memories), 2^31, 2^32, 2^63 or 2^64 (0 wrapped), less 0 to 16.
/// Truncated to an `i32`, 2^32 and 2^64 are -16..=0.
fn edge(rng: &mut Rng) -> u64 {
    let at = match rng.below(5) {
        0 | 1 if rng.chance(3, 4) => 65536 * rng.below_u64(9),
        0 | 1 => 65536 * rng.below_u64(MAX_PAGES + 1),
        2 => 1 << 32,
        3 => 1 << (if rng.chance(1, 2) { 31 } else { 63 }),
        _ => 0,
    };
    at.wrapping_sub(rng.below_u64(17))
}

/// wasmc's name of a wasmi value type.
fn wi_type(t: wasmi::ValType) -> ValType {
    match t {
        wasmi::ValType::I32 => ValType::I32,
        wasmi::ValType::I64 => ValType::I64,
        wasmi::ValType::F32 => ValType::F32,
        wasmi::ValType::F64 => ValType::F64,
        wasmi::ValType::V128 => ValType::V128,
        wasmi::ValType::FuncRef => ValType::FuncRef,
        wasmi::ValType::ExternRef => ValType::ExternRef,
    }
}

/// The host functions' computation: every argument mixed into one number,
/// the results made from it (floats never NaN, references null), for
/// both engines.
fn host_mix(args: &[V], results: &[ValType]) -> Vec<(wc::Val, wasmi::Val)> {
    let mut acc: u64 = 0x9e37_79b9_7f4a_7c15;
    for a in args {
        let x = match a {
            V::I32(x) => u64::from(*x as u32),
            V::I64(x) => *x as u64,
            V::F32(b) => u64::from(*b),
            V::F64(b) => *b,
            V::V128(x) => (*x as u64) ^ ((*x >> 64) as u64).rotate_left(17),
            V::Ref { null } => u64::from(*null),
        };
        acc = acc.wrapping_mul(31).wrapping_add(x);
    }
    results
        .iter()
        .enumerate()
        .map(|(r, t)| {
            let x = acc.wrapping_add(r as u64);
            match t {
                ValType::I32 => (wc::Val::I32(x as i32), wasmi::Val::I32(x as i32)),
                ValType::I64 => (wc::Val::I64(x as i64), wasmi::Val::I64(x as i64)),
                ValType::F32 => {
                    let f = (x % 1_000_000) as f32;
                    (wc::Val::F32(f.to_bits()), wasmi::Val::F32(f.into()))
                }
                ValType::F64 => {
                    let f = (x >> 12) as f64;
                    (wc::Val::F64(f.to_bits()), wasmi::Val::F64(f.into()))
                }
                ValType::V128 => {
                    let v = u128::from(x) | (u128::from(x.wrapping_mul(7)) << 64);
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
            }
        })
        .collect()
}

/// Random arguments of type `ty` for both engines: in the 3.0 profile,
/// integers are also drawn from [`edge`]; in the edges profile, half of
/// them.
fn args(rng: &mut Rng, ty: &[ValType], profile: Profile) -> (Vec<wc::Val>, Vec<wasmi::Val>) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for t in ty {
        // 0, small, any bits or an edge: in the 2.0 profile, drawn as
        // before there were profiles (a draw in 0..4, no edges).
        let n = match profile {
            Profile::Wasm2 => 4,
            Profile::Wasm3 => 5,
            Profile::Edges => 6,
        };
        let x = match rng.below(n) {
            0 => 0,
            1 => rng.below(16) as u64,
            2 | 3 if n != 6 => rng.next_u64(),
            2 => rng.next_u64(),
            _ => edge(rng),
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

/// A trap's guard-region fault as the missing-bounds-check oracle sees it:
/// wasmc's [`wc::MemoryFault`] with the index type of its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardFault {
    /// The fault's Wasm address.
    pub wasm_address: u64,
    /// The memory's size in bytes at the fault.
    pub memory_size: u64,
    /// Whether the memory is 64-bit (memory64).
    pub memory64: bool,
}

/// The missing-bounds-check oracle: `Some(why)` if code compiled with
/// `strategy` took a guard-region fault (`fault`) that a bounds check should
/// have prevented.
///
/// The comparison with the reference cannot see a missing check: an access
/// out of bounds that nothing checked still faults in the memory's guard
/// region or unmapped reservation and becomes the same "out of bounds
/// memory access" trap. But a fault is only legitimate where the code
/// relies on the guard layout: 32-bit memories under
/// [`MemoryStrategy::Guard`]. Under [`MemoryStrategy::Explicit`], and for
/// every access to a 64-bit memory whatever the strategy
/// (`compiler/src/func_environ.rs`, `make_heap`: a dynamic heap with no
/// guard region), every access is compared with the memory's length first,
/// so the trap comes from the check (a `ud2`, or, with Spectre mitigation,
/// a load from null, which is in no memory) and never from the guard.
pub fn missing_bounds_check(strategy: MemoryStrategy, fault: &GuardFault) -> Option<String> {
    let why = if fault.memory64 {
        "an access to a 64-bit memory"
    } else if strategy == MemoryStrategy::Explicit {
        "an access compiled with explicit bounds checks"
    } else {
        return None;
    };
    Some(format!(
        "missing bounds check: {why} faulted in the guard region (memory fault at wasm \
         address {:#x} in linear memory of size {:#x}) instead of being stopped by its check",
        fault.wasm_address, fault.memory_size
    ))
}

/// [`missing_bounds_check`] of wasmc's result `r` in `store`, for code
/// compiled with `strategy`.
fn check_guard_fault<T>(
    strategy: MemoryStrategy,
    store: &wc::Store<()>,
    r: &Result<T, wc::Error>,
) -> Option<String> {
    let Err(wc::Error::Trap(t)) = r else {
        return None;
    };
    let f = t.memory_fault?;
    missing_bounds_check(
        strategy,
        &GuardFault {
            wasm_address: f.wasm_address,
            memory_size: f.memory_size,
            memory64: f.memory.ty(store).memory64,
        },
    )
}

/// The compile options of `seed`'s case (both optimization levels, both
/// bounds-check strategies, with and without fuel and epoch checks).
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
    // A quarter of the cases count fuel and check epochs, with limits never
    // reached: the instrumentation must not change what the code does (a
    // tail call, which leaves its frame, included). Drawn from a hash, so
    // independent of the rest.
    if Rng::new(seed ^ 0x1e7e_f0e1).below(4) == 0 {
        o.interruption = wasmc_compiler::Interruption {
            epochs: true,
            fuel: true,
        };
    }
    o
}

/// Runs the case of `seed`.
pub fn run(seed: u64) -> Outcome {
    run_profile(seed, profile(seed))
}

/// Runs the module `seed` makes in `profile`, as the case of `seed` would if
/// that were its profile (for the seeds of reports made before there were
/// profiles).
pub fn run_profile(seed: u64, profile: Profile) -> Outcome {
    let Some(wasm) = module_of(seed, profile) else {
        return Outcome::Skip("wasm-smith made no module".into());
    };
    run_with(seed, &wasm, profile)
}

/// Runs `wasm` (arguments drawn from `seed`, with edges if its profile is
/// 3.0) through both engines.
pub fn run_module(seed: u64, wasm: &[u8]) -> Outcome {
    run_with(seed, wasm, profile(seed))
}

fn run_with(seed: u64, wasm: &[u8], profile: Profile) -> Outcome {
    match compare(seed, wasm, profile) {
        Ok(None) => Outcome::Pass,
        Ok(Some(skip)) => Outcome::Skip(skip),
        Err(e) => Outcome::Fail(e),
    }
}

fn compare(seed: u64, wasm: &[u8], profile: Profile) -> Result<Option<String>, String> {
    // The reference.
    let mut cfg = wasmi::Config::default();
    cfg.wasm_simd(true)
        .wasm_reference_types(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .wasm_relaxed_simd(false)
        .wasm_tail_call(true)
        .wasm_multi_memory(true)
        .wasm_memory64(true)
        .wasm_extended_const(true)
        .set_max_recursion_depth(100_000);
    let engine = wasmi::Engine::new(&cfg);
    let wi_module = match wasmi::Module::new(&engine, wasm) {
        Ok(m) => m,
        Err(e) => return Ok(Some(format!("wasmi rejects the module: {e}"))),
    };
    // wasmc, in the pooling allocator for a quarter of the cases (drawn
    // from a hash, independent of the rest).
    let pooled = Rng::new(seed ^ 0x0090_01ed).below(4) == 0;
    let wce = if pooled {
        crate::pooled_engine()
    } else {
        crate::engine()
    };
    let art =
        compile(wasm, &options(seed)).map_err(|e| format!("wasmc rejects a valid module: {e}"))?;
    let wc_module = wc::Module::from_bytes(wce, &art).map_err(|e| format!("load: {e}"))?;
    // The provider loads in both or the case is not judged (it has no
    // reason to fail).
    let provider = match provider_of(wasm) {
        None => None,
        Some(p) => {
            let wi_p = wasmi::Module::new(&engine, &p[..]).map_err(|e| e.to_string());
            let wc_p = compile(&p, &options(seed))
                .map_err(|e| e.to_string())
                .and_then(|a| wc::Module::from_bytes(wce, &a).map_err(|e| e.to_string()));
            match (wi_p, wc_p) {
                (Ok(a), Ok(b)) => Some((a, b)),
                (a, b) => {
                    return Ok(Some(format!(
                        "provider: wasmi {}, wasmc {}",
                        a.map(|_| "ok".to_string()).unwrap_or_else(|e| e),
                        b.map(|_| "ok".to_string()).unwrap_or_else(|e| e)
                    )))
                }
            }
        }
    };
    let m = Modules {
        wi_engine: &engine,
        wi: &wi_module,
        wc_engine: wce,
        wc: &wc_module,
        provider: provider.as_ref(),
    };
    // In the pooling allocator, a second round of fresh stores and
    // instances of the same modules: their memories and tables take the
    // slots the first round's gave back, kept for the same memories, which
    // must read as initial again, not as the first round left them.
    for _ in 0..if pooled { 2 } else { 1 } {
        if let Some(skip) = round(seed, profile, &m)? {
            return Ok(Some(skip));
        }
    }
    Ok(None)
}

/// The loaded modules of a case.
struct Modules<'a> {
    wi_engine: &'a wasmi::Engine,
    wi: &'a wasmi::Module,
    wc_engine: &'static wc::Engine,
    wc: &'a wc::Module,
    /// The provider module (see [`PROVIDER_SECTION`]), in each engine.
    provider: Option<&'a (wasmi::Module, wc::Module)>,
}

/// Instantiates the modules of `m` in new stores and compares the calls of
/// every export and the state left.
fn round(seed: u64, profile: Profile, m: &Modules) -> Result<Option<String>, String> {
    let (engine, wi_module, wc_module) = (m.wi_engine, m.wi, m.wc);
    let limits = wasmi::StoreLimitsBuilder::new()
        .memory_size((MAX_PAGES * 65536) as usize)
        .table_elements(MAX_ELEMS as usize)
        .build();
    let mut wi_store = wasmi::Store::new(engine, limits);
    wi_store.limiter(|l| l);

    let mut wc_store = wc::Store::new(m.wc_engine, ());
    // Within the 8 MiB main-thread stack the fuzz workers run on. The edges
    // profile's modules recurse only by tail calls: a small stack, which a
    // tail call that kept its frame would overflow in its thousands of
    // rounds.
    let small_stack = profile == Profile::Edges;
    wc_store.set_max_wasm_stack(if small_stack { 128 << 10 } else { 4 << 20 });
    wc_store.set_max_memory_pages(MAX_PAGES);
    let interruption = options(seed).interruption;
    if interruption.fuel {
        wc_store
            .set_fuel(1 << 40)
            .map_err(|e| format!("set_fuel: {e}"))?;
    }
    if interruption.epochs {
        wc_store
            .set_epoch_deadline(1 << 40)
            .map_err(|e| format!("set_epoch_deadline: {e}"))?;
    }
    wc_store.set_max_table_elements(MAX_ELEMS);

    let mut wi_linker = wasmi::Linker::<wasmi::StoreLimits>::new(engine);
    let mut wc_linker = wc::Linker::new(m.wc_engine);
    if let Some((wi_p, wc_p)) = m.provider {
        let a = wasmi::Linker::new(engine)
            .instantiate_and_start(&mut wi_store, wi_p)
            .map_err(|e| format!("provider: wasmi {e}"))?;
        let b = wc::Linker::new(m.wc_engine)
            .instantiate(&mut wc_store, wc_p)
            .map_err(|e| format!("provider: wasmc {e}"))?;
        wi_linker
            .instance(&mut wi_store, "p", a)
            .map_err(|e| e.to_string())?;
        wc_linker
            .instance(&mut wc_store, "p", b)
            .map_err(|e| e.to_string())?;
    }
    for imp in wc_module.imports() {
        if let (true, wc::ExternType::Func(ty)) = (imp.module == "h", &imp.ty) {
            let results = ty.results.clone();
            wc_linker
                .func_new("h", &imp.name, ty.clone(), move |_, a, r| {
                    let v: Vec<V> = a.iter().map(from_wc).collect();
                    for (slot, x) in r.iter_mut().zip(host_mix(&v, &results)) {
                        *slot = x.0;
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
        }
    }
    for imp in wi_module.imports() {
        if let (true, wasmi::ExternType::Func(ty)) = (imp.module() == "h", imp.ty()) {
            let results: Vec<ValType> = ty.results().iter().map(|t| wi_type(*t)).collect();
            wi_linker
                .func_new("h", imp.name(), ty.clone(), move |_, a, r| {
                    let v: Vec<V> = a.iter().map(from_wi).collect();
                    for (slot, x) in r.iter_mut().zip(host_mix(&v, &results)) {
                        *slot = x.1;
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
        }
    }
    let strategy = options(seed).memory;
    let wi_inst = wi_linker.instantiate_and_start(&mut wi_store, wi_module);
    let wc_inst = wc_linker.instantiate(&mut wc_store, wc_module);
    // A start function's trap is judged as a call's.
    if let Some(why) = check_guard_fault(strategy, &wc_store, &wc_inst) {
        return Err(format!("instantiation: {why}"));
    }
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
        if let (Some(g), Some(h)) = (
            wc_inst.get_global(&mut wc_store, FUEL_EXPORT),
            wi_inst.get_global(&wi_store, FUEL_EXPORT),
        ) {
            g.set(&mut wc_store, wc::Val::I32(FUEL as i32))
                .map_err(|e| format!("wasmc: refuel: {e}"))?;
            h.set(&mut wi_store, wasmi::Val::I32(FUEL as i32))
                .map_err(|e| format!("wasmi: refuel: {e}"))?;
        }
        let ty = wcf.ty(&wc_store);
        let (a, b) = args(&mut rng, &ty.params, profile);
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
        let r = wcf.call(&mut wc_store, &a, &mut wc_res);
        // Before comparing: the reference gives the same trap whenever the
        // guard region turned the unchecked access into one.
        if let Some(why) = check_guard_fault(strategy, &wc_store, &r) {
            return Err(format!("export `{}` with {a:?}: {why}", e.name));
        }
        let x = wc_did(r, &wc_res);
        let y = wi_did(wif.call(&mut wi_store, &b, &mut wi_res), &wi_res);
        if (stack_overflow(&x) || stack_overflow(&y)) && !small_stack {
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
                // `==` first: a slice comparison is a memcmp even in a
                // debug build, the search byte by byte is not (it was a
                // tenth of a case's time with several memories).
                if x == y {
                    continue;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The oracle rejects a guard-region fault where the code should have
    /// checked (explicit strategy, any 64-bit memory) and accepts it where
    /// the code relies on the guard (a 32-bit memory in guard mode).
    #[test]
    fn oracle_rejects_guard_faults_of_explicitly_checked_accesses() {
        let fault = |memory64| GuardFault {
            wasm_address: 0x1_0000,
            memory_size: 0x1_0000,
            memory64,
        };
        let why = missing_bounds_check(MemoryStrategy::Explicit, &fault(false))
            .expect("an explicit-mode guard fault is a missing check");
        assert!(why.starts_with("missing bounds check"), "{why}");
        assert!(
            why.contains("memory fault at wasm address 0x10000 in linear memory of size 0x10000"),
            "{why}"
        );
        for strategy in [MemoryStrategy::Guard, MemoryStrategy::Explicit] {
            assert!(
                missing_bounds_check(strategy, &fault(true)).is_some(),
                "{strategy:?}: a 64-bit memory is always checked"
            );
        }
        assert_eq!(
            missing_bounds_check(MemoryStrategy::Guard, &fault(false)),
            None
        );
    }
}
