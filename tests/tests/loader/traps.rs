//! Traps: every trap code Wasm can raise here, with the code, a backtrace
//! naming the Wasm functions (name section), a usable store afterwards and
//! an unaffected second instance; stack overflow from infinite recursion and
//! from deep recursion with big frames.

use super::*;

pub(crate) const TRAPS: &str = r#"
(module $traps
  (memory (export "memory") 1)
  (table 4 funcref)
  (type $ii (func (param i32) (result i32)))
  (elem (i32.const 0) $id $unreach)
  (func $id (export "id") (param i32) (result i32) (local.get 0))
  (func $unreach (export "unreach") (unreachable))
  (func $load (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func $store (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func $load_far (export "load_far") (param i32) (result i32)
    (i32.load offset=65536 (local.get 0)))
  (func $middle (param i32) (result i32) (call $load (local.get 0)))
  (func $outer (export "outer") (param i32) (result i32)
    (i32.add (call $middle (local.get 0)) (i32.const 1)))
  (func $div_s (export "div_s") (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1)))
  (func $rem_u (export "rem_u") (param i64 i64) (result i64)
    (i64.rem_u (local.get 0) (local.get 1)))
  (func $trunc (export "trunc") (param f64) (result i32)
    (i32.trunc_f64_s (local.get 0)))
  (func $call_ind (export "call_ind") (param i32 i32) (result i32)
    (call_indirect (type $ii) (local.get 0) (local.get 1)))
  (func $table_get (export "table_get") (param i32) (result funcref)
    (table.get 0 (local.get 0)))
  (func $fill (export "fill") (param i32 i32)
    (memory.fill (local.get 0) (i32.const 0) (local.get 1)))
  (func $inf (export "inf") (param i32) (result i32)
    (i32.add (call $inf (i32.add (local.get 0) (i32.const 1))) (i32.const 1))))
"#;

pub(crate) struct TrapCase {
    pub(crate) export: &'static str,
    pub(crate) args: Vec<Val>,
    pub(crate) code: TrapCode,
    pub(crate) frames: &'static [&'static str],
}

pub(crate) fn trap_cases() -> Vec<TrapCase> {
    use TrapCode::*;
    let c = |export, args, code, frames| TrapCase {
        export,
        args,
        code,
        frames,
    };
    vec![
        c("load", vec![Val::I32(65536)], MemoryOutOfBounds, &["load"]),
        c("load", vec![Val::I32(65533)], MemoryOutOfBounds, &["load"]),
        c("load", vec![Val::I32(-1)], MemoryOutOfBounds, &["load"]),
        c(
            "store",
            vec![Val::I32(65534), Val::I32(1)],
            MemoryOutOfBounds,
            &["store"],
        ),
        c(
            "load_far",
            vec![Val::I32(0)],
            MemoryOutOfBounds,
            &["load_far"],
        ),
        c(
            "outer",
            vec![Val::I32(70000)],
            MemoryOutOfBounds,
            &["load", "middle", "outer"],
        ),
        c(
            "fill",
            vec![Val::I32(65000), Val::I32(1000)],
            MemoryOutOfBounds,
            &["fill"],
        ),
        c(
            "div_s",
            vec![Val::I32(1), Val::I32(0)],
            IntegerDivisionByZero,
            &["div_s"],
        ),
        c(
            "div_s",
            vec![Val::I32(i32::MIN), Val::I32(-1)],
            IntegerOverflow,
            &["div_s"],
        ),
        c(
            "rem_u",
            vec![Val::I64(5), Val::I64(0)],
            IntegerDivisionByZero,
            &["rem_u"],
        ),
        c(
            "trunc",
            vec![Val::from(f64::NAN)],
            BadConversionToInteger,
            &["trunc"],
        ),
        c(
            "trunc",
            vec![Val::from(3e9f64)],
            IntegerOverflow,
            &["trunc"],
        ),
        c("unreach", vec![], UnreachableCodeReached, &["unreach"]),
        c(
            "call_ind",
            vec![Val::I32(5), Val::I32(2)],
            IndirectCallToNull,
            &["call_ind"],
        ),
        c(
            "call_ind",
            vec![Val::I32(5), Val::I32(1)],
            BadSignature,
            &["call_ind"],
        ),
        c(
            "call_ind",
            vec![Val::I32(5), Val::I32(4)],
            UndefinedElement,
            &["call_ind"],
        ),
        c(
            "table_get",
            vec![Val::I32(4)],
            TableOutOfBounds,
            &["table_get"],
        ),
    ]
}

#[test]
fn traps_have_codes_and_backtraces_and_leave_the_store_usable() {
    for b in BOTH {
        let m = load(TRAPS, b);
        let mut store = Store::new(engine(), ());
        let victim = instantiate(&mut store, &m);
        let bystander = instantiate(&mut store, &m);
        let mut other_store = Store::new(engine(), ());
        let other = instantiate(&mut other_store, &m);
        for (s, i) in [(&mut store, &bystander), (&mut other_store, &other)] {
            let mem = i.get_memory(&mut *s, "memory").unwrap();
            mem.write(&mut *s, 0, b"keep").unwrap();
        }
        for case in trap_cases() {
            let f = victim.get_func(&mut store, case.export).unwrap();
            let mut r: Vec<Val> = f
                .ty(&store)
                .results
                .iter()
                .map(|t| Val::default_for(*t))
                .collect();
            let t = expect_trap(f.call(&mut store, &case.args, &mut r));
            let ctx = format!("{b:?} {}({:?}): {t}", case.export, case.args);
            assert_eq!(t.code, case.code, "{ctx}");
            assert_eq!(frame_names(&t), case.frames, "{ctx}");
            assert!(
                t.backtrace
                    .iter()
                    .all(|f| f.module_name.as_deref() == Some("traps")),
                "{ctx}"
            );
            assert!(t.backtrace[0].wasm_offset.is_some(), "{ctx}");
            let shown = t.to_string();
            assert!(
                shown.contains(case.code.message()) && shown.contains(case.frames[0]),
                "{shown}"
            );
            // The same store goes on working, for the trapping instance too.
            assert_eq!(
                call_i32(&mut store, &victim, "id", &[Val::I32(3)]).unwrap(),
                3
            );
            assert_eq!(
                call_i32(&mut store, &victim, "call_ind", &[Val::I32(8), Val::I32(0)]).unwrap(),
                8
            );
            assert_eq!(
                call_i32(&mut store, &victim, "load", &[Val::I32(65532)]).unwrap(),
                0
            );
        }
        // Other instances are unaffected.
        for (s, i) in [(&mut store, &bystander), (&mut other_store, &other)] {
            assert_eq!(
                call_i32(&mut *s, i, "load", &[Val::I32(0)]).unwrap(),
                i32::from_le_bytes(*b"keep")
            );
            assert_eq!(
                call_i32(&mut *s, i, "div_s", &[Val::I32(9), Val::I32(3)]).unwrap(),
                3
            );
        }
    }
}

/// Generates a function whose frame holds `k` i64 values across its
/// recursive call. They are loaded from memory before the call, so the
/// compiler can neither recompute them after it (the callee may write
/// memory) nor keep them in registers: every frame spills `8 * k` bytes.
/// Memory holds `j + 1` at `8 * j`, so `deep(n)` returns
/// `n * (1 + ... + k) + k * (1 + ... + n)`.
fn big_frames_wat(k: usize) -> String {
    let mut s = String::from("(module $bigframes\n  (memory 1)\n");
    for j in 0..k {
        s.push_str(&format!(
            "  (data (i32.const {}) \"\\{:02x}\")\n",
            8 * j,
            j + 1
        ));
    }
    s.push_str("  (func $deep (export \"deep\") (param $n i32) (result i64)\n");
    for j in 0..k {
        s.push_str(&format!("    (local $l{j} i64)\n"));
    }
    s.push_str("    (if (i32.eqz (local.get $n)) (then (return (i64.const 0))))\n");
    for j in 0..k {
        s.push_str(&format!(
            "    (local.set $l{j} (i64.add (i64.load (i32.const {})) (i64.extend_i32_u (local.get $n))))\n",
            8 * j
        ));
    }
    s.push_str("    (call $deep (i32.sub (local.get $n) (i32.const 1)))\n");
    for j in 0..k {
        s.push_str(&format!("    (i64.add (local.get $l{j}))\n"));
    }
    s.push_str("  ))\n");
    s
}

#[test]
fn stack_overflow_from_infinite_and_deep_recursion() {
    const K: u64 = 64;
    let wat = big_frames_wat(K as usize);
    for b in BOTH {
        let traps = load(TRAPS, b);
        let big = load(&wat, b);
        let mut store = Store::new(engine(), ());
        let ti = instantiate(&mut store, &traps);
        let bi = instantiate(&mut store, &big);
        let deep = bi.get_typed_func::<i32, i64>(&mut store, "deep").unwrap();
        let expect = |n: u64| n * (K * (K + 1) / 2) + K * (n * (n + 1) / 2);
        assert_eq!(deep.call(&mut store, 100).unwrap(), expect(100) as i64);

        for round in 0..3 {
            let t = expect_trap(call_i32(&mut store, &ti, "inf", &[Val::I32(0)]));
            assert_eq!(t.code, TrapCode::StackOverflow, "round {round}");
            assert!(t.backtrace.len() > 100, "{}", t.backtrace.len());
            assert!(frame_names(&t).iter().all(|n| n == "inf"));

            // Deep but finite: 20,000 frames of more than 512 bytes exceed
            // the default 512 KiB limit.
            let t = expect_trap(deep.call(&mut store, 20_000));
            assert_eq!(t.code, TrapCode::StackOverflow, "round {round}");
            assert!(frame_names(&t).iter().all(|n| n == "deep"));
            assert!(t.backtrace.len() > 100);

            // The store recovers: the limit is restored, moderate depth works.
            assert_eq!(deep.call(&mut store, 300).unwrap(), expect(300) as i64);
            assert_eq!(call_i32(&mut store, &ti, "id", &[Val::I32(1)]).unwrap(), 1);
        }
        // A smaller stack limit turns a depth that fits into an overflow.
        let mut small = Store::new(engine(), ());
        small.set_max_wasm_stack(16 * 1024);
        let bi = instantiate(&mut small, &big);
        let deep = bi.get_typed_func::<i32, i64>(&mut small, "deep").unwrap();
        assert_eq!(
            expect_trap(deep.call(&mut small, 300)).code,
            TrapCode::StackOverflow
        );
        assert_eq!(deep.call(&mut small, 5).unwrap(), expect(5) as i64);
    }
}

/// `Error::downcast_ref` reaches the crate's own error types as well as a
/// host function's, as `downcast_ref` on a Wasmtime error does.
#[test]
fn errors_downcast_to_their_trap_and_load_error() {
    let m = load(TRAPS, Bounds::Guard);
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let e = call_i32(&mut store, &i, "load", &[Val::I32(-4)]).unwrap_err();
    let t = e.downcast_ref::<Trap>().expect("a trap");
    assert_eq!(t.code, TrapCode::MemoryOutOfBounds);
    assert!(e.downcast_ref::<LoadError>().is_none());
    let e: Error = Module::from_bytes(engine(), b"not an artifact")
        .unwrap_err()
        .into();
    assert!(e.downcast_ref::<LoadError>().is_some(), "{e}");
    assert!(e.downcast_ref::<Trap>().is_none());
}

/// An out-of-bounds access that only the guard region stopped carries the
/// fault's Wasm address and the memory's current size (accessor, fields and
/// message, as Wasmtime words it); one that an explicit bounds check
/// stopped (explicit-strategy code, every access to a 64-bit memory, a
/// libcall such as `memory.fill`) carries none. With Spectre mitigation an
/// explicit check makes the access fault at null: that fault is in no
/// memory, so it must not be reported as one.
#[test]
fn guard_region_faults_carry_the_wasm_address_and_explicit_checks_none() {
    let m = load(TRAPS, Bounds::Guard);
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let mem = i.get_memory(&mut store, "memory").unwrap();
    // (export, argument, expected Wasm fault address, memory size)
    let cases: [(&str, i32, u64, u64); 4] = [
        ("load", 65536, 0x10000, 0x10000),
        // Straddling the end: the first inaccessible byte faults.
        ("load", 65534, 0x10000, 0x10000),
        ("load", -4, 0xffff_fffc, 0x10000),
        ("load_far", 0, 0x10000, 0x10000),
    ];
    for (export, arg, addr, size) in cases {
        let t = expect_trap(call_i32(&mut store, &i, export, &[Val::I32(arg)]));
        let ctx = format!("{export}({arg}): {t}");
        assert_eq!(t.code, TrapCode::MemoryOutOfBounds, "{ctx}");
        assert_eq!(t.fault_address(), Some(addr), "{ctx}");
        let f = t.memory_fault.expect("a memory fault");
        assert_eq!((f.wasm_address, f.memory_size), (addr, size), "{ctx}");
        assert_eq!(f.memory, mem, "{ctx}");
        let want =
            format!("memory fault at wasm address {addr:#x} in linear memory of size {size:#x}");
        assert!(t.to_string().contains(&want), "{ctx}");
        assert!(
            t.to_string()
                .starts_with("wasm trap: out of bounds memory access"),
            "{ctx}"
        );
    }
    // The size is the current one, after a grow.
    mem.grow(&mut store, 1).unwrap();
    let t = expect_trap(call_i32(&mut store, &i, "load", &[Val::I32(0x20000)]));
    let f = t.memory_fault.expect("a memory fault");
    assert_eq!((f.wasm_address, f.memory_size), (0x20000, 0x20000), "{t}");
    // A libcall's bounds check is explicit.
    let fill = i.get_func(&mut store, "fill").unwrap();
    let t = expect_trap(fill.call(
        &mut store,
        &[Val::I32(0x1_0000), Val::I32(0x2_0000)],
        &mut [],
    ));
    assert_eq!(
        (t.code, t.fault_address()),
        (TrapCode::MemoryOutOfBounds, None),
        "{t}"
    );

    // Explicit checks: the same traps, no fault address.
    let m = load(TRAPS, Bounds::Explicit);
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    for (export, arg, _, _) in cases {
        let t = expect_trap(call_i32(&mut store, &i, export, &[Val::I32(arg)]));
        assert_eq!(t.code, TrapCode::MemoryOutOfBounds, "{export}({arg}): {t}");
        assert_eq!(t.memory_fault, None, "{export}({arg}): {t}");
        assert!(!t.to_string().contains("memory fault"), "{t}");
    }
}

/// Every access to a 64-bit memory is compared with its length, in guard
/// mode too: no trap of one is a guard-region fault.
#[test]
fn memory64_traps_carry_no_fault_address() {
    let wat = r#"(module
      (memory (export "memory") i64 1)
      (func (export "load") (param i64) (result i32) (i32.load (local.get 0)))
      (func (export "load_far") (param i64) (result i32)
        (i32.load offset=65536 (local.get 0))))"#;
    for b in BOTH {
        let m = load(wat, b);
        let mut store = Store::new(engine(), ());
        let i = instantiate(&mut store, &m);
        for (export, arg) in [
            ("load", 65536),
            ("load", 65534),
            ("load", 1 << 32),
            ("load_far", 0),
        ] {
            let f = i.get_func(&mut store, export).unwrap();
            let mut r = [Val::I32(0)];
            let t = expect_trap(f.call(&mut store, &[Val::I64(arg)], &mut r));
            let ctx = format!("{b:?} {export}({arg}): {t}");
            assert_eq!(t.code, TrapCode::MemoryOutOfBounds, "{ctx}");
            assert_eq!(t.fault_address(), None, "{ctx}");
        }
    }
}
