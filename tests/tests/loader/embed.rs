//! The embedding API (issue 12): `Store<T>` moving between threads with
//! live externrefs, `Caller::data`, the resource limiter, `InstancePre`,
//! `define_unknown_imports_as_traps`, host errors as the error's source,
//! typed import/export descriptors, engines and `Config`.

use super::*;
use std::sync::atomic::AtomicI32;
use wasmc_loader::{
    AsContextMut, Caller, Config, Engine, ExternType, InstancePre, ResourceLimiter, StoreContextMut,
};

fn module_of(engine: &Engine, wat: &str) -> Module {
    Module::from_bytes(engine, &compile(wat, Bounds::Guard)).unwrap()
}

/// A host value that counts itself live.
struct Tracked {
    id: i32,
    live: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The store data of the thread test.
struct Host {
    live: Arc<AtomicUsize>,
    made: u32,
    checked: Vec<i32>,
    thread: Option<std::thread::ThreadId>,
}

const MOVER: &str = r#"
(module
  (import "host" "make" (func $make (param i32) (result externref)))
  (import "host" "check" (func $check (param externref i32)))
  (import "host" "gc" (func $gc))
  (table $t (export "t") 4 externref)
  (global $g (export "g") (mut externref) (ref.null extern))
  (func (export "fill")
    (table.set $t (i32.const 0) (call $make (i32.const 1)))
    (table.set $t (i32.const 1) (call $make (i32.const 2)))
    (global.set $g (call $make (i32.const 3))))
  ;; Makes `n` references that nothing keeps (the activations table holds
  ;; them until a collection), and one kept on the Wasm stack across a
  ;; collection inside a host call.
  (func (export "churn") (param $n i32)
    (local $keep externref)
    (local.set $keep (call $make (i32.const 7)))
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (drop (call $make (i32.const 100)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (call $gc)
    (call $check (local.get $keep) (i32.const 7))
    (call $check (table.get $t (i32.const 1)) (i32.const 2))
    (call $check (global.get $g) (i32.const 3)))
  (func (export "clear0") (table.set $t (i32.const 0) (ref.null extern)))
  (func (export "div") (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1))))
"#;

fn mover_linker(engine: &Engine) -> Linker<Host> {
    let mut l = Linker::<Host>::new(engine);
    l.func_wrap("host", "make", |mut c: Caller<'_, Host>, id: i32| {
        let h = c.data_mut();
        h.made += 1;
        h.thread = Some(std::thread::current().id());
        h.live.fetch_add(1, Ordering::SeqCst);
        Some(ExternRef::new(Tracked {
            id,
            live: h.live.clone(),
        }))
    })
    .unwrap();
    l.func_wrap(
        "host",
        "check",
        |mut c: Caller<'_, Host>, r: Option<ExternRef>, want: i32| -> anyhow::Result<()> {
            let got = r
                .as_ref()
                .and_then(|r| r.downcast_ref::<Tracked>())
                .map(|t| t.id);
            anyhow::ensure!(got == Some(want), "check: expected {want}, got {got:?}");
            c.data_mut().checked.push(want);
            Ok(())
        },
    )
    .unwrap();
    l.func_wrap("host", "gc", |mut c: Caller<'_, Host>| c.gc())
        .unwrap();
    l
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn store_moves_between_threads_mid_life() {
    let engine = Engine::default();
    let module = module_of(&engine, MOVER);
    let live = Arc::new(AtomicUsize::new(0));
    let host = Host {
        live: live.clone(),
        made: 0,
        checked: Vec::new(),
        thread: None,
    };
    let linker = mover_linker(&engine);

    // Thread A: create the store and the instance, fill a table and a
    // global with references made inside Wasm.
    let (store, instance) = std::thread::spawn({
        let engine = engine.clone();
        move || {
            let mut store = Store::new(&engine, host);
            let instance = linker.instantiate(&mut store, &module).unwrap();
            let fill = instance
                .get_typed_func::<(), ()>(&mut store, "fill")
                .unwrap();
            fill.call(&mut store, ()).unwrap();
            assert_send(&store);
            (store, instance)
        }
    })
    .join()
    .unwrap();
    let thread_a = store.data().thread.unwrap();
    assert_eq!(live.load(Ordering::SeqCst), 3);

    // Thread B: call, collect inside and outside Wasm, trap and recover.
    let live_b = live.clone();
    let mut store = std::thread::spawn(move || {
        let mut store = store;
        let churn = instance
            .get_typed_func::<i32, ()>(&mut store, "churn")
            .unwrap();
        churn.call(&mut store, 50).unwrap();
        assert_ne!(store.data().thread, Some(thread_a));
        assert_eq!(store.data().checked, [7, 2, 3]);
        // The 50 dropped references were freed by the collection inside
        // `churn`, `keep` when the call returned (the activations table is
        // emptied then); a collection from the host leaves the three
        // references the table and the global hold.
        assert_eq!(live_b.load(Ordering::SeqCst), 3);
        store.gc();
        assert_eq!(live_b.load(Ordering::SeqCst), 3);
        let clear0 = instance
            .get_typed_func::<(), ()>(&mut store, "clear0")
            .unwrap();
        clear0.call(&mut store, ()).unwrap();
        store.gc();
        assert_eq!(live_b.load(Ordering::SeqCst), 2);
        let div = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "div")
            .unwrap();
        let t = expect_trap(div.call(&mut store, (1, 0)));
        assert_eq!(t.code, TrapCode::IntegerDivisionByZero);
        assert_eq!(div.call(&mut store, (7, 2)).unwrap(), 3);
        churn.call(&mut store, 5).unwrap();
        store.gc();
        assert_eq!(live_b.load(Ordering::SeqCst), 2);
        store
    })
    .join()
    .unwrap();

    // Back on the main thread: the global still holds reference 3.
    let g = instance.get_global(&mut store, "g").unwrap();
    let v = g.get(&mut store);
    let r = v.externref().unwrap().unwrap();
    assert_eq!(r.downcast_ref::<Tracked>().unwrap().id, 3);
    drop(v);
    assert_eq!(store.data().made, 3 + 51 + 6);
    let data = store.into_data();
    assert_eq!(data.checked, [7, 2, 3, 7, 2, 3]);
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "everything freed with the store"
    );
}

#[test]
fn caller_data_reaches_host_state() {
    let engine = Engine::default();
    let module = module_of(
        &engine,
        r#"(module
             (import "host" "add" (func $add (param i32) (result i32)))
             (func (export "run") (param i32) (result i32)
               (call $add (local.get 0))))"#,
    );
    struct Acc {
        total: i32,
        calls: u32,
    }
    let mut linker = Linker::<Acc>::new(&engine);
    linker
        .func_wrap("host", "add", |mut c: Caller<'_, Acc>, x: i32| {
            let a = c.data_mut();
            a.total += x;
            a.calls += 1;
            c.data().total
        })
        .unwrap();
    let mut store = Store::new(
        &engine,
        Acc {
            total: 100,
            calls: 0,
        },
    );
    let i = linker.instantiate(&mut store, &module).unwrap();
    let run = i.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    assert_eq!(run.call(&mut store, 5).unwrap(), 105);
    assert_eq!(run.call(&mut store, -10).unwrap(), 95);
    assert_eq!(store.data().calls, 2);
    store.data_mut().total = 0;
    assert_eq!(run.call(&mut store, 1).unwrap(), 1);
    // A StoreContextMut reaches the same data.
    let mut cx: StoreContextMut<'_, Acc> = store.as_context_mut();
    cx.data_mut().calls = 40;
    assert_eq!(store.data().calls, 40);
    assert!(Engine::same(store.engine(), &engine));
}

/// Records what it is asked and allows memories up to `max_bytes`, tables
/// up to `max_elems`, and `max_instances` instances.
struct Limits {
    max_bytes: usize,
    max_elems: usize,
    max_instances: usize,
    asked: Vec<(usize, usize, Option<usize>)>,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> anyhow::Result<bool> {
        self.asked.push((current, desired, maximum));
        Ok(desired <= self.max_bytes)
    }
    fn table_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> anyhow::Result<bool> {
        Ok(desired <= self.max_elems)
    }
    fn instances(&self) -> usize {
        self.max_instances
    }
}

const GROWER: &str = r#"
(module
  (memory (export "m") 1 100)
  (table $t 1 funcref)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "tgrow") (param i32) (result i32)
    (table.grow $t (ref.null func) (local.get 0))))
"#;

fn limited_store(engine: &Engine, pages: usize, instances: usize) -> Store<Limits> {
    let mut store = Store::new(
        engine,
        Limits {
            max_bytes: pages * 65536,
            max_elems: 10,
            max_instances: instances,
            asked: Vec::new(),
        },
    );
    store.limiter(|l| l);
    store
}

#[test]
fn limiter_refuses_memory_grow_and_wasm_sees_minus_one() {
    for b in BOTH {
        let engine = Engine::default();
        let module = Module::from_bytes(&engine, &compile(GROWER, b)).unwrap();
        let mut store = limited_store(&engine, 3, 10);
        let i = Instance::new(&mut store, &module, &[]).unwrap();
        // The initial size was asked about.
        assert_eq!(store.data().asked, [(0, 65536, Some(100 * 65536))]);
        let grow = i.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
        let size = i.get_typed_func::<(), i32>(&mut store, "size").unwrap();
        assert_eq!(grow.call(&mut store, 1).unwrap(), 1);
        assert_eq!(grow.call(&mut store, 1).unwrap(), 2);
        assert_eq!(
            grow.call(&mut store, 1).unwrap(),
            -1,
            "{b:?}: 4 pages refused"
        );
        assert_eq!(size.call(&mut store, ()).unwrap(), 3);
        assert_eq!(
            store.data().asked[1..],
            [
                (65536, 2 * 65536, Some(100 * 65536)),
                (2 * 65536, 3 * 65536, Some(100 * 65536)),
                (3 * 65536, 4 * 65536, Some(100 * 65536)),
            ]
        );
        // The host's Memory::grow is refused too.
        let m = i.get_memory(&mut store, "m").unwrap();
        assert!(m.grow(&mut store, 1).is_err());
        assert_eq!(m.size(&store), 3);
        // Raising the limit in the data lets it grow.
        store.data_mut().max_bytes = 5 * 65536;
        assert_eq!(grow.call(&mut store, 2).unwrap(), 3);
        // table.grow: 1 + 9 elements allowed, 1 + 10 refused.
        let tgrow = i.get_typed_func::<i32, i32>(&mut store, "tgrow").unwrap();
        assert_eq!(tgrow.call(&mut store, 10).unwrap(), -1);
        assert_eq!(tgrow.call(&mut store, 9).unwrap(), 1);
    }
}

#[test]
fn limiter_refuses_too_large_instantiation_with_a_clear_error() {
    let engine = Engine::default();
    let big = module_of(&engine, "(module (memory 10))");
    let mut store = limited_store(&engine, 4, 2);
    let e = Instance::new(&mut store, &big, &[]).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Instantiation(InstantiationError::Resource(_))),
        "{e:?}"
    );
    assert!(
        msg.contains("memory 0 of 10 pages") && msg.contains("limiter"),
        "{msg}"
    );
    // Nothing was created by the refused instantiation.
    let small = module_of(&engine, "(module (memory 1))");
    Instance::new(&mut store, &small, &[]).unwrap();
    Instance::new(&mut store, &small, &[]).unwrap();
    // The third instance is over the count.
    let e = Instance::new(&mut store, &small, &[]).unwrap_err();
    assert!(e.to_string().contains("allows 2 instances"), "{e}");
    // A big table is refused as well.
    let mut store = limited_store(&engine, 4, 10);
    let t = module_of(&engine, "(module (table 11 funcref))");
    let e = Instance::new(&mut store, &t, &[]).unwrap_err();
    assert!(e.to_string().contains("table 0 of 11 elements"), "{e}");
}

#[test]
fn instance_pre_instantiates_many_times() {
    let engine = Engine::default();
    let module = module_of(
        &engine,
        r#"(module
             (import "host" "next" (func $next (result i32)))
             (global $base (mut i32) (i32.const 0))
             (func (export "run") (result i32)
               (global.set $base (i32.add (global.get $base) (i32.const 1000)))
               (i32.add (global.get $base) (call $next))))"#,
    );
    let counter = Arc::new(AtomicI32::new(0));
    let mut linker = Linker::<i32>::new(&engine);
    let c = counter.clone();
    linker
        .func_wrap("host", "next", move |caller: Caller<'_, i32>| {
            c.fetch_add(1, Ordering::SeqCst) + *caller.data()
        })
        .unwrap();
    let pre: InstancePre<i32> = linker.instantiate_pre(&module).unwrap();
    // Later changes to the linker do not affect the resolved imports.
    linker
        .func_wrap("host", "next", || -> i32 {
            panic!("not resolved by the pre")
        })
        .unwrap();
    let mut stores: Vec<Store<i32>> = (0..3).map(|k| Store::new(&engine, k * 1_000_000)).collect();
    for round in 0..5 {
        for (k, store) in stores.iter_mut().enumerate() {
            let i = pre.clone().instantiate(&mut *store).unwrap();
            let run = i.get_typed_func::<(), i32>(&mut *store, "run").unwrap();
            let n = counter.load(Ordering::SeqCst);
            // A fresh instance: its global starts at 0.
            assert_eq!(
                run.call(&mut *store, ()).unwrap(),
                1000 + n + k as i32 * 1_000_000,
                "round {round}, store {k}"
            );
        }
    }
    assert_eq!(counter.load(Ordering::SeqCst), 15);
    // A host function of the wrong type is refused by instantiate_pre.
    let mut bad = Linker::<i32>::new(&engine);
    bad.func_wrap("host", "next", |x: i32| x).unwrap();
    let e = bad.instantiate_pre(&module).unwrap_err();
    assert!(
        matches!(e, Error::Link(LinkError::IncompatibleImport { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("host::next"), "{e}");
}

#[test]
fn unknown_imports_defined_as_traps_fail_naming_the_import() {
    let engine = Engine::default();
    let module = module_of(
        &engine,
        r#"(module
             (import "env" "used" (func $used (result i32)))
             (import "env" "missing" (func $missing (param i32)))
             (func (export "ok") (result i32) (call $used))
             (func (export "bad") (call $missing (i32.const 1))))"#,
    );
    let mut linker = Linker::<()>::new(&engine);
    linker.func_wrap("env", "used", || 5i32).unwrap();
    let e = linker
        .instantiate(&mut Store::new(&engine, ()), &module)
        .unwrap_err();
    assert!(e.to_string().contains("env::missing"), "{e}");
    linker.define_unknown_imports_as_traps(&module).unwrap();
    let mut store = Store::new(&engine, ());
    let i = linker.instantiate(&mut store, &module).unwrap();
    let ok = i.get_typed_func::<(), i32>(&mut store, "ok").unwrap();
    assert_eq!(
        ok.call(&mut store, ()).unwrap(),
        5,
        "defined imports untouched"
    );
    let bad = i.get_typed_func::<(), ()>(&mut store, "bad").unwrap();
    let e = bad.call(&mut store, ()).unwrap_err();
    assert!(e.to_string().contains("`env::missing`"), "{e}");
    // The store stays usable.
    assert_eq!(ok.call(&mut store, ()).unwrap(), 5);
}

/// A host error type of the embedder's.
#[derive(Debug, PartialEq)]
struct QuotaExceeded {
    used: u32,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "quota exceeded after {} units", self.used)
    }
}

impl std::error::Error for QuotaExceeded {}

#[test]
fn host_error_is_the_source_of_the_returned_error() {
    let engine = Engine::default();
    let module = module_of(
        &engine,
        r#"(module
             (import "host" "spend" (func $spend (param i32) (result i32)))
             (import "host" "open" (func $open))
             (import "host" "dyn" (func $dyn))
             (func (export "spend") (param i32) (result i32) (call $spend (local.get 0)))
             (func (export "open") (call $open))
             (func (export "dyn") (call $dyn)))"#,
    );
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap("host", "spend", |x: i32| -> Result<i32, QuotaExceeded> {
            if x > 10 {
                return Err(QuotaExceeded { used: x as u32 });
            }
            Ok(x)
        })
        .unwrap();
    linker
        .func_wrap("host", "open", || -> anyhow::Result<()> {
            // `?` on an io::Error inside a host function.
            std::fs::File::open("/nonexistent/wasmc/embed-test")?;
            Ok(())
        })
        .unwrap();
    linker
        .func_new("host", "dyn", functype(&[], &[]), |_, _, _| {
            anyhow::bail!("dynamic host failure")
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let i = linker.instantiate(&mut store, &module).unwrap();
    let spend = i.get_typed_func::<i32, i32>(&mut store, "spend").unwrap();
    assert_eq!(spend.call(&mut store, 3).unwrap(), 3);
    let e = spend.call(&mut store, 11).unwrap_err();
    assert_eq!(e.to_string(), "quota exceeded after 11 units");
    assert!(e.as_trap().is_none());
    let src = std::error::Error::source(&e).expect("the host error is the source");
    assert_eq!(
        src.downcast_ref::<QuotaExceeded>(),
        Some(&QuotaExceeded { used: 11 })
    );
    assert_eq!(
        e.downcast_ref::<QuotaExceeded>(),
        Some(&QuotaExceeded { used: 11 })
    );

    let open = i.get_typed_func::<(), ()>(&mut store, "open").unwrap();
    let e = open.call(&mut store, ()).unwrap_err();
    let io = e.downcast_ref::<std::io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

    let d = i.get_typed_func::<(), ()>(&mut store, "dyn").unwrap();
    let e = d.call(&mut store, ()).unwrap_err();
    assert_eq!(e.to_string(), "dynamic host failure");
    // The store still works after host errors.
    assert_eq!(spend.call(&mut store, 4).unwrap(), 4);
}

#[test]
fn module_imports_and_exports_are_typed() {
    let engine = Engine::default();
    let module = module_of(
        &engine,
        r#"(module
             (import "a" "f" (func (param i32) (result i64)))
             (import "a" "m" (memory 1 2))
             (import "b" "g" (global (mut f32)))
             (import "b" "t" (table 3 externref))
             (func (export "h") (param f64) (result i32) i32.const 0)
             (export "f_again" (func 0))
             (export "mem" (memory 0))
             (global (export "c") i64 (i64.const 1)))"#,
    );
    let imports = module.imports();
    let names: Vec<(&str, &str, &str)> = imports
        .iter()
        .map(|i| (i.module.as_str(), i.name.as_str(), i.ty.kind()))
        .collect();
    assert_eq!(
        names,
        [
            ("a", "f", "function"),
            ("a", "m", "memory"),
            ("b", "g", "global"),
            ("b", "t", "table")
        ]
    );
    assert_eq!(
        imports[0].ty,
        ExternType::Func(functype(&[ValType::I32], &[ValType::I64]))
    );
    let ExternType::Memory(m) = imports[1].ty else {
        panic!()
    };
    assert_eq!((m.min, m.max), (1, Some(2)));
    let ExternType::Global(g) = imports[2].ty else {
        panic!()
    };
    assert_eq!((g.ty, g.mutable), (ValType::F32, true));
    let ExternType::Table(t) = imports[3].ty else {
        panic!()
    };
    assert_eq!((t.elem, t.min), (RefType::ExternRef, 3));
    let exports = module.exports();
    let ex: Vec<(&str, &ExternType)> = exports.iter().map(|e| (e.name.as_str(), &e.ty)).collect();
    assert_eq!(
        ex[0],
        (
            "h",
            &ExternType::Func(functype(&[ValType::F64], &[ValType::I32]))
        )
    );
    assert_eq!(
        ex[1],
        (
            "f_again",
            &ExternType::Func(functype(&[ValType::I32], &[ValType::I64]))
        )
    );
    assert!(matches!(ex[2], ("mem", ExternType::Memory(_))));
    assert!(matches!(ex[3], ("c", ExternType::Global(g)) if g.ty == ValType::I64 && !g.mutable));
    assert_eq!(ex.len(), 4);
}

#[test]
fn modules_instantiate_only_in_stores_of_their_engine() {
    let (e1, e2) = (Engine::default(), Engine::default());
    let module = module_of(&e1, "(module)");
    let mut store = Store::new(&e2, ());
    let e = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert!(e.to_string().contains("another engine"), "{e}");
    let e = Linker::<()>::new(&e2)
        .instantiate(&mut store, &module)
        .unwrap_err();
    assert!(e.to_string().contains("another engine"), "{e}");
    let mut store = Store::new(&e1.clone(), ());
    Instance::new(&mut store, &module, &[]).unwrap();
}

#[test]
fn config_sets_the_wasm_stack_of_new_stores() {
    const DEEP: &str = r#"(module
      (func $r (export "r") (param i32) (result i32)
        (if (result i32) (i32.eqz (local.get 0))
          (then (i32.const 0))
          (else (i32.add (i32.const 1) (call $r (i32.sub (local.get 0) (i32.const 1))))))))"#;
    let mut small = Config::new();
    small.max_wasm_stack(16 * 1024);
    for (config, expect_ok) in [(Config::new(), true), (small, false)] {
        let engine = Engine::new(&config).unwrap();
        let module = module_of(&engine, DEEP);
        let mut store = Store::new(&engine, ());
        let i = Instance::new(&mut store, &module, &[]).unwrap();
        let r = i.get_typed_func::<i32, i32>(&mut store, "r").unwrap();
        match r.call(&mut store, 2000) {
            Ok(v) => assert!(expect_ok && v == 2000),
            Err(e) => {
                assert!(!expect_ok, "{e}");
                assert_eq!(e.as_trap().unwrap().code, TrapCode::StackOverflow);
            }
        }
    }
}
