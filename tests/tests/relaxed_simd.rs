//! Relaxed SIMD is compiled deterministically: each instruction gives the one
//! result documented in docs/implementation-notes.md, whatever the CPU
//! features the code was compiled for. The inputs are the ones where
//! hardware instructions disagree (x86's `pshufb`, `cvttps2dq`, `blendv`,
//! `minps`, `pmulhrsw`, `pmaddubsw`, and FMA versus a separate multiply and
//! add), and the expected values are computed here from the definitions.

use wasmc_compiler::{compile, CompileOptions, CpuSpec, OptLevel};
use wasmc_loader::{Engine, Instance, Module, Store, Val};

const MODULE: &str = r#"
(module
  (func (export "madd32") (param v128 v128 v128) (result v128)
    (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "nmadd32") (param v128 v128 v128) (result v128)
    (f32x4.relaxed_nmadd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "madd64") (param v128 v128 v128) (result v128)
    (f64x2.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "nmadd64") (param v128 v128 v128) (result v128)
    (f64x2.relaxed_nmadd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "swizzle") (param v128 v128) (result v128)
    (i8x16.relaxed_swizzle (local.get 0) (local.get 1)))
  (func (export "trunc_s") (param v128) (result v128)
    (i32x4.relaxed_trunc_f32x4_s (local.get 0)))
  (func (export "trunc_u") (param v128) (result v128)
    (i32x4.relaxed_trunc_f32x4_u (local.get 0)))
  (func (export "trunc64_s") (param v128) (result v128)
    (i32x4.relaxed_trunc_f64x2_s_zero (local.get 0)))
  (func (export "laneselect8") (param v128 v128 v128) (result v128)
    (i8x16.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "laneselect32") (param v128 v128 v128) (result v128)
    (i32x4.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "min32") (param v128 v128) (result v128)
    (f32x4.relaxed_min (local.get 0) (local.get 1)))
  (func (export "max64") (param v128 v128) (result v128)
    (f64x2.relaxed_max (local.get 0) (local.get 1)))
  (func (export "q15mulr") (param v128 v128) (result v128)
    (i16x8.relaxed_q15mulr_s (local.get 0) (local.get 1)))
  (func (export "dot") (param v128 v128) (result v128)
    (i16x8.relaxed_dot_i8x16_i7x16_s (local.get 0) (local.get 1)))
  (func (export "dot_add") (param v128 v128 v128) (result v128)
    (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get 0) (local.get 1) (local.get 2)))
  ;; Scalar code around a relaxed op, so that a rewritten fma sits between
  ;; live values.
  (func (export "madd_mixed") (param f32 f32 f32) (result f32)
    (local $keep f32)
    (local.set $keep (f32.mul (local.get 0) (f32.const 2)))
    (f32.add (local.get $keep)
      (f32x4.extract_lane 2
        (f32x4.relaxed_madd (f32x4.splat (local.get 0)) (f32x4.splat (local.get 1))
                            (f32x4.splat (local.get 2))))))
)
"#;

fn f32s(v: [f32; 4]) -> u128 {
    let mut b = [0u8; 16];
    for (i, x) in v.iter().enumerate() {
        b[4 * i..4 * i + 4].copy_from_slice(&x.to_bits().to_le_bytes());
    }
    u128::from_le_bytes(b)
}
fn f64s(v: [f64; 2]) -> u128 {
    u128::from(v[0].to_bits()) | u128::from(v[1].to_bits()) << 64
}
fn i32s(v: [i32; 4]) -> u128 {
    let mut b = [0u8; 16];
    for (i, x) in v.iter().enumerate() {
        b[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
    }
    u128::from_le_bytes(b)
}
fn i16s(v: [i16; 8]) -> u128 {
    let mut b = [0u8; 16];
    for (i, x) in v.iter().enumerate() {
        b[2 * i..2 * i + 2].copy_from_slice(&x.to_le_bytes());
    }
    u128::from_le_bytes(b)
}
fn i8s(v: [i8; 16]) -> u128 {
    u128::from_le_bytes(v.map(|x| x as u8))
}

struct Run {
    store: Store<()>,
    instance: Instance,
}

impl Run {
    fn new(cpu: CpuSpec, opt: OptLevel) -> Result<Run, String> {
        let opts = CompileOptions {
            cpu,
            opt_level: opt,
            ..Default::default()
        };
        let bytes = compile(MODULE.as_bytes(), &opts).map_err(|e| e.to_string())?;
        let module = Module::from_bytes(engine(), &bytes).map_err(|e| e.to_string())?;
        let mut store = Store::new(engine(), ());
        let instance = Instance::new(&mut store, &module, &[]).map_err(|e| e.to_string())?;
        Ok(Run { store, instance })
    }

    fn v(&mut self, name: &str, args: &[u128]) -> u128 {
        let f = self.instance.get_func(&mut self.store, name).unwrap();
        let args: Vec<Val> = args.iter().map(|a| Val::V128(*a)).collect();
        let mut r = [Val::I32(0)];
        f.call(&mut self.store, &args, &mut r).unwrap();
        match r[0] {
            Val::V128(x) => x,
            ref other => panic!("{name}: {other:?}"),
        }
    }
}

/// One exact-rounding witness per width: `a * b + c` is tiny but nonzero
/// when rounded once, and exactly zero when `a * b` is rounded first.
const A32: f32 = 1.0 + 1.0 / 4096.0; // 1 + 2^-12
const C32: f32 = -(1.0 + 1.0 / 2048.0); // -(1 + 2^-11)
const A64: f64 = 1.0 + 1.0 / 134_217_728.0; // 1 + 2^-27
const C64: f64 = -(1.0 + 1.0 / 67_108_864.0); // -(1 + 2^-26)

fn check(run: &mut Run, what: &str) {
    // relaxed_madd / nmadd: fused, one rounding.
    let fused32 = A32.mul_add(A32, C32);
    assert_ne!(
        fused32,
        A32 * A32 + C32,
        "the witness must tell the two apart"
    );
    assert_eq!(fused32, 2f32.powi(-24));
    let r = run.v(
        "madd32",
        &[
            f32s([A32, 1.5, A32, 0.0]),
            f32s([A32, 2.0, A32, 1.0]),
            f32s([C32, 1.0, C32, -0.0]),
        ],
    );
    assert_eq!(
        r,
        f32s([fused32, 4.0, fused32, 0.0]),
        "{what}: f32x4.relaxed_madd"
    );
    // nmadd(a, b, c) = -(a * b) + c
    let r = run.v(
        "nmadd32",
        &[f32s([A32; 4]), f32s([A32; 4]), f32s([-C32; 4])],
    );
    assert_eq!(r, f32s([-fused32; 4]), "{what}: f32x4.relaxed_nmadd");
    let fused64 = A64.mul_add(A64, C64);
    assert_ne!(fused64, A64 * A64 + C64);
    let r = run.v(
        "madd64",
        &[f64s([A64, 3.0]), f64s([A64, 0.5]), f64s([C64, 1.0])],
    );
    assert_eq!(r, f64s([fused64, 2.5]), "{what}: f64x2.relaxed_madd");
    let r = run.v(
        "nmadd64",
        &[f64s([A64; 2]), f64s([A64; 2]), f64s([-C64; 2])],
    );
    assert_eq!(r, f64s([-fused64; 2]), "{what}: f64x2.relaxed_nmadd");
    let f = run.instance.get_func(&mut run.store, "madd_mixed").unwrap();
    let mut out = [Val::I32(0)];
    f.call(
        &mut run.store,
        &[
            Val::F32(A32.to_bits()),
            Val::F32(A32.to_bits()),
            Val::F32(C32.to_bits()),
        ],
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out[0].f32(),
        Some(A32 * 2.0 + fused32),
        "{what}: scalar around madd"
    );

    // relaxed_swizzle: out-of-range indices (16..=255) give 0, as swizzle.
    let data = i8s(core::array::from_fn(|i| 10 + i as i8));
    let idx = i8s([0, 15, 16, 17, 31, 32, 0x70, -128, -1, -16, 1, 2, 3, 4, 5, 6]);
    let r = run.v("swizzle", &[data, idx]);
    assert_eq!(
        r,
        i8s([10, 25, 0, 0, 0, 0, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16]),
        "{what}: i8x16.relaxed_swizzle"
    );

    // relaxed_trunc: NaN is 0, out of range saturates, as trunc_sat.
    let r = run.v("trunc_s", &[f32s([f32::NAN, 3e9, -3e9, -1.9])]);
    assert_eq!(
        r,
        i32s([0, i32::MAX, i32::MIN, -1]),
        "{what}: trunc_f32x4_s"
    );
    let r = run.v("trunc_u", &[f32s([f32::NAN, 5e9, -1.0, 3e9])]);
    assert_eq!(
        r,
        i32s([0, -1, 0, 3_000_000_000u32 as i32]),
        "{what}: trunc_f32x4_u"
    );
    let r = run.v("trunc64_s", &[f64s([f64::NAN, -1e12])]);
    assert_eq!(r, i32s([0, i32::MIN, 0, 0]), "{what}: trunc_f64x2_s_zero");

    // relaxed_laneselect: bitwise, as v128.bitselect (blendv would look at
    // each lane's top bit only).
    let (a, b) = (u128::MAX, 0);
    let mask = 0x0f0f_0f0f_7fff_ffff_8000_0000_0123_4567u128;
    assert_eq!(
        run.v("laneselect8", &[a, b, mask]),
        mask,
        "{what}: laneselect8"
    );
    assert_eq!(
        run.v("laneselect32", &[a, b, mask]),
        mask,
        "{what}: laneselect32"
    );

    // relaxed_min/max: as f32x4.min / f64x2.max (NaN propagates, -0 < +0).
    let r = run.v(
        "min32",
        &[
            f32s([-0.0, 0.0, f32::NAN, 1.0]),
            f32s([0.0, -0.0, 1.0, f32::NAN]),
        ],
    );
    let lanes: Vec<u32> = r
        .to_le_bytes()
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(lanes[0], (-0.0f32).to_bits(), "{what}: min(-0, +0)");
    assert_eq!(lanes[1], (-0.0f32).to_bits(), "{what}: min(+0, -0)");
    assert!(f32::from_bits(lanes[2]).is_nan(), "{what}: min(NaN, 1)");
    assert!(f32::from_bits(lanes[3]).is_nan(), "{what}: min(1, NaN)");
    let r = run.v("max64", &[f64s([-0.0, f64::NAN]), f64s([0.0, 2.0])]);
    assert_eq!(r as u64, 0.0f64.to_bits(), "{what}: max(-0, +0)");
    assert!(
        f64::from_bits((r >> 64) as u64).is_nan(),
        "{what}: max(NaN, 2)"
    );

    // relaxed_q15mulr: saturating, as q15mulr_sat_s.
    let r = run.v(
        "q15mulr",
        &[
            i16s([i16::MIN, i16::MIN, 16384, -16384, 1, 0, 32767, 100]),
            i16s([i16::MIN, 32767, 16384, 16384, 1, 5, 32767, -100]),
        ],
    );
    assert_eq!(
        r,
        i16s([32767, -32767, 8192, -8192, 0, 0, 32766, 0]),
        "{what}: q15mulr"
    );

    // relaxed_dot: both operands signed.
    let a = i8s([-128, -128, 127, 127, -1, 2, 3, 4, 0, 0, 1, 1, -5, 6, 7, -8]);
    let b = i8s([
        -128, -1, -128, 127, -1, -2, 100, -100, 9, 9, 1, -1, 10, 10, -3, -3,
    ]);
    let dot = run.v("dot", &[a, b]);
    let expect16: [i16; 8] = core::array::from_fn(|i| {
        let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
        let p = |j: usize| i32::from(a[j] as i8) * i32::from(b[j] as i8);
        (p(2 * i) + p(2 * i + 1)) as i16
    });
    assert_eq!(dot, i16s(expect16), "{what}: i16x8.relaxed_dot");
    let c = i32s([1000, -1000, 0, 7]);
    let r = run.v("dot_add", &[a, b, c]);
    let expect32: [i32; 4] = core::array::from_fn(|i| {
        i32::from(expect16[2 * i]) + i32::from(expect16[2 * i + 1]) + [1000, -1000, 0, 7][i]
    });
    assert_eq!(r, i32s(expect32), "{what}: i32x4.relaxed_dot_add");
}

#[test]
fn baseline_code_gives_the_deterministic_results() {
    for opt in [OptLevel::None, OptLevel::Speed] {
        let mut run = Run::new(CpuSpec::Baseline, opt).unwrap();
        check(&mut run, &format!("baseline, {opt:?}"));
    }
}

/// Code compiled with FMA and AVX2 gives the same results as baseline code,
/// which has no FMA instruction and calls the fma builtin.
#[cfg(target_arch = "x86_64")]
#[test]
fn code_with_fma_gives_the_same_results() {
    let cpu = CpuSpec::Features(vec!["avx".into(), "avx2".into(), "fma".into()]);
    let run = Run::new(cpu, OptLevel::Speed);
    if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
        check(&mut run.unwrap(), "avx2+fma");
    } else {
        // The loader must then refuse the artifact rather than run it.
        let e = run
            .err()
            .expect("an x86-64-v3 artifact on a host without FMA");
        assert!(e.contains("cpu feature"), "{e}");
    }
}

/// Baseline artifacts need no FMA: the header says so, and the fma builtin
/// trampoline is there.
#[cfg(target_arch = "x86_64")]
#[test]
fn baseline_artifacts_do_not_need_fma() {
    let bytes = compile(MODULE.as_bytes(), &CompileOptions::default()).unwrap();
    let a = wasmc_loader::artifact::ParsedArtifact::parse(&bytes).unwrap();
    assert!(!a.header().cpu_features.iter().any(|f| f == "fma"));
    assert!(a
        .header()
        .wasm_features
        .contains(wasmc_loader::format::WasmFeatures::RELAXED_SIMD));
    let info = a.info();
    for b in [
        wasmc_loader::format::builtins::Builtin::fma_f32,
        wasmc_loader::format::builtins::Builtin::fma_f64,
    ] {
        assert!(
            matches!(
                info.builtin_trampolines.get(b.index() as usize),
                Some(Some(_))
            ),
            "{b:?}"
        );
    }
}

fn engine() -> &'static Engine {
    static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    E.get_or_init(Engine::default)
}
