//! Adversarial probes of the embedding API, as a user who does everything
//! wrong would: calls with the wrong arguments, values and handles of
//! another store, panics in host code that Wasm reaches (host functions,
//! resource limiters, the `Drop` of host values), extreme stack, fuel and
//! epoch settings, memory/table/global accesses at the edges, linker
//! misuse, and stores, externrefs and `InstancePre`s crossing threads. Each
//! test asserts a clear error (or a clean panic where the API documents
//! one) and that the store still works afterwards.

use super::*;
use wasmc_compiler::Interruption;
use wasmc_loader::{Caller, Engine, InstancePre, ResourceLimiter, TypedFunc};

const PROBE: &str = r#"
(module $probe
  (import "host" "cb" (func $cb (param i32) (result i32)))
  (memory (export "mem") 1 3)
  (table $ft (export "ft") 2 10 funcref)
  (table $et (export "et") 2 externref)
  (global (export "g_imm") i32 (i32.const 7))
  (global (export "g_mut") (mut i32) (i32.const 0))
  (global (export "g_fref") (mut funcref) (ref.null func))
  (func $add (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "id_f") (param funcref) (result funcref) (local.get 0))
  (func (export "id_e") (param externref) (result externref) (local.get 0))
  (func (export "set_e") (param i32 externref)
    (table.set $et (local.get 0) (local.get 1)))
  (func (export "call_cb") (param i32) (result i32) (call $cb (local.get 0)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "tgrow") (param i32) (result i32)
    (table.grow $ft (ref.null func) (local.get 0)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func $rec (export "rec") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (i32.const 1)
        (call $rec (i32.sub (local.get 0) (i32.const 1))))))))
"#;

/// A linker whose `host::cb` doubles its argument.
fn probe_linker<T: 'static>(engine: &Engine) -> Linker<T> {
    let mut l = Linker::new(engine);
    l.func_wrap("host", "cb", |x: i32| x.wrapping_mul(2))
        .unwrap();
    l
}

fn probe_instance(store: &mut Store<()>) -> Instance {
    let m = Module::from_bytes(engine(), &compile(PROBE, Bounds::Guard)).unwrap();
    probe_linker(engine()).instantiate(store, &m).unwrap()
}

fn add(store: &mut Store<()>, i: &Instance) -> i32 {
    call_i32(store, i, "add", &[Val::I32(40), Val::I32(2)]).unwrap()
}

/// The panic message of a `catch_unwind` result.
fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

// ----- 1. calls with the wrong arguments, results or types -----

#[test]
fn calls_with_wrong_arguments_or_results_are_errors() {
    let mut store = Store::new(engine(), ());
    let i = probe_instance(&mut store);
    let f = i.get_func(&mut store, "add").unwrap();
    let mut r1 = [Val::I32(0)];
    let bad_args: [&[Val]; 4] = [
        &[],
        &[Val::I32(1)],
        &[Val::I64(1), Val::I32(2)],
        &[Val::I32(1), Val::I32(2), Val::I32(3)],
    ];
    for args in bad_args {
        let e = f.call(&mut store, args, &mut r1).unwrap_err();
        assert!(matches!(e, Error::TypeMismatch { .. }), "{args:?}: {e:?}");
        assert!(e.to_string().contains("(i32, i32)"), "{e}");
    }
    for n in [0, 2] {
        let mut r = vec![Val::I32(0); n];
        let e = f
            .call(&mut store, &[Val::I32(1), Val::I32(2)], &mut r)
            .unwrap_err();
        assert!(e.to_string().contains("number of results"), "{e}");
    }
    // A results slice holding values of other types is overwritten.
    let mut r = [Val::ExternRef(Some(ExternRef::new(5u8)))];
    f.call(&mut store, &[Val::I32(1), Val::I32(2)], &mut r)
        .unwrap();
    assert_eq!(r[0].i32(), Some(3));
    assert!(f.typed::<(i32, i32), i64>(&store).is_err());
    assert!(f.typed::<i32, i32>(&store).is_err());
    assert!(f.typed::<(i32, i32, i32), i32>(&store).is_err());
    assert!(f.typed::<(i64, i32), i32>(&store).is_err());
    assert!(f.typed::<(i32, i32), ()>(&store).is_err());
    let e = i
        .get_typed_func::<(u32, u32), f32>(&mut store, "add")
        .expect_err("a type mismatch");
    assert!(
        e.to_string().contains("f32") && e.to_string().contains("i32"),
        "{e}"
    );
    assert!(i.get_typed_func::<(), ()>(&mut store, "nope").is_err());
    // u32 is an i32.
    let t = f.typed::<(u32, u32), u32>(&store).unwrap();
    assert_eq!(t.call(&mut store, (u32::MAX, 2)).unwrap(), 1);
    assert_eq!(add(&mut store, &i), 42);
}

/// Results of the wrong type or number from a `Func::new` host function,
/// called from Wasm or from the host, are errors naming the types.
#[test]
fn host_functions_returning_wrong_result_types_are_errors() {
    let m = Module::from_bytes(engine(), &compile(PROBE, Bounds::Guard)).unwrap();
    let mut store = Store::new(engine(), ());
    let mut l = Linker::new(engine());
    l.func_new(
        "host",
        "cb",
        functype(&[ValType::I32], &[ValType::I32]),
        |_, p, r| {
            r[0] = match p[0].i32().unwrap() {
                0 => Val::I64(1),
                1 => Val::ExternRef(None),
                2 => Val::FuncRef(None),
                n => Val::I32(n),
            };
            Ok(())
        },
    )
    .unwrap();
    let i = l.instantiate(&mut store, &m).unwrap();
    for k in 0..3 {
        let e = call_i32(&mut store, &i, "call_cb", &[Val::I32(k)]).unwrap_err();
        assert!(e.as_trap().is_none(), "{e:?}");
        assert!(e.to_string().contains("host function result"), "{k}: {e}");
    }
    assert_eq!(
        call_i32(&mut store, &i, "call_cb", &[Val::I32(9)]).unwrap(),
        9
    );
}

// ----- 2. values and handles of another store -----

/// A funcref of store A given to store B's calls, tables and globals is
/// an error naming the problem (as in Wasmtime), not a panic; B then works.
#[test]
fn funcrefs_of_another_store_are_errors() {
    let mut a = Store::new(engine(), ());
    let ia = probe_instance(&mut a);
    let fa = ia.get_func(&mut a, "add").unwrap();
    let mut b = Store::new(engine(), ());
    let ib = probe_instance(&mut b);
    let foreign = Val::FuncRef(Some(fa));
    let check = |what: &str, r: Result<(), Error>| {
        let e = r.expect_err(what);
        assert!(e.to_string().contains("store"), "{what}: {e}");
    };

    let id_f = ib.get_func(&mut b, "id_f").unwrap();
    let mut out = [Val::FuncRef(None)];
    check(
        "Func::call",
        id_f.call(&mut b, std::slice::from_ref(&foreign), &mut out),
    );
    let typed = id_f.typed::<Option<Func>, Option<Func>>(&b).unwrap();
    check("TypedFunc::call", typed.call(&mut b, Some(fa)).map(drop));
    let ft = ib.get_table(&mut b, "ft").unwrap();
    check("Table::set", ft.set(&mut b, 0, foreign.clone()));
    check("Table::grow", ft.grow(&mut b, 1, foreign.clone()).map(drop));
    assert_eq!(ft.size(&b), 2);
    let ty = TableType {
        elem: RefType::FuncRef,
        min: 1,
        max: None,
        table64: false,
    };
    check(
        "Table::new",
        Table::new(&mut b, ty, foreign.clone()).map(drop),
    );
    let g = ib.get_global(&mut b, "g_fref").unwrap();
    check("Global::set", g.set(&mut b, foreign.clone()));
    let gty = GlobalType {
        ty: ValType::FuncRef,
        mutable: true,
    };
    check(
        "Global::new",
        Global::new(&mut b, gty, foreign.clone()).map(drop),
    );
    // A host function of B handing A's function to B's Wasm.
    let ret_a = Func::new(
        &mut b,
        functype(&[], &[ValType::FuncRef]),
        move |_, _, r| {
            r[0] = Val::FuncRef(Some(fa));
            Ok(())
        },
    );
    check("host result (host call)", ret_a.call(&mut b, &[], &mut out));
    let ret_a_typed = Func::wrap(&mut b, move || Some(fa));
    check(
        "wrapped host result (host call)",
        ret_a_typed.call(&mut b, &[], &mut out),
    );

    // B is intact and still works; A's function works in A.
    assert_eq!(add(&mut b, &ib), 42);
    assert!(matches!(ft.get(&mut b, 0), Some(Val::FuncRef(None))));
    assert!(matches!(g.get(&mut b), Val::FuncRef(None)));
    let mut r = [Val::I32(0)];
    fa.call(&mut a, &[Val::I32(1), Val::I32(1)], &mut r)
        .unwrap();
    assert_eq!(r[0].i32(), Some(2));
}

/// Wasm of store B calling a host function that returns a funcref of
/// store A gets an error, not a panic.
#[test]
fn host_functions_returning_foreign_funcrefs_to_wasm_are_errors() {
    let mut a = Store::new(engine(), ());
    let ia = probe_instance(&mut a);
    let fa = ia.get_func(&mut a, "add").unwrap();
    let m = Module::from_bytes(
        engine(),
        &compile(
            r#"(module
                 (import "host" "get" (func $get (result funcref)))
                 (import "host" "get_typed" (func $get_typed (result funcref)))
                 (func (export "run") (result i32)
                   (ref.is_null (call $get)))
                 (func (export "run_typed") (result i32)
                   (ref.is_null (call $get_typed))))"#,
            Bounds::Guard,
        ),
    )
    .unwrap();
    let mut l = Linker::<()>::new(engine());
    l.func_new(
        "host",
        "get",
        functype(&[], &[ValType::FuncRef]),
        move |_, _, r| {
            r[0] = Val::FuncRef(Some(fa));
            Ok(())
        },
    )
    .unwrap();
    l.func_wrap("host", "get_typed", move || Some(fa)).unwrap();
    let mut b = Store::new(engine(), ());
    let ib = l.instantiate(&mut b, &m).unwrap();
    for name in ["run", "run_typed"] {
        let e = call_i32(&mut b, &ib, name, &[]).unwrap_err();
        assert!(e.to_string().contains("store"), "{name}: {e}");
    }
}

/// Handles used with another store panic with a message saying so (the
/// crate's documented rule, as Wasmtime's); the store stays usable.
#[test]
fn handles_of_another_store_panic_clearly() {
    let mut a = Store::new(engine(), ());
    let ia = probe_instance(&mut a);
    let mut b = Store::new(engine(), ());
    let ib = probe_instance(&mut b);
    let fa = ia.get_func(&mut a, "add").unwrap();
    let ta: TypedFunc<(i32, i32), i32> = fa.typed(&a).unwrap();
    let ma = ia.get_memory(&mut a, "mem").unwrap();
    let tba = ia.get_table(&mut a, "ft").unwrap();
    let ga = ia.get_global(&mut a, "g_mut").unwrap();
    let mut expect_panic = |what: &str, f: &mut dyn FnMut(&mut Store<()>)| {
        let p = catch_unwind(AssertUnwindSafe(|| f(&mut b))).expect_err(what);
        let msg = panic_message(p);
        assert!(msg.contains("does not belong"), "{what}: {msg}");
    };
    expect_panic("Func::call", &mut |s| {
        let _ = fa.call(s, &[Val::I32(1), Val::I32(2)], &mut [Val::I32(0)]);
    });
    expect_panic("TypedFunc::call", &mut |s| {
        let _ = ta.call(s, (1, 2));
    });
    expect_panic("Memory::size", &mut |s| {
        ma.size(&*s);
    });
    expect_panic("Memory::write", &mut |s| {
        let _ = ma.write(s, 0, &[1]);
    });
    expect_panic("Table::get", &mut |s| {
        tba.get(s, 0);
    });
    expect_panic("Global::set", &mut |s| {
        let _ = ga.set(s, Val::I32(1));
    });
    expect_panic("Instance::get_func", &mut |s| {
        ia.get_func(s, "add");
    });
    // Imports of another store are an error at instantiation.
    let m = Module::from_bytes(
        engine(),
        &compile(r#"(module (import "a" "m" (memory 1)))"#, Bounds::Guard),
    )
    .unwrap();
    let e = Instance::new(&mut b, &m, &[ma.into()]).unwrap_err();
    assert!(
        matches!(e, Error::Link(LinkError::ForeignStore(_))),
        "{e:?}"
    );
    let mut l = Linker::<()>::new(engine());
    l.define(&a, "a", "m", ma).unwrap();
    let e = l.instantiate(&mut b, &m).unwrap_err();
    assert!(e.to_string().contains("different store"), "{e}");
    assert_eq!(add(&mut b, &ib), 42);
    assert_eq!(ma.size(&a), 1);
}

// ----- 3. host functions: panics, errors, re-entry, recursion -----

const NEST: &str = r#"
(module
  (import "host" "down" (func $down (param i32) (result i32)))
  (func (export "rec") (param i32) (result i32)
    (i32.add (i32.const 1) (call $down (local.get 0)))))
"#;

/// `down(n)` calls `rec(n - 1)` back; at 0 it does what `bottom` says.
fn nest_linker(bottom: fn(Caller<'_, ()>) -> anyhow::Result<i32>) -> Linker<()> {
    let mut l = Linker::new(engine());
    l.func_wrap(
        "host",
        "down",
        move |mut c: Caller<'_, ()>, n: i32| -> anyhow::Result<i32> {
            if n == 0 {
                return bottom(c);
            }
            let rec = c.get_export("rec").unwrap().into_func().unwrap();
            let rec = rec.typed::<i32, i32>(&c)?;
            Ok(rec.call(&mut c, n - 1)?)
        },
    )
    .unwrap();
    l
}

#[test]
fn a_panic_deep_in_nested_reentry_reaches_the_host_and_the_store_survives() {
    let m = Module::from_bytes(engine(), &compile(NEST, Bounds::Guard)).unwrap();
    let l = nest_linker(|_| panic!("bottom panicked"));
    let mut store = Store::new(engine(), ());
    let i = l.instantiate(&mut store, &m).unwrap();
    let rec = i.get_typed_func::<i32, i32>(&mut store, "rec").unwrap();
    for _ in 0..3 {
        let p = catch_unwind(AssertUnwindSafe(|| rec.call(&mut store, 5))).unwrap_err();
        assert_eq!(panic_message(p), "bottom panicked");
    }
    // The store works: a new linker without the panic.
    let l = nest_linker(|_| Ok(100));
    let i = l.instantiate(&mut store, &m).unwrap();
    let rec = i.get_typed_func::<i32, i32>(&mut store, "rec").unwrap();
    assert_eq!(rec.call(&mut store, 5).unwrap(), 106);
}

#[test]
fn an_error_deep_in_nested_reentry_reaches_the_host_as_it_was() {
    let m = Module::from_bytes(engine(), &compile(NEST, Bounds::Guard)).unwrap();
    let l = nest_linker(|_| Err(anyhow::anyhow!("bottom failed")));
    let mut store = Store::new(engine(), ());
    let i = l.instantiate(&mut store, &m).unwrap();
    let rec = i.get_typed_func::<i32, i32>(&mut store, "rec").unwrap();
    let e = rec.call(&mut store, 6).unwrap_err();
    assert_eq!(e.to_string(), "bottom failed");
    assert!(e.as_trap().is_none());
}

/// Unbounded host -> Wasm -> host recursion ends in a stack-overflow trap
/// at the top, not in a crash of the host.
#[test]
fn unbounded_host_reentry_is_a_stack_overflow_trap() {
    let m = Module::from_bytes(engine(), &compile(NEST, Bounds::Guard)).unwrap();
    let l = nest_linker(|_| unreachable!());
    let mut store = Store::new(engine(), ());
    let i = l.instantiate(&mut store, &m).unwrap();
    let rec = i.get_typed_func::<i32, i32>(&mut store, "rec").unwrap();
    let t = expect_trap(rec.call(&mut store, i32::MAX));
    assert_eq!(t.code, TrapCode::StackOverflow);
    // Again on a thread with a small stack, on which the store's default
    // 512 KiB of Wasm stack does not fit.
    let t = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || expect_trap(rec.call(&mut store, i32::MAX)).code)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(t, TrapCode::StackOverflow);
}

#[test]
fn max_wasm_stack_extremes() {
    let mut store = Store::new(engine(), ());
    let i = probe_instance(&mut store);
    // No stack: a function that needs a frame cannot run (a leaf that
    // needs none may).
    store.set_max_wasm_stack(0);
    let t = expect_trap(call_i32(&mut store, &i, "rec", &[Val::I32(2)]));
    assert_eq!(t.code, TrapCode::StackOverflow);
    store.set_max_wasm_stack(usize::MAX);
    let t = expect_trap(call_i32(&mut store, &i, "rec", &[Val::I32(100_000_000)]));
    assert_eq!(t.code, TrapCode::StackOverflow);
    store.set_max_wasm_stack(512 * 1024);
    assert_eq!(
        call_i32(&mut store, &i, "rec", &[Val::I32(1000)]).unwrap(),
        1000
    );
    assert_eq!(add(&mut store, &i), 42);
    // An engine whose stores could run no Wasm at all is refused up front.
    let mut c = wasmc_loader::Config::new();
    c.max_wasm_stack(0);
    let e = wasmc_loader::Engine::new(&c).unwrap_err().to_string();
    assert!(e.contains("max_wasm_stack"), "{e}");
}

// ----- 4. panics of host code that Wasm reaches through the runtime -----

/// A limiter that panics when asked about growing past `panic_above`.
struct PanickyLimiter {
    panic_above: usize,
}

impl ResourceLimiter for PanickyLimiter {
    fn memory_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> anyhow::Result<bool> {
        assert!(desired <= self.panic_above, "limiter panicked on memory");
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> anyhow::Result<bool> {
        assert!(desired <= self.panic_above, "limiter panicked on table");
        Ok(true)
    }
}

/// A resource limiter that panics when Wasm's `memory.grow` or
/// `table.grow` asks it: the panic reaches the host caller (it must not
/// unwind through Wasm frames, which would abort the process), and the
/// store keeps working.
#[test]
fn a_limiter_panicking_under_wasm_grow_reaches_the_host() {
    let m = Module::from_bytes(engine(), &compile(PROBE, Bounds::Guard)).unwrap();
    let mut store = Store::new(
        engine(),
        PanickyLimiter {
            panic_above: 2 * 65536,
        },
    );
    store.limiter(|l| l);
    let i = probe_linker(engine()).instantiate(&mut store, &m).unwrap();
    let grow = i.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
    let tgrow = i.get_typed_func::<i32, i32>(&mut store, "tgrow").unwrap();
    assert_eq!(grow.call(&mut store, 1).unwrap(), 1);
    let p = catch_unwind(AssertUnwindSafe(|| grow.call(&mut store, 1))).unwrap_err();
    assert_eq!(panic_message(p), "limiter panicked on memory");
    let p = catch_unwind(AssertUnwindSafe(|| tgrow.call(&mut store, 1 << 20))).unwrap_err();
    assert_eq!(panic_message(p), "limiter panicked on table");
    // Nothing grew; the store works.
    let mem = i.get_memory(&mut store, "mem").unwrap();
    assert_eq!(mem.size(&store), 2);
    assert_eq!(tgrow.call(&mut store, 1).unwrap(), 2);
    store.data_mut().panic_above = usize::MAX;
    assert_eq!(grow.call(&mut store, 1).unwrap(), 2);
}

/// A host value whose `Drop` panics.
struct PanicOnDrop(Arc<AtomicUsize>);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if !std::thread::panicking() {
            panic!("host value panicked in drop");
        }
    }
}

/// Wasm overwriting the last reference to a host value whose `Drop`
/// panics (`table.set` releases it inside a builtin): the panic reaches
/// the host caller and the store keeps working.
#[test]
fn a_host_value_panicking_in_drop_under_wasm_reaches_the_host() {
    let mut store = Store::new(engine(), ());
    let i = probe_instance(&mut store);
    let drops = Arc::new(AtomicUsize::new(0));
    let set_e = i
        .get_typed_func::<(i32, Option<ExternRef>), ()>(&mut store, "set_e")
        .unwrap();
    set_e
        .call(
            &mut store,
            (0, Some(ExternRef::new(PanicOnDrop(drops.clone())))),
        )
        .unwrap();
    // The activations table held the argument until the call returned:
    // the table now has the only count.
    let p = catch_unwind(AssertUnwindSafe(|| set_e.call(&mut store, (0, None)))).unwrap_err();
    assert_eq!(panic_message(p), "host value panicked in drop");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    let et = i.get_table(&mut store, "et").unwrap();
    assert!(matches!(et.get(&mut store, 0), Some(Val::ExternRef(None))));
    set_e
        .call(&mut store, (1, Some(ExternRef::new(7u32))))
        .unwrap();
    assert_eq!(add(&mut store, &i), 42);
}

// ----- 5. memories, tables and globals at the edges -----

#[test]
fn memory_accesses_at_the_edges() {
    for b in BOTH {
        let m = Module::from_bytes(engine(), &compile(PROBE, b)).unwrap();
        let mut store = Store::new(engine(), ());
        let i = probe_linker(engine()).instantiate(&mut store, &m).unwrap();
        let mem = i.get_memory(&mut store, "mem").unwrap();
        let len = mem.data_size(&store);
        assert_eq!(len, 65536);
        let mut buf = [0u8; 4];
        for off in [len - 3, len, len + 1, usize::MAX, usize::MAX - 2] {
            assert!(mem.read(&store, off, &mut buf).is_err(), "{b:?} read {off}");
            assert!(
                mem.write(&mut store, off, &buf).is_err(),
                "{b:?} write {off}"
            );
        }
        // Empty accesses at the end are fine, past it not.
        mem.read(&store, len, &mut []).unwrap();
        assert!(mem.read(&store, len + 1, &mut []).is_err());
        mem.write(&mut store, len - 4, &[1, 2, 3, 4]).unwrap();
        mem.read(&store, len - 4, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4]);
        // Growth: past the maximum, by absurd amounts, by zero.
        assert!(mem.grow(&mut store, 3).is_err());
        assert!(mem.grow(&mut store, u64::MAX).is_err());
        assert!(mem.grow(&mut store, u64::MAX / 65536).is_err());
        assert_eq!(mem.grow(&mut store, 0).unwrap(), 1);
        assert_eq!(mem.grow(&mut store, 2).unwrap(), 1);
        assert_eq!(mem.data(&store).len(), 3 * 65536);
        assert_eq!(&mem.data(&store)[len - 4..len], &[1, 2, 3, 4]);
        mem.write(&mut store, 3 * 65536 - 1, &[9]).unwrap();
        assert_eq!(
            call_i32(&mut store, &i, "load", &[Val::I32(3 * 65536 - 4)]).unwrap(),
            9 << 24
        );
        let t = expect_trap(call_i32(&mut store, &i, "load", &[Val::I32(3 * 65536 - 3)]));
        assert_eq!(t.code, TrapCode::MemoryOutOfBounds);
        assert_eq!(
            call_i32(&mut store, &i, "grow", &[Val::I32(-1)]).unwrap(),
            -1
        );
    }
}

#[test]
fn host_memories_tables_and_globals_of_invalid_types_are_refused() {
    let mut store = Store::new(engine(), ());
    let mem = |min, max| MemoryType {
        min,
        max,
        memory64: false,
        shared: false,
    };
    for ty in [
        mem(2, Some(1)),
        mem(65537, None),
        mem(0, Some(65537)),
        mem(u64::MAX, None),
    ] {
        assert!(Memory::new(&mut store, ty).is_err(), "{ty:?}");
    }
    let shared = MemoryType {
        shared: true,
        ..mem(1, Some(1))
    };
    assert!(Memory::new(&mut store, shared).is_err());
    let e = Memory::new(&mut store, mem(2, Some(1))).unwrap_err();
    assert!(e.to_string().contains("exceeds its maximum"), "{e}");
    let table = |min, max| TableType {
        elem: RefType::FuncRef,
        min,
        max,
        table64: false,
    };
    for ty in [table(2, Some(1)), table(u32::MAX, None)] {
        assert!(
            Table::new(&mut store, ty, Val::FuncRef(None)).is_err(),
            "{ty:?}"
        );
    }
    let e = Table::new(&mut store, table(2, Some(1)), Val::FuncRef(None)).unwrap_err();
    assert!(e.to_string().contains("exceeds its maximum"), "{e}");
    assert!(Table::new(&mut store, table(1, None), Val::ExternRef(None)).is_err());
    assert!(Table::new(&mut store, table(1, None), Val::I32(0)).is_err());
    let gty = GlobalType {
        ty: ValType::I64,
        mutable: false,
    };
    assert!(Global::new(&mut store, gty, Val::I32(0)).is_err());
    // A valid one of each still works.
    let m = Memory::new(&mut store, mem(1, Some(2))).unwrap();
    assert_eq!(m.grow(&mut store, 1).unwrap(), 1);
    assert!(m.grow(&mut store, 1).is_err());
}

#[test]
fn table_and_global_accesses_at_the_edges() {
    let mut store = Store::new(engine(), ());
    let i = probe_instance(&mut store);
    let ft = i.get_table(&mut store, "ft").unwrap();
    let et = i.get_table(&mut store, "et").unwrap();
    let f = i.get_func(&mut store, "add").unwrap();
    for idx in [2, 3, u32::MAX] {
        assert!(ft.get(&mut store, idx).is_none());
        assert!(ft.set(&mut store, idx, Val::FuncRef(Some(f))).is_err());
    }
    let r = ExternRef::new(1u8);
    assert!(ft
        .set(&mut store, 0, Val::ExternRef(Some(r.clone())))
        .is_err());
    assert!(et.set(&mut store, 0, Val::FuncRef(Some(f))).is_err());
    assert!(ft.set(&mut store, 0, Val::I32(0)).is_err());
    assert_eq!(r.strong_count(), 1, "a refused value is not kept");
    assert!(
        ft.grow(&mut store, 9, Val::FuncRef(None)).is_err(),
        "past max 10"
    );
    assert!(ft.grow(&mut store, u32::MAX, Val::FuncRef(None)).is_err());
    assert!(et
        .grow(&mut store, u32::MAX, Val::ExternRef(Some(r.clone())))
        .is_err());
    assert_eq!(r.strong_count(), 1);
    assert_eq!(ft.grow(&mut store, 8, Val::FuncRef(Some(f))).unwrap(), 2);
    assert_eq!(ft.size(&store), 10);
    assert!(matches!(ft.get(&mut store, 9), Some(Val::FuncRef(Some(g))) if g == f));
    assert_eq!(
        call_i32(&mut store, &i, "tgrow", &[Val::I32(1)]).unwrap(),
        -1
    );
    assert_eq!(
        et.grow(&mut store, 3, Val::ExternRef(Some(r.clone())))
            .unwrap(),
        2
    );
    assert_eq!(r.strong_count(), 4);

    let g_imm = i.get_global(&mut store, "g_imm").unwrap();
    let e = g_imm.set(&mut store, Val::I32(1)).unwrap_err();
    assert!(e.to_string().contains("immutable"), "{e}");
    assert_eq!(g_imm.get(&mut store).i32(), Some(7));
    let g_mut = i.get_global(&mut store, "g_mut").unwrap();
    for v in [
        Val::I64(1),
        Val::F32(0),
        Val::ExternRef(None),
        Val::FuncRef(None),
    ] {
        assert!(g_mut.set(&mut store, v).is_err());
    }
    let g_fref = i.get_global(&mut store, "g_fref").unwrap();
    g_fref.set(&mut store, Val::FuncRef(Some(f))).unwrap();
    assert!(matches!(g_fref.get(&mut store), Val::FuncRef(Some(g)) if g == f));
}

// ----- 6. interruption settings at the edges -----

fn interrupt_module(engine: &Engine, i: Interruption) -> Module {
    let bytes = compile_with(
        PROBE,
        &CompileOptions {
            interruption: i,
            ..CompileOptions::default()
        },
    );
    Module::from_bytes(engine, &bytes).unwrap()
}

#[test]
fn fuel_at_the_edges() {
    let engine = Engine::default();
    let m = interrupt_module(
        &engine,
        Interruption {
            epochs: false,
            fuel: true,
        },
    );
    let mut store = Store::new(&engine, ());
    // A fuel module in a store without fuel: a clear error.
    let e = probe_linker(&engine)
        .instantiate(&mut store, &m)
        .unwrap_err();
    assert!(e.to_string().contains("set_fuel"), "{e}");
    store.set_fuel(0).unwrap();
    let i = probe_linker(&engine).instantiate(&mut store, &m).unwrap();
    let t = expect_trap(call_i32(&mut store, &i, "add", &[Val::I32(1), Val::I32(2)]));
    assert_eq!(t.code, TrapCode::OutOfFuel);
    assert_eq!(store.get_fuel().unwrap(), 0);
    store.set_fuel(1_000).unwrap();
    assert_eq!(add(&mut store, &i), 42);
    assert!(store.get_fuel().unwrap() < 1_000);
    // As much fuel as a u64 holds: the store reports what it was given.
    store.set_fuel(u64::MAX).unwrap();
    assert_eq!(store.get_fuel().unwrap(), u64::MAX);
    assert_eq!(add(&mut store, &i), 42);
    let left = store.get_fuel().unwrap();
    assert!(left < u64::MAX && left > u64::MAX - 100, "{left}");
    assert_eq!(
        call_i32(&mut store, &i, "rec", &[Val::I32(1000)]).unwrap(),
        1000
    );
}

#[test]
fn epoch_deadline_at_the_edges() {
    let engine = Engine::default();
    let m = interrupt_module(
        &engine,
        Interruption {
            epochs: true,
            fuel: false,
        },
    );
    let mut store = Store::new(&engine, ());
    let i = probe_linker(&engine).instantiate(&mut store, &m).unwrap();
    // No deadline set: runs.
    assert_eq!(add(&mut store, &i), 42);
    store.set_epoch_deadline(0).unwrap();
    let t = expect_trap(call_i32(&mut store, &i, "add", &[Val::I32(1), Val::I32(2)]));
    assert_eq!(t.code, TrapCode::Interrupted);
    store.set_epoch_deadline(u64::MAX).unwrap();
    engine.increment_epoch();
    assert_eq!(add(&mut store, &i), 42);
    store.set_epoch_deadline(1).unwrap();
    assert_eq!(add(&mut store, &i), 42);
    engine.increment_epoch();
    let t = expect_trap(call_i32(&mut store, &i, "add", &[Val::I32(1), Val::I32(2)]));
    assert_eq!(t.code, TrapCode::Interrupted);
    store.set_epoch_deadline(1).unwrap();
    assert_eq!(add(&mut store, &i), 42);
    // Uninstrumented code in a store with a deadline: refused.
    let plain = Module::from_bytes(&engine, &compile(PROBE, Bounds::Guard)).unwrap();
    let e = probe_linker(&engine)
        .instantiate(&mut store, &plain)
        .unwrap_err();
    assert!(e.to_string().contains("epoch"), "{e}");
}

// ----- 7. the linker -----

#[test]
fn linker_misuse_gives_errors_naming_the_import() {
    let engine = engine();
    let m = Module::from_bytes(
        engine,
        &compile(
            r#"(module
                 (import "env" "f" (func (param i32)))
                 (import "env" "m" (memory 2))
                 (import "env" "g" (global (mut i64)))
                 (import "env" "t" (table 1 externref)))"#,
            Bounds::Guard,
        ),
    )
    .unwrap();
    let mut store = Store::new(engine, ());
    let mut l = Linker::<()>::new(engine);
    l.allow_shadowing(false);
    l.func_wrap("env", "f", |_: i32| {}).unwrap();
    let e = l.func_wrap("env", "f", |_: i32| {}).unwrap_err();
    assert!(matches!(e, LinkError::Duplicate { .. }), "{e:?}");
    assert!(e.to_string().contains("env::f"), "{e}");
    // Missing memory: named with its kind.
    let e = l.instantiate(&mut store, &m).unwrap_err();
    assert!(
        e.to_string().contains("env::m") && e.to_string().contains("memory"),
        "{e}"
    );
    // A memory too small: both types named.
    let small = Memory::new(
        &mut store,
        MemoryType {
            min: 1,
            max: None,
            memory64: false,
            shared: false,
        },
    )
    .unwrap();
    l.define(&store, "env", "m", small).unwrap();
    // A global of the wrong mutability and a table of the wrong type.
    let g = Global::new(
        &mut store,
        GlobalType {
            ty: ValType::I64,
            mutable: false,
        },
        Val::I64(0),
    )
    .unwrap();
    l.define(&store, "env", "g", g).unwrap();
    let t = Table::new(
        &mut store,
        TableType {
            elem: RefType::FuncRef,
            min: 1,
            max: None,
            table64: false,
        },
        Val::FuncRef(None),
    )
    .unwrap();
    l.define(&store, "env", "t", t).unwrap();
    let e = l.instantiate(&mut store, &m).unwrap_err();
    assert!(
        matches!(&e, Error::Link(LinkError::IncompatibleImport { field, .. }) if field == "m"),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("env::m") && msg.contains("expected") && msg.contains("found"),
        "{msg}"
    );
    // A definition of the wrong kind.
    let mut l2 = l.clone();
    l2.allow_shadowing(true);
    let m2 = Memory::new(
        &mut store,
        MemoryType {
            min: 2,
            max: None,
            memory64: false,
            shared: false,
        },
    )
    .unwrap();
    l2.define(&store, "env", "m", m2).unwrap();
    l2.define(&store, "env", "f", g).unwrap();
    let e = l2.instantiate(&mut store, &m).unwrap_err();
    assert!(e.to_string().contains("env::f"), "{e}");
    // define_unknown_imports_as_traps leaves non-function imports alone.
    let mut l3 = Linker::<()>::new(engine);
    l3.define_unknown_imports_as_traps(&m).unwrap();
    let e = l3.instantiate(&mut store, &m).unwrap_err();
    assert!(e.to_string().contains("env::m"), "{e}");
}

/// One `InstancePre` instantiated in many stores on several threads.
#[test]
fn instance_pre_on_several_threads() {
    let m = Module::from_bytes(engine(), &compile(PROBE, Bounds::Guard)).unwrap();
    let pre: InstancePre<u32> = probe_linker(engine()).instantiate_pre(&m).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let pre = pre.clone();
            std::thread::spawn(move || {
                for n in 0..25 {
                    let mut store = Store::new(engine(), k);
                    let i = pre.instantiate(&mut store).unwrap();
                    let cb = i.get_typed_func::<i32, i32>(&mut store, "call_cb").unwrap();
                    assert_eq!(cb.call(&mut store, n).unwrap(), 2 * n);
                    let t = i.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
                    assert_eq!(
                        expect_trap(t.call(&mut store, -1)).code,
                        TrapCode::MemoryOutOfBounds
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

// ----- 8. externrefs outliving their store, stores moving -----

#[test]
fn externrefs_outlive_the_store_that_held_them() {
    let live = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    live.fetch_add(1, Ordering::SeqCst);
    let r = ExternRef::new(Counted(live.clone()));
    let mut store = Store::new(engine(), ());
    let i = probe_instance(&mut store);
    let id_e = i
        .get_typed_func::<Option<ExternRef>, Option<ExternRef>>(&mut store, "id_e")
        .unwrap();
    let back = id_e.call(&mut store, Some(r.clone())).unwrap().unwrap();
    assert!(ExternRef::ptr_eq(&back, &r));
    let set_e = i
        .get_typed_func::<(i32, Option<ExternRef>), ()>(&mut store, "set_e")
        .unwrap();
    set_e.call(&mut store, (1, Some(r.clone()))).unwrap();
    let et = i.get_table(&mut store, "et").unwrap();
    let from_table = et.get(&mut store, 1).unwrap();
    // Moved to another thread, collected there, dropped there.
    let store = std::thread::spawn(move || {
        let mut store = store;
        store.gc();
        store
    })
    .join()
    .unwrap();
    drop(store);
    assert_eq!(live.load(Ordering::SeqCst), 1);
    assert_eq!(r.strong_count(), 3, "r, back and from_table");
    assert!(r.downcast_ref::<Counted>().is_some());
    drop((back, from_table));
    assert_eq!(r.strong_count(), 1);
    drop(r);
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

// ----- 9. what a fuzzer would try -----

#[test]
fn garbage_modules_are_errors() {
    let wasm = wat::parse_str(PROBE).unwrap();
    for bytes in [
        &[][..],
        b"\0",
        b"\x7fELF",
        b"\0asm\x01\0\0\0",
        &wasm[..],
        &[0xff; 4096][..],
    ] {
        assert!(Module::from_bytes(engine(), bytes).is_err(), "{bytes:?}");
    }
    let artifact = compile(PROBE, Bounds::Guard);
    for n in [1, 64, 1000, artifact.len() / 2, artifact.len() - 1] {
        assert!(Module::from_bytes(engine(), &artifact[..n]).is_err(), "{n}");
    }
    let dir = TempDir::new("probe");
    let empty = dir.write("empty.o", &[]);
    assert!(Module::from_file(engine(), &empty).is_err());
    assert!(Module::from_file(engine(), dir.0.join("missing.o")).is_err());
    assert!(Module::from_file(engine(), &dir.0).is_err(), "a directory");
}

/// A trapping start function fails instantiation with the trap, many
/// times in one store; the store stays usable.
#[test]
fn trapping_start_functions_fail_instantiation_repeatedly() {
    let m = Module::from_bytes(
        engine(),
        &compile(
            r#"(module
                 (memory 1)
                 (global $g (mut i32) (i32.const 0))
                 (func $start (global.set $g (i32.const 1)) unreachable)
                 (start $start))"#,
            Bounds::Guard,
        ),
    )
    .unwrap();
    let mut store = Store::new(engine(), ());
    for _ in 0..200 {
        let t = expect_trap(Instance::new(&mut store, &m, &[]));
        assert_eq!(t.code, TrapCode::UnreachableCodeReached);
    }
    let i = probe_instance(&mut store);
    assert_eq!(add(&mut store, &i), 42);
}

/// Instantiating in one store without a limiter until a limit: a clear
/// error naming the default limit, no crash.
#[test]
fn instantiating_until_the_instance_limit_is_a_clear_error() {
    let m = Module::from_bytes(
        engine(),
        &compile("(module (memory 1) (table 1 funcref))", Bounds::Guard),
    )
    .unwrap();
    let mut store = Store::new(engine(), ());
    let mut made = 0;
    let e = loop {
        match Instance::new(&mut store, &m, &[]) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
        assert!(made <= 20_000, "no limit stopped instantiation");
    };
    // Without a limiter, the default limits hold (as in Wasmtime): each of
    // these reserves 6 GiB of address space, and 20,000 of them would
    // take all of a process's 128 TiB.
    assert_eq!(made, wasmc_loader::DEFAULT_INSTANCE_LIMIT);
    assert!(matches!(e, Error::Instantiation(_)), "{e:?}");
    assert!(e.to_string().contains("allows 10000 instances"), "{e}");
    // Another store is not affected.
    let mut other = Store::new(engine(), ());
    let i = probe_instance(&mut other);
    assert_eq!(add(&mut other, &i), 42);
}

/// A host function instantiating into its own store while Wasm of that
/// store is on the stack: the calling instance's memory, table and
/// globals are still right afterwards.
#[test]
fn instantiating_from_a_host_function_while_wasm_runs() {
    let m = Module::from_bytes(engine(), &compile(PROBE, Bounds::Explicit)).unwrap();
    let inner = m.clone();
    let mut l = Linker::<()>::new(engine());
    l.func_wrap(
        "host",
        "cb",
        move |mut c: Caller<'_, ()>, n: i32| -> anyhow::Result<i32> {
            let mem = c.get_export("mem").unwrap().into_memory().unwrap();
            mem.grow(&mut c, 1)?;
            for _ in 0..n {
                let l = probe_linker::<()>(c.engine());
                let i = l.instantiate(&mut c, &inner)?;
                let f = i.get_typed_func::<i32, i32>(&mut c, "call_cb")?;
                assert_eq!(f.call(&mut c, 21)?, 42);
            }
            mem.write(&mut c, 65536, &[7, 0, 0, 0])?;
            Ok(n)
        },
    )
    .unwrap();
    let mut store = Store::new(engine(), ());
    let i = l.instantiate(&mut store, &m).unwrap();
    assert_eq!(
        call_i32(&mut store, &i, "call_cb", &[Val::I32(50)]).unwrap(),
        50
    );
    assert_eq!(
        call_i32(&mut store, &i, "load", &[Val::I32(65536)]).unwrap(),
        7
    );
}

/// Host-made globals and tables holding externrefs, and host functions
/// capturing them, release their counts when the store drops; a host
/// function called from the host has no calling instance.
#[test]
fn host_made_items_release_externrefs_with_their_store() {
    let r = ExternRef::new(String::from("held"));
    let mut store = Store::new(engine(), ());
    let gty = GlobalType {
        ty: ValType::ExternRef,
        mutable: true,
    };
    let g = Global::new(&mut store, gty, Val::ExternRef(Some(r.clone()))).unwrap();
    let tty = TableType {
        elem: RefType::ExternRef,
        min: 3,
        max: None,
        table64: false,
    };
    let t = Table::new(&mut store, tty, Val::ExternRef(Some(r.clone()))).unwrap();
    let captured = r.clone();
    let f = Func::new(
        &mut store,
        functype(&[], &[ValType::ExternRef]),
        move |c, _, out| {
            assert!(c.instance().is_none(), "called from the host");
            out[0] = Val::ExternRef(Some(captured.clone()));
            Ok(())
        },
    );
    let mut out = [Val::ExternRef(None)];
    f.call(&mut store, &[], &mut out).unwrap();
    assert!(ExternRef::ptr_eq(out[0].externref().unwrap().unwrap(), &r));
    drop(out);
    // 1 (r) + 1 (global) + 3 (table) + 1 (captured).
    assert_eq!(r.strong_count(), 6);
    g.set(&mut store, Val::ExternRef(None)).unwrap();
    t.set(&mut store, 0, Val::ExternRef(None)).unwrap();
    assert_eq!(r.strong_count(), 4);
    drop(store);
    assert_eq!(r.strong_count(), 1);
    assert_eq!(r.downcast_ref::<String>().unwrap(), "held");
}

/// A host function called by the start function reaches the instance
/// being instantiated through its `Caller` (its memory is there already).
#[test]
fn the_start_function_s_host_calls_see_their_instance() {
    let m = Module::from_bytes(
        engine(),
        &compile(
            r#"(module
                 (import "host" "init" (func $init))
                 (memory (export "mem") 1)
                 (data (i32.const 0) "\01")
                 (func $start (call $init))
                 (start $start)
                 (func (export "load") (param i32) (result i32)
                   (i32.load8_u (local.get 0))))"#,
            Bounds::Guard,
        ),
    )
    .unwrap();
    let mut l = Linker::<()>::new(engine());
    l.func_wrap(
        "host",
        "init",
        |mut c: Caller<'_, ()>| -> anyhow::Result<()> {
            let mem = c
                .get_export("mem")
                .and_then(Extern::into_memory)
                .ok_or_else(|| anyhow::anyhow!("no memory"))?;
            let first = mem.data(&c)[0];
            mem.write(&mut c, 1, &[first + 1])?;
            Ok(())
        },
    )
    .unwrap();
    let mut store = Store::new(engine(), ());
    let i = l.instantiate(&mut store, &m).unwrap();
    assert_eq!(call_i32(&mut store, &i, "load", &[Val::I32(1)]).unwrap(), 2);
}
