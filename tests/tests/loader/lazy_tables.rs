//! Lazy funcref tables (issue 15): a defined table whose active element
//! segments are constant and in bounds starts uninitialised, and each
//! element is initialised from the segments on its first read (compiled
//! `call_indirect` and `table.get`, host `Table::get`, `table.copy`'s
//! source). Every path must see exactly what eager initialisation would have
//! written; instantiation makes no function record per element; other
//! tables (a `global.get` offset) keep the eager path.

use super::*;
use wasmc_loader::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Table `$tab` (16): elements 2, 3 are `$f0`, `$f1`; 4 is `$f3` (the
/// second segment overrides the first's `$f2`); 5 is null (a `ref.null`
/// item); the rest null. Table `$other` (16) has no segment: lazy, all
/// null. `$p` is a passive segment (`$f2 $f1`).
const LAZY: &str = r#"(module
  (type $t (func (result i32)))
  (table $tab (export "tab") 16 funcref)
  (table $other (export "other") 16 funcref)
  (func $f0 (export "f0") (type $t) i32.const 100)
  (func $f1 (export "f1") (type $t) i32.const 101)
  (func $f2 (type $t) i32.const 102)
  (func $f3 (type $t) i32.const 103)
  (elem (table $tab) (i32.const 2) func $f0 $f1 $f2)
  (elem (table $tab) (i32.const 4) funcref (ref.func $f3) (ref.null func))
  (elem $p funcref (ref.func $f2) (ref.func $f1))
  (func (export "call") (param i32) (result i32)
    (call_indirect $tab (type $t) (local.get 0)))
  (func (export "call_other") (param i32) (result i32)
    (call_indirect $other (type $t) (local.get 0)))
  (func (export "get") (param i32) (result funcref) (table.get $tab (local.get 0)))
  (func (export "is_null") (param i32) (result i32)
    (ref.is_null (table.get $tab (local.get 0))))
  (func (export "set") (param i32 i32)
    (table.set $tab (local.get 0) (table.get $tab (local.get 1))))
  (func (export "grow") (param i32) (result i32)
    (table.grow $tab (ref.null func) (local.get 0)))
  (func (export "grow_f0") (param i32) (result i32)
    (table.grow $tab (ref.func $f0) (local.get 0)))
  (func (export "fill") (param i32 i32 i32)
    (table.fill $tab (local.get 0) (table.get $tab (local.get 1)) (local.get 2)))
  (func (export "copy") (param i32 i32 i32)
    (table.copy $tab $tab (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy_to_other") (param i32 i32 i32)
    (table.copy $other $tab (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init") (param i32 i32 i32)
    (table.init $tab $p (local.get 0) (local.get 1) (local.get 2))))"#;

/// What `call` returns for each element of a fresh `LAZY` instance
/// (`None`: a null element, which traps "uninitialized element").
const INITIAL: [Option<i32>; 16] = {
    let mut t = [None; 16];
    t[2] = Some(100);
    t[3] = Some(101);
    t[4] = Some(103);
    t
};

fn call(store: &mut Store<()>, inst: &Instance, name: &str, i: u32) -> Option<i32> {
    match call_i32(store, inst, name, &[Val::I32(i as i32)]) {
        Ok(v) => Some(v),
        Err(e) => {
            let t = expect_trap(Err::<(), _>(e));
            assert_eq!(t.code, TrapCode::IndirectCallToNull, "{name}({i})");
            None
        }
    }
}

fn run(store: &mut Store<()>, inst: &Instance, name: &str, args: &[i32]) {
    let args: Vec<Val> = args.iter().map(|a| Val::I32(*a)).collect();
    let f = inst.get_func(&mut *store, name).unwrap();
    f.call(&mut *store, &args, &mut []).unwrap();
}

fn check_all(store: &mut Store<()>, inst: &Instance, want: &[Option<i32>], what: &str) {
    for (i, w) in want.iter().enumerate() {
        assert_eq!(
            call(store, inst, "call", i as u32),
            *w,
            "{what}: element {i}"
        );
    }
}

#[test]
fn call_indirect_reads_untouched_elements_from_the_segments() {
    for b in BOTH {
        let m = load(LAZY, b);
        let mut store = Store::new(engine(), ());
        let inst = instantiate(&mut store, &m);
        // Every element, each read first by `call_indirect`.
        check_all(&mut store, &inst, &INITIAL, &format!("{b:?}"));
        // Null, outside the segments: the spec's message.
        let t = expect_trap(call_i32(&mut store, &inst, "call", &[Val::I32(9)]));
        assert!(t.to_string().contains("uninitialized element"), "{t}");
        // Out of bounds is still "undefined element".
        let t = expect_trap(call_i32(&mut store, &inst, "call", &[Val::I32(16)]));
        assert_eq!(t.code, TrapCode::UndefinedElement);
        // A table without segments: all null.
        for i in [0, 7, 15] {
            assert_eq!(call(&mut store, &inst, "call_other", i), None);
        }
    }
}

#[test]
fn table_get_and_host_get_give_the_segments_functions() {
    for b in BOTH {
        let m = load(LAZY, b);
        let mut store = Store::new(engine(), ());
        let inst = instantiate(&mut store, &m);
        let f0 = inst.get_func(&mut store, "f0").unwrap();
        let f1 = inst.get_func(&mut store, "f1").unwrap();
        // `table.get` in Wasm, first read of element 2.
        let get = inst.get_func(&mut store, "get").unwrap();
        let mut out = [Val::I32(0)];
        get.call(&mut store, &[Val::I32(2)], &mut out).unwrap();
        assert!(
            matches!(&out[0], Val::FuncRef(Some(f)) if *f == f0),
            "{b:?}"
        );
        for (i, null) in [(0, 1), (3, 0), (4, 0), (5, 1), (15, 1)] {
            assert_eq!(
                call_i32(&mut store, &inst, "is_null", &[Val::I32(i)]).unwrap(),
                null,
                "{b:?} is_null({i})"
            );
        }
        // Host `Table::get` of elements never read before.
        let fresh = instantiate(&mut store, &m);
        let t = fresh.get_table(&mut store, "tab").unwrap();
        let fresh_f1 = fresh.get_func(&mut store, "f1").unwrap();
        assert_ne!(fresh_f1, f1, "two instances, two functions");
        let Some(Val::FuncRef(Some(g))) = t.get(&mut store, 3) else {
            panic!("{b:?}: element 3 is not a function");
        };
        assert_eq!(g, fresh_f1);
        let Some(Val::FuncRef(Some(g))) = t.get(&mut store, 4) else {
            panic!("{b:?}: element 4 is not a function");
        };
        let mut r = [Val::I32(0)];
        g.call(&mut store, &[], &mut r).unwrap();
        assert_eq!(r[0].i32(), Some(103));
        assert!(matches!(t.get(&mut store, 5), Some(Val::FuncRef(None))));
        assert!(matches!(t.get(&mut store, 9), Some(Val::FuncRef(None))));
        assert!(t.get(&mut store, 16).is_none());
        // Host writes and grows are seen by Wasm.
        t.set(&mut store, 9, Val::FuncRef(Some(g))).unwrap();
        assert_eq!(call(&mut store, &fresh, "call", 9), Some(103));
        assert_eq!(
            t.grow(&mut store, 2, Val::FuncRef(Some(fresh_f1))).unwrap(),
            16
        );
        assert_eq!(call(&mut store, &fresh, "call", 17), Some(101));
    }
}

#[test]
fn set_grow_fill_copy_and_init_on_a_lazy_table() {
    for b in BOTH {
        let m = load(LAZY, b);
        let mut store = Store::new(engine(), ());

        // table.set (of a lazily read element, into an untouched one).
        let inst = instantiate(&mut store, &m);
        run(&mut store, &inst, "set", &[0, 3]);
        run(&mut store, &inst, "set", &[4, 0]);
        let mut want = INITIAL;
        want[0] = Some(101);
        want[4] = Some(101);
        check_all(&mut store, &inst, &want, &format!("{b:?} set"));
        run(&mut store, &inst, "set", &[4, 1]);
        assert_eq!(call(&mut store, &inst, "call", 4), None, "{b:?} set null");

        // table.grow: new elements are initialised ones.
        let inst = instantiate(&mut store, &m);
        assert_eq!(
            call_i32(&mut store, &inst, "grow", &[Val::I32(2)]).unwrap(),
            16
        );
        assert_eq!(
            call_i32(&mut store, &inst, "grow_f0", &[Val::I32(1)]).unwrap(),
            18
        );
        assert_eq!(call(&mut store, &inst, "call", 16), None);
        assert_eq!(call(&mut store, &inst, "call", 18), Some(100));
        check_all(&mut store, &inst, &INITIAL, &format!("{b:?} grow"));

        // table.fill over untouched elements.
        let inst = instantiate(&mut store, &m);
        run(&mut store, &inst, "fill", &[3, 2, 2]);
        let mut want = INITIAL;
        want[3] = Some(100);
        want[4] = Some(100);
        check_all(&mut store, &inst, &want, &format!("{b:?} fill"));

        // table.copy within the table, overlapping, from untouched elements.
        let inst = instantiate(&mut store, &m);
        run(&mut store, &inst, "copy", &[3, 2, 4]);
        let mut want = INITIAL;
        want[3] = Some(100);
        want[4] = Some(101);
        want[5] = Some(103);
        want[6] = None;
        check_all(&mut store, &inst, &want, &format!("{b:?} copy down"));
        let inst = instantiate(&mut store, &m);
        run(&mut store, &inst, "copy", &[10, 1, 5]);
        let mut want = INITIAL;
        want[11] = Some(100);
        want[12] = Some(101);
        want[13] = Some(103);
        check_all(&mut store, &inst, &want, &format!("{b:?} copy up"));

        // table.copy into another (lazy) table.
        let inst = instantiate(&mut store, &m);
        run(&mut store, &inst, "copy_to_other", &[8, 2, 4]);
        for (i, w) in [
            (7, None),
            (8, Some(100)),
            (9, Some(101)),
            (10, Some(103)),
            (11, None),
        ] {
            assert_eq!(
                call(&mut store, &inst, "call_other", i),
                w,
                "{b:?} other {i}"
            );
        }
        check_all(&mut store, &inst, &INITIAL, &format!("{b:?} copy source"));
        // An out-of-bounds copy traps and changes nothing.
        let t = expect_trap(inst.get_func(&mut store, "copy").unwrap().call(
            &mut store,
            &[Val::I32(0), Val::I32(14), Val::I32(3)],
            &mut [],
        ));
        assert_eq!(t.code, TrapCode::TableOutOfBounds);
        check_all(&mut store, &inst, &INITIAL, &format!("{b:?} copy oob"));

        // table.init over untouched elements.
        let inst = instantiate(&mut store, &m);
        run(&mut store, &inst, "init", &[3, 0, 2]);
        let mut want = INITIAL;
        want[3] = Some(102);
        want[4] = Some(101);
        check_all(&mut store, &inst, &want, &format!("{b:?} init"));
    }
}

/// Copying from a lazy table into a host table, through a module that
/// imports both: the copied elements are the owner's functions.
#[test]
fn a_lazy_table_read_through_another_instance_resolves_to_its_owner() {
    for b in BOTH {
        let a = load(LAZY, b);
        let user = load(
            r#"(module
                 (type $t (func (result i32)))
                 (import "a" "tab" (table $imp 16 funcref))
                 (import "h" "host" (table $host 4 funcref))
                 (table $own 8 funcref)
                 (func $mine (type $t) i32.const 200)
                 (elem (table $own) (i32.const 2) func $mine)
                 (func (export "call_imp") (param i32) (result i32)
                   (call_indirect $imp (type $t) (local.get 0)))
                 (func (export "call_own") (param i32) (result i32)
                   (call_indirect $own (type $t) (local.get 0)))
                 (func (export "get_imp") (param i32) (result funcref)
                   (table.get $imp (local.get 0)))
                 (func (export "copy_to_host") (param i32 i32 i32)
                   (table.copy $host $imp (local.get 0) (local.get 1) (local.get 2))))"#,
            b,
        );
        let mut store = Store::new(engine(), ());
        let ia = instantiate(&mut store, &a);
        let tab = ia.get_table(&mut store, "tab").unwrap();
        let host = Table::new(
            &mut store,
            TableType {
                elem: RefType::FuncRef,
                min: 4,
                max: None,
                table64: false,
            },
            Val::FuncRef(None),
        )
        .unwrap();
        let ib = Instance::new(&mut store, &user, &[tab.into(), host.into()]).unwrap();
        // B's code reads A's untouched elements: A's functions.
        assert_eq!(call(&mut store, &ib, "call_imp", 2), Some(100), "{b:?}");
        assert_eq!(call(&mut store, &ib, "call_own", 2), Some(200), "{b:?}");
        assert_eq!(call(&mut store, &ib, "call_imp", 4), Some(103), "{b:?}");
        assert_eq!(call(&mut store, &ib, "call_imp", 5), None, "{b:?}");
        let get = ib.get_func(&mut store, "get_imp").unwrap();
        let mut out = [Val::I32(0)];
        get.call(&mut store, &[Val::I32(3)], &mut out).unwrap();
        let f1 = ia.get_func(&mut store, "f1").unwrap();
        assert!(
            matches!(&out[0], Val::FuncRef(Some(f)) if *f == f1),
            "{b:?}"
        );
        // Copied into a host table: A's functions, never an uninitialised 0.
        run(&mut store, &ib, "copy_to_host", &[0, 2, 4]);
        let want = [Some(100), Some(101), Some(103), None];
        for (i, w) in want.iter().enumerate() {
            match host.get(&mut store, i as u32) {
                Some(Val::FuncRef(Some(f))) => {
                    let mut r = [Val::I32(0)];
                    f.call(&mut store, &[], &mut r).unwrap();
                    assert_eq!(r[0].i32(), *w, "{b:?} host {i}");
                }
                Some(Val::FuncRef(None)) => assert_eq!(*w, None, "{b:?} host {i}"),
                other => panic!("{b:?} host {i}: {other:?}"),
            }
        }
        // And A sees what it always had.
        check_all(&mut store, &ia, &INITIAL, &format!("{b:?} A"));
    }
}

/// Writes into one instance's lazy table never show in the next one's,
/// on demand or from a pooled slot (the same element vector, reused).
#[test]
fn instances_do_not_see_each_others_writes() {
    let mut p = PoolingAllocationConfig::default();
    p.total_memories(2)
        .total_tables(2)
        .total_core_instances(4)
        .table_elements(64);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    let pooled = Engine::new(&c).unwrap();
    for b in BOTH {
        for (what, engine) in [("on demand", engine()), ("pooled", &pooled)] {
            let m = Module::from_bytes(engine, &compile(LAZY, b)).unwrap();
            for round in 0..4 {
                let mut store = Store::new(engine, ());
                let inst = Instance::new(&mut store, &m, &[]).unwrap();
                let label = format!("{b:?} {what} round {round}");
                // Reads some elements first (initialising them), then
                // checks all.
                assert_eq!(call(&mut store, &inst, "call", 3), Some(101), "{label}");
                check_all(&mut store, &inst, &INITIAL, &label);
                for i in 0..16 {
                    assert_eq!(call(&mut store, &inst, "call_other", i), None, "{label}");
                }
                // Scribbles over everything, grown elements too.
                assert_eq!(
                    call_i32(&mut store, &inst, "grow_f0", &[Val::I32(40)]).unwrap(),
                    16
                );
                run(&mut store, &inst, "fill", &[0, 3, 16]);
                run(&mut store, &inst, "copy_to_other", &[0, 0, 16]);
                assert_eq!(call(&mut store, &inst, "call", 5), Some(101), "{label}");
                assert_eq!(
                    call(&mut store, &inst, "call_other", 9),
                    Some(101),
                    "{label}"
                );
            }
        }
    }
}

/// A pooled element vector goes from one module's lazy table to another
/// module's: the second sees only its own segment, never an element the
/// first instance initialised or wrote (a stale slot would be read as an
/// initialised pointer into a freed instance).
#[test]
fn a_reused_pooled_table_shows_nothing_of_its_last_module() {
    const OTHER: &str = r#"(module
      (type $t (func (result i32)))
      (table $tab 40 funcref)
      (func $g (type $t) i32.const 7)
      (elem (table $tab) (i32.const 0) func $g)
      (func (export "call") (param i32) (result i32)
        (call_indirect $tab (type $t) (local.get 0))))"#;
    let mut p = PoolingAllocationConfig::default();
    // One table slot per instance at a time: the vectors go round.
    p.total_memories(2)
        .total_tables(2)
        .total_core_instances(2)
        .table_elements(64);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    let pooled = Engine::new(&c).unwrap();
    for b in BOTH {
        let first = Module::from_bytes(&pooled, &compile(LAZY, b)).unwrap();
        let second = Module::from_bytes(&pooled, &compile(OTHER, b)).unwrap();
        for round in 0..4 {
            let label = format!("{b:?} round {round}");
            {
                let mut store = Store::new(&pooled, ());
                let inst = Instance::new(&mut store, &first, &[]).unwrap();
                // Initialise and overwrite every slot of both tables.
                check_all(&mut store, &inst, &INITIAL, &label);
                assert_eq!(
                    call_i32(&mut store, &inst, "grow_f0", &[Val::I32(40)]).unwrap(),
                    16
                );
                run(&mut store, &inst, "fill", &[0, 3, 16]);
                run(&mut store, &inst, "copy_to_other", &[0, 0, 16]);
            }
            let mut store = Store::new(&pooled, ());
            let inst = Instance::new(&mut store, &second, &[]).unwrap();
            assert_eq!(call(&mut store, &inst, "call", 0), Some(7), "{label}");
            for i in 1..40 {
                assert_eq!(
                    call(&mut store, &inst, "call", i),
                    None,
                    "{label}: slot {i}"
                );
            }
        }
    }
}

/// A segment at a `global.get` offset makes its table eager; it still works.
#[test]
fn a_global_offset_segment_keeps_the_eager_path() {
    for b in BOTH {
        let m = load(
            r#"(module
                 (type $t (func (result i32)))
                 (import "env" "off" (global $off i32))
                 (table $tab (export "tab") 8 funcref)
                 (func $f0 (type $t) i32.const 100)
                 (func $f1 (type $t) i32.const 101)
                 (elem (table $tab) (global.get $off) func $f0 $f1)
                 (func (export "call") (param i32) (result i32)
                   (call_indirect $tab (type $t) (local.get 0)))
                 (func (export "is_null") (param i32) (result i32)
                   (ref.is_null (table.get $tab (local.get 0))))
                 (func (export "grow") (param i32) (result i32)
                   (table.grow $tab (ref.null func) (local.get 0))))"#,
            b,
        );
        let mut store = Store::new(engine(), ());
        let off = Global::new(
            &mut store,
            GlobalType {
                ty: ValType::I32,
                mutable: false,
            },
            Val::I32(5),
        )
        .unwrap();
        let inst = Instance::new(&mut store, &m, &[off.into()]).unwrap();
        let want = [None, None, None, None, None, Some(100), Some(101), None];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(call(&mut store, &inst, "call", i as u32), *w, "{b:?} {i}");
            let null = i32::from(w.is_none());
            assert_eq!(
                call_i32(&mut store, &inst, "is_null", &[Val::I32(i as i32)]).unwrap(),
                null
            );
        }
        let t = inst.get_table(&mut store, "tab").unwrap();
        assert!(matches!(t.get(&mut store, 6), Some(Val::FuncRef(Some(_)))));
        assert!(matches!(t.get(&mut store, 0), Some(Val::FuncRef(None))));
        assert_eq!(
            call_i32(&mut store, &inst, "grow", &[Val::I32(1)]).unwrap(),
            8
        );
        assert_eq!(call(&mut store, &inst, "call", 8), None);
        // Out of bounds at run time: the same error as ever.
        let off = Global::new(
            &mut store,
            GlobalType {
                ty: ValType::I32,
                mutable: false,
            },
            Val::I32(7),
        )
        .unwrap();
        let e = Instance::new(&mut store, &m, &[off.into()]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Instantiation(InstantiationError::ElementSegmentOutOfBounds {
                    segment: 0,
                    table: 0
                })
            ),
            "{e}"
        );
    }
}

/// A constant segment that does not fit makes its table eager, and
/// instantiation fails with the error it always did.
#[test]
fn an_out_of_bounds_constant_segment_still_fails_instantiation() {
    for b in BOTH {
        let m = load(
            r#"(module
                 (table 4 funcref)
                 (func $f)
                 (elem (i32.const 1) func $f)
                 (elem (i32.const 3) func $f $f))"#,
            b,
        );
        let mut store = Store::new(engine(), ());
        let e = Instance::new(&mut store, &m, &[]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Instantiation(InstantiationError::ElementSegmentOutOfBounds {
                    segment: 1,
                    table: 0
                })
            ),
            "{b:?}: {e}"
        );
        assert_eq!(
            e.to_string(),
            "out of bounds table access: element segment 1 does not fit table 0"
        );
    }
}

/// Instantiation fails at a segment of an imported table after an earlier
/// segment put one of the instance's functions there. That function reads
/// the instance's own lazy table, whose segment comes after the failing
/// one: the spec never applied it, so the element must read null.
#[test]
fn segments_after_a_failing_one_stay_unapplied_in_lazy_tables() {
    for b in BOTH {
        let m = load(
            r#"(module
                 (type $t (func (result i32)))
                 (import "h" "t" (table $imp 2 funcref))
                 (table $own 4 funcref)
                 (func $g (type $t) i32.const 7)
                 (func $h (type $t) (call_indirect $own (type $t) (i32.const 1)))
                 (elem (table $own) (i32.const 0) func $g)
                 (elem (table $imp) (i32.const 0) func $h)
                 (elem (table $imp) (i32.const 2) func $h)
                 (elem (table $own) (i32.const 1) func $g))"#,
            b,
        );
        let mut store = Store::new(engine(), ());
        let host = Table::new(
            &mut store,
            TableType {
                elem: RefType::FuncRef,
                min: 2,
                max: None,
                table64: false,
            },
            Val::FuncRef(None),
        )
        .unwrap();
        let e = Instance::new(&mut store, &m, &[host.into()]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Instantiation(InstantiationError::ElementSegmentOutOfBounds {
                    segment: 2,
                    ..
                })
            ),
            "{b:?}: {e}"
        );
        let Some(Val::FuncRef(Some(h))) = host.get(&mut store, 0) else {
            panic!("{b:?}: segment 1 was not applied");
        };
        let t = expect_trap(h.call(&mut store, &[], &mut [Val::I32(0)]));
        assert_eq!(t.code, TrapCode::IndirectCallToNull, "{b:?}");
    }
}

/// `n` functions in one constant segment, or (`global`) at an imported
/// global's offset, which makes the table eager.
fn many_elems(n: u32, global: bool) -> String {
    let mut s = String::from("(module (type $t (func (result i32)))\n");
    if global {
        s += "(import \"env\" \"off\" (global $off i32))\n";
    }
    s += &format!("(table $tab {} funcref)\n", n + 8);
    for i in 0..n {
        s += &format!("(func $f{i} (type $t) i32.const {i})\n");
    }
    let off = if global {
        "(global.get $off)"
    } else {
        "(i32.const 8)"
    };
    s += &format!("(elem (table $tab) {off} func");
    for i in 0..n {
        s += &format!(" $f{i}");
    }
    s + ")\n(func (export \"call\") (param i32) (result i32)
           (call_indirect $tab (type $t) (local.get 0))))"
}

/// Instantiating makes no function record per element of a lazy table
/// (the eager path, for contrast, makes one per element); each read of an
/// element makes one, once.
#[test]
fn instantiation_does_not_touch_the_elements() {
    let n = 500;
    let b = Bounds::Guard;
    let lazy = load(&many_elems(n, false), b);
    let eager = load(&many_elems(n, true), b);
    let mut store = Store::new(engine(), ());
    let before = store.num_function_records();
    let inst = instantiate(&mut store, &lazy);
    assert_eq!(store.num_function_records(), before, "lazy instantiation");
    assert_eq!(call(&mut store, &inst, "call", 8 + 123), Some(123));
    assert_eq!(call(&mut store, &inst, "call", 8 + 123), Some(123));
    assert_eq!(call(&mut store, &inst, "call", 8 + 7), Some(7));
    assert_eq!(call(&mut store, &inst, "call", 3), None);
    // The export `call` and two functions.
    assert_eq!(store.num_function_records(), before + 3);

    let off = Global::new(
        &mut store,
        GlobalType {
            ty: ValType::I32,
            mutable: false,
        },
        Val::I32(8),
    )
    .unwrap();
    let before = store.num_function_records();
    let inst = Instance::new(&mut store, &eager, &[off.into()]).unwrap();
    assert_eq!(
        store.num_function_records(),
        before + n as usize,
        "eager instantiation"
    );
    assert_eq!(call(&mut store, &inst, "call", 8 + 123), Some(123));
}
