//! Host functions: errors and panics reach the host caller; host -> Wasm ->
//! host -> Wasm re-entry over several levels with a trap in the innermost
//! Wasm; a fault in a host function is not turned into a trap (a child
//! process must die of SIGSEGV).

use super::*;

const HOSTCALLS: &str = r#"
(module $hostcalls
  (import "host" "fail" (func $fail (param i32) (result i32)))
  (import "host" "panic" (func $panic))
  (import "host" "down" (func $down (param i32 i32) (result i32)))
  (import "host" "crash" (func $crash))
  (func $calls_fail (export "calls_fail") (param i32) (result i32)
    (i32.add (call $fail (local.get 0)) (i32.const 1)))
  (func $calls_panic (export "calls_panic") (call $panic))
  (func $calls_crash (export "calls_crash") (call $crash))
  ;; rec(n, mode): n == 0: mode 0 returns 1000, else traps; otherwise asks the
  ;; host to call rec(n - 1, mode) and adds one.
  (func $rec (export "rec") (param $n i32) (param $mode i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then
        (if (result i32) (i32.eqz (local.get $mode))
          (then (i32.const 1000))
          (else (call $bottom))))
      (else
        (i32.add (call $down (local.get $n) (local.get $mode)) (i32.const 1)))))
  (func $bottom (result i32) (unreachable))
  (func (export "ok") (result i32) (i32.const 1)))
"#;

/// Levels of `down` entered, for the re-entry test.
fn hostcalls_linker(depths: Arc<Mutex<Vec<i32>>>) -> Linker<()> {
    use ValType::*;
    let mut l = Linker::new(engine());
    l.func_new("host", "fail", functype(&[I32], &[I32]), |_, p, r| {
        let v = p[0].i32().unwrap();
        if v < 0 {
            return Err(Error::msg(format!("host refused {v}")).into());
        }
        r[0] = Val::I32(v * 2);
        Ok(())
    })
    .unwrap();
    l.func_new("host", "panic", functype(&[], &[]), |_, _, _| {
        panic!("host function panicked on purpose")
    })
    .unwrap();
    l.func_new(
        "host",
        "down",
        functype(&[I32, I32], &[I32]),
        move |mut caller, p, r| {
            let (n, mode) = (p[0].i32().unwrap(), p[1].i32().unwrap());
            depths.lock().unwrap().push(n);
            let rec = caller
                .get_export("rec")
                .and_then(Extern::into_func)
                .expect("rec export");
            let mut out = [Val::I32(0)];
            match rec.call(&mut caller, &[Val::I32(n - 1), Val::I32(mode)], &mut out) {
                Ok(()) => r[0] = out[0].clone(),
                // Mode 2: the outermost host level absorbs the inner trap.
                Err(Error::Trap(t)) if mode == 2 && n == 3 => {
                    assert_eq!(t.code, TrapCode::UnreachableCodeReached);
                    r[0] = Val::I32(-100);
                }
                Err(e) => return Err(e.into()),
            }
            Ok(())
        },
    )
    .unwrap();
    l.func_new("host", "crash", functype(&[], &[]), |_, _, _| {
        // A fault in host code, not in Wasm: must reach the default action.
        // SAFETY: none; this deliberately reads an unmapped address.
        let v = unsafe { std::ptr::read_volatile(16usize as *const u64) };
        println!("read {v}");
        Ok(())
    })
    .unwrap();
    l
}

#[test]
fn host_errors_reach_the_caller() {
    let m = load(HOSTCALLS, Bounds::Guard);
    let mut store = Store::new(engine(), ());
    let i = hostcalls_linker(Arc::default())
        .instantiate(&mut store, &m)
        .unwrap();
    assert_eq!(
        call_i32(&mut store, &i, "calls_fail", &[Val::I32(20)]).unwrap(),
        41
    );
    for _ in 0..3 {
        let e = call_i32(&mut store, &i, "calls_fail", &[Val::I32(-3)]).unwrap_err();
        assert!(e.as_trap().is_none(), "{e:?}");
        assert_eq!(e.to_string(), "host refused -3");
        assert_eq!(
            call_i32(&mut store, &i, "calls_fail", &[Val::I32(1)]).unwrap(),
            3
        );
    }
}

#[test]
fn host_panics_reach_the_host_caller_and_the_store_survives() {
    let m = load(HOSTCALLS, Bounds::Guard);
    let mut store = Store::new(engine(), ());
    let i = hostcalls_linker(Arc::default())
        .instantiate(&mut store, &m)
        .unwrap();
    let f = i.get_func(&mut store, "calls_panic").unwrap();
    for _ in 0..3 {
        let r = catch_unwind(AssertUnwindSafe(|| f.call(&mut store, &[], &mut [])));
        let payload = r.expect_err("the panic must reach the host");
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert_eq!(msg, "host function panicked on purpose");
        assert_eq!(call_i32(&mut store, &i, "ok", &[]).unwrap(), 1);
        assert_eq!(
            call_i32(&mut store, &i, "rec", &[Val::I32(2), Val::I32(0)]).unwrap(),
            1002
        );
    }
}

#[test]
fn host_wasm_reentry_over_several_levels() {
    let m = load(HOSTCALLS, Bounds::Guard);
    let depths: Arc<Mutex<Vec<i32>>> = Arc::default();
    let mut store = Store::new(engine(), ());
    let i = hostcalls_linker(depths.clone())
        .instantiate(&mut store, &m)
        .unwrap();
    // host -> rec(5) -> down(5) -> rec(4) -> ... -> rec(0) = 1000.
    assert_eq!(
        call_i32(&mut store, &i, "rec", &[Val::I32(5), Val::I32(0)]).unwrap(),
        1005
    );
    assert_eq!(*depths.lock().unwrap(), [5, 4, 3, 2, 1]);
    depths.lock().unwrap().clear();

    // A trap in the innermost Wasm propagates through every host level.
    let t = expect_trap(call_i32(&mut store, &i, "rec", &[Val::I32(4), Val::I32(1)]));
    assert_eq!(t.code, TrapCode::UnreachableCodeReached);
    assert_eq!(frame_names(&t), ["bottom", "rec"]);
    assert_eq!(*depths.lock().unwrap(), [4, 3, 2, 1]);
    depths.lock().unwrap().clear();

    // A host level that handles the inner trap lets the outer Wasm go on:
    // rec(5) -> down(5) -> rec(4) -> down(4) -> rec(3) -> down(3) absorbs
    // the trap from below and returns -100; rec(3), rec(4) and rec(5) each
    // add one.
    assert_eq!(
        call_i32(&mut store, &i, "rec", &[Val::I32(5), Val::I32(2)]).unwrap(),
        -97
    );
    assert_eq!(*depths.lock().unwrap(), [5, 4, 3, 2, 1]);
    // And the store still works at every depth.
    assert_eq!(
        call_i32(&mut store, &i, "rec", &[Val::I32(8), Val::I32(0)]).unwrap(),
        1008
    );
}

/// A segfault in a host function called from Wasm is not a Wasm trap: the
/// handler passes it on and the process dies of SIGSEGV.
#[test]
fn faults_outside_wasm_code_are_not_swallowed() {
    if child_job().as_deref() == Some("crash") {
        let m = load(HOSTCALLS, Bounds::Guard);
        let mut store = Store::new(engine(), ());
        let i = hostcalls_linker(Arc::default())
            .instantiate(&mut store, &m)
            .unwrap();
        // A Wasm trap first, so the handlers are installed and exercised.
        let t = expect_trap(call_i32(&mut store, &i, "rec", &[Val::I32(1), Val::I32(1)]));
        assert_eq!(t.code, TrapCode::UnreachableCodeReached);
        let f = i.get_func(&mut store, "calls_crash").unwrap();
        let r = f.call(&mut store, &[], &mut []);
        println!("survived the fault: {r:?}");
        return;
    }
    let out = run_child(
        module_path!(),
        "faults_outside_wasm_code_are_not_swallowed",
        "crash",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(11),
        "expected death by SIGSEGV, got {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("survived"), "{stdout}");
}
