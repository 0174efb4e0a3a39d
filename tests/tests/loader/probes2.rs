//! Second round of adversarial probes of the embedding API (after
//! `probes.rs`): what a Wasmtime user does and expects across the host /
//! Wasm boundary, and what a careless host or a hostile guest does to it —
//! host functions that grow the memory or rewrite the table the calling
//! Wasm is using, `call_indirect` through tables holding functions of other
//! modules and of the host, linkers built from instances and linker host
//! functions called from the host, externref counts through every path,
//! globals and memories of every type, module descriptors, interruption
//! reset from host functions and from many threads.

use super::*;
use std::sync::atomic::AtomicBool;
use wasmc_compiler::Interruption;
use wasmc_loader::{Caller, Engine, ExternType, ResourceLimiter};

/// A 32-bit table type (the struct literal, spelled once).
fn table_ty(elem: RefType, min: u32, max: Option<u64>) -> TableType {
    TableType {
        elem,
        min,
        max,
        table64: false,
    }
}

/// A global type.
fn global_ty(ty: ValType, mutable: bool) -> GlobalType {
    GlobalType { ty, mutable }
}

fn module(wat: &str, b: Bounds) -> Module {
    Module::from_bytes(engine(), &compile(wat, b)).unwrap()
}

// ----- 1. a host function growing the memory the calling Wasm uses -----

/// `run(n)` writes at 0, has the host grow its memory by `n` pages, then
/// writes and reads the last word of the grown memory in the same frame
/// (the code must reload its memory's base and bound after the call), in a
/// loop so that a base hoisted out of the loop would be stale.
const GROW_IN_CALL: &str = r#"
(module
  (import "host" "grow" (func $grow (param i32) (result i32)))
  (memory (export "mem") 1 1000)
  (func $last (result i32)
    (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))
  (func (export "run") (param $n i32) (param $rounds i32) (result i32)
    (local $sum i32)
    (i32.store (i32.const 0) (i32.const 11))
    (loop $l
      (i32.store (i32.const 4) (i32.add (i32.load (i32.const 4)) (i32.const 1)))
      (drop (call $grow (local.get $n)))
      (i32.store (call $last) (i32.const 42))
      (local.set $sum (i32.add (local.get $sum) (i32.load (call $last))))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br_if $l (local.get $rounds)))
    (i32.add (local.get $sum) (i32.load (i32.const 0)))))
"#;

/// The same through an imported memory.
const GROW_IN_CALL_IMPORTED: &str = r#"
(module
  (import "host" "grow" (func $grow (param i32) (result i32)))
  (import "env" "mem" (memory 1 1000))
  (func $last (result i32)
    (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))
  (func (export "run") (param $n i32) (param $rounds i32) (result i32)
    (local $sum i32)
    (i32.store (i32.const 0) (i32.const 11))
    (loop $l
      (drop (call $grow (local.get $n)))
      (i32.store (call $last) (i32.const 42))
      (local.set $sum (i32.add (local.get $sum) (i32.load (call $last))))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br_if $l (local.get $rounds)))
    (i32.add (local.get $sum) (i32.load (i32.const 0)))))
"#;

fn grow_linker(mem: Option<Memory>) -> Linker<()> {
    let mut l = Linker::new(engine());
    l.func_wrap(
        "host",
        "grow",
        move |mut c: Caller<'_, ()>, n: i32| -> anyhow::Result<i32> {
            let m = match mem {
                Some(m) => m,
                None => c.get_export("mem").unwrap().into_memory().unwrap(),
            };
            Ok(m.grow(&mut c, n as u64)? as i32)
        },
    )
    .unwrap();
    l
}

#[test]
fn a_host_function_growing_the_callers_memory_is_seen_in_the_same_frame() {
    for b in BOTH {
        // Own memory.
        let m = module(GROW_IN_CALL, b);
        let mut store = Store::new(engine(), ());
        let i = grow_linker(None).instantiate(&mut store, &m).unwrap();
        let run = i
            .get_typed_func::<(i32, i32), i32>(&mut store, "run")
            .unwrap();
        // 1 page per round for 5 rounds, then 100 pages at once (a move of
        // the base where memories are reallocated on growth).
        assert_eq!(run.call(&mut store, (1, 5)).unwrap(), 5 * 42 + 11, "{b:?}");
        assert_eq!(
            run.call(&mut store, (100, 2)).unwrap(),
            2 * 42 + 11,
            "{b:?}"
        );
        let mem = i.get_memory(&mut store, "mem").unwrap();
        assert_eq!(mem.size(&store), 206, "{b:?}");
        let end = mem.data_size(&store);
        assert_eq!(&mem.data(&store)[end - 4..], &42i32.to_le_bytes());
        // Past the maximum: memory.grow fails (-1 from the host's grow error
        // is an error here, the host's error reaches the caller).
        let e = run.call(&mut store, (1000, 1)).unwrap_err();
        assert!(e.to_string().contains("grow"), "{b:?}: {e}");

        // A memory of the host, imported; the host grows it by its handle.
        let m = module(GROW_IN_CALL_IMPORTED, b);
        let mut store = Store::new(engine(), ());
        let hm = Memory::new(
            &mut store,
            MemoryType {
                min: 1,
                max: Some(1000),
                memory64: false,
                shared: false,
            },
        )
        .unwrap();
        let mut l = grow_linker(Some(hm));
        l.define(&store, "env", "mem", hm).unwrap();
        let i = l.instantiate(&mut store, &m).unwrap();
        let run = i
            .get_typed_func::<(i32, i32), i32>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, (1, 3)).unwrap(), 3 * 42 + 11, "{b:?}");
        assert_eq!(run.call(&mut store, (64, 2)).unwrap(), 2 * 42 + 11, "{b:?}");
        assert_eq!(hm.size(&store), 132);
    }
}

/// Two instances sharing one memory: instance B's host call grows it
/// through instance A's export; B (the importer) and A both see the new
/// size afterwards.
#[test]
fn growing_a_shared_memory_through_the_exporter_is_seen_by_the_importer() {
    for b in BOTH {
        let a = module(
            r#"(module
                 (memory (export "mem") 1 1000)
                 (func (export "size") (result i32) (memory.size))
                 (func (export "load") (param i32) (result i32)
                   (i32.load (local.get 0))))"#,
            b,
        );
        let bm = module(GROW_IN_CALL_IMPORTED, b);
        let mut store = Store::new(engine(), ());
        let ia = Instance::new(&mut store, &a, &[]).unwrap();
        let mem = ia.get_memory(&mut store, "mem").unwrap();
        let mut l = grow_linker(Some(mem));
        l.instance(&mut store, "env", ia).unwrap();
        let ib = l.instantiate(&mut store, &bm).unwrap();
        assert_eq!(
            call_i32(&mut store, &ib, "run", &[Val::I32(3), Val::I32(2)]).unwrap(),
            2 * 42 + 11
        );
        assert_eq!(call_i32(&mut store, &ia, "size", &[]).unwrap(), 7);
        assert_eq!(
            call_i32(&mut store, &ia, "load", &[Val::I32(7 * 65536 - 4)]).unwrap(),
            42
        );
    }
}

// ----- 2. a host function rewriting the table the caller calls through -----

const SWAP_TABLE: &str = r#"
(module
  (import "host" "swap" (func $swap (param i32)))
  (type $t (func (param i32) (result i32)))
  (table $tab (export "tab") 2 funcref)
  (elem (i32.const 0) $first $second)
  (func $first (type $t)
    (call $swap (local.get 0))
    (i32.const 1))
  (func $second (type $t) (i32.add (local.get 0) (i32.const 100)))
  (func (export "second") (type $t) (i32.add (local.get 0) (i32.const 100)))
  ;; Calls slot 0 (which swaps), then slot `k`.
  (func (export "run") (param $what i32) (param $k i32) (result i32)
    (i32.add
      (call_indirect (type $t) (local.get $what) (i32.const 0))
      (call_indirect (type $t) (i32.const 5) (local.get $k)))))
"#;

#[test]
fn a_host_function_rewriting_the_callers_table_is_seen_at_the_next_call_indirect() {
    for b in BOTH {
        let m = module(SWAP_TABLE, b);
        let mut store = Store::new(engine(), ());
        let mut l = Linker::<()>::new(engine());
        l.func_wrap(
            "host",
            "swap",
            |mut c: Caller<'_, ()>, what: i32| -> anyhow::Result<()> {
                let tab = c.get_export("tab").unwrap().into_table().unwrap();
                match what {
                    // Replace the running function's own slot with $second.
                    0 => {
                        let second = tab.get(&mut c, 1).unwrap();
                        tab.set(&mut c, 0, second)?;
                    }
                    // Clear slot 1.
                    1 => tab.set(&mut c, 1, Val::FuncRef(None))?,
                    // Grow the table by many slots of a host function.
                    2 => {
                        let h = Func::wrap(&mut c, |x: i32| x * 3);
                        tab.grow(&mut c, 1000, Val::FuncRef(Some(h)))?;
                    }
                    // A host function of another type in slot 1.
                    3 => {
                        let h = Func::wrap(&mut c, |x: i64| x);
                        tab.set(&mut c, 1, Val::FuncRef(Some(h)))?;
                    }
                    // The exported $second (a function record of its own).
                    _ => {
                        let s = c.get_export("second").unwrap();
                        tab.set(&mut c, 1, Val::FuncRef(s.into_func()))?;
                    }
                }
                Ok(())
            },
        )
        .unwrap();
        let i = l.instantiate(&mut store, &m).unwrap();
        let run = |store: &mut Store<()>, what: i32, k: i32| {
            call_i32(store, &i, "run", &[Val::I32(what), Val::I32(k)])
        };
        let tab = i.get_table(&mut store, "tab").unwrap();
        let first = tab.get(&mut store, 0).unwrap();
        let reset = |store: &mut Store<()>| tab.set(&mut *store, 0, first.clone()).unwrap();

        // $first (1) then slot 1 = $second(5) = 105.
        assert_eq!(run(&mut store, 4, 1).unwrap(), 106, "{b:?}");
        // Slot 0 replaced while $first runs: the second call through slot 0
        // reaches $second.
        assert_eq!(run(&mut store, 0, 0).unwrap(), 106, "{b:?}");
        // Slot 0 is now $second: no swap happens.
        assert_eq!(run(&mut store, 0, 0).unwrap(), 100 + 105, "{b:?}");
        reset(&mut store);
        // Slot 1 cleared: the second call traps as a null call.
        let t = expect_trap(run(&mut store, 1, 1));
        assert_eq!(t.code, TrapCode::IndirectCallToNull, "{b:?}");
        reset(&mut store);
        // The table grown under the caller: slot 1001 exists for the
        // second call, and holds the host function.
        assert_eq!(run(&mut store, 2, 1001).unwrap(), 1 + 15, "{b:?}");
        assert_eq!(tab.size(&store), 1002);
        // Past the end: the spec's "undefined element".
        let t = expect_trap(run(&mut store, 4, 1002));
        assert_eq!(t.code, TrapCode::UndefinedElement, "{b:?}");
        // A host function of another type: a signature mismatch.
        let t = expect_trap(run(&mut store, 3, 1));
        assert_eq!(t.code, TrapCode::BadSignature, "{b:?}");
        // Restored: works again.
        assert_eq!(run(&mut store, 4, 1).unwrap(), 106, "{b:?}");
    }
}

/// `call_indirect` across modules whose type sections differ: a function
/// of module A in B's table matches B's type by structure, not by index;
/// a structurally different one traps.
#[test]
fn call_indirect_matches_types_by_structure_across_modules_and_the_host() {
    let a = module(
        r#"(module
             (type (func))
             (type (func (param f32)))
             (type (func (param i64) (result i64)))
             (func (export "sq") (type 2) (i64.mul (local.get 0) (local.get 0)))
             (func (export "other") (param i32) (result i32) (local.get 0)))"#,
        Bounds::Guard,
    );
    let b = module(
        r#"(module
             (type $t (func (param i64) (result i64)))
             (table (export "tab") 4 funcref)
             (func (export "call") (param i32 i64) (result i64)
               (call_indirect (type $t) (local.get 1) (local.get 0))))"#,
        Bounds::Guard,
    );
    let mut store = Store::new(engine(), ());
    let ia = Instance::new(&mut store, &a, &[]).unwrap();
    let ib = Instance::new(&mut store, &b, &[]).unwrap();
    let tab = ib.get_table(&mut store, "tab").unwrap();
    let sq = ia.get_func(&mut store, "sq").unwrap();
    let other = ia.get_func(&mut store, "other").unwrap();
    let host_ok = Func::wrap(&mut store, |x: i64| x + 1);
    let host_bad = Func::wrap(&mut store, |x: i64| -> (i64, i64) { (x, x) });
    for (k, f) in [sq, other, host_ok, host_bad].into_iter().enumerate() {
        tab.set(&mut store, k as u32, Val::FuncRef(Some(f)))
            .unwrap();
    }
    let call = ib
        .get_typed_func::<(i32, i64), i64>(&mut store, "call")
        .unwrap();
    assert_eq!(call.call(&mut store, (0, 9)).unwrap(), 81);
    assert_eq!(call.call(&mut store, (2, 9)).unwrap(), 10);
    for k in [1, 3] {
        let t = expect_trap(call.call(&mut store, (k, 9)));
        assert_eq!(t.code, TrapCode::BadSignature, "{k}");
    }
    assert_eq!(call.call(&mut store, (0, -3)).unwrap(), 9);
}

// ----- 3. linkers -----

const USES_ENV: &str = r#"
(module
  (import "env" "add" (func $add (param i32 i32) (result i32)))
  (import "env" "mem" (memory 1))
  (import "env" "g" (global $g (mut i32)))
  (import "env" "tab" (table 1 funcref))
  (func (export "run") (result i32)
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (i32.store (i32.const 8) (call $add (global.get $g) (i32.load (i32.const 8))))
    (i32.load (i32.const 8))))
"#;

const ENV: &str = r#"
(module
  (memory (export "mem") 1)
  (global (export "g") (mut i32) (i32.const 10))
  (table (export "tab") 1 funcref)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
"#;

/// `Linker::instance` registers every export; a second module imports
/// all four kinds from it and shares their state.
#[test]
fn linker_instance_exports_are_imported_by_other_modules() {
    let env = module(ENV, Bounds::Guard);
    let user = module(USES_ENV, Bounds::Guard);
    let mut store = Store::new(engine(), ());
    let ienv = Instance::new(&mut store, &env, &[]).unwrap();
    let mut l = Linker::<()>::new(engine());
    l.instance(&mut store, "env", ienv).unwrap();
    let u1 = l.instantiate(&mut store, &user).unwrap();
    let u2 = l.instantiate(&mut store, &user).unwrap();
    assert_eq!(call_i32(&mut store, &u1, "run", &[]).unwrap(), 11);
    assert_eq!(call_i32(&mut store, &u2, "run", &[]).unwrap(), 11 + 12);
    let g = ienv.get_global(&mut store, "g").unwrap();
    assert_eq!(g.get(&mut store).i32(), Some(12));
    // `get` gives the very same items.
    let Some(Extern::Global(g2)) = l.get(&mut store, "env", "g") else {
        panic!("no env::g");
    };
    assert_eq!(g2, g);
    assert!(l.get(&mut store, "env", "nope").is_none());
    // In another store, the definitions are refused with a clear error
    // (and `get` does not hand them out).
    let mut other = Store::new(engine(), ());
    let e = l.instantiate(&mut other, &user).unwrap_err();
    assert!(e.to_string().contains("different store"), "{e}");
    assert!(l.get(&mut other, "env", "g").is_none());
    // With shadowing off, registering the instance again is an error
    // naming a field.
    l.allow_shadowing(false);
    let e = l.instance(&mut store, "env", ienv).unwrap_err();
    assert!(matches!(e, LinkError::Duplicate { .. }), "{e:?}");
}

/// Shadowing on (the default): the last definition wins, for host
/// functions and store items alike.
#[test]
fn shadowed_definitions_use_the_last_one() {
    let m = module(
        r#"(module
             (import "h" "f" (func $f (result i32)))
             (func (export "run") (result i32) (call $f)))"#,
        Bounds::Guard,
    );
    let mut store = Store::new(engine(), ());
    let mut l = Linker::<()>::new(engine());
    l.func_wrap("h", "f", || 1i32).unwrap();
    l.func_wrap("h", "f", || 2i32).unwrap();
    let i = l.instantiate(&mut store, &m).unwrap();
    assert_eq!(call_i32(&mut store, &i, "run", &[]).unwrap(), 2);
    let f3 = Func::wrap(&mut store, || 3i32);
    l.define(&store, "h", "f", f3).unwrap();
    let i = l.instantiate(&mut store, &m).unwrap();
    assert_eq!(call_i32(&mut store, &i, "run", &[]).unwrap(), 3);
    // An InstancePre made before a redefinition keeps what it resolved.
    let pre = l.instantiate_pre(&m).unwrap();
    l.func_wrap("h", "f", || 4i32).unwrap();
    let i = pre.instantiate(&mut store).unwrap();
    assert_eq!(call_i32(&mut store, &i, "run", &[]).unwrap(), 3);
    let i = l.instantiate(&mut store, &m).unwrap();
    assert_eq!(call_i32(&mut store, &i, "run", &[]).unwrap(), 4);
}

/// A linker's host functions (`func_wrap`, `func_new`) fetched with
/// `Linker::get` are callable from the host, typed and untyped, with the
/// store's data; functions defined as traps fail naming the import, from
/// Wasm and from the host.
#[test]
fn linker_host_functions_are_callable_from_the_host() {
    let mut l = Linker::<u32>::new(engine());
    l.func_wrap("h", "add", |mut c: Caller<'_, u32>, x: i32| -> i32 {
        *c.data_mut() += 1;
        x + *c.data() as i32
    })
    .unwrap();
    l.func_new(
        "h",
        "pair",
        functype(&[ValType::I64], &[ValType::I64, ValType::I32]),
        |c, p, r| {
            r[0] = Val::I64(p[0].i64().unwrap() * 2);
            r[1] = Val::I32(*c.data() as i32);
            Ok(())
        },
    )
    .unwrap();
    let mut store = Store::new(engine(), 10u32);
    let add = l.get(&mut store, "h", "add").unwrap().into_func().unwrap();
    assert_eq!(add.ty(&store), functype(&[ValType::I32], &[ValType::I32]));
    let mut r = [Val::I32(0)];
    add.call(&mut store, &[Val::I32(5)], &mut r).unwrap();
    assert_eq!(r[0].i32(), Some(16));
    let typed = add.typed::<i32, i32>(&store).unwrap();
    assert_eq!(typed.call(&mut store, 5).unwrap(), 17);
    let pair = l.get(&mut store, "h", "pair").unwrap().into_func().unwrap();
    let typed = pair.typed::<i64, (i64, i32)>(&store).unwrap();
    assert_eq!(typed.call(&mut store, 21).unwrap(), (42, 12));
    assert_eq!(*store.data(), 12);

    // Unknown imports defined as traps.
    let m = Module::from_bytes(
        engine(),
        &compile(
            r#"(module
                 (import "h" "add" (func $add (param i32) (result i32)))
                 (import "missing" "f" (func $f (param i32) (result i32)))
                 (func (export "ok") (result i32) (call $add (i32.const 1)))
                 (func (export "bad") (result i32) (call $f (i32.const 1))))"#,
            Bounds::Guard,
        ),
    )
    .unwrap();
    l.define_unknown_imports_as_traps(&m).unwrap();
    let i = l.instantiate(&mut store, &m).unwrap();
    let ok = i.get_typed_func::<(), i32>(&mut store, "ok").unwrap();
    assert_eq!(ok.call(&mut store, ()).unwrap(), 14);
    let bad = i.get_typed_func::<(), i32>(&mut store, "bad").unwrap();
    let e = bad.call(&mut store, ()).unwrap_err();
    assert!(e.to_string().contains("missing::f"), "{e}");
    let f = l
        .get(&mut store, "missing", "f")
        .unwrap()
        .into_func()
        .unwrap();
    let e = f.call(&mut store, &[Val::I32(1)], &mut r).unwrap_err();
    assert!(e.to_string().contains("missing::f"), "{e}");
    // The existing definition was kept.
    assert_eq!(ok.call(&mut store, ()).unwrap(), 15);
}

/// The errors of a mistyped import name the import and both types, for
/// every kind and for host functions, stores items and instances alike.
#[test]
fn incompatible_imports_name_both_types() {
    let user = module(USES_ENV, Bounds::Guard);
    let mut store = Store::new(engine(), ());
    let env = Instance::new(&mut store, &module(ENV, Bounds::Guard), &[]).unwrap();
    let base = {
        let mut l = Linker::<()>::new(engine());
        l.instance(&mut store, "env", env).unwrap();
        l
    };
    let wrong_fn = Func::wrap(&mut store, |x: i32, _y: i64| x);
    let small_tab = Table::new(
        &mut store,
        table_ty(RefType::ExternRef, 1, None),
        Val::ExternRef(None),
    )
    .unwrap();
    let const_g = Global::new(&mut store, global_ty(ValType::I32, false), Val::I32(0)).unwrap();
    let cases: Vec<(&str, Extern, &[&str])> = vec![
        ("add", wrong_fn.into(), &["env::add", "i64"]),
        ("tab", small_tab.into(), &["env::tab", "xtern"]),
        ("g", const_g.into(), &["env::g", "expected", "found"]),
        ("mem", wrong_fn.into(), &["env::mem", "expected", "found"]),
    ];
    for (field, item, needles) in cases {
        let mut l = base.clone();
        l.define(&store, "env", field, item).unwrap();
        let e = l.instantiate(&mut store, &user).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Link(LinkError::IncompatibleImport { .. })),
            "{field}: {e:?}"
        );
        for n in needles {
            assert!(msg.contains(n), "{field}: `{n}` not in {msg}");
        }
        // Instance::new in import order gives the same error.
        let imports: Vec<Extern> = ["add", "mem", "g", "tab"]
            .iter()
            .map(|f| {
                if *f == field {
                    item
                } else {
                    base.get(&mut store, "env", f).unwrap()
                }
            })
            .collect();
        let e2 = Instance::new(&mut store, &user, &imports).unwrap_err();
        assert_eq!(e2.to_string(), msg);
    }
    // A linker host function of the wrong type, by instantiate_pre too.
    let mut l = base.clone();
    l.func_wrap("env", "add", |x: i32| x).unwrap();
    for e in [
        l.instantiate_pre(&user).map(drop).unwrap_err(),
        l.instantiate(&mut store, &user).map(drop).unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(
            msg.contains("env::add") && msg.contains("i32, i32") && msg.contains("expected"),
            "{msg}"
        );
    }
}

// ----- 4. externref counts through every path -----

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

const REFS: &str = r#"
(module
  (import "host" "echo" (func $echo (param externref) (result externref)))
  (import "host" "make" (func $make (result externref)))
  (table $t (export "t") 4 externref)
  (global $g (export "g") (mut externref) (ref.null extern))
  (func (export "roundtrip") (param externref) (result externref)
    (local $i i32)
    (loop $l
      (global.set $g (call $echo (local.get 0)))
      (table.set $t (i32.const 0) (global.get $g))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (table.get $t (i32.const 0)))
  (func (export "make_many") (param i32)
    (loop $l
      (table.set $t (i32.const 1) (call $make))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if $l (local.get 0))))
  (func (export "clear")
    (global.set $g (ref.null extern))
    (table.fill $t (i32.const 0) (ref.null extern) (i32.const 4))))
"#;

/// Host values passed through typed calls, host functions, a global and
/// a table thousands of times are dropped exactly once each, when the
/// last holder lets go: none leaks, none is dropped early.
#[test]
fn externrefs_are_dropped_exactly_once_through_every_path() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut l = Linker::<Arc<AtomicUsize>>::new(engine());
    l.func_wrap("host", "echo", |r: Option<ExternRef>| r)
        .unwrap();
    l.func_wrap(
        "host",
        "make",
        |c: Caller<'_, Arc<AtomicUsize>>| -> Option<ExternRef> {
            Some(ExternRef::new(Counted(c.data().clone())))
        },
    )
    .unwrap();
    for b in BOTH {
        drops.store(0, Ordering::SeqCst);
        let m = module(REFS, b);
        let mut store = Store::new(engine(), drops.clone());
        let i = l.instantiate(&mut store, &m).unwrap();
        let rt = i
            .get_typed_func::<Option<ExternRef>, Option<ExternRef>>(&mut store, "roundtrip")
            .unwrap();
        let r = ExternRef::new(Counted(drops.clone()));
        let back = rt.call(&mut store, Some(r.clone())).unwrap().unwrap();
        assert!(ExternRef::ptr_eq(&r, &back));
        store.gc();
        // r, back, the table slot and the global.
        assert_eq!(r.strong_count(), 4, "{b:?}");
        drop(back);
        let make = i
            .get_typed_func::<i32, ()>(&mut store, "make_many")
            .unwrap();
        make.call(&mut store, 5000).unwrap();
        // Every made value but the one in the table is gone after a
        // collection (some may go before, at the collector's pace).
        store.gc();
        assert_eq!(drops.load(Ordering::SeqCst), 4999, "{b:?}");
        // The untyped path too.
        let rtf = i.get_func(&mut store, "roundtrip").unwrap();
        let mut out = [Val::ExternRef(None)];
        rtf.call(&mut store, &[Val::ExternRef(Some(r.clone()))], &mut out)
            .unwrap();
        drop(out);
        let clear = i.get_typed_func::<(), ()>(&mut store, "clear").unwrap();
        clear.call(&mut store, ()).unwrap();
        store.gc();
        assert_eq!(r.strong_count(), 1, "{b:?}");
        assert_eq!(drops.load(Ordering::SeqCst), 5000, "{b:?}");
        drop(r);
        assert_eq!(drops.load(Ordering::SeqCst), 5001, "{b:?}");
        // Dropping the store after a trap with references live in Wasm
        // frames releases them all.
        let r2 = ExternRef::new(Counted(drops.clone()));
        rt.call(&mut store, Some(r2.clone())).unwrap();
        drop(store);
        assert_eq!(r2.strong_count(), 1, "{b:?}");
        drop(r2);
        assert_eq!(drops.load(Ordering::SeqCst), 5002, "{b:?}");
    }
}

/// The store's data is dropped once, after its instances, and
/// `into_data` hands it back intact after traps and host errors.
#[test]
fn store_data_survives_traps_and_is_dropped_once() {
    struct Data {
        calls: u32,
        held: Option<ExternRef>,
        drops: Arc<AtomicUsize>,
    }
    impl Drop for Data {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let m = module(
        r#"(module
             (import "h" "f" (func $f (param i32)))
             (func (export "run") (param i32)
               (call $f (local.get 0))
               (if (local.get 0) (then unreachable))))"#,
        Bounds::Guard,
    );
    let mut l = Linker::<Data>::new(engine());
    l.func_wrap(
        "h",
        "f",
        |mut c: Caller<'_, Data>, x: i32| -> anyhow::Result<()> {
            c.data_mut().calls += 1;
            anyhow::ensure!(x != 2, "host refused {x}");
            Ok(())
        },
    )
    .unwrap();
    let held = ExternRef::new(5u8);
    let mut store = Store::new(
        engine(),
        Data {
            calls: 0,
            held: Some(held.clone()),
            drops: drops.clone(),
        },
    );
    let i = l.instantiate(&mut store, &m).unwrap();
    let run = i.get_typed_func::<i32, ()>(&mut store, "run").unwrap();
    run.call(&mut store, 0).unwrap();
    assert_eq!(
        expect_trap(run.call(&mut store, 1)).code,
        TrapCode::UnreachableCodeReached
    );
    let e = run.call(&mut store, 2).unwrap_err();
    assert_eq!(e.to_string(), "host refused 2");
    let data = store.into_data();
    assert_eq!(data.calls, 3);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert!(ExternRef::ptr_eq(data.held.as_ref().unwrap(), &held));
    drop(data);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(held.strong_count(), 1);
}

// ----- 5. globals of every type -----

#[test]
fn globals_of_every_type_round_trip_between_host_and_wasm() {
    let m = module(
        r#"(module
             (import "env" "v" (global $v (mut v128)))
             (import "env" "e" (global $e (mut externref)))
             (import "env" "f" (global $f (mut funcref)))
             (import "env" "d" (global $d f64))
             (func $seven (export "seven") (result i32) (i32.const 7))
             (elem declare func $seven)
             (func (export "bump")
               (global.set $v (i32x4.add (global.get $v) (v128.const i32x4 1 2 3 4)))
               (global.set $f (ref.func $seven)))
             (func (export "lane") (param i32) (result i32)
               (i32x4.extract_lane 3 (global.get $v)))
             (func (export "call_f") (result i32)
               (if (result i32) (ref.is_null (global.get $f))
                 (then (i32.const 0))
                 (else (i32.const 1))))
             (func (export "get_e") (result externref) (global.get $e))
             (func (export "d") (result f64) (global.get $d)))"#,
        Bounds::Guard,
    );
    let mut store = Store::new(engine(), ());
    let g = |store: &mut Store<()>, ty, mutable, v| {
        Global::new(store, GlobalType { ty, mutable }, v).unwrap()
    };
    let lanes0: [u32; 4] = [u32::MAX, 1, 2, 3];
    let bits0 = lanes0
        .iter()
        .enumerate()
        .fold(0u128, |acc, (k, l)| acc | (u128::from(*l) << (32 * k)));
    let v = g(&mut store, ValType::V128, true, Val::V128(bits0));
    let r = ExternRef::new("hello");
    let e = g(
        &mut store,
        ValType::ExternRef,
        true,
        Val::ExternRef(Some(r.clone())),
    );
    let f = g(&mut store, ValType::FuncRef, true, Val::FuncRef(None));
    let d = g(&mut store, ValType::F64, false, Val::from(2.5f64));
    let i = Instance::new(&mut store, &m, &[v.into(), e.into(), f.into(), d.into()]).unwrap();
    assert_eq!(call_i32(&mut store, &i, "call_f", &[]).unwrap(), 0);
    i.get_func(&mut store, "bump")
        .unwrap()
        .call(&mut store, &[], &mut [])
        .unwrap();
    // (MAX, 1, 2, 3) + (1, 2, 3, 4) lane-wise, each lane wrapping.
    let Val::V128(bits) = v.get(&mut store) else {
        panic!("not a v128");
    };
    let lanes: Vec<u32> = (0..4).map(|k| (bits >> (32 * k)) as u32).collect();
    assert_eq!(lanes, [0, 3, 5, 7]);
    assert_eq!(call_i32(&mut store, &i, "lane", &[Val::I32(0)]).unwrap(), 7);
    let Val::FuncRef(Some(seven)) = f.get(&mut store) else {
        panic!("funcref global not set by Wasm");
    };
    let mut out = [Val::I32(0)];
    seven.call(&mut store, &[], &mut out).unwrap();
    assert_eq!(out[0].i32(), Some(7));
    assert_eq!(call_i32(&mut store, &i, "call_f", &[]).unwrap(), 1);
    let get_e = i
        .get_typed_func::<(), Option<ExternRef>>(&mut store, "get_e")
        .unwrap();
    assert!(ExternRef::ptr_eq(
        &get_e.call(&mut store, ()).unwrap().unwrap(),
        &r
    ));
    let r2 = ExternRef::new(2u32);
    e.set(&mut store, Val::ExternRef(Some(r2.clone()))).unwrap();
    assert_eq!(r.strong_count(), 1, "the global let go of the old value");
    assert!(ExternRef::ptr_eq(
        &get_e.call(&mut store, ()).unwrap().unwrap(),
        &r2
    ));
    let dfun = i.get_typed_func::<(), f64>(&mut store, "d").unwrap();
    assert_eq!(dfun.call(&mut store, ()).unwrap(), 2.5);
    assert!(d.set(&mut store, Val::from(1.0f64)).is_err());
    // A global's type errors name both types.
    let msg = v.set(&mut store, Val::I64(0)).unwrap_err().to_string();
    assert!(msg.contains("v128") && msg.contains("i64"), "{msg}");
    // Imported with the wrong mutability: refused.
    let e2 = Instance::new(&mut store, &m, &[v.into(), e.into(), f.into(), v.into()]).unwrap_err();
    assert!(e2.to_string().contains("env::d"), "{e2}");
}

// ----- 6. module descriptors -----

#[test]
fn module_descriptors_cover_every_kind_and_index_type() {
    let m = Module::from_bytes(
        engine(),
        &compile_with(
            r#"(module
                 (import "i" "f" (func (param i64 f32) (result v128)))
                 (import "i" "m64" (memory i64 2 10))
                 (import "i" "t64" (table i64 3 externref))
                 (import "i" "g" (global (mut funcref)))
                 (memory (export "m32") 1 2)
                 (memory (export "m64e") i64 0)
                 (table (export "t") 5 7 funcref)
                 (table (export "t64e") i64 1 funcref)
                 (global (export "gc") f32 (f32.const 1))
                 (func (export "f") (param i32) (result i64 i64)
                   (i64.const 0) (i64.const 1)))"#,
            &CompileOptions::default(),
        ),
    )
    .unwrap();
    let imports: Vec<(String, String, ExternType)> = m
        .imports()
        .into_iter()
        .map(|i| (i.module, i.name, i.ty))
        .collect();
    assert_eq!(imports.len(), 4);
    assert_eq!(
        imports[0].2,
        ExternType::Func(functype(&[ValType::I64, ValType::F32], &[ValType::V128]))
    );
    assert_eq!(
        imports[1].2,
        ExternType::Memory(MemoryType {
            min: 2,
            max: Some(10),
            memory64: true,
            shared: false
        })
    );
    assert_eq!(
        imports[2].2,
        ExternType::Table(TableType {
            elem: RefType::ExternRef,
            min: 3,
            max: None,
            table64: true
        })
    );
    assert_eq!(
        imports[3].2,
        ExternType::Global(global_ty(ValType::FuncRef, true))
    );
    let exports: Vec<(String, ExternType)> =
        m.exports().into_iter().map(|e| (e.name, e.ty)).collect();
    let names: Vec<&str> = exports.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["m32", "m64e", "t", "t64e", "gc", "f"]);
    assert!(matches!(
        exports[1].1,
        ExternType::Memory(MemoryType {
            memory64: true,
            min: 0,
            ..
        })
    ));
    assert!(matches!(
        exports[2].1,
        ExternType::Table(TableType {
            min: 5,
            max: Some(7),
            table64: false,
            ..
        })
    ));
    assert!(matches!(
        exports[3].1,
        ExternType::Table(TableType { table64: true, .. })
    ));
    assert_eq!(
        exports[5].1,
        ExternType::Func(functype(&[ValType::I32], &[ValType::I64, ValType::I64]))
    );
}

// ----- 7. interruption reset from host functions and other threads -----

const SPIN: &str = r#"
(module
  (import "host" "tick" (func $tick (param i32) (result i32)))
  (func (export "spin") (param $n i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (call $tick (local.get $i))))
    (local.get $i))
  (func (export "forever") (loop $l (br $l))))
"#;

/// A host function refuelling its caller keeps a metered loop going past
/// its first allowance; one that stops refuelling lets it run out; the
/// store then runs calls again.
#[test]
fn a_host_function_refuels_and_extends_the_deadline_of_its_caller() {
    let engine = Engine::default();
    let bytes = compile_with(
        SPIN,
        &CompileOptions {
            interruption: Interruption {
                epochs: true,
                fuel: true,
            },
            ..CompileOptions::default()
        },
    );
    let m = Module::from_bytes(&engine, &bytes).unwrap();
    let mut l = Linker::<u32>::new(&engine);
    let eng = engine.clone();
    l.func_wrap(
        "host",
        "tick",
        move |mut c: Caller<'_, u32>, i: i32| -> anyhow::Result<i32> {
            let limit = *c.data() as i32;
            if i < limit {
                // Plenty for one more round, and a deadline one tick away
                // after ticking the engine twice.
                c.set_fuel(100)?;
                eng.increment_epoch();
                c.set_epoch_deadline(1)?;
            }
            Ok(1)
        },
    )
    .unwrap();
    let mut store = Store::new(&engine, 10_000u32);
    store.set_fuel(100).unwrap();
    store.set_epoch_deadline(1).unwrap();
    let i = l.instantiate(&mut store, &m).unwrap();
    let spin = i.get_typed_func::<i32, i32>(&mut store, "spin").unwrap();
    let t = expect_trap(spin.call(&mut store, 0));
    // The fuel ran out first (each round costs less than 100, but once
    // `i` reaches the limit nobody refuels), or the epoch reached the
    // deadline: either way, only after the limit.
    assert!(
        matches!(t.code, TrapCode::OutOfFuel | TrapCode::Interrupted),
        "{t:?}"
    );
    assert!(store.get_fuel().unwrap() < 100);
    *store.data_mut() = 0;
    store.set_fuel(1_000_000).unwrap();
    store.set_epoch_deadline(1).unwrap();
    // After the interruption, the store runs other calls normally.
    let forever = i.get_typed_func::<(), ()>(&mut store, "forever").unwrap();
    assert_eq!(
        expect_trap(forever.call(&mut store, ())).code,
        TrapCode::OutOfFuel
    );
}

/// Many threads ticking one engine's epoch while stores on other threads
/// run loops with deadlines: every loop is interrupted, each store then
/// runs a short call; no tick is lost (the counter is exact).
#[test]
fn increment_epoch_from_many_threads_interrupts_every_store() {
    let engine = Engine::default();
    let bytes = compile_with(
        SPIN,
        &CompileOptions {
            interruption: Interruption {
                epochs: true,
                fuel: false,
            },
            ..CompileOptions::default()
        },
    );
    let m = Module::from_bytes(&engine, &bytes).unwrap();
    let mut l = Linker::<()>::new(&engine);
    l.func_wrap("host", "tick", |i: i32| (i < 10) as i32)
        .unwrap();
    let pre = l.instantiate_pre(&m).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tickers: Vec<_> = (0..4)
        .map(|_| {
            let (engine, stop) = (engine.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    engine.increment_epoch();
                    n += 1;
                    std::thread::yield_now();
                }
                n
            })
        })
        .collect();
    let runners: Vec<_> = (0..3)
        .map(|_| {
            let (engine, pre, done) = (engine.clone(), pre.clone(), done.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let i = pre.instantiate(&mut store).unwrap();
                let forever = i.get_typed_func::<(), ()>(&mut store, "forever").unwrap();
                let spin = i.get_typed_func::<i32, i32>(&mut store, "spin").unwrap();
                for _ in 0..20 {
                    store.set_epoch_deadline(3).unwrap();
                    let t = expect_trap(forever.call(&mut store, ()));
                    assert_eq!(t.code, TrapCode::Interrupted);
                    store.set_epoch_deadline(u64::MAX).unwrap();
                    assert_eq!(spin.call(&mut store, 0).unwrap(), 10);
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for r in runners {
        r.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let ticks: u64 = tickers.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(done.load(Ordering::SeqCst), 3);
    // The engine counted every tick: a deadline `ticks` ahead of zero is
    // already reached, one ahead of the count is not.
    let mut store = Store::new(&engine, ());
    let i = pre.instantiate(&mut store).unwrap();
    let spin = i.get_typed_func::<i32, i32>(&mut store, "spin").unwrap();
    store.set_epoch_deadline(1).unwrap();
    assert_eq!(spin.call(&mut store, 0).unwrap(), 10);
    assert!(ticks > 0);
}

// ----- 8. the limiter -----

/// A limiter that errors (rather than refusing) on growth past
/// `err_above` bytes/elements and counts its calls.
struct ErrLimiter {
    err_above: usize,
    asked: usize,
}

impl ResourceLimiter for ErrLimiter {
    fn memory_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> anyhow::Result<bool> {
        self.asked += 1;
        anyhow::ensure!(desired <= self.err_above, "limiter error: memory {desired}");
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> anyhow::Result<bool> {
        self.asked += 1;
        anyhow::ensure!(desired <= self.err_above, "limiter error: table {desired}");
        Ok(true)
    }
}

/// A limiter's error from the host's `Memory::grow` or `Table::grow`
/// reaches the host as that error; from Wasm's `memory.grow` and
/// `table.grow` it stops the Wasm and reaches the caller as that error (as
/// in Wasmtime; a refusal would be -1); nothing grew either way, and the
/// store runs on.
#[test]
fn limiter_errors_fail_growth_without_growing() {
    let m = module(
        r#"(module
             (memory (export "mem") 1)
             (table (export "tab") 1 funcref)
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
             (func (export "tgrow") (param i32) (result i32)
               (table.grow (ref.null func) (local.get 0))))"#,
        Bounds::Guard,
    );
    let mut store = Store::new(
        engine(),
        ErrLimiter {
            err_above: 2 * 65536,
            asked: 0,
        },
    );
    store.limiter(|l| l);
    let i = Instance::new(&mut store, &m, &[]).unwrap();
    let mem = i.get_memory(&mut store, "mem").unwrap();
    let e = mem.grow(&mut store, 5).unwrap_err();
    assert!(e.to_string().contains("limiter error: memory"), "{e}");
    assert_eq!(mem.size(&store), 1);
    let grow = i.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
    let e = grow.call(&mut store, 5).unwrap_err();
    assert!(e.to_string().contains("limiter error: memory"), "{e}");
    assert_eq!(mem.size(&store), 1);
    assert_eq!(grow.call(&mut store, 1).unwrap(), 1);
    assert_eq!(mem.size(&store), 2);
    let tgrow = i.get_typed_func::<i32, i32>(&mut store, "tgrow").unwrap();
    let e = tgrow.call(&mut store, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("limiter error: table"), "{e}");
    let tab = i.get_table(&mut store, "tab").unwrap();
    // The limiter's own error, as for `Memory::grow` (it was a bare
    // "failed to grow table").
    let e = tab
        .grow(&mut store, 1 << 20, Val::FuncRef(None))
        .unwrap_err();
    assert!(e.to_string().contains("limiter error: table"), "{e}");
    assert_eq!(tab.size(&store), 1);
    assert!(store.data().asked >= 5);
    // Growing by zero does not ask the limiter and succeeds.
    let asked = store.data().asked;
    assert_eq!(mem.grow(&mut store, 0).unwrap(), 2);
    assert_eq!(grow.call(&mut store, 0).unwrap(), 2);
    assert_eq!(store.data().asked, asked);
}

// ----- 9. typed functions -----

/// Typed views name both types when they do not fit; multi-value results
/// come back as tuples, from Wasm and from host functions alike.
#[test]
fn typed_functions_with_many_results_and_clear_mismatches() {
    let m = module(
        r#"(module
             (import "h" "swap" (func $swap (param i64 f64 i32) (result i32 f64 i64)))
             (func (export "via") (param i64 f64 i32) (result i32 f64 i64)
               (call $swap (local.get 0) (local.get 1) (local.get 2)))
             (func (export "many") (result i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)
               (i32.const 0) (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4)
               (i32.const 5) (i32.const 6) (i32.const 7) (i32.const 8) (i32.const 9)))"#,
        Bounds::Guard,
    );
    let mut l = Linker::<()>::new(engine());
    l.func_wrap("h", "swap", |a: i64, b: f64, c: i32| (c, b, a))
        .unwrap();
    let mut store = Store::new(engine(), ());
    let i = l.instantiate(&mut store, &m).unwrap();
    let via = i
        .get_typed_func::<(i64, f64, i32), (i32, f64, i64)>(&mut store, "via")
        .unwrap();
    assert_eq!(
        via.call(&mut store, (i64::MIN, -0.5, 7)).unwrap(),
        (7, -0.5, i64::MIN)
    );
    let many = i.get_func(&mut store, "many").unwrap();
    let mut out = vec![Val::I32(-1); 10];
    many.call(&mut store, &[], &mut out).unwrap();
    let got: Vec<i32> = out.iter().map(|v| v.i32().unwrap()).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    let e = i
        .get_typed_func::<(i32,), i32>(&mut store, "via")
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("i64, f64, i32") && msg.contains("(i32) -> i32") || msg.contains("i32"),
        "{msg}"
    );
    assert!(msg.contains("expected") && msg.contains("found"), "{msg}");
    // A typed view of a memory export name: an error, not a panic.
    let e = i.get_typed_func::<(), ()>(&mut store, "nope").unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

// ----- 10. traps and errors caught inside host functions -----

const CATCH: &str = r#"
(module
  (import "host" "try" (func $try (param i32) (result i32)))
  (memory (export "mem") 1)
  (global $depth (mut i32) (i32.const 0))
  (func (export "inner") (param i32) (result i32)
    (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
    (if (i32.eq (local.get 0) (i32.const 1)) (then unreachable))
    (if (i32.eq (local.get 0) (i32.const 2))
      (then (drop (i32.load (i32.const -1)))))
    (if (i32.eq (local.get 0) (i32.const 3))
      (then (return (call $try (i32.const 1)))))
    (i32.const 100))
  (func (export "outer") (param i32) (result i32)
    (local $x i32)
    (local.set $x (i32.const 5))
    (i32.store (i32.const 16) (i32.const 77))
    ;; The host calls `inner` back, which may trap; the host catches it.
    (i32.add
      (i32.add (call $try (local.get 0)) (local.get $x))
      (i32.load (i32.const 16))))
  (func (export "depth") (result i32) (global.get $depth)))
"#;

/// A host function calling back into Wasm that traps, and returning
/// normally: the outer Wasm frame continues with its locals and memory
/// intact, and the trap reached the host function as an error it could
/// inspect.
#[test]
fn a_trap_caught_by_a_host_function_lets_the_outer_wasm_continue() {
    for b in BOTH {
        let m = module(CATCH, b);
        let mut l = Linker::<Vec<TrapCode>>::new(engine());
        l.func_wrap(
            "host",
            "try",
            |mut c: Caller<'_, Vec<TrapCode>>, k: i32| -> anyhow::Result<i32> {
                let inner = c.get_export("inner").unwrap().into_func().unwrap();
                let inner = inner.typed::<i32, i32>(&c)?;
                match inner.call(&mut c, k) {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        let t = e.downcast_ref::<Trap>().expect("a trap");
                        c.data_mut().push(t.code);
                        Ok(-1)
                    }
                }
            },
        )
        .unwrap();
        let mut store = Store::new(engine(), Vec::new());
        let i = l.instantiate(&mut store, &m).unwrap();
        let outer = i.get_typed_func::<i32, i32>(&mut store, "outer").unwrap();
        assert_eq!(outer.call(&mut store, 0).unwrap(), 100 + 5 + 77, "{b:?}");
        assert_eq!(outer.call(&mut store, 1).unwrap(), -1 + 5 + 77, "{b:?}");
        assert_eq!(outer.call(&mut store, 2).unwrap(), -1 + 5 + 77, "{b:?}");
        // Nested twice: the innermost trap is caught by the innermost host
        // frame; the middle Wasm frame returns its -1 normally.
        assert_eq!(outer.call(&mut store, 3).unwrap(), -1 + 5 + 77, "{b:?}");
        assert_eq!(
            store.data(),
            &[
                TrapCode::UnreachableCodeReached,
                TrapCode::MemoryOutOfBounds,
                TrapCode::UnreachableCodeReached
            ],
            "{b:?}"
        );
        let depth = i.get_typed_func::<(), i32>(&mut store, "depth").unwrap();
        assert_eq!(depth.call(&mut store, ()).unwrap(), 5, "{b:?}");
    }
}

/// The host's own error type comes back through two levels of Wasm and
/// host frames: `downcast_ref` finds it, `source()` is it, the Display is
/// its message; a trap's Display names the trap.
#[test]
fn errors_keep_their_type_and_text_through_nested_calls() {
    #[derive(Debug)]
    struct MyError(u32);
    impl std::fmt::Display for MyError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "my error {}", self.0)
        }
    }
    impl std::error::Error for MyError {}
    let m = module(CATCH, Bounds::Guard);
    let mut l = Linker::<()>::new(engine());
    l.func_wrap(
        "host",
        "try",
        |mut c: Caller<'_, ()>, k: i32| -> anyhow::Result<i32> {
            if k == 7 {
                return Err(MyError(7).into());
            }
            // outer(k - 1) calls back here: from 9, the error is raised
            // two Wasm/host levels down, at 7.
            let outer = c.get_export("outer").unwrap().into_func().unwrap();
            let mut r = [Val::I32(0)];
            outer.call(&mut c, &[Val::I32(k - 1)], &mut r)?;
            Ok(r[0].i32().unwrap())
        },
    )
    .unwrap();
    let mut store = Store::new(engine(), ());
    let i = l.instantiate(&mut store, &m).unwrap();
    let e = call_i32(&mut store, &i, "outer", &[Val::I32(9)]).unwrap_err();
    assert_eq!(e.downcast_ref::<MyError>().map(|e| e.0), Some(7), "{e:?}");
    assert_eq!(e.to_string(), "my error 7");
    let src = std::error::Error::source(&e).expect("a source");
    assert_eq!(src.to_string(), "my error 7");
    assert!(e.as_trap().is_none());
    // A trap: Display names it, downcast finds it.
    let inner = i.get_typed_func::<i32, i32>(&mut store, "inner").unwrap();
    let e = inner.call(&mut store, 1).unwrap_err();
    assert!(e.to_string().contains("unreachable"), "{e}");
    assert_eq!(
        e.downcast_ref::<Trap>().map(|t| t.code),
        Some(TrapCode::UnreachableCodeReached)
    );
    assert!(e.downcast_ref::<MyError>().is_none());
    // Through anyhow (what a `main` returning anyhow::Result would do).
    let a: anyhow::Error = inner.call(&mut store, 2).unwrap_err().into();
    assert!(format!("{a:#}").contains("out of bounds"), "{a:#}");
}

/// A host function of store A runs Wasm of store B (kept in A's data):
/// traps in B stop at B's entry, a trap in A after B returned is A's, and
/// both stores keep working; B's panics cross A's Wasm frames to A's host.
#[test]
fn wasm_of_another_store_runs_inside_a_host_function() {
    let m = module(CATCH, Bounds::Guard);
    let mut lb = Linker::<Vec<TrapCode>>::new(engine());
    lb.func_wrap("host", "try", |k: i32| -> i32 {
        assert!(k != 42, "panic in store B");
        k
    })
    .unwrap();
    let mut b = Store::new(engine(), Vec::new());
    let ib = lb.instantiate(&mut b, &m).unwrap();
    let b_inner = ib.get_typed_func::<i32, i32>(&mut b, "inner").unwrap();
    let b_outer = ib.get_typed_func::<i32, i32>(&mut b, "outer").unwrap();

    type A = (Store<Vec<TrapCode>>, Vec<String>);
    let mut la = Linker::<A>::new(engine());
    la.func_wrap(
        "host",
        "try",
        move |mut c: Caller<'_, A>, k: i32| -> anyhow::Result<i32> {
            let (b, log) = c.data_mut();
            if k == 42 {
                // Panics in B's host function, under A's Wasm.
                return Ok(b_outer.call(&mut *b, 42)?);
            }
            match b_inner.call(&mut *b, k) {
                Ok(v) => Ok(v),
                Err(e) => {
                    log.push(e.to_string());
                    Ok(-1)
                }
            }
        },
    )
    .unwrap();
    let mut a = Store::new(engine(), (b, Vec::new()));
    let ia = la.instantiate(&mut a, &m).unwrap();
    let a_outer = ia.get_typed_func::<i32, i32>(&mut a, "outer").unwrap();
    let a_inner = ia.get_typed_func::<i32, i32>(&mut a, "inner").unwrap();
    assert_eq!(a_outer.call(&mut a, 0).unwrap(), 100 + 82);
    assert_eq!(a_outer.call(&mut a, 1).unwrap(), -1 + 82);
    assert_eq!(a_outer.call(&mut a, 2).unwrap(), -1 + 82);
    assert_eq!(a.data().1.len(), 2);
    assert!(a.data().1[1].contains("out of bounds"), "{:?}", a.data().1);
    // A's own trap after B ran.
    assert_eq!(
        expect_trap(a_inner.call(&mut a, 2)).code,
        TrapCode::MemoryOutOfBounds
    );
    // A panic in B's host function, under B's Wasm, under A's host
    // function, under A's Wasm: reaches this frame.
    let p = catch_unwind(AssertUnwindSafe(|| a_outer.call(&mut a, 42))).unwrap_err();
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned());
    assert_eq!(msg.as_deref(), Some("panic in store B"));
    // Both stores still work.
    assert_eq!(a_outer.call(&mut a, 0).unwrap(), 182);
    let (mut b, _) = a.into_data();
    let b_outer = ib.get_typed_func::<i32, i32>(&mut b, "outer").unwrap();
    assert_eq!(b_outer.call(&mut b, 3).unwrap(), 3 + 5 + 77);
}

// ----- 11. memories of both index types from the host -----

#[test]
fn host_memories_of_both_index_types_are_usable_by_wasm() {
    for b in BOTH {
        let m = module(
            r#"(module
                 (import "env" "m64" (memory i64 1 4))
                 (import "env" "m32" (memory 1 4))
                 (func (export "copy") (param i64 i32) (result i32)
                   ;; m64[p64] (u8) -> m32[p32], returns m32 size
                   (i32.store8 1 (local.get 1) (i32.load8_u 0 (local.get 0)))
                   (memory.size 1))
                 (func (export "size64") (result i64) (memory.size 0))
                 (func (export "grow64") (param i64) (result i64)
                   (memory.grow 0 (local.get 0))))"#,
            b,
        );
        let mut store = Store::new(engine(), ());
        let ty = |memory64| MemoryType {
            min: 1,
            max: Some(4),
            memory64,
            shared: false,
        };
        let m64 = Memory::new(&mut store, ty(true)).unwrap();
        let m32 = Memory::new(&mut store, ty(false)).unwrap();
        assert!(m64.ty(&store).memory64);
        // Swapped: refused, naming the import.
        let e = Instance::new(&mut store, &m, &[m32.into(), m64.into()]).unwrap_err();
        assert!(e.to_string().contains("env::m64"), "{e}");
        let i = Instance::new(&mut store, &m, &[m64.into(), m32.into()]).unwrap();
        m64.write(&mut store, 65535, &[0xab]).unwrap();
        let copy = i
            .get_typed_func::<(i64, i32), i32>(&mut store, "copy")
            .unwrap();
        assert_eq!(copy.call(&mut store, (65535, 3)).unwrap(), 1);
        assert_eq!(m32.data(&store)[3], 0xab);
        // A 64-bit address past the end (and above 4 GiB) traps.
        for addr in [65536i64, 1 << 32, -1, i64::MIN] {
            let t = expect_trap(copy.call(&mut store, (addr, 0)));
            assert_eq!(t.code, TrapCode::MemoryOutOfBounds, "{b:?} {addr}");
        }
        let grow = i.get_typed_func::<i64, i64>(&mut store, "grow64").unwrap();
        assert_eq!(grow.call(&mut store, 3).unwrap(), 1);
        assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
        assert_eq!(grow.call(&mut store, i64::MAX).unwrap(), -1);
        assert_eq!(m64.size(&store), 4);
        assert_eq!(m64.data_size(&store), 4 * 65536);
        assert_eq!(copy.call(&mut store, (4 * 65536 - 1, 0)).unwrap(), 1);
        // Host growth past the maximum of a 64-bit memory: an error.
        assert!(m64.grow(&mut store, 1).is_err());
        assert_eq!(m64.grow(&mut store, 0).unwrap(), 4);
    }
}

// ----- 12. host-made memories and tables under the limiter -----

/// A limiter allowing `n` memories and tables and at most `max_elems`
/// elements per table.
struct CountLimiter {
    n: usize,
    max_elems: usize,
    table_asks: usize,
}

impl ResourceLimiter for CountLimiter {
    fn memory_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> anyhow::Result<bool> {
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> anyhow::Result<bool> {
        self.table_asks += 1;
        Ok(desired <= self.max_elems)
    }
    fn memories(&self) -> usize {
        self.n
    }
    fn tables(&self) -> usize {
        self.n
    }
}

/// `Memory::new` and `Table::new` are bound by the limiter's counts (the
/// store may not hold more memories or tables than it allows, as for
/// instantiation) and a new table's size by `table_growing`, as in
/// Wasmtime.
#[test]
fn host_made_memories_and_tables_respect_the_limiter() {
    let mut store = Store::new(
        engine(),
        CountLimiter {
            n: 2,
            max_elems: 100,
            table_asks: 0,
        },
    );
    store.limiter(|l| l);
    let mty = MemoryType {
        min: 1,
        max: None,
        memory64: false,
        shared: false,
    };
    let tty = |min| TableType {
        elem: RefType::FuncRef,
        min,
        max: None,
        table64: false,
    };
    Memory::new(&mut store, mty).unwrap();
    Memory::new(&mut store, mty).unwrap();
    let e = Memory::new(&mut store, mty).unwrap_err();
    assert!(e.to_string().contains("allows 2 memories"), "{e}");
    // A table larger than the limiter allows: refused, after asking it.
    let e = Table::new(&mut store, tty(1000), Val::FuncRef(None)).unwrap_err();
    assert!(e.to_string().contains("limiter"), "{e}");
    assert_eq!(store.data().table_asks, 1);
    Table::new(&mut store, tty(100), Val::FuncRef(None)).unwrap();
    Table::new(&mut store, tty(0), Val::FuncRef(None)).unwrap();
    let e = Table::new(&mut store, tty(1), Val::FuncRef(None)).unwrap_err();
    assert!(e.to_string().contains("allows 2 tables"), "{e}");
    // Instantiating a module with a memory: refused by the same count.
    let m = module("(module (memory 1))", Bounds::Guard);
    let e = Instance::new(&mut store, &m, &[]).unwrap_err();
    assert!(e.to_string().contains("allows 2 memories"), "{e}");
}

// ----- 13. 64-bit tables and memories: indices above 2^32 -----

/// A hostile guest's 64-bit indices whose low 32 bits are in bounds
/// (`1 << 32`, `(1 << 32) + 1`) must trap, not wrap to element 0 or 1:
/// for `call_indirect`, `table.get/set/fill/copy/grow`, and memory
/// accesses and bulk operations of a 64-bit memory.
#[test]
fn indices_above_four_gib_do_not_wrap_in_64_bit_tables_and_memories() {
    for b in BOTH {
        let m = module(
            r#"(module
                 (type $t (func (result i32)))
                 (table $tab (export "tab") i64 2 funcref)
                 (table $et i64 2 externref)
                 (memory $mem (export "mem") i64 1)
                 (elem (table $tab) (i64.const 0) func $a $b)
                 (func $a (result i32) (i32.const 1))
                 (func $b (result i32) (i32.const 2))
                 (func (export "ci") (param i64) (result i32)
                   (call_indirect $tab (type $t) (local.get 0)))
                 (func (export "tget") (param i64) (result i32)
                   (ref.is_null (table.get $tab (local.get 0))))
                 (func (export "tset") (param i64)
                   (table.set $et (local.get 0) (ref.null extern)))
                 (func (export "tfill") (param i64 i64)
                   (table.fill $et (local.get 0) (ref.null extern) (local.get 1)))
                 (func (export "tcopy") (param i64 i64 i64)
                   (table.copy $tab $tab (local.get 0) (local.get 1) (local.get 2)))
                 (func (export "tgrow") (param i64) (result i64)
                   (table.grow $et (ref.null extern) (local.get 0)))
                 (func (export "load") (param i64) (result i32)
                   (i32.load8_u (local.get 0)))
                 (func (export "store") (param i64)
                   (i32.store8 (local.get 0) (i32.const 9)))
                 (func (export "fill") (param i64 i64)
                   (memory.fill (local.get 0) (i32.const 7) (local.get 1)))
                 (func (export "copy") (param i64 i64 i64)
                   (memory.copy (local.get 0) (local.get 1) (local.get 2))))"#,
            b,
        );
        let mut store = Store::new(engine(), ());
        let i = Instance::new(&mut store, &m, &[]).unwrap();
        let big = 1i64 << 32;
        let ci = i.get_typed_func::<i64, i32>(&mut store, "ci").unwrap();
        assert_eq!(ci.call(&mut store, 1).unwrap(), 2);
        for idx in [big, big + 1, -1, i64::MIN] {
            let t = expect_trap(ci.call(&mut store, idx));
            assert_eq!(t.code, TrapCode::UndefinedElement, "{b:?} ci {idx}");
        }
        let tget = i.get_typed_func::<i64, i32>(&mut store, "tget").unwrap();
        let tset = i.get_typed_func::<i64, ()>(&mut store, "tset").unwrap();
        assert_eq!(tget.call(&mut store, 1).unwrap(), 0);
        for idx in [big, big + 1, -1] {
            let t = expect_trap(tget.call(&mut store, idx));
            assert_eq!(t.code, TrapCode::TableOutOfBounds, "{b:?} tget {idx}");
            let t = expect_trap(tset.call(&mut store, idx));
            assert_eq!(t.code, TrapCode::TableOutOfBounds, "{b:?} tset {idx}");
        }
        let tfill = i
            .get_typed_func::<(i64, i64), ()>(&mut store, "tfill")
            .unwrap();
        tfill.call(&mut store, (0, 2)).unwrap();
        for (at, n) in [(0, big), (big, 0), (1, big + 1), (0, -1)] {
            let t = expect_trap(tfill.call(&mut store, (at, n)));
            assert_eq!(t.code, TrapCode::TableOutOfBounds, "{b:?} tfill {at} {n}");
        }
        let tcopy = i
            .get_typed_func::<(i64, i64, i64), ()>(&mut store, "tcopy")
            .unwrap();
        for (d, s, n) in [(0, 0, big), (big, 0, 1), (0, big, 1), (1, 0, big + 1)] {
            let t = expect_trap(tcopy.call(&mut store, (d, s, n)));
            assert_eq!(
                t.code,
                TrapCode::TableOutOfBounds,
                "{b:?} tcopy {d} {s} {n}"
            );
        }
        // The table is unchanged: slot 0 still $a, slot 1 $b.
        assert_eq!(ci.call(&mut store, 0).unwrap(), 1);
        assert_eq!(ci.call(&mut store, 1).unwrap(), 2);
        let tgrow = i.get_typed_func::<i64, i64>(&mut store, "tgrow").unwrap();
        for d in [big, big + 1, i64::MAX, -1] {
            assert_eq!(tgrow.call(&mut store, d).unwrap(), -1, "{b:?} tgrow {d}");
        }
        assert_eq!(tgrow.call(&mut store, 1).unwrap(), 2);

        let load = i.get_typed_func::<i64, i32>(&mut store, "load").unwrap();
        let st = i.get_typed_func::<i64, ()>(&mut store, "store").unwrap();
        for addr in [big, big + 1, big + 65535, -1] {
            assert_eq!(
                expect_trap(load.call(&mut store, addr)).code,
                TrapCode::MemoryOutOfBounds,
                "{b:?} load {addr}"
            );
            assert_eq!(
                expect_trap(st.call(&mut store, addr)).code,
                TrapCode::MemoryOutOfBounds,
                "{b:?} store {addr}"
            );
        }
        let fill = i
            .get_typed_func::<(i64, i64), ()>(&mut store, "fill")
            .unwrap();
        let copy = i
            .get_typed_func::<(i64, i64, i64), ()>(&mut store, "copy")
            .unwrap();
        for (at, n) in [(0, big), (big, 1), (1, big), (0, -1)] {
            assert_eq!(
                expect_trap(fill.call(&mut store, (at, n))).code,
                TrapCode::MemoryOutOfBounds,
                "{b:?} fill {at} {n}"
            );
        }
        for (d, s, n) in [(0, 0, big), (big, 0, 1), (0, big, 1), (0, 1, big)] {
            assert_eq!(
                expect_trap(copy.call(&mut store, (d, s, n))).code,
                TrapCode::MemoryOutOfBounds,
                "{b:?} copy {d} {s} {n}"
            );
        }
        // Nothing was written.
        let mem = i.get_memory(&mut store, "mem").unwrap();
        assert!(mem.data(&store).iter().all(|&x| x == 0), "{b:?}");
        st.call(&mut store, 65535).unwrap();
        assert_eq!(load.call(&mut store, 65535).unwrap(), 9);
    }
}

// ----- 14. the caller of a host function; engines and stores mixed -----

/// A host function reached through another instance's table sees the
/// instance that called it (whose memory it reads), not the one that
/// imported it; called from the host, it has no instance.
#[test]
fn a_host_function_sees_the_instance_that_called_it() {
    let a = module(
        r#"(module
             (import "h" "which" (func $which (result i32)))
             (memory (export "mem") 1)
             (data (i32.const 0) "A")
             (func (export "run") (result i32) (call $which))
             (export "which" (func $which)))"#,
        Bounds::Guard,
    );
    let b = module(
        r#"(module
             (type $t (func (result i32)))
             (memory (export "mem") 1)
             (data (i32.const 0) "B")
             (table (export "tab") 1 funcref)
             (func (export "run") (result i32)
               (call_indirect (type $t) (i32.const 0))))"#,
        Bounds::Guard,
    );
    let mut l = Linker::<()>::new(engine());
    l.func_wrap("h", "which", |mut c: Caller<'_, ()>| -> i32 {
        match c.get_export("mem").and_then(Extern::into_memory) {
            Some(m) => i32::from(m.data(&c)[0]),
            None => -1,
        }
    })
    .unwrap();
    let mut store = Store::new(engine(), ());
    let ia = l.instantiate(&mut store, &a).unwrap();
    let ib = Instance::new(&mut store, &b, &[]).unwrap();
    let which = ia.get_func(&mut store, "which").unwrap();
    let tab = ib.get_table(&mut store, "tab").unwrap();
    tab.set(&mut store, 0, Val::FuncRef(Some(which))).unwrap();
    assert_eq!(
        call_i32(&mut store, &ia, "run", &[]).unwrap(),
        i32::from(b'A')
    );
    assert_eq!(
        call_i32(&mut store, &ib, "run", &[]).unwrap(),
        i32::from(b'B')
    );
    let mut out = [Val::I32(0)];
    which.call(&mut store, &[], &mut out).unwrap();
    assert_eq!(out[0].i32(), Some(-1));
}

/// Modules, linkers and `InstancePre`s of one engine used with stores of
/// another: clear errors, never a panic or a wrong instance.
#[test]
fn engines_do_not_mix() {
    let e1 = Engine::default();
    let e2 = Engine::default();
    let bytes = compile("(module (func (export \"f\")))", Bounds::Guard);
    let m1 = Module::from_bytes(&e1, &bytes).unwrap();
    let mut s2 = Store::new(&e2, ());
    let e = Instance::new(&mut s2, &m1, &[]).unwrap_err();
    assert!(e.to_string().contains("engine"), "{e}");
    let l1 = Linker::<()>::new(&e1);
    let e = l1.instantiate(&mut s2, &m1).unwrap_err();
    assert!(e.to_string().contains("engine"), "{e}");
    let pre = l1.instantiate_pre(&m1).unwrap();
    let e = pre.instantiate(&mut s2).unwrap_err();
    assert!(e.to_string().contains("engine"), "{e}");
    let l2 = Linker::<()>::new(&e2);
    let e = l2.instantiate_pre(&m1).unwrap_err();
    assert!(e.to_string().contains("engine"), "{e}");
    // A clone of an engine is the same engine.
    let mut s1 = Store::new(&e1.clone(), ());
    pre.instantiate(&mut s1).unwrap();
    // Engines made on another thread, modules loaded on a third.
    let e3 = std::thread::spawn(Engine::default).join().unwrap();
    let m3 = {
        let (e3, bytes) = (e3.clone(), bytes.clone());
        std::thread::spawn(move || Module::from_bytes(&e3, &bytes).unwrap())
            .join()
            .unwrap()
    };
    let mut s3 = Store::new(&e3, ());
    Instance::new(&mut s3, &m3, &[]).unwrap();
}

/// A start function that runs out of fuel, or past an epoch deadline,
/// fails the instantiation with that trap; the store then instantiates
/// and runs once refuelled.
#[test]
fn start_functions_are_interrupted_like_any_call() {
    let wat = r#"(module
                   (global $g (mut i32) (i32.const 0))
                   (func $start
                     (loop $l
                       (global.set $g (i32.add (global.get $g) (i32.const 1)))
                       (br_if $l (i32.lt_u (global.get $g) (i32.const 1000)))))
                   (start $start)
                   (func (export "g") (result i32) (global.get $g)))"#;
    let engine = Engine::default();
    for (epochs, fuel) in [(false, true), (true, false)] {
        let bytes = compile_with(
            wat,
            &CompileOptions {
                interruption: Interruption { epochs, fuel },
                ..CompileOptions::default()
            },
        );
        let m = Module::from_bytes(&engine, &bytes).unwrap();
        let mut store = Store::new(&engine, ());
        if fuel {
            store.set_fuel(100).unwrap();
        } else {
            store.set_epoch_deadline(0).unwrap();
        }
        let t = expect_trap(Instance::new(&mut store, &m, &[]));
        let want = if fuel {
            TrapCode::OutOfFuel
        } else {
            TrapCode::Interrupted
        };
        assert_eq!(t.code, want);
        if fuel {
            store.set_fuel(1_000_000).unwrap();
        } else {
            store.set_epoch_deadline(1_000).unwrap();
        }
        let i = Instance::new(&mut store, &m, &[]).unwrap();
        assert_eq!(call_i32(&mut store, &i, "g", &[]).unwrap(), 1000);
    }
}

// ----- 15. a host function re-entering its store on another thread -----

const REENTER: &str = r#"
(module
  (import "host" "away" (func $away (param externref i32) (result i32)))
  (func $rec (export "rec") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (i32.const 1)
        (call $rec (i32.sub (local.get 0) (i32.const 1)))))))
  (func (export "hold") (param $r externref) (param $n i32) (result externref)
    ;; $r lives only in this frame while the host runs elsewhere.
    (drop (call $away (ref.null extern) (local.get $n)))
    (local.get $r)))
"#;

fn sp() -> usize {
    let here = 0u8;
    &here as *const u8 as usize
}

/// Runs REENTER's `hold` on a thread of its own; its host function tries
/// `rec(10)` and `rec(1_000_000)` on another thread (through the `Caller`,
/// which is `Send`), whose stack lies above the store's thread's when
/// `other_above` (it reuses the cached stack of a thread that ended).
fn reenter_on_another_thread(other_above: bool) {
    let m = module(REENTER, Bounds::Guard);
    let mut l = Linker::<()>::new(engine());
    l.func_wrap(
        "host",
        "away",
        |mut c: Caller<'_, ()>, _: Option<ExternRef>, n: i32| -> anyhow::Result<i32> {
            let rec = c.get_export("rec").unwrap().into_func().unwrap();
            let rec = rec.typed::<i32, i32>(&c)?;
            let here = sp();
            let r = std::thread::scope(|s| {
                std::thread::Builder::new()
                    .stack_size(1 << 20)
                    .spawn_scoped(s, || {
                        println!("host thread sp {here:#x}, other thread sp {:#x}", sp());
                        let shallow = rec.call(&mut c, 10).map_err(|e| e.to_string());
                        let deep = rec.call(&mut c, n).map_err(|e| e.to_string());
                        // Cannot see the waiting frames: must not release
                        // what they hold.
                        c.gc();
                        (shallow, deep)
                    })
                    .unwrap()
                    .join()
                    .unwrap()
            });
            println!("other thread: {r:?}");
            for e in [r.0, r.1] {
                let e = e.expect_err("refused");
                assert!(e.contains("another thread"), "{e}");
            }
            // This thread still runs it.
            assert_eq!(rec.call(&mut c, 10)?, 10);
            Ok(0)
        },
    )
    .unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let early = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| ())
        .unwrap();
    if other_above {
        early.join().unwrap();
    }
    let runner = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            go_rx.recv().unwrap();
            let mut store = Store::new(engine(), ());
            let i = l.instantiate(&mut store, &m).unwrap();
            let hold = i
                .get_typed_func::<(Option<ExternRef>, i32), Option<ExternRef>>(&mut store, "hold")
                .unwrap();
            // Only the waiting Wasm frame (through the activations table)
            // holds this value while the other thread collects.
            let drops = Arc::new(AtomicUsize::new(0));
            let back = hold
                .call(
                    &mut store,
                    (Some(ExternRef::new(Counted(drops.clone()))), 1_000_000),
                )
                .unwrap()
                .unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 0, "freed under the frame");
            assert!(back.downcast_ref::<Counted>().is_some());
            drop(back);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            // After the call, the store runs on any thread.
            std::thread::spawn(move || {
                let rec = i.get_typed_func::<i32, i32>(&mut store, "rec").unwrap();
                assert_eq!(rec.call(&mut store, 10).unwrap(), 10);
            })
            .join()
            .unwrap();
        })
        .unwrap();
    go_tx.send(()).unwrap();
    runner.join().unwrap();
}

/// `Caller` is `Send` when the data is, so a host function can hand it
/// to a scoped thread and call Wasm of its store there while the calling
/// Wasm frame waits on this thread. The store's stack limit and its
/// chain of activations belong to the waiting thread: on a thread whose
/// stack lay above it, Wasm ran with no stack check and a deep recursion
/// overflowed that thread's stack and aborted the process ("has
/// overflowed its stack"); below it, every call was a stack-overflow
/// trap. Such a call is now refused with an error, and the store works
/// on every thread once its Wasm has returned.
#[test]
fn a_caller_moved_to_another_thread_cannot_reenter_wasm() {
    if let Some(job) = child_job() {
        match job.as_str() {
            "above" => reenter_on_another_thread(true),
            "below" => reenter_on_another_thread(false),
            _ => return,
        }
        println!("survived");
        return;
    }
    for job in ["above", "below"] {
        let out = run_child(
            module_path!(),
            "a_caller_moved_to_another_thread_cannot_reenter_wasm",
            job,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("survived"),
            "{job}: {}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ----- 16. wide signatures and recursion through instantiation -----

/// Host functions of 100 parameters and 40 results (i64, f64 and v128
/// mixed) called from Wasm and from the host, untyped, through the
/// trampolines' stack arguments: every value arrives in its place.
#[test]
fn host_functions_with_very_wide_signatures() {
    const P: usize = 100;
    const R: usize = 40;
    let ty_of = |k: usize| match k % 3 {
        0 => ValType::I64,
        1 => ValType::F64,
        _ => ValType::V128,
    };
    let wat_ty = |k: usize| match k % 3 {
        0 => "i64",
        1 => "f64",
        _ => "v128",
    };
    let params: Vec<ValType> = (0..P).map(ty_of).collect();
    let results: Vec<ValType> = (0..R).map(ty_of).collect();
    let val = |k: usize, salt: u64| -> Val {
        let x = (k as u64 + 1) * 0x0101_0101 + salt;
        match k % 3 {
            0 => Val::I64(x as i64),
            1 => Val::F64((x as f64).to_bits()),
            _ => Val::V128(u128::from(x) << 64 | u128::from(!x)),
        }
    };
    let same = |a: &Val, b: &Val| match (a, b) {
        (Val::I64(x), Val::I64(y)) => x == y,
        (Val::F64(x), Val::F64(y)) => x == y,
        (Val::V128(x), Val::V128(y)) => x == y,
        _ => false,
    };
    let ps = (0..P)
        .map(|k| format!("(param {})", wat_ty(k)))
        .collect::<String>();
    let rs = (0..R)
        .map(|k| format!("(result {})", wat_ty(k)))
        .collect::<String>();
    let gets = (0..P)
        .map(|k| format!("(local.get {k})"))
        .collect::<String>();
    let wat = format!(
        r#"(module
             (import "h" "wide" (func $wide {ps} {rs}))
             (func (export "via") {ps} {rs} (call $wide {gets})))"#
    );
    let m = module(&wat, Bounds::Guard);
    let mut l = Linker::<()>::new(engine());
    l.func_new("h", "wide", functype(&params, &results), move |_, p, r| {
        // Result k is parameter (P - 1 - 3j)'s value of the same type,
        // shifted by one: a mix-up of any slot shows.
        for (k, out) in r.iter_mut().enumerate() {
            *out = match &p[P - 1 - (P - 1 - k) % 3 - 3 * (k / 3)] {
                Val::I64(x) => Val::I64(x.wrapping_add(1)),
                Val::F64(x) => Val::F64(x ^ 1),
                Val::V128(x) => Val::V128(x.rotate_left(1)),
                other => anyhow::bail!("unexpected {other:?}"),
            };
        }
        Ok(())
    })
    .unwrap();
    let mut store = Store::new(engine(), ());
    let i = l.instantiate(&mut store, &m).unwrap();
    let args: Vec<Val> = (0..P).map(|k| val(k, 7)).collect();
    let expect: Vec<Val> = (0..R)
        .map(|k| match &args[P - 1 - (P - 1 - k) % 3 - 3 * (k / 3)] {
            Val::I64(x) => Val::I64(x.wrapping_add(1)),
            Val::F64(x) => Val::F64(x ^ 1),
            Val::V128(x) => Val::V128(x.rotate_left(1)),
            _ => unreachable!(),
        })
        .collect();
    for name in ["via"] {
        let f = i.get_func(&mut store, name).unwrap();
        let mut out: Vec<Val> = (0..R).map(|_| Val::I32(0)).collect();
        f.call(&mut store, &args, &mut out).unwrap();
        for k in 0..R {
            assert!(
                same(&out[k], &expect[k]),
                "{name} result {k}: {:?} vs {:?}",
                out[k],
                expect[k]
            );
            assert_eq!(out[k].ty(), ty_of(k));
        }
    }
    // The host function itself, from the host.
    let wide = l.get(&mut store, "h", "wide").unwrap().into_func().unwrap();
    let mut out: Vec<Val> = (0..R).map(|_| Val::I32(0)).collect();
    wide.call(&mut store, &args, &mut out).unwrap();
    assert!(out.iter().zip(&expect).all(|(a, b)| same(a, b)));
}

/// A start function whose host call instantiates the same module again:
/// the recursion ends in a stack-overflow trap (the Wasm frames between
/// count against the store's stack), which fails every level's
/// instantiation; the store works afterwards.
#[test]
fn instantiation_recursing_through_start_functions_ends_in_a_trap() {
    let m = module(
        r#"(module
             (import "h" "again" (func $again))
             (func $start (call $again))
             (start $start)
             (func (export "one") (result i32) (i32.const 1)))"#,
        Bounds::Guard,
    );
    /// A linker whose `h::again` instantiates `m` with a linker like it.
    fn again_linker(engine: &Engine, m: &Module, levels: &Arc<AtomicUsize>) -> Linker<()> {
        let mut l = Linker::<()>::new(engine);
        let (m, levels) = (m.clone(), levels.clone());
        l.func_new("h", "again", functype(&[], &[]), move |mut c, _, _| {
            levels.fetch_add(1, Ordering::SeqCst);
            let inner = again_linker(c.engine(), &m, &levels);
            inner.instantiate(&mut c, &m)?;
            Ok(())
        })
        .unwrap();
        l
    }
    let levels = Arc::new(AtomicUsize::new(0));
    let l = again_linker(engine(), &m, &levels);
    let mut store = Store::new(engine(), ());
    let e = l.instantiate(&mut store, &m).unwrap_err();
    let t = e.as_trap().unwrap_or_else(|| panic!("not a trap: {e}"));
    assert_eq!(t.code, TrapCode::StackOverflow);
    assert!(levels.load(Ordering::SeqCst) > 10);
    let one = module(
        "(module (func (export \"one\") (result i32) (i32.const 1)))",
        Bounds::Guard,
    );
    let i = Instance::new(&mut store, &one, &[]).unwrap();
    assert_eq!(call_i32(&mut store, &i, "one", &[]).unwrap(), 1);
}

/// `ref.func` of an imported linker host function hands the host a
/// `Func` it can call (typed and untyped) and put into another module's
/// table, where `call_indirect` reaches it with that module as caller.
#[test]
fn funcrefs_of_imported_host_functions_work_everywhere() {
    let a = module(
        r#"(module
             (import "h" "f" (func $f (param i32) (result i32)))
             (export "f" (func $f))
             (elem declare func $f)
             (func (export "get") (result funcref) (ref.func $f)))"#,
        Bounds::Guard,
    );
    let b = module(
        r#"(module
             (type $t (func (param i32) (result i32)))
             (table (export "tab") 1 funcref)
             (func (export "ci") (param i32) (result i32)
               (call_indirect (type $t) (local.get 0) (i32.const 0))))"#,
        Bounds::Guard,
    );
    let mut l = Linker::<u32>::new(engine());
    l.func_wrap("h", "f", |mut c: Caller<'_, u32>, x: i32| -> i32 {
        *c.data_mut() += 1;
        let from_wasm = c.instance().is_some() as i32;
        x * 10 + from_wasm
    })
    .unwrap();
    let mut store = Store::new(engine(), 0u32);
    let ia = l.instantiate(&mut store, &a).unwrap();
    let ib = l.instantiate(&mut store, &b).unwrap();
    let get = ia
        .get_typed_func::<(), Option<Func>>(&mut store, "get")
        .unwrap();
    let f = get.call(&mut store, ()).unwrap().expect("a funcref");
    assert_eq!(f.ty(&store), functype(&[ValType::I32], &[ValType::I32]));
    let typed = f.typed::<i32, i32>(&store).unwrap();
    assert_eq!(typed.call(&mut store, 4).unwrap(), 40);
    let mut r = [Val::I32(0)];
    f.call(&mut store, &[Val::I32(5)], &mut r).unwrap();
    assert_eq!(r[0].i32(), Some(50));
    let exported = ia.get_func(&mut store, "f").unwrap();
    assert_eq!(
        exported
            .typed::<i32, i32>(&store)
            .unwrap()
            .call(&mut store, 6)
            .unwrap(),
        60
    );
    let tab = ib.get_table(&mut store, "tab").unwrap();
    tab.set(&mut store, 0, Val::FuncRef(Some(f))).unwrap();
    let ci = ib.get_typed_func::<i32, i32>(&mut store, "ci").unwrap();
    assert_eq!(ci.call(&mut store, 7).unwrap(), 71);
    assert_eq!(*store.data(), 4);
    // Read back from the table, it is still callable.
    let Some(Val::FuncRef(Some(g))) = tab.get(&mut store, 0) else {
        panic!("table lost the function");
    };
    assert_eq!(
        g.typed::<i32, i32>(&store)
            .unwrap()
            .call(&mut store, 8)
            .unwrap(),
        80
    );
}

/// The fuel a host function sees through its `Caller` is the store's,
/// up to date with the operators the calling Wasm ran before the call;
/// a host function that sets it to zero stops the caller at its next
/// check, with the caller on the trap's backtrace.
#[test]
fn fuel_seen_and_set_by_host_functions_is_exact() {
    let engine = Engine::default();
    let bytes = compile_with(
        r#"(module
             (import "h" "probe" (func $probe (param i32)))
             (func $body (export "body") (param $k i32)
               (call $probe (i32.const 0))
               ;; 10 x (i32.const, drop): 10 units (drop is free)
               (drop (i32.const 1)) (drop (i32.const 1)) (drop (i32.const 1))
               (drop (i32.const 1)) (drop (i32.const 1)) (drop (i32.const 1))
               (drop (i32.const 1)) (drop (i32.const 1)) (drop (i32.const 1))
               (drop (i32.const 1))
               (call $probe (local.get $k))
               (drop (i32.const 1)) (drop (i32.const 1))
               (call $leaf))
             (func $leaf)
             (func (export "outer") (param i32) (call $body (local.get 0))))"#,
        &CompileOptions {
            interruption: Interruption {
                epochs: false,
                fuel: true,
            },
            ..CompileOptions::default()
        },
    );
    let m = Module::from_bytes(&engine, &bytes).unwrap();
    let mut l = Linker::<Vec<u64>>::new(&engine);
    l.func_wrap(
        "h",
        "probe",
        |mut c: Caller<'_, Vec<u64>>, k: i32| -> anyhow::Result<()> {
            let f = c.get_fuel()?;
            c.data_mut().push(f);
            if k == 1 {
                c.set_fuel(0)?;
            }
            Ok(())
        },
    )
    .unwrap();
    let mut store = Store::new(&engine, Vec::new());
    store.set_fuel(10_000).unwrap();
    let i = l.instantiate(&mut store, &m).unwrap();
    let outer = i.get_typed_func::<i32, ()>(&mut store, "outer").unwrap();
    outer.call(&mut store, 0).unwrap();
    let seen = store.data().clone();
    assert_eq!(seen.len(), 2);
    // Every operator costs 1 but `drop` (and the structural ones), and
    // the count is flushed before each call: `outer`'s local.get and call
    // and `body`'s i32.const and call before the first probe; ten
    // i32.const, a local.get and a call between; two i32.const and a
    // call after.
    assert_eq!(seen, [10_000 - 4, 10_000 - 4 - 12]);
    assert_eq!(store.get_fuel().unwrap(), seen[1] - 3);
    // Zero fuel set by the host: the caller stops at its next check (the
    // entry of `leaf`; checks run at function entries and loop headers).
    store.data_mut().clear();
    let t = expect_trap(outer.call(&mut store, 1));
    assert_eq!(t.code, TrapCode::OutOfFuel);
    let names = frame_names(&t);
    assert!(names.iter().any(|n| n == "body"), "{names:?}");
    assert_eq!(store.get_fuel().unwrap(), 0);
    store.set_fuel(100).unwrap();
    outer.call(&mut store, 0).unwrap();
}

// ----- 17. the engine's caps -----

/// The engine's caps on memory pages and table elements bound what a
/// module declares (a clear instantiation error, no huge allocation),
/// what Wasm grows to (-1) and what the host grows to (an error); the
/// stores of a default engine are not affected.
#[test]
fn engine_caps_bound_declarations_and_growth() {
    let mut c = wasmc_loader::Config::new();
    c.max_memory_pages(4).max_table_elements(100);
    let engine = Engine::new(&c).unwrap();
    let load = |wat: &str| Module::from_bytes(&engine, &compile(wat, Bounds::Guard)).unwrap();
    let mut store = Store::new(&engine, ());
    for wat in [
        "(module (memory 5))",
        "(module (table 101 funcref))",
        "(module (memory i64 5))",
        "(module (table i64 101 externref))",
    ] {
        let e = Instance::new(&mut store, &load(wat), &[]).unwrap_err();
        assert!(matches!(e, Error::Instantiation(_)), "{wat}: {e:?}");
    }
    let m = load(
        r#"(module
             (memory (export "mem") 1)
             (table (export "tab") 1 externref)
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
             (func (export "tgrow") (param i32) (result i32)
               (table.grow (ref.null extern) (local.get 0))))"#,
    );
    let i = Instance::new(&mut store, &m, &[]).unwrap();
    assert_eq!(
        call_i32(&mut store, &i, "grow", &[Val::I32(4)]).unwrap(),
        -1
    );
    assert_eq!(call_i32(&mut store, &i, "grow", &[Val::I32(3)]).unwrap(), 1);
    assert_eq!(
        call_i32(&mut store, &i, "tgrow", &[Val::I32(100)]).unwrap(),
        -1
    );
    assert_eq!(
        call_i32(&mut store, &i, "tgrow", &[Val::I32(99)]).unwrap(),
        1
    );
    let mem = i.get_memory(&mut store, "mem").unwrap();
    assert!(mem.grow(&mut store, 1).is_err());
    let tab = i.get_table(&mut store, "tab").unwrap();
    assert!(tab.grow(&mut store, 1, Val::ExternRef(None)).is_err());
    // Host-made items too.
    let big = MemoryType {
        min: 5,
        max: None,
        memory64: false,
        shared: false,
    };
    assert!(Memory::new(&mut store, big).is_err());
    let big_t = table_ty(RefType::FuncRef, 101, None);
    assert!(Table::new(&mut store, big_t, Val::FuncRef(None)).is_err());
    // Another engine's stores are not affected.
    let mut other = Store::new(super::engine(), ());
    let m2 = Module::from_bytes(
        super::engine(),
        &compile("(module (memory 5) (table 101 funcref))", Bounds::Guard),
    )
    .unwrap();
    Instance::new(&mut other, &m2, &[]).unwrap();
}

/// A typed host function taking and returning several externrefs at once,
/// under GC stress (a collection at every host call and builtin): every
/// count comes out right and the values are dropped once, at the end.
#[test]
fn several_externrefs_per_host_call_under_gc_stress() {
    let m = module(
        r#"(module
             (import "h" "two" (func $two (param externref externref) (result externref externref)))
             (table $t (export "t") 4 externref)
             (func (export "run") (param externref externref) (param i32)
               (local $a externref) (local $b externref)
               (local.set $a (local.get 0))
               (local.set $b (local.get 1))
               (loop $l
                 ;; (b, a) on the stack, a on top.
                 (call $two (local.get $a) (local.get $b))
                 (local.set $b)
                 (local.set $a)
                 (table.set $t (i32.const 0) (local.get $a))
                 (table.set $t (i32.const 1) (local.get $b))
                 (local.set 2 (i32.sub (local.get 2) (i32.const 1)))
                 (br_if $l (local.get 2)))))"#,
        Bounds::Guard,
    );
    let mut l = Linker::<()>::new(engine());
    // Swaps its arguments.
    l.func_wrap("h", "two", |a: Option<ExternRef>, b: Option<ExternRef>| {
        (b, a)
    })
    .unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut store = Store::new(engine(), ());
    store.set_gc_stress(true);
    let i = l.instantiate(&mut store, &m).unwrap();
    let run = i
        .get_typed_func::<(Option<ExternRef>, Option<ExternRef>, i32), ()>(&mut store, "run")
        .unwrap();
    let x = ExternRef::new(Counted(drops.clone()));
    let y = ExternRef::new(Counted(drops.clone()));
    run.call(&mut store, (Some(x.clone()), Some(y.clone()), 101))
        .unwrap();
    let t = i.get_table(&mut store, "t").unwrap();
    // 101 swaps: $a ends as y, $b as x.
    let get = |store: &mut Store<()>, k| match t.get(store, k) {
        Some(Val::ExternRef(Some(r))) => r,
        other => panic!("slot {k}: {other:?}"),
    };
    assert!(ExternRef::ptr_eq(&get(&mut store, 0), &y));
    assert!(ExternRef::ptr_eq(&get(&mut store, 1), &x));
    store.gc();
    assert_eq!(x.strong_count(), 2, "x and the table");
    assert_eq!(y.strong_count(), 2, "y and the table");
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(store);
    assert_eq!((x.strong_count(), y.strong_count()), (1, 1));
    drop((x, y));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// `v128` in typed calls and typed host functions, as `u128` (lane 0 in
/// the low bits, as `Val::V128`), mixed with other types, through many
/// arguments (some on the stack).
#[test]
fn v128_values_in_typed_calls_and_typed_host_functions() {
    let m = module(
        r#"(module
             (import "h" "mix" (func $mix (param v128 i32 v128) (result v128 i64)))
             (func (export "add") (param v128 v128) (result v128)
               (i32x4.add (local.get 0) (local.get 1)))
             (func (export "via") (param v128 i32 v128) (result v128 i64)
               (call $mix (local.get 0) (local.get 1) (local.get 2)))
             (func (export "many") (param v128 v128 v128 v128 v128 v128 v128 v128)
               (result v128)
               (v128.xor (local.get 0)
                 (v128.xor (local.get 4) (local.get 7)))))"#,
        Bounds::Guard,
    );
    let mut l = Linker::<()>::new(engine());
    l.func_wrap("h", "mix", |a: u128, k: i32, b: u128| -> (u128, i64) {
        (a.rotate_left(k as u32) ^ b, (a >> 64) as i64)
    })
    .unwrap();
    let mut store = Store::new(engine(), ());
    let i = l.instantiate(&mut store, &m).unwrap();
    let add = i
        .get_typed_func::<(u128, u128), u128>(&mut store, "add")
        .unwrap();
    let lanes = |l: [u32; 4]| {
        l.iter()
            .enumerate()
            .fold(0u128, |acc, (k, x)| acc | (u128::from(*x) << (32 * k)))
    };
    assert_eq!(
        add.call(
            &mut store,
            (lanes([u32::MAX, 1, 2, 3]), lanes([1, 1, 1, 1]))
        )
        .unwrap(),
        lanes([0, 2, 3, 4])
    );
    let via = i
        .get_typed_func::<(u128, i32, u128), (u128, i64)>(&mut store, "via")
        .unwrap();
    let a = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
    let b = u128::MAX / 3;
    assert_eq!(
        via.call(&mut store, (a, 13, b)).unwrap(),
        (a.rotate_left(13) ^ b, (a >> 64) as i64)
    );
    let many = i
        .get_typed_func::<(u128, u128, u128, u128, u128, u128, u128, u128), u128>(
            &mut store, "many",
        )
        .unwrap();
    let v: Vec<u128> = (1..=8u128)
        .map(|k| k * 0x1111_2222_3333_4444_5555)
        .collect();
    assert_eq!(
        many.call(&mut store, (v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]))
            .unwrap(),
        v[0] ^ v[4] ^ v[7]
    );
    // The typed view of a v128 function refuses other 128-bit guesses.
    assert!(i
        .get_typed_func::<(i64, i64), u128>(&mut store, "add")
        .is_err());
}

/// State a host function changes under the calling Wasm — a mutable
/// global (own and imported), a memory word, a table element, the
/// memory's size — is read anew after the call: nothing loaded before it
/// may be reused (a load cached across the call would be stale).
#[test]
fn state_changed_by_a_host_function_is_reloaded_after_the_call() {
    for b in BOTH {
        let m = module(
            r#"(module
                 (import "h" "poke" (func $poke))
                 (import "env" "ig" (global $ig (mut i64)))
                 (global $g (export "g") (mut i32) (i32.const 1))
                 (memory (export "mem") 1)
                 (table $t (export "t") 1 externref)
                 (func (export "run") (result i32)
                   (local $before i32)
                   ;; Read everything once before the call...
                   (local.set $before
                     (i32.add (i32.add (global.get $g) (i32.load (i32.const 64)))
                       (i32.add (i32.wrap_i64 (global.get $ig))
                         (i32.add (memory.size)
                           (ref.is_null (table.get $t (i32.const 0)))))))
                   (call $poke)
                   ;; ...and again after: the host changed all of them.
                   (i32.sub
                     (i32.add (i32.add (global.get $g) (i32.load (i32.const 64)))
                       (i32.add (i32.wrap_i64 (global.get $ig))
                         (i32.add (memory.size)
                           (ref.is_null (table.get $t (i32.const 0))))))
                     (local.get $before))))"#,
            b,
        );
        let mut store = Store::new(engine(), ());
        let ig = Global::new(&mut store, global_ty(ValType::I64, true), Val::I64(0)).unwrap();
        let mut l = Linker::<()>::new(engine());
        l.define(&store, "env", "ig", ig).unwrap();
        l.func_wrap(
            "h",
            "poke",
            move |mut c: Caller<'_, ()>| -> anyhow::Result<()> {
                let g = c.get_export("g").unwrap().into_global().unwrap();
                g.set(&mut c, Val::I32(1 + 10))?;
                ig.set(&mut c, Val::I64(100))?;
                let mem = c.get_export("mem").unwrap().into_memory().unwrap();
                mem.write(&mut c, 64, &1000i32.to_le_bytes())?;
                mem.grow(&mut c, 1)?;
                let t = c.get_export("t").unwrap().into_table().unwrap();
                t.set(&mut c, 0, Val::ExternRef(Some(ExternRef::new(()))))?;
                Ok(())
            },
        )
        .unwrap();
        let i = l.instantiate(&mut store, &m).unwrap();
        // g +10, word +1000, ig +100, size +1, table null -> non-null -1.
        assert_eq!(
            call_i32(&mut store, &i, "run", &[]).unwrap(),
            10 + 1000 + 100 + 1 - 1,
            "{b:?}"
        );
    }
}

/// An epoch deadline passed while Wasm waits in a host function: the
/// host function's own calls into Wasm trap, it catches them and
/// returns, and the waiting Wasm traps at its next check too (the
/// deadline holds for the whole store) — then a new deadline lets the
/// store run again.
#[test]
fn an_epoch_deadline_passed_in_a_host_call_stops_every_level() {
    let engine = Engine::default();
    let bytes = compile_with(
        r#"(module
             (import "h" "mid" (func $mid (result i32)))
             (func $leaf (export "leaf") (result i32) (i32.const 5))
             (func (export "top") (result i32)
               (local $r i32)
               (local.set $r (call $mid))
               ;; A loop header: the deadline is checked here.
               (loop $l (br_if $l (i32.const 0)))
               (i32.add (local.get $r) (call $leaf))))"#,
        &CompileOptions {
            interruption: Interruption {
                epochs: true,
                fuel: false,
            },
            ..CompileOptions::default()
        },
    );
    let m = Module::from_bytes(&engine, &bytes).unwrap();
    let mut l = Linker::<Vec<String>>::new(&engine);
    let eng = engine.clone();
    l.func_wrap(
        "h",
        "mid",
        move |mut c: Caller<'_, Vec<String>>| -> anyhow::Result<i32> {
            eng.increment_epoch();
            let leaf = c.get_export("leaf").unwrap().into_func().unwrap();
            let leaf = leaf.typed::<(), i32>(&c)?;
            match leaf.call(&mut c, ()) {
                Ok(v) => Ok(v),
                Err(e) => {
                    c.data_mut().push(e.to_string());
                    Ok(-1)
                }
            }
        },
    )
    .unwrap();
    let mut store = Store::new(&engine, Vec::new());
    store.set_epoch_deadline(1).unwrap();
    let i = l.instantiate(&mut store, &m).unwrap();
    let top = i.get_typed_func::<(), i32>(&mut store, "top").unwrap();
    let t = expect_trap(top.call(&mut store, ()));
    assert_eq!(t.code, TrapCode::Interrupted);
    assert_eq!(store.data().len(), 1);
    assert!(store.data()[0].contains("interrupt"), "{:?}", store.data());
    // A deadline far enough for both levels.
    store.set_epoch_deadline(2).unwrap();
    assert_eq!(top.call(&mut store, ()).unwrap(), 10);
}

/// A store held in an externref of another store: Wasm of the outer
/// store releasing the last reference (`table.set` in a builtin) drops
/// the inner store, with its instances and memories, while the outer
/// store's Wasm is running; the outer store carries on.
#[test]
fn a_store_dropped_inside_another_stores_builtin() {
    let outer_m = module(
        r#"(module
             (table $t (export "t") 1 externref)
             (memory (export "mem") 1)
             (func (export "clear") (result i32)
               (i32.store (i32.const 0) (i32.const 5))
               (table.set $t (i32.const 0) (ref.null extern))
               (i32.load (i32.const 0))))"#,
        Bounds::Guard,
    );
    let inner_m = module(
        r#"(module (memory (export "mem") 2) (table 10 externref)
             (func (export "f") (result i32) (i32.const 3)))"#,
        Bounds::Guard,
    );
    struct Bump(Arc<AtomicUsize>);
    impl Drop for Bump {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut inner = Store::new(engine(), dropped.clone());
    for _ in 0..3 {
        let i = Instance::new(&mut inner, &inner_m, &[]).unwrap();
        assert_eq!(call_i32_any(&mut inner, &i, "f"), 3);
    }
    // Something the inner store owns whose drop we can see.
    let probe = ExternRef::new(Bump(dropped.clone()));
    let g = Global::new(
        &mut inner,
        global_ty(ValType::ExternRef, false),
        Val::ExternRef(Some(probe)),
    )
    .unwrap();
    let _ = g;
    let mut outer = Store::new(engine(), ());
    let o = Instance::new(&mut outer, &outer_m, &[]).unwrap();
    let t = o.get_table(&mut outer, "t").unwrap();
    t.set(
        &mut outer,
        0,
        Val::ExternRef(Some(ExternRef::new(Mutex::new(inner)))),
    )
    .unwrap();
    outer.gc();
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    assert_eq!(call_i32(&mut outer, &o, "clear", &[]).unwrap(), 5);
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the inner store went");
    assert_eq!(call_i32(&mut outer, &o, "clear", &[]).unwrap(), 5);
}

fn call_i32_any<T: 'static>(store: &mut Store<T>, i: &Instance, name: &str) -> i32 {
    i.get_typed_func::<(), i32>(&mut *store, name)
        .unwrap()
        .call(&mut *store, ())
        .unwrap()
}

/// A host function making thousands of tables, globals and functions
/// (and some memories) while Wasm waits on it: the store's item vectors
/// reallocate, and the waiting Wasm's own and imported items, and a
/// funcref it held across the call, still work afterwards.
#[test]
fn the_store_growing_its_item_vectors_under_running_wasm() {
    let m = module(
        r#"(module
             (import "h" "make" (func $make (result funcref)))
             (import "env" "it" (table 1 funcref))
             (import "env" "ig" (global $ig (mut i32)))
             (import "env" "im" (memory 1))
             (type $t (func (result i32)))
             (table $own 1 funcref)
             (global $g (mut i32) (i32.const 0))
             (func $seven (result i32) (i32.const 7))
             (elem declare func $seven)
             (func (export "run") (result i32)
               (local $f funcref)
               (local.set $f (ref.func $seven))
               (table.set $own (i32.const 0) (call $make))
               (table.set 0 (i32.const 0) (local.get $f))
               (global.set $ig (i32.const 40))
               (global.set $g (i32.const 2))
               (i32.store (i32.const 8) (i32.const 100))
               (i32.add
                 (i32.add (call_indirect $own (type $t) (i32.const 0))
                   (call_indirect 0 (type $t) (i32.const 0)))
                 (i32.add (i32.add (global.get $ig) (global.get $g))
                   (i32.load (i32.const 8))))))"#,
        Bounds::Guard,
    );
    let mut store = Store::new(engine(), ());
    let it = Table::new(
        &mut store,
        table_ty(RefType::FuncRef, 1, None),
        Val::FuncRef(None),
    )
    .unwrap();
    let ig = Global::new(&mut store, global_ty(ValType::I32, true), Val::I32(0)).unwrap();
    let im = Memory::new(
        &mut store,
        MemoryType {
            min: 1,
            max: None,
            memory64: false,
            shared: false,
        },
    )
    .unwrap();
    let mut l = Linker::<()>::new(engine());
    l.define(&store, "env", "it", it).unwrap();
    l.define(&store, "env", "ig", ig).unwrap();
    l.define(&store, "env", "im", im).unwrap();
    l.func_wrap(
        "h",
        "make",
        |mut c: Caller<'_, ()>| -> anyhow::Result<Option<Func>> {
            let mut last = None;
            for k in 0..2000 {
                let ty = table_ty(RefType::ExternRef, 1, None);
                Table::new(&mut c, ty, Val::ExternRef(None))?;
                let gty = global_ty(ValType::I32, false);
                Global::new(&mut c, gty, Val::I32(k))?;
                last = Some(Func::wrap(&mut c, move || 1000 + k));
            }
            for _ in 0..20 {
                let mty = MemoryType {
                    min: 1,
                    max: None,
                    memory64: false,
                    shared: false,
                };
                Memory::new(&mut c, mty)?;
            }
            Ok(last)
        },
    )
    .unwrap();
    let i = l.instantiate(&mut store, &m).unwrap();
    // make's last function (2999) + $seven + 40 + 2 + 100.
    assert_eq!(
        call_i32(&mut store, &i, "run", &[]).unwrap(),
        2999 + 7 + 142
    );
    assert_eq!(ig.get(&mut store).i32(), Some(40));
    assert_eq!(im.data(&store)[8], 100);
}

/// Import matching of host tables checks the index type, the element
/// type and the limits (a table without a maximum does not satisfy an
/// import that requires one), naming the import.
#[test]
fn host_tables_match_imports_by_index_type_element_and_limits() {
    let m = module(
        r#"(module
             (import "env" "t64" (table i64 2 funcref))
             (import "env" "tmax" (table 1 5 externref))
             (func (export "size") (result i64) (table.size 0)))"#,
        Bounds::Guard,
    );
    let mut store = Store::new(engine(), ());
    let mut t = |elem, min, max, table64| {
        Table::new(
            &mut store,
            TableType {
                elem,
                min,
                max,
                table64,
            },
            Val::null(elem),
        )
        .unwrap()
    };
    let good64 = t(RefType::FuncRef, 3, None, true);
    let bad32 = t(RefType::FuncRef, 3, None, false);
    let small64 = t(RefType::FuncRef, 1, None, true);
    let good_max = t(RefType::ExternRef, 2, Some(4), false);
    let no_max = t(RefType::ExternRef, 2, None, false);
    let big_max = t(RefType::ExternRef, 2, Some(6), false);
    let funcs = t(RefType::FuncRef, 2, Some(4), false);
    for (a, b, field) in [
        (bad32, good_max, "env::t64"),
        (small64, good_max, "env::t64"),
        (good64, no_max, "env::tmax"),
        (good64, big_max, "env::tmax"),
        (good64, funcs, "env::tmax"),
    ] {
        let e = Instance::new(&mut store, &m, &[a.into(), b.into()]).unwrap_err();
        assert!(
            matches!(e, Error::Link(LinkError::IncompatibleImport { .. })),
            "{field}: {e:?}"
        );
        assert!(e.to_string().contains(field), "{e}");
    }
    let i = Instance::new(&mut store, &m, &[good64.into(), good_max.into()]).unwrap();
    let size = i.get_typed_func::<(), i64>(&mut store, "size").unwrap();
    assert_eq!(size.call(&mut store, ()).unwrap(), 3);
}

/// Fuel across re-entry: a host function sets the fuel, runs Wasm of the
/// store (which consumes some), and returns; the waiting Wasm goes on
/// from what the inner call left, and the store's count at the end is
/// exact.
#[test]
fn fuel_is_shared_exactly_across_reentry() {
    let engine = Engine::default();
    let bytes = compile_with(
        r#"(module
             (import "h" "mid" (func $mid))
             ;; 5 units: 5 x i32.const (drop, loop and end are free),
             ;; then a check at the loop header.
             (func $inner (export "inner")
               (drop (i32.const 1)) (drop (i32.const 1)) (drop (i32.const 1))
               (drop (i32.const 1)) (drop (i32.const 1))
               (loop $l))
             ;; 1 (call $mid) + 3 i32.const after.
             (func (export "outer")
               (call $mid)
               (drop (i32.const 1)) (drop (i32.const 1)) (drop (i32.const 1))))"#,
        &CompileOptions {
            interruption: Interruption {
                epochs: false,
                fuel: true,
            },
            ..CompileOptions::default()
        },
    );
    let m = Module::from_bytes(&engine, &bytes).unwrap();
    let mut l = Linker::<Vec<u64>>::new(&engine);
    l.func_wrap(
        "h",
        "mid",
        |mut c: Caller<'_, Vec<u64>>| -> anyhow::Result<()> {
            c.set_fuel(100)?;
            let inner = c.get_export("inner").unwrap().into_func().unwrap();
            inner.typed::<(), ()>(&c)?.call(&mut c, ())?;
            let f = c.get_fuel()?;
            c.data_mut().push(f);
            Ok(())
        },
    )
    .unwrap();
    let mut store = Store::new(&engine, Vec::new());
    store.set_fuel(1_000).unwrap();
    let i = l.instantiate(&mut store, &m).unwrap();
    let outer = i.get_typed_func::<(), ()>(&mut store, "outer").unwrap();
    outer.call(&mut store, ()).unwrap();
    assert_eq!(store.data(), &[95]);
    assert_eq!(store.get_fuel().unwrap(), 95 - 3);
    // An inner call that runs out traps inside (at its loop header: checks
    // run at function entries and loop headers, so straight-line code may
    // overdraw); the host returns its error and the outer call fails with
    // the same trap.
    store.data_mut().clear();
    let mut l2 = Linker::<Vec<u64>>::new(&engine);
    l2.func_wrap(
        "h",
        "mid",
        |mut c: Caller<'_, Vec<u64>>| -> anyhow::Result<()> {
            c.set_fuel(3)?;
            let inner = c.get_export("inner").unwrap().into_func().unwrap();
            inner.typed::<(), ()>(&c)?.call(&mut c, ())?;
            Ok(())
        },
    )
    .unwrap();
    store.set_fuel(1_000).unwrap();
    let i2 = l2.instantiate(&mut store, &m).unwrap();
    let outer2 = i2.get_typed_func::<(), ()>(&mut store, "outer").unwrap();
    let e = outer2.call(&mut store, ()).unwrap_err();
    assert_eq!(
        e.downcast_ref::<Trap>().map(|t| t.code),
        Some(TrapCode::OutOfFuel),
        "{e}"
    );
    assert_eq!(store.get_fuel().unwrap(), 0);
    store.set_fuel(10).unwrap();
    outer.call(&mut store, ()).unwrap();
}

/// [`GROW_IN_CALL`] for a 64-bit memory (always bounds-checked in code):
/// the bound is reloaded after the host grew the memory.
#[test]
fn a_host_function_growing_a_64_bit_memory_is_seen_in_the_same_frame() {
    let wat = r#"
(module
  (import "host" "grow" (func $grow (param i32) (result i32)))
  (memory (export "mem") i64 1 1000)
  (func $last (result i64)
    (i64.sub (i64.mul (memory.size) (i64.const 65536)) (i64.const 4)))
  (func (export "run") (param $n i32) (param $rounds i32) (result i32)
    (local $sum i32)
    (i32.store (i64.const 0) (i32.const 11))
    (loop $l
      (drop (call $grow (local.get $n)))
      (i32.store (call $last) (i32.const 42))
      (local.set $sum (i32.add (local.get $sum) (i32.load (call $last))))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br_if $l (local.get $rounds)))
    (i32.add (local.get $sum) (i32.load (i64.const 0)))))
"#;
    for b in BOTH {
        let m = module(wat, b);
        let mut store = Store::new(engine(), ());
        let i = grow_linker(None).instantiate(&mut store, &m).unwrap();
        let run = i
            .get_typed_func::<(i32, i32), i32>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, (1, 4)).unwrap(), 4 * 42 + 11, "{b:?}");
        assert_eq!(run.call(&mut store, (60, 2)).unwrap(), 2 * 42 + 11, "{b:?}");
        let mem = i.get_memory(&mut store, "mem").unwrap();
        assert_eq!(mem.size(&store), 125);
    }
}
