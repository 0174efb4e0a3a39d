//! The modules of the differential fuzzer's edges profile
//! ([`super::differential::Profile::Edges`]): small modules, written as text
//! from a seed, aimed at what wasm-smith reaches only by luck and where a
//! mistake is unsound rather than wrong:
//!
//! - bounds checks of 32- and 64-bit memories, several in one module: every
//!   kind of load and store (scalar, SIMD, lanes) on each memory, with
//!   offsets at the edges (0, a page less a little, 2^32 and 2^64 less a
//!   little) and the address an argument (the fuzzer draws arguments near
//!   page multiples, 2^32 and 2^64); `memory.fill`, `memory.copy` between
//!   any two memories (the length an `i64` only when both are 64-bit),
//!   `memory.init`, `data.drop`, `memory.size` and `memory.grow`;
//! - tail calls: a few functions of different signatures (up to a dozen
//!   parameters of every type, so that some go on the stack) that
//!   `return_call` or `return_call_indirect` each other through a 32- or
//!   64-bit table for thousands of rounds, mixing their parameters into
//!   every argument and result (a parameter read from the wrong slot of a
//!   replaced frame changes the result); a slot of another type, a null or
//!   one past the table traps. The fuzzer runs these with a small wasm stack,
//!   on which a tail call that leaks its frame overflows (a failure here, not
//!   a skip);
//! - another instance: a provider module, instantiated first, whose memory
//!   is the main module's memory 0 in half of the cases and whose function
//!   `pg` (of one of the chain's types) the chain reaches by `return_call`
//!   of the import or `return_call_indirect` of its table slot; `pg` reads
//!   its memory and tail calls a function of its own; the chain's table is
//!   the provider's in half of the cases; every segment offset and a global
//!   are extended constant expressions over the provider's globals;
//! - a host function `h.mix` (the fuzzer's `host_mix`, the same in both
//!   engines) of one of the chain's types, which the chain also reaches by
//!   a tail call. wasm-smith's modules have no imports.
//!
//! Values that reach a result are kept free of NaN bits (floats go through
//! saturating conversions), so no canonicalization is needed. The module is
//! then given extended constant expressions like the 3.0 profile's.

use super::Rng;
use std::fmt::Write;

/// The iterations of a tail-call chain are its first argument masked with
/// this: thousands of frames if a tail call kept its frame.
pub const ROUNDS_MASK: u32 = 0xfff;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum T {
    I32,
    I64,
    F32,
    F64,
    V128,
}

impl T {
    fn name(self) -> &'static str {
        match self {
            T::I32 => "i32",
            T::I64 => "i64",
            T::F32 => "f32",
            T::F64 => "f64",
            T::V128 => "v128",
        }
    }

    fn any(rng: &mut Rng) -> T {
        [T::I32, T::I64, T::F32, T::F64, T::V128][rng.index(5)]
    }

    /// An expression of this type from `v`, an `i64` expression.
    fn of_i64(self, v: &str) -> String {
        match self {
            T::I32 => format!("(i32.wrap_i64 {v})"),
            T::I64 => v.to_string(),
            T::F32 => format!("(f32.convert_i64_s {v})"),
            T::F64 => format!("(f64.convert_i64_s {v})"),
            T::V128 => {
                format!("(i64x2.replace_lane 1 (i64x2.splat {v}) (i64.mul {v} (i64.const 7)))")
            }
        }
    }

    /// An `i64` expression from `v`, an expression of this type, with no
    /// NaN bits in it.
    fn to_i64(self, v: &str) -> String {
        match self {
            T::I32 => format!("(i64.extend_i32_u {v})"),
            T::I64 => v.to_string(),
            T::F32 => format!("(i64.trunc_sat_f32_s {v})"),
            T::F64 => format!("(i64.trunc_sat_f64_s {v})"),
            T::V128 => format!(
                "(i64.xor (i64x2.extract_lane 0 {v}) (i64.rotl (i64x2.extract_lane 1 {v}) (i64.const 17)))"
            ),
        }
    }

    /// `v` changed by counter `n` (an `i32` expression), so that every
    /// round passes on something new.
    fn step(self, v: &str, n: &str) -> String {
        match self {
            T::I32 => format!("(i32.xor (i32.rotl {v} (i32.const 5)) {n})"),
            T::I64 => format!("(i64.xor (i64.rotl {v} (i64.const 7)) (i64.extend_i32_u {n}))"),
            T::F32 => format!("(f32.add {v} (f32.convert_i32_u {n}))"),
            T::F64 => format!("(f64.sub {v} (f64.convert_i32_s {n}))"),
            T::V128 => format!("(i32x4.add (i8x16.swizzle {v} (v128.const i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 0)) (i32x4.splat {n}))"),
        }
    }

    /// A constant of this type.
    fn konst(self, rng: &mut Rng) -> String {
        let x = rng.next_u64();
        match self {
            T::I32 => format!("(i32.const {})", x as i32),
            T::I64 => format!("(i64.const {})", x as i64),
            T::F32 => format!("(f32.const {})", (x % 100_000) as f32 / 8.0),
            T::F64 => format!("(f64.const {})", (x % 10_000_000) as f64 / 16.0),
            T::V128 => format!("(v128.const i64x2 {} {})", x as i64, rng.next_u64() as i64),
        }
    }
}

struct Mem {
    m64: bool,
    min: u64,
}

impl Mem {
    fn idx(&self) -> &'static str {
        if self.m64 {
            "i64"
        } else {
            "i32"
        }
    }

    /// A `memarg` offset at an edge; a 32-bit memory's fits 32 bits.
    fn offset(&self, rng: &mut Rng) -> u64 {
        let little = rng.below_u64(17);
        // Mostly offsets that some address keeps in bounds.
        let o = match rng.below(8) {
            0 | 1 => 0,
            2 | 3 => little,
            4 | 5 => (65536 * (1 + rng.below_u64(self.min + 2))).saturating_sub(little),
            6 => (1u64 << 32).wrapping_sub(little + 1),
            _ if rng.chance(1, 2) => u64::MAX - little,
            _ => rng.next_u64(),
        };
        if self.m64 {
            o
        } else {
            o & 0xffff_ffff
        }
    }
}

/// Loads: the instruction (with its lane, if any), result type, access size,
/// and whether it takes a v128 operand (a lane load).
const LOADS: &[(&str, T, u32, bool)] = &[
    ("i32.load", T::I32, 4, false),
    ("i64.load", T::I64, 8, false),
    ("f32.load", T::F32, 4, false),
    ("f64.load", T::F64, 8, false),
    ("i32.load8_s", T::I32, 1, false),
    ("i32.load16_u", T::I32, 2, false),
    ("i64.load8_u", T::I64, 1, false),
    ("i64.load16_s", T::I64, 2, false),
    ("i64.load32_s", T::I64, 4, false),
    ("v128.load", T::V128, 16, false),
    ("v128.load8x8_s", T::V128, 8, false),
    ("v128.load32x2_u", T::V128, 8, false),
    ("v128.load16_splat", T::V128, 2, false),
    ("v128.load64_splat", T::V128, 8, false),
    ("v128.load32_zero", T::V128, 4, false),
    ("v128.load64_zero", T::V128, 8, false),
    ("v128.load8_lane 15", T::V128, 1, true),
    ("v128.load32_lane 2", T::V128, 4, true),
    ("v128.load64_lane 1", T::V128, 8, true),
];

/// Stores: the instruction, value type, access size, lane store.
const STORES: &[(&str, T, u32)] = &[
    ("i32.store", T::I32, 4),
    ("i64.store", T::I64, 8),
    ("f32.store", T::F32, 4),
    ("f64.store", T::F64, 8),
    ("i32.store8", T::I32, 1),
    ("i32.store16", T::I32, 2),
    ("i64.store8", T::I64, 1),
    ("i64.store32", T::I64, 4),
    ("v128.store", T::V128, 16),
    ("v128.store8_lane 3", T::V128, 1),
    ("v128.store16_lane 7", T::V128, 2),
    ("v128.store64_lane 0", T::V128, 8),
];

/// An `align=` of at most `size` bytes, often left out (natural).
fn align(rng: &mut Rng, size: u32) -> String {
    if rng.chance(2, 3) {
        String::new()
    } else {
        format!(" align={}", 1u32 << rng.below(size.trailing_zeros() + 1))
    }
}

/// A module of the edges profile: the main module and the provider, whose
/// exports the main module imports as module `p` (instantiated first).
pub struct Modules {
    pub provider: String,
    pub main: String,
}

/// The modules of the edges profile for `rng`.
pub fn modules(rng: &mut Rng) -> Modules {
    // Declarations in the order the text format wants them: types, then
    // imports, then definitions.
    let mut types = String::new();
    let mut imports = String::new();
    let mut w = String::new();
    let mut provider = String::from("(module\n");
    // Imported immutable globals, which extended constant expressions may
    // read: every offset below is one of them plus a constant.
    let bases = Bases {
        b32: rng.next_u64() as i32,
        b64: rng.next_u64() as i64,
    };
    writeln!(
        provider,
        "  (global (export \"b32\") i32 (i32.const {}))\n  (global (export \"b64\") i64 (i64.const {}))",
        bases.b32, bases.b64
    )
    .unwrap();
    writeln!(
        imports,
        "  (import \"p\" \"b32\" (global $b32 i32))\n  (import \"p\" \"b64\" (global $b64 i64))"
    )
    .unwrap();
    writeln!(
        w,
        "  (global (export \"gx\") i64 (i64.mul (i64.sub (global.get $b64) (i64.const {})) (i64.const {})))\n\
         \x20 (global (export \"gy\") i32 (i32.sub (i32.mul (global.get $b32) (global.get $b32)) (i32.const {})))",
        rng.next_u64() as i64,
        rng.next_u64() as i64,
        rng.next_u64() as i32
    )
    .unwrap();
    let mems: Vec<Mem> = (0..rng.range(1, 3))
        .map(|_| Mem {
            m64: rng.chance(1, 2),
            // Mostly 1 or 2 pages: an empty memory makes every access trap.
            min: if rng.chance(1, 5) {
                0
            } else {
                rng.range(1, 2).into()
            },
        })
        .collect();
    // Memory 0 is the provider's, imported, in half of the cases: accesses
    // through an imported memory's definition, growth seen by both.
    let import_mem = rng.chance(1, 2);
    for (k, m) in mems.iter().enumerate() {
        let max = if rng.chance(1, 2) {
            format!(" {}", m.min + rng.below_u64(3))
        } else {
            String::new()
        };
        if k == 0 && import_mem {
            writeln!(
                provider,
                "  (memory (export \"pm\") {} {}{max})",
                m.idx(),
                m.min
            )
            .unwrap();
            writeln!(
                imports,
                "  (import \"p\" \"pm\" (memory $m0 {} {}{max}))",
                m.idx(),
                m.min
            )
            .unwrap();
            writeln!(w, "  (export \"m0\" (memory $m0))").unwrap();
        } else {
            writeln!(
                w,
                "  (memory $m{k} (export \"m{k}\") {} {}{max})",
                m.idx(),
                m.min
            )
            .unwrap();
        }
        // An active segment inside the initial size, a passive one.
        if m.min > 0 {
            let len = 1 + rng.below_u64(24);
            let at = rng.below_u64(m.min * 65536 - len + 1);
            writeln!(
                w,
                "  (data (memory $m{k}) {} \"{}\")",
                bases.offset(m.m64, at),
                bytes(rng, len)
            )
            .unwrap();
        }
        let len = 1 + rng.below_u64(40);
        writeln!(w, "  (data $d{k} \"{}\")", bytes(rng, len)).unwrap();
    }
    if !import_mem {
        // The provider's function reads a memory of its own.
        writeln!(provider, "  (memory (export \"pm\") 1)").unwrap();
    }
    for (k, m) in mems.iter().enumerate() {
        let ix = m.idx();
        for i in 0..rng.range(3, 6) {
            let (op, ty, size, lane) = LOADS[rng.index(LOADS.len())];
            let mut parts = op.splitn(2, ' ');
            let (name, lane_no) = (parts.next().unwrap(), parts.next());
            let lane_no = lane_no.map(|l| format!(" {l}")).unwrap_or_default();
            let operand = if lane {
                format!(" {}", T::V128.konst(rng))
            } else {
                String::new()
            };
            writeln!(
                w,
                "  (func (export \"load{k}_{i}\") (param {ix}) (result {})\n    ({name} $m{k} offset={}{}{lane_no} (local.get 0){operand}))",
                ty.name(),
                m.offset(rng),
                align(rng, size)
            )
            .unwrap();
        }
        for i in 0..rng.range(2, 5) {
            let (op, ty, size) = STORES[rng.index(STORES.len())];
            let mut parts = op.splitn(2, ' ');
            let (name, lane_no) = (parts.next().unwrap(), parts.next());
            let lane_no = lane_no.map(|l| format!(" {l}")).unwrap_or_default();
            writeln!(
                w,
                "  (func (export \"store{k}_{i}\") (param {ix} {})\n    ({name} $m{k} offset={}{}{lane_no} (local.get 0) (local.get 1)))",
                ty.name(),
                m.offset(rng),
                align(rng, size)
            )
            .unwrap();
        }
        writeln!(
            w,
            "  (func (export \"fill{k}\") (param {ix} i32 {ix}) (memory.fill $m{k} (local.get 0) (local.get 1) (local.get 2)))\n\
             \x20 (func (export \"init{k}\") (param {ix} i32 i32) (memory.init $m{k} $d{k} (local.get 0) (local.get 1) (local.get 2)))\n\
             \x20 (func (export \"drop{k}\") (data.drop $d{k}))\n\
             \x20 (func (export \"size{k}\") (result {ix}) (memory.size $m{k}))\n\
             \x20 (func (export \"grow{k}\") (param {ix}) (result {ix}) (memory.grow $m{k} (local.get 0)))"
        )
        .unwrap();
        for (j, n) in mems.iter().enumerate() {
            let len = if m.m64 && n.m64 { "i64" } else { "i32" };
            writeln!(
                w,
                "  (func (export \"copy{k}_{j}\") (param {ix} {} {len}) (memory.copy $m{k} $m{j} (local.get 0) (local.get 1) (local.get 2)))",
                n.idx()
            )
            .unwrap();
        }
    }
    let pm_index = if import_mem && mems[0].m64 {
        "i64"
    } else {
        "i32"
    };
    tail_calls(
        rng,
        &mut types,
        &mut imports,
        &mut w,
        &mut provider,
        pm_index,
        &bases,
    );
    provider.push(')');
    Modules {
        provider,
        main: format!("(module\n{types}{imports}{w})"),
    }
}

/// The values of the provider's globals `b32` and `b64`.
struct Bases {
    b32: i32,
    b64: i64,
}

impl Bases {
    /// A constant expression of value `v`, of type `i64` if `wide`, else
    /// `i32`: the imported global of that type plus a constant.
    fn offset(&self, wide: bool, v: u64) -> String {
        if wide {
            format!(
                "(i64.add (global.get $b64) (i64.const {}))",
                (v as i64).wrapping_sub(self.b64)
            )
        } else {
            format!(
                "(i32.add (global.get $b32) (i32.const {}))",
                (v as i32).wrapping_sub(self.b32)
            )
        }
    }
}

fn bytes(rng: &mut Rng, n: u64) -> String {
    (0..n)
        .map(|_| format!("\\{:02x}", rng.below(256)))
        .collect()
}

/// `local.get`s of parameters `first..first + n`.
fn gets(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|p| format!(" (local.get {p})"))
        .collect()
}

/// The body that ends a chain: the counter and every parameter after it (of
/// types `sig`) mixed into an `i64` in local `$acc`, then returned as
/// `results`.
fn leaf(rng: &mut Rng, sig: &[T], results: &[T]) -> String {
    // The counter too: 0 at the end of a chain, not in `pg`.
    let mut acc = format!(
        "(i64.add (i64.const {}) (i64.extend_i32_u (local.get 0)))",
        rng.next_u64() as i64
    );
    for (p, t) in sig.iter().enumerate() {
        acc = format!(
            "(i64.add (i64.mul {acc} (i64.const 31)) {})",
            t.to_i64(&format!("(local.get {})", p + 1))
        );
    }
    let ret: String = results
        .iter()
        .enumerate()
        .map(|(r, t)| {
            format!(
                " {}",
                t.of_i64(&format!("(i64.add (local.get $acc) (i64.const {r}))"))
            )
        })
        .collect();
    format!("(local.set $acc {acc})\n    (return{ret})")
}

/// The tail-call chain (see the module docs): types, the import of the
/// provider's function `pg`, the functions and their exports, and `pg`
/// itself in the provider (which reads its memory `pm`, of index type
/// `pm_index`, and tail calls a function of its own).
fn tail_calls(
    rng: &mut Rng,
    types: &mut String,
    imports: &mut String,
    w: &mut String,
    provider: &mut String,
    pm_index: &str,
    bases: &Bases,
) {
    let results: Vec<T> = (0..rng.range(1, 3)).map(|_| T::any(rng)).collect();
    let res = results
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(" ");
    let n = rng.range(2, 5) as usize;
    // Parameter lists after the counter.
    let sigs: Vec<Vec<T>> = (0..n)
        .map(|_| (0..rng.below(13)).map(|_| T::any(rng)).collect())
        .collect();
    let t64 = rng.chance(1, 2);
    let tix = if t64 { "i64" } else { "i32" };
    let sig_text = |s: &[T]| -> String {
        let ps: String = s.iter().map(|t| format!(" {}", t.name())).collect();
        format!("(param i32{ps}) (result {res})")
    };
    for (i, s) in sigs.iter().enumerate() {
        writeln!(types, "  (type $s{i} (func {}))", sig_text(s)).unwrap();
    }
    // The provider's `pg`, of the type of f_pj: it adds a byte of `pm` to
    // the counter and tail calls its own leaf.
    let pj = rng.index(n);
    let psig = sig_text(&sigs[pj]);
    let pleaf = leaf(rng, &sigs[pj], &results);
    let byte = "(i32.and (local.get 0) (i32.const 0xff))";
    let addr = if pm_index == "i64" {
        format!("(i64.extend_i32_u {byte})")
    } else {
        byte.to_string()
    };
    writeln!(
        provider,
        "  (func $leaf {psig} (local $acc i64)\n    {pleaf})\n\
         \x20 (func (export \"pg\") {psig}\n\
         \x20   (return_call $leaf\n\
         \x20     (i32.add (local.get 0) (i32.load8_u {addr})){}))",
        gets(1, sigs[pj].len())
    )
    .unwrap();
    writeln!(imports, "  (import \"p\" \"pg\" (func $pg (type $s{pj})))").unwrap();
    // A host function (the fuzzer's, the same in both engines) of the type
    // of f_hj.
    let hj = rng.index(n);
    writeln!(imports, "  (import \"h\" \"mix\" (func $h (type $s{hj})))").unwrap();
    // Slot i holds f_i, slot n is null, slot n + 1 holds `pg`, n + 2 `h`.
    // The table is the provider's, imported, in half of the cases.
    let funcs: String = (0..n).map(|i| format!(" $f{i}")).collect();
    if rng.chance(1, 2) {
        writeln!(
            provider,
            "  (table (export \"pt\") {tix} {} funcref)",
            n + 3
        )
        .unwrap();
        writeln!(
            imports,
            "  (import \"p\" \"pt\" (table $tab {tix} {} funcref))",
            n + 3
        )
        .unwrap();
        writeln!(w, "  (export \"tab\" (table $tab))").unwrap();
    } else {
        writeln!(w, "  (table $tab (export \"tab\") {tix} {} funcref)", n + 3).unwrap();
    }
    writeln!(
        w,
        "  (elem (table $tab) {} func{funcs})\n  (elem (table $tab) {} func $pg $h)",
        bases.offset(t64, 0),
        bases.offset(t64, n as u64 + 1)
    )
    .unwrap();
    for (i, s) in sigs.iter().enumerate() {
        let body = leaf(rng, s, &results);
        // The next call: to f_j (or `pg`, of another instance, if of f_j's
        // type), each argument from a parameter of the same type stepped by
        // the counter, or a constant.
        let j = rng.index(n);
        let to_pg = j == pj && rng.chance(2, 3);
        let to_h = !to_pg && j == hj && rng.chance(2, 3);
        let mut args = String::from(" (i32.sub (local.get 0) (i32.const 1))");
        for t in &sigs[j] {
            let same: Vec<usize> = (0..s.len()).filter(|&p| s[p] == *t).collect();
            if same.is_empty() || rng.chance(1, 6) {
                write!(args, " {}", t.konst(rng)).unwrap();
            } else {
                let p = same[rng.index(same.len())] + 1;
                write!(
                    args,
                    " {}",
                    t.step(&format!("(local.get {p})"), "(local.get 0)")
                )
                .unwrap();
            }
        }
        let call = if rng.chance(1, 2) {
            let callee = match (to_pg, to_h) {
                (true, _) => "$pg".to_string(),
                (_, true) => "$h".to_string(),
                _ => format!("$f{j}"),
            };
            format!("(return_call {callee}{args})")
        } else {
            // Mostly the callee's own slot; sometimes another function's (a
            // trap unless its type is the same), the null slot or past the
            // end.
            let own = match (to_pg, to_h) {
                (true, _) => n + 1,
                (_, true) => n + 2,
                _ => j,
            } as u64;
            let slot = match rng.below(12) {
                0 => rng.below_u64(n as u64 + 3),
                1 => n as u64,
                2 => n as u64 + 3 + rng.below_u64(3),
                // A 64-bit index whose low half is the callee's slot: out
                // of bounds, unless the check looked at 32 bits only.
                3 if t64 => (1 << 32) + own,
                _ => own,
            };
            format!("(return_call_indirect $tab (type $s{j}){args} ({tix}.const {slot}))")
        };
        writeln!(
            w,
            "  (func $f{i} (type $s{i}) {} (local $acc i64)\n\
             \x20   (if (i32.eqz (local.get 0)) (then\n\
             \x20     {body}))\n\
             \x20   {call})",
            sig_text(s)
        )
        .unwrap();
        // An export that calls f_i through the table at an index given as
        // an argument (the fuzzer draws edges: 2^32 and 2^64 less a little),
        // by call_indirect or return_call_indirect.
        let (op, k) = if rng.chance(1, 2) {
            ("call_indirect", i)
        } else {
            ("return_call_indirect", i)
        };
        writeln!(
            w,
            "  (func (export \"ci{i}\") (param {tix}) {}\n\
             \x20   ({op} $tab (type $s{k}) (i32.and (local.get 1) (i32.const {ROUNDS_MASK})){} (local.get 0)))",
            sig_text(s),
            gets(2, s.len())
        )
        .unwrap();
        // The export: the counter masked, then a tail call from the entry.
        writeln!(
            w,
            "  (func (export \"tc{i}\") (type $s{i})\n\
             \x20   (return_call $f{i} (i32.and (local.get 0) (i32.const {ROUNDS_MASK})){}))",
            gets(1, s.len())
        )
        .unwrap();
    }
    // The table's own instructions at edge indices, after the calls (in
    // export order, so the calls of later rounds see what these did).
    writeln!(
        w,
        "  (func (export \"tsize\") (result {tix}) (table.size $tab))\n\
         \x20 (func (export \"tget\") (param {tix}) (result funcref) (table.get $tab (local.get 0)))\n\
         \x20 (func (export \"tset\") (param {tix} {tix}) (table.set $tab (local.get 0) (table.get $tab (local.get 1))))\n\
         \x20 (func (export \"tgrow\") (param {tix}) (result {tix}) (table.grow $tab (ref.func $f0) (local.get 0)))\n\
         \x20 (func (export \"tfill\") (param {tix} {tix}) (table.fill $tab (local.get 0) (ref.func $f1) (local.get 1)))\n\
         \x20 (func (export \"tcopy\") (param {tix} {tix} {tix}) (table.copy $tab $tab (local.get 0) (local.get 1) (local.get 2)))"
    )
    .unwrap();
}
