//! Interruption (issue 12 item 5): epoch deadlines reached from another
//! thread and fuel stop an infinite loop — at top level, in a recursive
//! callee, and in a loop inside host -> Wasm -> host -> Wasm re-entry — and
//! the store then runs other calls correctly; fuel counts are exact and
//! deterministic; a deadline or fuel asked of code compiled without the
//! checks is a clear error.
//!
//! Each test makes its own engine: epochs are per engine, and a shared one
//! would let one test's `increment_epoch` interrupt another's store.

use super::*;
use std::time::{Duration, Instant};
use wasmc_compiler::{Interruption, OptLevel};
use wasmc_loader::{Caller, Engine};

const SPIN: &str = r#"
(module $spin
  (import "host" "down" (func $down (param i32) (result i32)))
  (func $spin (export "spin") (loop (br 0)))
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  ;; Recurses `n` levels, then spins in the innermost call.
  (func $rec (export "rec") (param $n i32) (result i32)
    (if (local.get $n)
      (then (return (i32.add (i32.const 1)
        (call $rec (i32.sub (local.get $n) (i32.const 1)))))))
    (call $spin)
    (i32.const 0))
  ;; n > 0: asks the host to call `reenter(n - 1)` (Wasm -> host -> Wasm);
  ;; n = 0: spins.
  (func (export "reenter") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (call $spin) (i32.const 0))
      (else (i32.add (call $down (local.get $n)) (i32.const 1)))))
  ;; Sums 0..n with a loop.
  (func (export "sum") (param $n i32) (result i32) (local $acc i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (local.get $acc)))
"#;

fn compiled(i: Interruption) -> Vec<u8> {
    compile_with(
        SPIN,
        &CompileOptions {
            interruption: i,
            ..CompileOptions::default()
        },
    )
}

/// `wat` compiled with the checks `i` and loaded in `engine`.
fn load_instrumented(engine: &Engine, wat: &str, i: Interruption) -> Module {
    let opts = CompileOptions {
        interruption: i,
        ..CompileOptions::default()
    };
    Module::from_bytes(engine, &compile_with(wat, &opts)).unwrap()
}

const BOTH_CHECKS: Interruption = Interruption {
    epochs: true,
    fuel: true,
};

const EPOCHS: Interruption = Interruption {
    epochs: true,
    fuel: false,
};
const FUEL: Interruption = Interruption {
    epochs: false,
    fuel: true,
};

/// `down(n)` calls the export `reenter(n - 1)` back.
fn linker(engine: &Engine) -> Linker<()> {
    let mut l = Linker::new(engine);
    l.func_new(
        "host",
        "down",
        functype(&[ValType::I32], &[ValType::I32]),
        |mut caller, p, r| {
            let n = p[0].i32().unwrap();
            let f = caller
                .get_export("reenter")
                .and_then(Extern::into_func)
                .expect("reenter export");
            let mut out = [Val::I32(0)];
            f.call(&mut caller, &[Val::I32(n - 1)], &mut out)?;
            r[0] = out[0].clone();
            Ok(())
        },
    )
    .unwrap();
    l
}

fn setup(i: Interruption) -> (Engine, Store<()>, Module, Linker<()>) {
    let engine = Engine::default();
    let module = Module::from_bytes(&engine, &compiled(i)).unwrap();
    let store = Store::new(&engine, ());
    let l = linker(&engine);
    (engine, store, module, l)
}

/// Advances `engine`'s epoch after `after`, from another thread.
fn tick_later(engine: &Engine, after: Duration) -> std::thread::JoinHandle<()> {
    let e = engine.clone();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        e.increment_epoch();
    })
}

fn call1(store: &mut Store<()>, inst: &Instance, name: &str, arg: i32) -> Result<i32, Error> {
    call_i32(store, inst, name, &[Val::I32(arg)])
}

/// The calls after an interruption work and return the right values.
fn store_still_works(store: &mut Store<()>, inst: &Instance) {
    assert_eq!(
        call_i32(store, inst, "add", &[Val::I32(40), Val::I32(2)]).unwrap(),
        42
    );
    assert_eq!(call1(store, inst, "sum", 100).unwrap(), 5050);
}

#[test]
fn epoch_deadline_from_another_thread_stops_an_infinite_loop() {
    let (engine, mut store, module, l) = setup(EPOCHS);
    store.set_epoch_deadline(1).unwrap();
    let inst = l.instantiate(&mut store, &module).unwrap();
    for round in 0..3 {
        let t0 = Instant::now();
        let ticker = tick_later(&engine, Duration::from_millis(50));
        let spin = inst.get_func(&mut store, "spin").unwrap();
        let trap = expect_trap(spin.call(&mut store, &[], &mut []));
        ticker.join().unwrap();
        assert_eq!(trap.code, TrapCode::Interrupted, "round {round}");
        assert_eq!(frame_names(&trap), ["spin"], "round {round}");
        assert!(t0.elapsed() < Duration::from_secs(10));
        // The deadline stays reached until it is set again.
        assert_eq!(
            expect_trap(call_i32(
                &mut store,
                &inst,
                "add",
                &[Val::I32(1), Val::I32(2)]
            ))
            .code,
            TrapCode::Interrupted
        );
        store.set_epoch_deadline(1).unwrap();
        store_still_works(&mut store, &inst);
    }
    assert_eq!(engine.current_epoch(), 3);
}

#[test]
fn epoch_interrupts_a_recursive_callee_and_host_reentry() {
    let (engine, mut store, module, l) = setup(EPOCHS);
    store.set_epoch_deadline(1).unwrap();
    let inst = l.instantiate(&mut store, &module).unwrap();

    let ticker = tick_later(&engine, Duration::from_millis(30));
    let trap = expect_trap(call1(&mut store, &inst, "rec", 20));
    ticker.join().unwrap();
    assert_eq!(trap.code, TrapCode::Interrupted);
    let names = frame_names(&trap);
    assert_eq!(names[0], "spin");
    assert_eq!(
        names.iter().filter(|n| *n == "rec").count(),
        21,
        "{names:?}"
    );
    store.set_epoch_deadline(1).unwrap();
    store_still_works(&mut store, &inst);

    // Wasm -> host -> Wasm -> host -> Wasm, spinning at the bottom.
    let ticker = tick_later(&engine, Duration::from_millis(30));
    let trap = expect_trap(call1(&mut store, &inst, "reenter", 3));
    ticker.join().unwrap();
    assert_eq!(trap.code, TrapCode::Interrupted);
    assert_eq!(frame_names(&trap)[0], "spin");
    store.set_epoch_deadline(1).unwrap();
    store_still_works(&mut store, &inst);
}

#[test]
fn fuel_stops_an_infinite_loop_and_is_exact() {
    let (_engine, mut store, module, l) = setup(FUEL);
    store.set_fuel(100_000).unwrap();
    let inst = l.instantiate(&mut store, &module).unwrap();
    let trap = expect_trap(inst.get_func(&mut store, "spin").unwrap().call(
        &mut store,
        &[],
        &mut [],
    ));
    assert_eq!(trap.code, TrapCode::OutOfFuel);
    assert_eq!(frame_names(&trap), ["spin"]);
    assert_eq!(store.get_fuel().unwrap(), 0);

    // `add`: local.get, local.get, i32.add cost one each; `end` is free.
    store.set_fuel(100).unwrap();
    assert_eq!(
        call_i32(&mut store, &inst, "add", &[Val::I32(40), Val::I32(2)]).unwrap(),
        42
    );
    assert_eq!(store.get_fuel().unwrap(), 97);

    // `sum(n)`: per iteration local.get, i32.eqz, br_if, local.get,
    // local.get, i32.add, local.set, local.get, i32.const, i32.sub,
    // local.set, br = 12; the last test (local.get, i32.eqz, br_if) 3; then
    // local.get 1. Deterministic: the same on every run.
    for n in [0, 1, 10, 1000] {
        for _ in 0..2 {
            store.set_fuel(1_000_000).unwrap();
            let expected = n * (n + 1) / 2;
            assert_eq!(call1(&mut store, &inst, "sum", n).unwrap(), expected);
            let used = 1_000_000 - store.get_fuel().unwrap();
            assert_eq!(used, 12 * n as u64 + 4, "sum({n})");
        }
    }

    // Exactly enough fuel passes and leaves none.
    store.set_fuel(12 * 10 + 4).unwrap();
    assert_eq!(call1(&mut store, &inst, "sum", 10).unwrap(), 55);
    assert_eq!(store.get_fuel().unwrap(), 0);
    // Fuel is checked at loop headers and entries only: the straight-line
    // code after the last check may overdraw (121 passes; the 11th header
    // sees 120 used), and fuel that is used up at a check traps (120).
    store.set_fuel(12 * 10 + 1).unwrap();
    assert_eq!(call1(&mut store, &inst, "sum", 10).unwrap(), 55);
    assert_eq!(store.get_fuel().unwrap(), 0);
    store.set_fuel(12 * 10).unwrap();
    assert_eq!(
        expect_trap(call1(&mut store, &inst, "sum", 10)).code,
        TrapCode::OutOfFuel
    );
}

#[test]
fn fuel_stops_a_recursive_callee_and_host_reentry() {
    let (_engine, mut store, module, l) = setup(FUEL);
    store.set_fuel(1_000_000).unwrap();
    let inst = l.instantiate(&mut store, &module).unwrap();
    let trap = expect_trap(call1(&mut store, &inst, "rec", 20));
    assert_eq!(trap.code, TrapCode::OutOfFuel);
    assert_eq!(
        frame_names(&trap).iter().filter(|n| *n == "rec").count(),
        21
    );
    store.set_fuel(10_000).unwrap();
    store_still_works(&mut store, &inst);

    store.set_fuel(1_000_000).unwrap();
    let trap = expect_trap(call1(&mut store, &inst, "reenter", 3));
    assert_eq!(trap.code, TrapCode::OutOfFuel);
    assert_eq!(frame_names(&trap)[0], "spin");
    store.set_fuel(10_000).unwrap();
    store_still_works(&mut store, &inst);
}

#[test]
fn fuel_counts_host_reentry_deterministically() {
    // Without spinning: reenter(n) for n > 0 recurses through the host.
    let wat = r#"
    (module
      (import "host" "down" (func $down (param i32) (result i32)))
      (func (export "reenter") (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
          (then (i32.const 0))
          (else (i32.add (call $down (local.get $n)) (i32.const 1))))))"#;
    let engine = Engine::default();
    let module = load_instrumented(&engine, wat, FUEL);
    let mut store = Store::new(&engine, ());
    store.set_fuel(1_000).unwrap();
    let inst = linker(&engine).instantiate(&mut store, &module).unwrap();
    let mut used = Vec::new();
    for n in [0, 1, 2, 3] {
        store.set_fuel(1_000).unwrap();
        assert_eq!(call1(&mut store, &inst, "reenter", n).unwrap(), n);
        used.push(1_000 - store.get_fuel().unwrap());
    }
    // n = 0: local.get, i32.eqz, if, i32.const = 4. Each level above adds
    // local.get, i32.eqz, if, local.get, call, i32.const, i32.add = 7.
    assert_eq!(used, [4, 11, 18, 25]);
}

#[test]
fn asking_uninstrumented_code_for_a_deadline_or_fuel_is_an_error() {
    let engine = Engine::default();
    let plain = Module::from_bytes(&engine, &compiled(Interruption::default())).unwrap();
    let epochs = Module::from_bytes(&engine, &compiled(EPOCHS)).unwrap();
    let fuel = Module::from_bytes(&engine, &compiled(FUEL)).unwrap();
    assert_eq!(fuel.header().settings.interruption, FUEL);
    let l = linker(&engine);

    // A store with an uninstrumented instance refuses both.
    let mut store = Store::new(&engine, ());
    l.instantiate(&mut store, &plain).unwrap();
    let e = store.set_epoch_deadline(1).unwrap_err().to_string();
    assert!(
        e.contains("without epoch checks") && e.contains("--epoch-interruption"),
        "{e}"
    );
    let e = store.set_fuel(10).unwrap_err().to_string();
    assert!(e.contains("without fuel") && e.contains("--fuel"), "{e}");
    let e = store.get_fuel().unwrap_err().to_string();
    assert!(e.contains("fuel is not enabled"), "{e}");

    // A store with a deadline refuses uninstrumented modules.
    let mut store = Store::new(&engine, ());
    store.set_epoch_deadline(5).unwrap();
    let e = l.instantiate(&mut store, &plain).unwrap_err();
    assert!(
        matches!(e, Error::Instantiation(InstantiationError::Interruption(_))),
        "{e:?}"
    );
    assert!(e.to_string().contains("could not be interrupted"), "{e}");
    l.instantiate(&mut store, &epochs).unwrap();

    // Fuel-counting code needs fuel configured; a fuel store needs
    // fuel-counting code.
    let mut store = Store::new(&engine, ());
    let e = l.instantiate(&mut store, &fuel).unwrap_err().to_string();
    assert!(e.contains("set_fuel"), "{e}");
    store.set_fuel(10).unwrap();
    let e = l.instantiate(&mut store, &plain).unwrap_err().to_string();
    assert!(e.contains("without fuel counting"), "{e}");
    l.instantiate(&mut store, &fuel).unwrap();

    // Epoch-instrumented code runs without a deadline (never interrupted).
    let mut store = Store::new(&engine, ());
    let inst = l.instantiate(&mut store, &epochs).unwrap();
    engine.increment_epoch();
    assert_eq!(call1(&mut store, &inst, "sum", 4).unwrap(), 10);
}

#[test]
fn epochs_and_fuel_together() {
    let (engine, mut store, module, l) = setup(BOTH_CHECKS);
    store.set_fuel(u64::MAX).unwrap();
    store.set_epoch_deadline(1).unwrap();
    let inst = l.instantiate(&mut store, &module).unwrap();
    let ticker = tick_later(&engine, Duration::from_millis(30));
    assert_eq!(
        expect_trap(call1(&mut store, &inst, "rec", 5)).code,
        TrapCode::Interrupted
    );
    ticker.join().unwrap();
    store.set_epoch_deadline(1).unwrap();
    store.set_fuel(1_000).unwrap();
    assert_eq!(
        expect_trap(call1(&mut store, &inst, "rec", 5)).code,
        TrapCode::OutOfFuel
    );
    store.set_fuel(10_000).unwrap();
    store_still_works(&mut store, &inst);
}

/// A host function refuels the store and moves its deadline through
/// `Caller` (issue 12): the calling Wasm continues with the new fuel, and
/// the fuel it reads is exact at the call.
#[test]
fn a_host_function_reads_and_sets_fuel_through_its_caller() {
    let wat = r#"
    (module
      (import "host" "refuel" (func $refuel (param i32) (result i32)))
      ;; Spins `n` iterations, asking the host for fuel every 100.
      (func (export "spin_refuelled") (param $n i32) (result i32) (local $seen i32)
        (loop $l
          (if (i32.eqz (i32.rem_u (local.get $n) (i32.const 100)))
            (then (local.set $seen (call $refuel (local.get $n)))))
          (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (local.get $seen)))
    "#;
    let engine = Engine::default();
    let module = load_instrumented(&engine, wat, BOTH_CHECKS);
    let mut store = Store::new(&engine, Vec::<u64>::new());
    store.set_epoch_deadline(1_000_000).unwrap();
    let mut l = Linker::new(&engine);
    l.func_new(
        "host",
        "refuel",
        functype(&[ValType::I32], &[ValType::I32]),
        |mut caller: Caller<'_, Vec<u64>>, _p, r| {
            let left = caller.get_fuel()?;
            caller.data_mut().push(left);
            caller.set_fuel(5_000)?;
            // Far in the future: the call must not be interrupted.
            caller.set_epoch_deadline(1_000_000)?;
            r[0] = Val::I32(1);
            Ok(())
        },
    )
    .unwrap();
    store.set_fuel(5_000).unwrap();
    let inst = l.instantiate(&mut store, &module).unwrap();
    // 10,000 iterations cost far more than 5,000 fuel: only the refuels let
    // it finish.
    let f = inst.get_func(&mut store, "spin_refuelled").unwrap();
    let mut out = [Val::I32(0)];
    f.call(&mut store, &[Val::I32(10_000)], &mut out).unwrap();
    assert_eq!(out[0].i32(), Some(1));
    let seen = store.data();
    assert_eq!(seen.len(), 100, "one refuel per 100 iterations");
    // Every refuel after the first sees the same exact remainder: 100
    // iterations of the same code since the last refuel.
    assert!(seen[1..].windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    assert!(seen[1] < 5_000 && seen[1] > 0, "{seen:?}");
    // 99 iterations before the first refuel need more than 30 fuel.
    store.set_fuel(30).unwrap();
    let trap = expect_trap(f.call(&mut store, &[Val::I32(10_099)], &mut out));
    assert_eq!(trap.code, TrapCode::OutOfFuel);
    assert_eq!(store.data().len(), 100, "no refuel was reached");
}

/// Fuel through tail calls: a `return_call` loop is counted like a call
/// loop (each callee entry is a check), so a tail-recursive spin stops and
/// the count is exact and deterministic.
#[test]
fn fuel_counts_and_stops_tail_calls() {
    let wat = r#"
    (module
      (func $down (export "down") (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
          (then (i32.const 7))
          (else (return_call $down (i32.sub (local.get $n) (i32.const 1))))))
      (func $forever (export "forever") (param $n i32) (result i32)
        (return_call $forever (local.get $n))))
    "#;
    let engine = Engine::default();
    let module = load_instrumented(&engine, wat, FUEL);
    let mut store = Store::new(&engine, ());
    store.set_fuel(1_000_000).unwrap();
    let inst = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    let mut used = Vec::new();
    for n in [0, 1, 2, 100] {
        store.set_fuel(1_000_000).unwrap();
        assert_eq!(
            call_i32(&mut store, &inst, "down", &[Val::I32(n)]).unwrap(),
            7
        );
        used.push(1_000_000 - store.get_fuel().unwrap());
    }
    // Per level: local.get, i32.eqz, if, local.get, i32.const, i32.sub,
    // return_call = 7; the last level: local.get, i32.eqz, if, i32.const = 4.
    assert_eq!(used, [4, 11, 18, 704]);
    store.set_fuel(10_000).unwrap();
    let trap = expect_trap(call_i32(&mut store, &inst, "forever", &[Val::I32(1)]));
    assert_eq!(trap.code, TrapCode::OutOfFuel);
    assert_eq!(store.get_fuel().unwrap(), 0);
}

/// The compiled code keeps the deadline in a register between calls; a
/// host function called from a loop that moves it (nearer: the loop stops
/// at its next header; further: the loop goes on past the old deadline)
/// is seen right after the call.
#[test]
fn a_host_function_moves_the_deadline_seen_by_the_calling_loop() {
    const LOOP: &str = r#"
    (module
      (import "host" "tick" (func $tick (param i32)))
      ;; Calls tick(i) for i = 1..=n, one call per iteration; returns n.
      (func (export "run") (param $n i32) (result i32) (local $i i32)
        (loop $l
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (call $tick (local.get $i))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $i)))
    "#;
    let engine = Engine::default();
    let module = load_instrumented(&engine, LOOP, EPOCHS);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    let mut l = Linker::<()>::new(&engine);
    let s = seen.clone();
    let e = engine.clone();
    l.func_wrap("host", "tick", move |mut caller: Caller<'_, ()>, i: i32| {
        s.store(i, std::sync::atomic::Ordering::SeqCst);
        if i == 10 {
            // Nearer: reached now; the loop must stop at its next header.
            caller.set_epoch_deadline(0).unwrap();
        }
        // In the second run, the epoch passes the old deadline at i = 5
        // and the host extends it at the same call.
        if i == 5 && e.current_epoch() == 0 {
            e.increment_epoch();
            e.increment_epoch();
            caller.set_epoch_deadline(100).unwrap();
        }
    })
    .unwrap();
    let mut store = Store::new(&engine, ());
    store.set_epoch_deadline(1).unwrap();
    let inst = l.instantiate(&mut store, &module).unwrap();
    // Run 1: the epoch moves to 2 at i = 5 (past the deadline 1) and the
    // deadline to 102; at i = 10 the deadline becomes the epoch: stop.
    let trap = expect_trap(call1(&mut store, &inst, "run", 1000));
    assert_eq!(trap.code, TrapCode::Interrupted);
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 10);
    // Run 2: a deadline far ahead, no host change to it before i = 10.
    store.set_epoch_deadline(1000).unwrap();
    assert_eq!(call1(&mut store, &inst, "run", 9).unwrap(), 9);
}

/// A call in dead code after a branch that leaves its block filled (`br`,
/// `br_table` whose targets pass values through an edge block) compiles
/// with fuel and epoch checks, in both optimization levels, and runs. The
/// differential fuzzer's first report with interruption on: the reload of
/// the fuel count and deadline after a call was emitted into the filled
/// block, after its terminator (a panic in Cranelift: the builder's
/// assertion in debug builds, the block-order pass's `is_terminator` one in
/// release), because the reachability test asked the builder, whose current
/// block after such a branch has a predecessor, instead of the translation
/// state.
#[test]
fn a_call_in_dead_code_after_a_branch_compiles_with_interruption() {
    let wat = r#"
    (module
      (func $f (result f64) (f64.const 2.5))
      (func (export "br") (result i32)
        (block (br 0) (drop (call $f)))
        (i32.const 1))
      (func (export "br_table") (param i32) (result f64)
        (block (result f64)
          (f64.const 4.5)
          (br_table 0 0 (local.get 0))
          (drop (call $f))
          (call_indirect (result f64) (i32.const 0))))
      (table 1 funcref)
      (elem (i32.const 0) $f))
    "#;
    for opt_level in [OptLevel::None, OptLevel::Speed] {
        let engine = Engine::default();
        let bytes = compile_with(
            wat,
            &CompileOptions {
                interruption: BOTH_CHECKS,
                opt_level,
                ..CompileOptions::default()
            },
        );
        let module = Module::from_bytes(&engine, &bytes).unwrap();
        let mut store = Store::new(&engine, ());
        store.set_fuel(1_000).unwrap();
        store.set_epoch_deadline(1_000).unwrap();
        let inst = Linker::new(&engine)
            .instantiate(&mut store, &module)
            .unwrap();
        assert_eq!(call_i32(&mut store, &inst, "br", &[]).unwrap(), 1);
        let f = inst.get_func(&mut store, "br_table").unwrap();
        let mut r = [Val::F64(0)];
        f.call(&mut store, &[Val::I32(3)], &mut r).unwrap();
        assert!(matches!(r[0], Val::F64(b) if f64::from_bits(b) == 4.5));
    }
}
