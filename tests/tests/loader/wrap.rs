//! Typed host functions (`Func::wrap`, `Linker::func_wrap`) and typed calls
//! into Wasm (`TypedFunc`): values of every `WasmTy` both ways, tuples,
//! errors and panics from the host, externref arguments and results with
//! drop counting (nothing leaks, nothing is freed while reachable), and the
//! `Val` path (`Func::call`) of a wrapped function.

use super::engine;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wasmc_loader::{Caller, Error, ExternRef, Func, Instance, Linker, Module, Store, Val};

fn module(wat: &str) -> Module {
    let bytes = wasmc_compiler::compile(wat.as_bytes(), &Default::default())
        .unwrap_or_else(|e| panic!("compile: {e}"));
    Module::from_bytes(engine(), &bytes).unwrap()
}

/// Calls every import with its arguments passed through, for each type.
const ECHO: &str = r#"
(module
  (import "h" "i32" (func $i32 (param i32) (result i32)))
  (import "h" "i64" (func $i64 (param i64) (result i64)))
  (import "h" "f32" (func $f32 (param f32) (result f32)))
  (import "h" "f64" (func $f64 (param f64) (result f64)))
  (import "h" "ref" (func $ref (param externref) (result externref)))
  (import "h" "mix" (func $mix (param i32 i64 f32 f64) (result f64 i32)))
  (import "h" "none" (func $none))
  (func (export "i32") (param i32) (result i32) (call $i32 (local.get 0)))
  (func (export "i64") (param i64) (result i64) (call $i64 (local.get 0)))
  (func (export "f32") (param f32) (result f32) (call $f32 (local.get 0)))
  (func (export "f64") (param f64) (result f64) (call $f64 (local.get 0)))
  (func (export "ref") (param externref) (result externref) (call $ref (local.get 0)))
  (func (export "mix") (param i32 i64 f32 f64) (result f64 i32)
    (call $mix (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "none") (call $none))
)
"#;

struct Counted(Arc<AtomicUsize>, i32);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn echo_linker(calls: &Arc<AtomicUsize>) -> Linker<()> {
    let mut l = Linker::new(engine());
    let c = calls.clone();
    l.func_wrap("h", "i32", move |_: Caller<'_, ()>, x: i32| {
        c.fetch_add(1, Ordering::SeqCst);
        x.wrapping_mul(3)
    })
    .unwrap();
    l.func_wrap("h", "i64", |x: i64| x ^ 0x5555_0000_0000_0001)
        .unwrap();
    l.func_wrap("h", "f32", |x: f32| x * 2.0).unwrap();
    l.func_wrap("h", "f64", |x: f64| -> Result<f64, Error> { Ok(x - 0.5) })
        .unwrap();
    // Returns a new reference wrapping the argument's value + 1.
    l.func_wrap("h", "ref", |r: Option<ExternRef>| {
        let (count, v) = {
            let c = r.as_ref()?.downcast_ref::<Counted>()?;
            (c.0.clone(), c.1)
        };
        Some(ExternRef::new(Counted(count, v + 1)))
    })
    .unwrap();
    l.func_wrap(
        "h",
        "mix",
        |mut caller: Caller<'_, ()>, a: i32, b: i64, c: f32, d: f64| {
            assert!(caller.instance().is_some());
            assert!(caller.get_export("mix").is_some());
            (f64::from(a) + b as f64 + f64::from(c) + d, a + 1)
        },
    )
    .unwrap();
    l.func_wrap("h", "none", || {}).unwrap();
    l
}

#[test]
fn values_of_every_type_both_ways() {
    let m = module(ECHO);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut s = Store::new(engine(), ());
    let i = echo_linker(&calls).instantiate(&mut s, &m).unwrap();

    let f = i.get_typed_func::<i32, i32>(&mut s, "i32").unwrap();
    assert_eq!(f.call(&mut s, 7).unwrap(), 21);
    assert_eq!(f.call(&mut s, i32::MIN).unwrap(), i32::MIN.wrapping_mul(3));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let f = i.get_typed_func::<u32, u32>(&mut s, "i32").unwrap();
    assert_eq!(f.call(&mut s, u32::MAX).unwrap(), u32::MAX.wrapping_mul(3));
    let f = i.get_typed_func::<i64, i64>(&mut s, "i64").unwrap();
    assert_eq!(f.call(&mut s, -2).unwrap(), -2 ^ 0x5555_0000_0000_0001);
    let f = i.get_typed_func::<f32, f32>(&mut s, "f32").unwrap();
    assert_eq!(f.call(&mut s, 1.25).unwrap(), 2.5);
    assert!(f.call(&mut s, f32::NAN).unwrap().is_nan());
    let f = i.get_typed_func::<f64, f64>(&mut s, "f64").unwrap();
    assert_eq!(f.call(&mut s, 3.0).unwrap(), 2.5);
    let f = i
        .get_typed_func::<(i32, i64, f32, f64), (f64, i32)>(&mut s, "mix")
        .unwrap();
    assert_eq!(f.call(&mut s, (1, 2, 3.5, 4.25)).unwrap(), (10.75, 2));
    let f = i.get_typed_func::<(), ()>(&mut s, "none").unwrap();
    f.call(&mut s, ()).unwrap();
    // Wrong types are refused when the typed view is made.
    assert!(i.get_typed_func::<i64, i32>(&mut s, "i32").is_err());
}

#[test]
fn externrefs_are_counted_exactly() {
    for stress in [false, true] {
        externrefs_are_counted_exactly_in(stress);
    }
}

/// With `stress`, the store collects at every host call too.
fn externrefs_are_counted_exactly_in(stress: bool) {
    let m = module(ECHO);
    let calls = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    {
        let mut s = Store::new(engine(), ());
        s.set_gc_stress(stress);
        let i = echo_linker(&calls).instantiate(&mut s, &m).unwrap();
        let f = i
            .get_typed_func::<Option<ExternRef>, Option<ExternRef>>(&mut s, "ref")
            .unwrap();
        for n in 0..100 {
            let arg = ExternRef::new(Counted(dropped.clone(), n));
            let keep = arg.clone();
            let r = f.call(&mut s, Some(arg)).unwrap().expect("a reference");
            assert_eq!(r.downcast_ref::<Counted>().unwrap().1, n + 1);
            assert_eq!(keep.downcast_ref::<Counted>().unwrap().1, n);
            s.gc();
        }
        // Every argument and every result has been dropped by now, and
        // nothing else: the host handles above were the last ones.
        assert_eq!(dropped.load(Ordering::SeqCst), 200);
        assert!(f.call(&mut s, None).unwrap().is_none());
        // The same through the `Val` path of the wrapped function.
        let host = Func::wrap(&mut s, |r: Option<ExternRef>| r);
        let arg = ExternRef::new(Counted(dropped.clone(), 0));
        let mut out = [Val::I32(0)];
        host.call(&mut s, &[Val::ExternRef(Some(arg))], &mut out)
            .unwrap();
        assert!(matches!(&out[0], Val::ExternRef(Some(_))));
        drop(out);
        s.gc();
        assert_eq!(dropped.load(Ordering::SeqCst), 201);
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 201);
}

const CALLS_HOST: &str = r#"
(module
  (import "h" "f" (func $f (param i32) (result i32)))
  (func (export "run") (param i32) (result i32) (call $f (local.get 0)))
  (func (export "twice") (param i32) (result i32)
    (i32.add (call $f (local.get 0)) (call $f (local.get 0))))
)
"#;

#[test]
fn host_errors_and_panics_reach_the_caller() {
    let m = module(CALLS_HOST);
    let mut s = Store::new(engine(), ());
    let f = Func::wrap(&mut s, |x: i32| -> Result<i32, Error> {
        match x {
            0 => Err(Error::msg("zero is not allowed")),
            1 => panic!("host function panicked on purpose"),
            x => Ok(x * 10),
        }
    });
    let i = Instance::new(&mut s, &m, &[f.into()]).unwrap();
    let run = i.get_typed_func::<i32, i32>(&mut s, "run").unwrap();
    assert_eq!(run.call(&mut s, 4).unwrap(), 40);
    let e = run.call(&mut s, 0).unwrap_err();
    assert!(e.to_string().contains("zero is not allowed"), "{e}");
    let p = catch_unwind(AssertUnwindSafe(|| run.call(&mut s, 1))).unwrap_err();
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("panicked on purpose"), "{msg}");
    // The store stays usable after an error and a panic.
    let twice = i.get_typed_func::<i32, i32>(&mut s, "twice").unwrap();
    assert_eq!(twice.call(&mut s, 2).unwrap(), 40);
    // Host-side call of the wrapped function, also with its error.
    let mut out = [Val::I32(0)];
    f.call(&mut s, &[Val::I32(5)], &mut out).unwrap();
    assert_eq!(out[0].i32(), Some(50));
    assert!(f.call(&mut s, &[Val::I32(0)], &mut out).is_err());
    assert!(f.call(&mut s, &[Val::I64(0)], &mut out).is_err());
}

#[test]
fn type_mismatch_at_link_names_both_types() {
    let m = module(CALLS_HOST);
    let mut s = Store::new(engine(), ());
    let f = Func::wrap(&mut s, |x: i64| x);
    let e = Instance::new(&mut s, &m, &[f.into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(i32) -> (i32)") && e.contains("(i64) -> (i64)"),
        "{e}"
    );
}

#[test]
fn reentry_through_the_caller() {
    let wat = r#"
    (module
      (import "h" "f" (func $f (param i32) (result i32)))
      (func $inc (export "inc") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func (export "run") (param i32) (result i32) (call $f (local.get 0))))
    "#;
    let m = module(wat);
    let mut s = Store::new(engine(), ());
    let f = Func::wrap(
        &mut s,
        |mut caller: Caller<'_, ()>, x: i32| -> Result<i32, Error> {
            let inc = caller
                .get_export("inc")
                .and_then(|e| e.into_func())
                .ok_or_else(|| Error::msg("no inc"))?;
            let inc = inc.typed::<i32, i32>(&caller)?;
            inc.call(&mut caller, x * 2)
        },
    );
    let i = Instance::new(&mut s, &m, &[f.into()]).unwrap();
    let run = i.get_typed_func::<i32, i32>(&mut s, "run").unwrap();
    assert_eq!(run.call(&mut s, 20).unwrap(), 41);
}

#[test]
fn linker_definitions_work_in_many_stores() {
    let m = module(CALLS_HOST);
    let mut l = Linker::new(engine());
    let total = Arc::new(AtomicUsize::new(0));
    let t = total.clone();
    l.func_wrap("h", "f", move |x: i32| {
        t.fetch_add(x as usize, Ordering::SeqCst);
        x
    })
    .unwrap();
    for n in 1..=3 {
        let mut s = Store::new(engine(), ());
        let i = l.instantiate(&mut s, &m).unwrap();
        let run = i.get_typed_func::<i32, i32>(&mut s, "run").unwrap();
        assert_eq!(run.call(&mut s, n).unwrap(), n);
    }
    assert_eq!(total.load(Ordering::SeqCst), 6);
}

/// Tuples as wide as Wasmtime's (17): a wrapped host function of 17
/// parameters returning 17 results, called from Wasm that reverses them,
/// and the export called typed with 17 of each. Each position has its own
/// value and type, so a slot read or written out of place shows.
#[test]
fn seventeen_wide_tuples_both_ways() {
    type T17 = (
        i32,
        i64,
        f32,
        f64,
        i32,
        i64,
        f32,
        f64,
        i32,
        i64,
        f32,
        f64,
        i32,
        i64,
        f32,
        f64,
        u32,
    );
    let tys = "i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64 i32";
    let gets: String = (0..17).map(|i| format!("(local.get {i}) ")).collect();
    let m = module(&format!(
        r#"(module
             (import "h" "wide" (func $wide (param {tys}) (result {tys})))
             (func (export "wide") (param {tys}) (result {tys})
               (call $wide {gets})))"#
    ));
    let mut l = Linker::new(engine());
    l.func_wrap(
        "h",
        "wide",
        |a: i32,
         b: i64,
         c: f32,
         d: f64,
         e: i32,
         f: i64,
         g: f32,
         h: f64,
         i: i32,
         j: i64,
         k: f32,
         l: f64,
         m: i32,
         n: i64,
         o: f32,
         p: f64,
         q: u32|
         -> T17 {
            // Every value changed in a way particular to its position.
            (
                a + 1,
                b * 2,
                c + 0.5,
                d - 0.25,
                e + 5,
                f * 6,
                g + 7.5,
                h - 8.25,
                i + 9,
                j * 10,
                k + 11.5,
                l - 12.25,
                m + 13,
                n * 14,
                o + 15.5,
                p - 16.25,
                q ^ 0xdead_beef,
            )
        },
    )
    .unwrap();
    let mut s = Store::new(engine(), ());
    let inst = l.instantiate(&mut s, &m).unwrap();
    let wide = inst.get_typed_func::<T17, T17>(&mut s, "wide").unwrap();
    let got = wide
        .call(
            &mut s,
            (
                10, 20, 30.0, 40.0, 50, 60, 70.0, 80.0, 90, 100, 110.0, 120.0, 130, 140, 150.0,
                160.0, 170,
            ),
        )
        .unwrap();
    // Tuples this wide have no `PartialEq`/`Debug`: compare as numbers.
    let (a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q) = got;
    let got = [
        a as f64, b as f64, c as f64, d, e as f64, f as f64, g as f64, h, i as f64, j as f64,
        k as f64, l, m as f64, n as f64, o as f64, p, q as f64,
    ];
    let want = [
        11.0,
        40.0,
        30.5,
        39.75,
        55.0,
        360.0,
        77.5,
        71.75,
        99.0,
        1000.0,
        121.5,
        107.75,
        143.0,
        1960.0,
        165.5,
        143.75,
        (170u32 ^ 0xdead_beef) as f64,
    ];
    assert_eq!(got, want);
    // A typed view of the wrong width is refused.
    assert!(inst
        .get_typed_func::<(i32, i64, f32, f64), T17>(&mut s, "wide")
        .is_err());
}

/// A host function that fails with a `Trap` of its own making: the caller
/// gets it as a trap (`as_trap`, as Wasmtime reports a host's trap), with
/// its code, through a typed and a `Val` call; another error stays the
/// host's own.
#[test]
fn a_trap_returned_by_a_host_function_is_a_trap() {
    use wasmc_loader::{Trap, TrapCode};
    let m = module(
        r#"(module (import "h" "t" (func $t (param i32)))
                   (func (export "f") (param i32) (call $t (local.get 0))))"#,
    );
    let mut l = Linker::new(engine());
    l.func_wrap("h", "t", |x: i32| -> anyhow::Result<()> {
        if x == 0 {
            Err(Trap::new(TrapCode::IntegerDivisionByZero).into())
        } else {
            anyhow::bail!("plain host failure {x}")
        }
    })
    .unwrap();
    let mut s = Store::new(engine(), ());
    let i = l.instantiate(&mut s, &m).unwrap();
    let f = i.get_typed_func::<i32, ()>(&mut s, "f").unwrap();
    let e = f.call(&mut s, 0).unwrap_err();
    let t = e.as_trap().unwrap_or_else(|| panic!("not a trap: {e:?}"));
    assert_eq!(t.code, TrapCode::IntegerDivisionByZero);
    let e = i
        .get_func(&mut s, "f")
        .unwrap()
        .call(&mut s, &[Val::I32(0)], &mut [])
        .unwrap_err();
    assert_eq!(
        e.as_trap().map(|t| t.code),
        Some(TrapCode::IntegerDivisionByZero)
    );
    let e = f.call(&mut s, 7).unwrap_err();
    assert!(e.as_trap().is_none(), "{e:?}");
    assert!(e.to_string().contains("plain host failure 7"), "{e}");
}
