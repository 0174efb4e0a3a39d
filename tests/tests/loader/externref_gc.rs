//! externref with deferred reference counting and the stack-map collector,
//! decided by drop counters.
//!
//! References are made *inside* Wasm calls by a host function (`make`), so
//! that the activations table is their only counted holder: if a stack map
//! missed one, the collection inside the next host call would free it and
//! the following `check` would see it in the drop log (or a corrupted value).
//! Every scenario runs with `--opt-level none` and `speed`, with and without
//! the store's stress mode (a collection at every builtin and host call).

use super::engine;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wasmc_compiler::{compile, CompileOptions, OptLevel};
use wasmc_loader::format::ValType;
use wasmc_loader::{Caller, ExternRef, FuncType, Linker, Module, Store, Val};
use wasmc_tests::tracked::{id_of, tracked, Env, Log};

fn linker(log: &Arc<Log>) -> Linker<()> {
    wasmc_tests::tracked::linker(engine(), log)
}

const MODULE: &str = r#"
(module
  (import "host" "make" (func $make (param i32) (result externref)))
  (import "host" "check" (func $check (param externref i32)))
  (import "host" "gc" (func $gc))
  (import "host" "is_dropped" (func $is_dropped (param i32) (result i32)))
  (type $ret_ref (func (param i32) (result externref)))
  (table $t 16 externref)
  (table $funcs 2 funcref)
  (global $g (mut externref) (ref.null extern))
  (elem (table $funcs) (i32.const 0) func $made_after_gc)

  (func (export "drop_it") (param externref))
  (func (export "store_table") (param externref i32) (table.set $t (local.get 1) (local.get 0)))
  (func (export "store_global") (param externref) (global.set $g (local.get 0)))
  (func (export "load_table") (param i32) (result externref) (table.get $t (local.get 0)))
  (func (export "load_global") (result externref) (global.get $g))
  (func (export "collect") (call $gc))

  ;; Deep recursion: each frame holds a ref it made, the one its caller
  ;; passed, and drops a garbage ref; the deepest frame collects.
  (func $deep (export "deep") (param $n i32) (param $r externref) (param $id i32)
    (local $mine externref)
    (local.set $mine (call $make (i32.add (i32.const 1000) (local.get $n))))
    (drop (call $make (i32.add (i32.const 100000) (local.get $n))))
    (if (i32.eqz (local.get $n))
      (then (call $gc))
      (else (call $deep (i32.sub (local.get $n) (i32.const 1)) (local.get $mine)
                        (i32.add (i32.const 1000) (local.get $n)))))
    (call $check (local.get $r) (local.get $id))
    (call $check (local.get $mine) (i32.add (i32.const 1000) (local.get $n))))

  ;; More parameters than fit in registers: most arrive on the stack.
  (func $many (param externref externref externref externref externref
                     externref externref externref externref externref)
    (call $gc)
    (call $check (local.get 0) (i32.const 10))
    (call $check (local.get 3) (i32.const 13))
    (call $check (local.get 5) (i32.const 15))
    (call $check (local.get 7) (i32.const 17))
    (call $check (local.get 9) (i32.const 19)))
  (func (export "stack_args")
    (call $many (call $make (i32.const 10)) (call $make (i32.const 11)) (call $make (i32.const 12))
                (call $make (i32.const 13)) (call $make (i32.const 14)) (call $make (i32.const 15))
                (call $make (i32.const 16)) (call $make (i32.const 17)) (call $make (i32.const 18))
                (call $make (i32.const 19))))

  ;; A typed select result lives only on the operand stack across a call.
  (func (export "typed_select") (param $c i32)
    (select (result externref) (call $make (i32.const 100)) (call $make (i32.const 101)) (local.get $c))
    (call $gc)
    (i32.const 100)
    (call $check))
  ;; An untyped select picks a table index while a ref is live.
  (func (export "untyped_select") (param $c i32)
    (local $keep externref)
    (local.set $keep (call $make (i32.const 110)))
    (table.set $t (select (i32.const 1) (i32.const 2) (local.get $c)) (call $make (i32.const 111)))
    (call $gc)
    (call $check (local.get $keep) (i32.const 110))
    (call $check (table.get $t (i32.const 1)) (i32.const 111)))
  ;; Block parameters and multi-value results.
  (func (export "block_params")
    (call $make (i32.const 200))
    (block (param externref) (result externref externref)
      (call $gc)
      (call $make (i32.const 201)))
    (call $gc)
    (i32.const 201) (call $check)
    (i32.const 200) (call $check))
  ;; Loop parameters carried around by br_if.
  (func (export "loop_params")
    (local $i i32)
    (call $make (i32.const 300))
    (loop $l (param externref) (result externref)
      (call $gc)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 3))))
    (i32.const 300) (call $check))
  ;; br and br_table carrying refs out of blocks.
  (func (export "branches") (param $sel i32) (param $id i32)
    (block $a (result externref)
      (block $b (result externref)
        (call $make (local.get $id))
        (local.get $sel)
        (br_table $a $b))
      (call $gc)
      (br $a))
    (call $gc)
    (local.get $id) (call $check)
    (block $c (result externref)
      (call $make (i32.add (local.get $id) (i32.const 1)))
      (br_if $c (i32.const 1)))
    (call $gc)
    (i32.add (local.get $id) (i32.const 1)) (call $check))
  ;; local.tee leaves the ref on the operand stack too.
  (func (export "tee")
    (local $x externref)
    (local.tee $x (call $make (i32.const 500)))
    (call $gc)
    (i32.const 500) (call $check)
    (call $check (local.get $x) (i32.const 500)))
  ;; A local redefined inside a loop: the previous value becomes garbage.
  (func (export "redefine") (result i32)
    (local $x externref) (local $i i32)
    (loop $l
      (local.set $x (call $make (i32.add (i32.const 510) (local.get $i))))
      (call $gc)
      (call $check (local.get $x) (i32.add (i32.const 510) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 4))))
    ;; the first three are garbage once redefined and collected
    (i32.add (call $is_dropped (i32.const 510))
      (i32.add (call $is_dropped (i32.const 511)) (call $is_dropped (i32.const 512)))))
  ;; call_indirect returning a ref made after a collection in the callee.
  (func $made_after_gc (param i32) (result externref)
    (local $r externref)
    (local.set $r (call $make (local.get 0)))
    (call $gc)
    (local.get $r))
  (func (export "indirect")
    (call_indirect $funcs (type $ret_ref) (i32.const 600) (i32.const 0))
    (call $gc)
    (i32.const 600) (call $check))
  ;; Host results flowing straight into a call with a collection between.
  (func (export "host_results")
    (call $check (call $make (i32.const 700)) (i32.const 700))
    (call $make (i32.const 701))
    (call $make (i32.const 702))
    (call $gc)
    (i32.const 702) (call $check)
    (i32.const 701) (call $check))

  ;; Millions of table.get: the inline path fills the chunk, the slow path
  ;; collects. Returns the sum of nothing; the host checks leaks.
  (func (export "spin") (param $n i32)
    (local $i i32) (local $r externref)
    (loop $l
      (local.set $r (table.get $t (i32.and (local.get $i) (i32.const 15))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (call $check (local.get $r) (i32.and (i32.sub (local.get $n) (i32.const 1)) (i32.const 15))))
  ;; Garbage made in a loop while table.get fills the chunk.
  (func (export "churn") (param $n i32)
    (local $i i32) (local $keep externref)
    (local.set $keep (call $make (i32.const 800)))
    (loop $l
      (drop (call $make (i32.const 801)))
      (drop (table.get $t (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (call $check (local.get $keep) (i32.const 800)))
  ;; Three references passed in from a host function of a nested call while
  ;; the table is full: see `several_args_into_a_full_table`.
  (func (export "three") (param externref externref externref)
    (call $gc)
    (call $check (local.get 0) (i32.const 901))
    (call $check (local.get 1) (i32.const 902))
    (call $check (local.get 2) (i32.const 903)))
  (func (export "fill_then_call_host") (param $n i32)
    (local $i i32)
    (loop $l
      (drop (table.get $t (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (call $gc))
)
"#;

fn env(opt: OptLevel, stress: bool) -> Env {
    Env::new(engine(), MODULE, opt, stress)
}

fn scenarios(opt: OptLevel, stress: bool) {
    let mode = format!("{opt:?}, stress {stress}");

    // Passed in and dropped by Wasm: freed once the call is over.
    let mut e = env(opt, stress);
    let r = tracked(1, &e.log);
    e.ok("drop_it", &[Val::ExternRef(Some(r))]);
    e.store.gc();
    assert_eq!(e.log.dropped(), [1], "{mode}: passed-in ref not freed");

    // Stored in a table and a global: survives collections until overwritten.
    let a = tracked(2, &e.log);
    let b = tracked(3, &e.log);
    e.ok("store_table", &[Val::ExternRef(Some(a)), Val::I32(5)]);
    e.ok("store_global", &[Val::ExternRef(Some(b))]);
    for _ in 0..3 {
        e.ok("collect", &[]);
        e.store.gc();
    }
    assert_eq!(e.log.dropped(), [1], "{mode}: table/global ref freed");
    let got = e.ok("load_table", &[Val::I32(5)]);
    assert_eq!(got[0].externref().unwrap().map(id_of), Some(Some(2)));
    drop(got);
    e.ok("store_table", &[Val::ExternRef(None), Val::I32(5)]);
    assert_eq!(
        e.log.dropped(),
        [1, 2],
        "{mode}: overwritten table ref not freed exactly once"
    );
    let g = e.ok("load_global", &[]);
    assert_eq!(g[0].externref().unwrap().map(id_of), Some(Some(3)));
    drop(g);

    // Held by the host: survives.
    let held = tracked(4, &e.log);
    e.ok("drop_it", &[Val::ExternRef(Some(held.clone()))]);
    e.ok("collect", &[]);
    e.store.gc();
    assert_eq!(id_of(&held), Some(4));
    assert!(!e.log.dropped().contains(&4));
    assert_eq!(
        held.strong_count(),
        1,
        "{mode}: host handle should be the only count"
    );

    // Deep recursion holding references in every frame.
    let depth = 200;
    let top = tracked(999, &e.log);
    e.ok(
        "deep",
        &[Val::I32(depth), Val::ExternRef(Some(top)), Val::I32(999)],
    );
    e.assert_clean(&format!("{mode}: deep"));
    let dropped: HashSet<i32> = e.log.dropped().into_iter().collect();
    for n in 0..=depth {
        assert!(
            dropped.contains(&(100000 + n)),
            "{mode}: garbage {n} not freed"
        );
    }

    for (name, args) in [
        ("stack_args", vec![]),
        ("typed_select", vec![Val::I32(1)]),
        ("untyped_select", vec![Val::I32(1)]),
        ("block_params", vec![]),
        ("loop_params", vec![]),
        ("branches", vec![Val::I32(0), Val::I32(400)]),
        ("branches", vec![Val::I32(1), Val::I32(410)]),
        ("tee", vec![]),
        ("indirect", vec![]),
        ("host_results", vec![]),
    ] {
        e.ok(name, &args);
        e.assert_clean(&format!("{mode}: {name}"));
    }
    let freed = e.ok("redefine", &[])[0].i32().unwrap();
    e.assert_clean(&format!("{mode}: redefine"));
    assert_eq!(
        freed, 3,
        "{mode}: redefined locals' old values must be freed by the collection"
    );

    assert!(e.log.gcs.load(Ordering::SeqCst) > 10);
    drop(held);
    let live_before_drop = e.log.live.load(Ordering::SeqCst);
    assert!(
        live_before_drop > 0,
        "table 1 and the global still hold references"
    );
    let Env {
        store,
        instance,
        log,
    } = e;
    let _ = instance;
    drop(store);
    assert_eq!(
        log.live.load(Ordering::SeqCst),
        0,
        "{mode}: leaked after the store dropped"
    );
    let mut all = log.dropped();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "{mode}: something was freed twice");
}

#[test]
fn scenarios_speed() {
    scenarios(OptLevel::Speed, false);
}

#[test]
fn scenarios_none() {
    scenarios(OptLevel::None, false);
}

#[test]
fn scenarios_speed_stress() {
    scenarios(OptLevel::Speed, true);
}

#[test]
fn scenarios_none_stress() {
    scenarios(OptLevel::None, true);
}

fn spin(opt: OptLevel, stress: bool, n: i32) {
    let mut e = env(opt, stress);
    let refs: Vec<ExternRef> = (0..16).map(|i| tracked(i, &e.log)).collect();
    for (i, r) in refs.iter().enumerate() {
        e.ok(
            "store_table",
            &[Val::ExternRef(Some(r.clone())), Val::I32(i as i32)],
        );
    }
    let baseline = e.log.live.load(Ordering::SeqCst);
    e.ok("spin", &[Val::I32(n)]);
    e.assert_clean("spin");
    let stats = e.store.gc_stats();
    assert!(
        stats.collections > 0,
        "a full chunk must trigger collections: {stats:?}"
    );
    assert!(
        stats.table_capacity <= 4096,
        "the chunk must not grow without bound: {stats:?}"
    );
    assert_eq!(
        e.log.live.load(Ordering::SeqCst),
        baseline,
        "spin leaked or freed"
    );
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(id_of(r), Some(i as i32));
        assert_eq!(r.strong_count(), 2, "host handle + table slot");
    }
    e.ok("churn", &[Val::I32(n / 10)]);
    e.assert_clean("churn");
    let made = e.log.dropped().iter().filter(|i| **i == 801).count();
    assert_eq!(made as i32, n / 10, "every garbage ref must be freed");
    assert_eq!(e.log.live.load(Ordering::SeqCst), baseline, "churn leaked");
}

#[test]
fn millions_of_table_gets() {
    spin(OptLevel::Speed, false, 3_000_000);
}

#[test]
fn table_gets_unoptimized() {
    spin(OptLevel::None, false, 1_000_000);
}

#[test]
fn table_gets_under_stress() {
    spin(OptLevel::Speed, true, 20_000);
}

/// Wasmtime's CVE-2021-39216: a collection triggered while inserting the
/// second of several arguments freed the first. Here the activations table
/// is full when a host function passes three fresh references into Wasm.
#[test]
fn several_args_into_a_full_table() {
    for stress in [false, true] {
        let log = Arc::new(Log::default());
        let module = Module::from_bytes(
            engine(),
            &compile(MODULE.as_bytes(), &CompileOptions::default()).unwrap(),
        )
        .unwrap();
        let mut store = Store::new(engine(), ());
        store.set_gc_stress(stress);
        let mut l = linker(&log);
        let lg = log.clone();
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let arm = armed.clone();
        // Shadow `gc`: when armed (called from fill_then_call_host, whose
        // table.get loop filled the chunk), pass three fresh references into
        // `three` from the host; otherwise (`three` itself) collect.
        l.allow_shadowing(true);
        l.func_new(
            "host",
            "gc",
            FuncType {
                params: vec![],
                results: vec![],
            },
            move |mut c: Caller<'_, ()>, _, _| {
                if !arm.swap(false, Ordering::SeqCst) {
                    c.gc();
                    return Ok(());
                }
                let stats = c.gc_stats();
                if !stress && (stats.table_capacity == 0 || stats.table_len != stats.table_capacity)
                {
                    lg.error(format!("the table should be full here: {stats:?}"));
                }
                let f = c
                    .get_export("three")
                    .and_then(|e| e.into_func())
                    .expect("export three");
                let args: Vec<Val> = (901..=903)
                    .map(|i| Val::ExternRef(Some(tracked(i, &lg))))
                    .collect();
                f.call(&mut c, &args, &mut [])?;
                Ok(())
            },
        )
        .unwrap();
        let instance = l.instantiate(&mut store, &module).unwrap();
        let f = instance
            .get_func(&mut store, "fill_then_call_host")
            .unwrap();
        let r = tracked(0, &log);
        let t = instance.get_func(&mut store, "store_table").unwrap();
        t.call(&mut store, &[Val::ExternRef(Some(r)), Val::I32(0)], &mut [])
            .unwrap();
        // 512 is the first chunk's size: fill it exactly.
        armed.store(true, Ordering::SeqCst);
        f.call(&mut store, &[Val::I32(512)], &mut []).unwrap();
        assert!(!armed.load(Ordering::SeqCst), "the host function never ran");
        let errors = log.errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "stress {stress}: {errors:?}");
        let dropped = log.dropped();
        for i in 901..=903 {
            assert!(
                dropped.contains(&i),
                "stress {stress}: argument {i} never passed or leaked"
            );
        }
    }
}

/// host -> Wasm -> host -> Wasm: a collection in the inner activation must
/// walk the outer one too. `outer` holds a reference only in its own frame
/// while the host calls `inner`, which collects.
#[test]
fn nested_activations_are_walked_whole() {
    const NESTED: &str = r#"
    (module
      (import "host" "make" (func $make (param i32) (result externref)))
      (import "host" "check" (func $check (param externref i32)))
      (import "host" "gc" (func $gc))
      (import "host" "reenter" (func $reenter (param i32)))
      (func (export "outer") (param $depth i32)
        (local $mine externref)
        (local.set $mine (call $make (i32.add (i32.const 2000) (local.get $depth))))
        (drop (call $make (i32.add (i32.const 3000) (local.get $depth))))
        (call $reenter (local.get $depth))
        (call $check (local.get $mine) (i32.add (i32.const 2000) (local.get $depth))))
      (func (export "inner")
        (local $x externref)
        (local.set $x (call $make (i32.const 4000)))
        (call $gc)
        (call $check (local.get $x) (i32.const 4000))))
    "#;
    for stress in [false, true] {
        let log = Arc::new(Log::default());
        let module = Module::from_bytes(
            engine(),
            &compile(NESTED.as_bytes(), &CompileOptions::default()).unwrap(),
        )
        .unwrap();
        let mut store = Store::new(engine(), ());
        store.set_gc_stress(stress);
        let mut l = linker(&log);
        let frames = Arc::new(AtomicUsize::new(0));
        let fr = frames.clone();
        l.func_new(
            "host",
            "reenter",
            FuncType {
                params: vec![ValType::I32],
                results: vec![],
            },
            move |mut c: Caller<'_, ()>, a, _| {
                let depth = a[0].i32().unwrap();
                let next = if depth > 0 { "outer" } else { "inner" };
                let f = c.get_export(next).and_then(|e| e.into_func()).unwrap();
                let args = if depth > 0 {
                    vec![Val::I32(depth - 1)]
                } else {
                    vec![]
                };
                f.call(&mut c, &args, &mut [])?;
                fr.fetch_max(c.gc_stats().last_frames, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap();
        let instance = l.instantiate(&mut store, &module).unwrap();
        let outer = instance.get_func(&mut store, "outer").unwrap();
        outer.call(&mut store, &[Val::I32(3)], &mut []).unwrap();
        let errors = log.errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "stress {stress}: {errors:?}");
        assert_eq!(store.gc_stats().failed_walks, 0);
        // The collection in `inner` saw `inner` plus the four `outer` frames.
        assert!(
            frames.load(Ordering::SeqCst) >= 5,
            "stress {stress}: walked {} frames",
            frames.load(Ordering::SeqCst)
        );
        let dropped = log.dropped();
        for d in 0..=3 {
            assert!(
                dropped.contains(&(3000 + d)),
                "stress {stress}: garbage of depth {d} not freed"
            );
        }
        drop(store);
        assert_eq!(log.live.load(Ordering::SeqCst), 0, "stress {stress}: leak");
    }
}

/// Precise reference counting for everything that outlives an activation:
/// table.grow/fill/copy/init, elem.drop, table.set over a live value, and
/// imported/exported tables and globals shared between two instances.
/// Every host value must be freed exactly once, when its last holder lets go.
#[test]
fn tables_and_globals_count_precisely() {
    const OWNER: &str = r#"
    (module
      (table $t (export "t") 4 20 externref)
      (global $g (export "g") (mut externref) (ref.null extern))
      (global $c (export "c") externref (ref.null extern)))
    "#;
    const USER: &str = r#"
    (module
      (import "owner" "t" (table $t 4 20 externref))
      (import "owner" "g" (global $g (mut externref)))
      (import "seed" "r" (global $seed externref))
      (table $local 2 externref)
      (elem $passive externref (global.get $seed) (ref.null extern) (global.get $seed))
      (func (export "grow") (param externref i32) (result i32) (table.grow $t (local.get 0) (local.get 1)))
      (func (export "fill") (param i32 externref i32) (table.fill $t (local.get 0) (local.get 1) (local.get 2)))
      (func (export "copy") (param i32 i32 i32) (table.copy $t $t (local.get 0) (local.get 1) (local.get 2)))
      (func (export "init") (param i32) (table.init $t $passive (local.get 0) (i32.const 0) (i32.const 3)))
      (func (export "drop_elem") (elem.drop $passive))
      (func (export "set") (param i32 externref) (table.set $t (local.get 0) (local.get 1)))
      (func (export "set_local") (param i32 externref) (table.set $local (local.get 0) (local.get 1)))
      (func (export "set_g") (param externref) (global.set $g (local.get 0)))
      (func (export "get_g") (result externref) (global.get $g))
      (func (export "size") (result i32) (table.size $t)))
    "#;
    for stress in [false, true] {
        let log = Arc::new(Log::default());
        let opts = CompileOptions::default();
        let owner_m =
            Module::from_bytes(engine(), &compile(OWNER.as_bytes(), &opts).unwrap()).unwrap();
        let user_m =
            Module::from_bytes(engine(), &compile(USER.as_bytes(), &opts).unwrap()).unwrap();
        let mut store = Store::new(engine(), ());
        store.set_gc_stress(stress);
        let mut l = Linker::new(engine());
        let owner = l.instantiate(&mut store, &owner_m).unwrap();
        l.instance(&mut store, "owner", owner).unwrap();
        let seed = wasmc_loader::Global::new(
            &mut store,
            wasmc_loader::GlobalType {
                ty: ValType::ExternRef,
                mutable: false,
            },
            Val::ExternRef(Some(tracked(50, &log))),
        )
        .unwrap();
        l.define(&store, "seed", "r", seed).unwrap();
        let user = l.instantiate(&mut store, &user_m).unwrap();
        let call = |store: &mut Store<()>, name: &str, args: &[Val]| -> Vec<Val> {
            let f = user.get_func(&mut *store, name).unwrap();
            let mut r = vec![Val::I32(0); f.ty(&*store).results.len()];
            f.call(&mut *store, args, &mut r)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            store.gc();
            r
        };
        let ext = |r: ExternRef| Val::ExternRef(Some(r));

        // grow by 3 with a fresh value: the table holds it three times.
        let a = tracked(1, &log);
        assert_eq!(
            call(&mut store, "grow", &[ext(a.clone()), Val::I32(3)])[0].i32(),
            Some(4)
        );
        assert_eq!(
            a.strong_count(),
            4,
            "stress {stress}: handle + 3 table slots"
        );
        // fill 0..4 with b: nothing held a slot before, a keeps its 3.
        let b = tracked(2, &log);
        call(
            &mut store,
            "fill",
            &[Val::I32(0), ext(b.clone()), Val::I32(4)],
        );
        assert_eq!(b.strong_count(), 5);
        // copy slots 4..7 (a) over 0..3 (b): b loses 3, a gains 3.
        call(&mut store, "copy", &[Val::I32(0), Val::I32(4), Val::I32(3)]);
        assert_eq!(a.strong_count(), 7);
        assert_eq!(b.strong_count(), 2);
        // table.init from the passive segment (seed, null, seed) at 1..4.
        call(&mut store, "init", &[Val::I32(1)]);
        assert_eq!(a.strong_count(), 5, "slots 1 and 2 overwritten");
        assert_eq!(b.strong_count(), 1, "slot 3 overwritten");
        // elem.drop releases the segment's own references to the seed.
        let seed_ref = match seed.get(&mut store) {
            Val::ExternRef(Some(r)) => r,
            _ => panic!("seed global lost its value"),
        };
        let before = seed_ref.strong_count();
        call(&mut store, "drop_elem", &[]);
        assert_eq!(
            seed_ref.strong_count(),
            before - 2,
            "stress {stress}: segment held two counts"
        );
        // Overwriting a live value with null through the importing instance.
        call(&mut store, "set", &[Val::I32(0), Val::ExternRef(None)]);
        assert_eq!(a.strong_count(), 4);
        // Globals: set through the importer, read back, overwrite.
        let c = tracked(3, &log);
        call(&mut store, "set_g", &[ext(c.clone())]);
        assert_eq!(c.strong_count(), 2);
        let got = call(&mut store, "get_g", &[]);
        assert_eq!(got[0].externref().unwrap().map(id_of), Some(Some(3)));
        drop(got);
        call(&mut store, "set_g", &[Val::ExternRef(None)]);
        assert_eq!(
            c.strong_count(),
            1,
            "stress {stress}: overwritten global released"
        );
        call(&mut store, "set_local", &[Val::I32(1), ext(c.clone())]);
        assert_eq!(c.strong_count(), 2);

        // The host lets go; only the tables and globals keep values alive.
        // b lost its last table slot to table.init, so it goes now.
        drop((a, b, c, seed_ref));
        assert_eq!(
            log.dropped(),
            [2],
            "stress {stress}: only b is unreachable now"
        );
        drop(store);
        assert_eq!(
            log.live.load(Ordering::SeqCst),
            0,
            "stress {stress}: leaked"
        );
        let mut all = log.dropped();
        all.sort_unstable();
        assert_eq!(
            all,
            [1, 2, 3, 50],
            "stress {stress}: each value freed exactly once"
        );
    }
}
