//! Tail calls (`return_call`, `return_call_indirect`) with the runtime:
//! externrefs flowing through replaced frames survive collections (decided
//! by drop counters, as in `externref_gc.rs`), host functions reached by a
//! tail call see a walkable stack, traps in tail-called functions carry a
//! backtrace, and tail-call loops run in constant stack.
//!
//! References are made inside Wasm calls by a host function (`make`), so the
//! activations table is their only counted holder: a reference a stack map
//! missed would be freed by the next collection and `check` would report it.
//! Every scenario runs at `--opt-level none` and `speed`, with and without the
//! store's stress mode (a collection at every builtin and host call).

use wasmc_compiler::OptLevel;
use wasmc_loader::{Engine, Val};
use wasmc_tests::tracked::{returned_id, tracked, Env};

const MODULE: &str = r#"
(module
  (import "host" "make" (func $make (param i32) (result externref)))
  (import "host" "check" (func $check (param externref i32)))
  (import "host" "gc" (func $gc))
  (import "host" "gc_check" (func $gc_check (param externref i32) (result externref)))
  (type $step (func (param i32 externref externref) (result externref)))
  (table $funcs 2 funcref)
  (table $refs 4 externref)
  (elem (table $funcs) (i32.const 0) func $odd $even)

  ;; n tail calls, alternating direct and indirect, carrying two refs; each
  ;; step makes garbage, and every 1000th collects. The last one checks both
  ;; refs after a collection and returns the first.
  (func $loop (export "loop") (param $n i32) (param $a externref) (param $b externref)
        (result externref)
    (drop (call $make (i32.const -1)))
    (if (i32.eqz (i32.rem_u (local.get $n) (i32.const 1000))) (then (call $gc)))
    (if (i32.eqz (local.get $n))
      (then
        (call $gc)
        (call $check (local.get $a) (i32.const 1))
        (call $check (local.get $b) (i32.const 2))
        (return (local.get $a))))
    (return_call_indirect $funcs (type $step)
      (i32.sub (local.get $n) (i32.const 1)) (local.get $a) (local.get $b)
      (i32.and (local.get $n) (i32.const 1))))
  (func $odd (type $step)
    (return_call $loop (local.get 0) (local.get 1) (local.get 2)))
  (func $even (type $step)
    (return_call $loop (local.get 0) (local.get 1) (local.get 2)))
  (func (export "run_loop") (param $n i32) (result externref)
    (call $loop (local.get $n) (call $make (i32.const 1)) (call $make (i32.const 2))))

  ;; The tail-called function holds its own ref and the one passed across a
  ;; collection, then a second tail call hands a table ref on.
  (func $callee (param $r externref) (result externref)
    (local $mine externref)
    (local.set $mine (call $make (i32.const 11)))
    (call $gc)
    (call $check (local.get $r) (i32.const 10))
    (call $check (local.get $mine) (i32.const 11))
    (table.set $refs (i32.const 0) (local.get $mine))
    (return_call $last (table.get $refs (i32.const 0)) (local.get $r)))
  (func $last (param $a externref) (param $b externref) (result externref)
    (call $gc)
    (call $check (local.get $a) (i32.const 11))
    (call $check (local.get $b) (i32.const 10))
    (local.get $b))
  (func (export "nested") (result externref)
    (local $keep externref)
    (local.set $keep (call $make (i32.const 12)))
    (call $via_tail (call $make (i32.const 10)))
    (call $gc)
    (call $check (local.get $keep) (i32.const 12)))
  (func $via_tail (param externref) (result externref)
    (return_call $callee (local.get 0)))

  ;; A tail call straight into a host function: from the outermost Wasm
  ;; frame (no Wasm frame is left below the host call) and from a nested one.
  (func $to_host (export "to_host") (param externref i32) (result externref)
    (return_call $gc_check (local.get 0) (local.get 1)))
  (func (export "to_host_nested") (result externref)
    (local $keep externref)
    (local.set $keep (call $make (i32.const 21)))
    (call $to_host (call $make (i32.const 22)) (i32.const 22))
    (call $gc)
    (call $check (local.get $keep) (i32.const 21)))

  ;; Many stack arguments through a tail call to a function with more of
  ;; them than its caller received.
  (func $wide (param i32 i64 f32 f64 i32 i64 f32 f64 externref i32 i64 externref)
              (result i64)
    (call $gc)
    (call $check (local.get 8) (i32.const 30))
    (call $check (local.get 11) (i32.const 31))
    (i64.add (i64.add (i64.extend_i32_u (local.get 0)) (local.get 1))
             (i64.add (i64.extend_i32_u (local.get 9)) (local.get 10))))
  (func $narrow (param i32) (result i64)
    (return_call $wide (local.get 0) (i64.const 2) (f32.const 3) (f64.const 4)
                       (i32.const 5) (i64.const 6) (f32.const 7) (f64.const 8)
                       (call $make (i32.const 30)) (i32.const 10) (i64.const 11)
                       (call $make (i32.const 31))))
  (func (export "widen") (param i32) (result i64)
    (call $narrow (local.get 0)))

  ;; A trap in a tail-called function.
  (func $boom (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
  (func $jump (param i32) (result i32) (return_call $boom (local.get 0)))
  (func $outer (export "trap") (param i32) (result i32)
    (i32.add (call $jump (local.get 0)) (i32.const 1)))
)
"#;

fn env(opt: OptLevel, stress: bool) -> Env {
    Env::new(engine(), MODULE, opt, stress)
}

fn each_config(f: impl Fn(&str, Env)) {
    for opt in [OptLevel::None, OptLevel::Speed] {
        for stress in [false, true] {
            let what = format!("{opt:?}, stress {stress}");
            f(&what, env(opt, stress));
        }
    }
}

#[test]
fn refs_survive_a_long_tail_call_loop() {
    each_config(|what, mut e| {
        // 100,000 frames deep if the calls were not tail calls: more than
        // the stack limit allows, so this also proves constant stack use.
        let n = if what.contains("stress true") {
            3_000
        } else {
            100_000
        };
        let r = e.ok("run_loop", &[Val::I32(n)]);
        assert_eq!(returned_id(&r[0]), Some(1), "{what}");
        e.assert_clean(what);
        assert!(e.log.gcs() >= 2, "{what}");
        // The second ref and every garbage ref are gone once nothing holds
        // them; the returned one is held by `r`.
        drop(r);
        e.store.gc();
        assert!(e.log.is_dropped(1) && e.log.is_dropped(2), "{what}");
        assert_eq!(e.store.gc_stats().failed_walks, 0, "{what}");
    });
}

#[test]
fn a_tail_called_function_keeps_its_refs_across_collections() {
    each_config(|what, mut e| {
        let r = e.ok("nested", &[]);
        assert_eq!(returned_id(&r[0]), Some(10), "{what}");
        e.assert_clean(what);
        assert!(!e.log.is_dropped(11), "{what}: the table still holds 11");
    });
}

#[test]
fn tail_call_into_a_host_function() {
    each_config(|what, mut e| {
        // From the outermost frame: the host function's caller is the entry
        // trampoline, so the collector sees no Wasm frame, and must not fail.
        let arg = tracked(20, &e.log);
        let r = e.ok("to_host", &[Val::ExternRef(Some(arg)), Val::I32(20)]);
        assert_eq!(returned_id(&r[0]), Some(20), "{what}");
        e.assert_clean(what);
        drop(r);
        let r = e.ok("to_host_nested", &[]);
        assert_eq!(returned_id(&r[0]), Some(22), "{what}");
        e.assert_clean(what);
        assert_eq!(e.store.gc_stats().failed_walks, 0, "{what}");
    });
}

#[test]
fn tail_call_with_more_stack_arguments_than_the_caller_had() {
    each_config(|what, mut e| {
        let r = e.ok("widen", &[Val::I32(1)]);
        assert_eq!(r[0].i64(), Some(1 + 2 + 10 + 11), "{what}");
        e.assert_clean(what);
    });
}

#[test]
fn trap_in_a_tail_called_function_has_a_backtrace() {
    let mut e = env(OptLevel::Speed, false);
    let err = e.call("trap", &[Val::I32(0)]).unwrap_err();
    let trap = err.as_trap().expect("a trap");
    assert_eq!(trap.code, wasmc_loader::TrapCode::IntegerDivisionByZero);
    let text = err.to_string();
    // The frame of `$jump` was replaced by `$boom`'s: the backtrace goes
    // from the trapping function straight to the caller of `$jump`.
    let frames: Vec<String> = trap.backtrace.iter().map(|f| f.to_string()).collect();
    assert_eq!(frames.len(), 2, "{text}\n{frames:?}");
    assert!(frames[0].contains("boom"), "{frames:?}");
    assert!(frames[1].contains("outer"), "{frames:?}");
    // The store stays usable.
    assert_eq!(e.ok("trap", &[Val::I32(1)])[0].i32(), Some(2));
}

fn engine() -> &'static Engine {
    static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    E.get_or_init(Engine::default)
}
