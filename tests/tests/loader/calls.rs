//! Instances at work: data and element segments and their out-of-bounds
//! errors; `memory.grow` against the declared maximum and the store's
//! limit; typed and dynamic calls; host access to memories, tables and
//! globals; type mismatch and missing-import errors.

use super::*;
use crate::loading::{check_small, SMALL};

const SEGMENTS: &str = r#"
(module $segments
  (memory (export "memory") 1)
  (table (export "table") 5 funcref)
  (type $r (func (result i32)))
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func $three (result i32) (i32.const 3))
  (elem (i32.const 1) $one $two)
  (elem $passive func $three)
  (data (i32.const 0) "abc")
  (data (i32.const 65530) "tail!!")
  (data $later "later")
  (func (export "call") (param i32) (result i32) (call_indirect (type $r) (local.get 0)))
  (func (export "init") (memory.init $later (i32.const 100) (i32.const 0) (i32.const 5))
    (table.init $passive (i32.const 4) (i32.const 0) (i32.const 1))))
"#;

#[test]
fn data_and_element_segments_are_applied() {
    for b in BOTH {
        let m = load(SEGMENTS, b);
        let mut store = Store::new(engine(), ());
        let i = instantiate(&mut store, &m);
        let mem = i.get_memory(&mut store, "memory").unwrap();
        assert_eq!(&mem.data(&store)[..4], b"abc\0");
        assert_eq!(&mem.data(&store)[65530..], b"tail!!");
        assert_eq!(&mem.data(&store)[100..105], &[0; 5]);
        let call = |store: &mut Store<()>, k| call_i32(store, &i, "call", &[Val::I32(k)]);
        assert_eq!(call(&mut store, 1).unwrap(), 1);
        assert_eq!(call(&mut store, 2).unwrap(), 2);
        assert_eq!(
            expect_trap(call(&mut store, 0)).code,
            TrapCode::IndirectCallToNull
        );
        assert_eq!(
            expect_trap(call(&mut store, 4)).code,
            TrapCode::IndirectCallToNull
        );
        i.get_func(&mut store, "init")
            .unwrap()
            .call(&mut store, &[], &mut [])
            .unwrap();
        assert_eq!(&mem.data(&store)[100..105], b"later");
        assert_eq!(call(&mut store, 4).unwrap(), 3);
        let table = i.get_table(&mut store, "table").unwrap();
        assert!(matches!(table.get(&mut store, 0), Some(Val::FuncRef(None))));
        assert!(matches!(
            table.get(&mut store, 1),
            Some(Val::FuncRef(Some(_)))
        ));
        assert!(table.get(&mut store, 5).is_none());
    }
}

#[test]
fn out_of_bounds_segments_fail_instantiation() {
    for b in BOTH {
        let mut store = Store::new(engine(), ());
        let data = load(
            r#"(module (memory 1) (data (i32.const 0) "ok") (data (i32.const 65534) "abc"))"#,
            b,
        );
        let e = Instance::new(&mut store, &data, &[]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Instantiation(InstantiationError::DataSegmentOutOfBounds {
                    segment: 1,
                    memory: 0
                })
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("data segment 1"), "{e}");

        let elem = load(
            r#"(module (table 2 funcref) (func $f) (elem (i32.const 1) $f $f))"#,
            b,
        );
        let e = Instance::new(&mut store, &elem, &[]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Instantiation(InstantiationError::ElementSegmentOutOfBounds {
                    segment: 0,
                    table: 0
                })
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("element segment 0"), "{e}");

        // An offset from an imported global, out of bounds by one byte.
        let imported = load(
            r#"(module (import "env" "off" (global i32)) (memory 1)
                 (data (global.get 0) "xy"))"#,
            b,
        );
        let off = |store: &mut Store<()>, v| {
            Global::new(
                &mut *store,
                GlobalType {
                    ty: ValType::I32,
                    mutable: false,
                },
                Val::I32(v),
            )
            .unwrap()
        };
        let g = off(&mut store, 65535);
        assert!(Instance::new(&mut store, &imported, &[g.into()]).is_err());
        let g = off(&mut store, 65534);
        Instance::new(&mut store, &imported, &[g.into()]).unwrap();
        // The store stays usable after the failures.
        let ok = load(SMALL, b);
        check_small(&ok);
        let i = instantiate(&mut store, &ok);
        assert_eq!(
            call_i32(&mut store, &i, "add", &[Val::I32(1), Val::I32(2)]).unwrap(),
            3
        );
    }
}

const GROW: &str = r#"
(module $grow
  (memory (export "memory") 1 4)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func $load (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1))))
"#;

#[test]
fn memory_grow_respects_declared_maximum_and_store_limit() {
    for b in BOTH {
        let m = load(GROW, b);
        let mut store = Store::new(engine(), ());
        let i = instantiate(&mut store, &m);
        let grow = i.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
        let size = i.get_typed_func::<(), i32>(&mut store, "size").unwrap();
        let ld = i.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
        let st = i
            .get_typed_func::<(i32, i32), ()>(&mut store, "store")
            .unwrap();
        st.call(&mut store, (65532, 0x1234_5678)).unwrap();
        assert_eq!(
            expect_trap(ld.call(&mut store, 65536)).code,
            TrapCode::MemoryOutOfBounds
        );
        assert_eq!(grow.call(&mut store, 1).unwrap(), 1);
        assert_eq!(grow.call(&mut store, 0).unwrap(), 2);
        assert_eq!(grow.call(&mut store, 2).unwrap(), 2);
        assert_eq!(size.call(&mut store, ()).unwrap(), 4);
        // Beyond the declared maximum.
        assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
        assert_eq!(grow.call(&mut store, -1).unwrap(), -1);
        assert_eq!(size.call(&mut store, ()).unwrap(), 4);
        // Old contents survive (explicit mode may move the memory), new
        // pages are zero and usable, the end is still enforced.
        assert_eq!(ld.call(&mut store, 65532).unwrap(), 0x1234_5678);
        assert_eq!(ld.call(&mut store, 4 * 65536 - 4).unwrap(), 0);
        st.call(&mut store, (4 * 65536 - 4, 5)).unwrap();
        assert_eq!(ld.call(&mut store, 4 * 65536 - 4).unwrap(), 5);
        assert_eq!(
            expect_trap(ld.call(&mut store, 4 * 65536 - 3)).code,
            TrapCode::MemoryOutOfBounds
        );
        let mem = i.get_memory(&mut store, "memory").unwrap();
        assert_eq!(mem.data_size(&store), 4 * 65536);
        assert!(mem.grow(&mut store, 1).is_err());

        // The store's limit applies below the declared maximum.
        let mut store = Store::new(engine(), ());
        store.set_max_memory_pages(2);
        let i = instantiate(&mut store, &m);
        let grow = i.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
        assert_eq!(grow.call(&mut store, 1).unwrap(), 1);
        assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
        let mem = i.get_memory(&mut store, "memory").unwrap();
        assert!(mem.grow(&mut store, 1).is_err());
        assert_eq!(mem.size(&store), 2);
        // A memory whose minimum exceeds the store's limit cannot be created.
        let mut store = Store::new(engine(), ());
        store.set_max_memory_pages(1);
        let big = load(r#"(module (memory 3))"#, b);
        let e = Instance::new(&mut store, &big, &[]).unwrap_err();
        assert!(
            matches!(e, Error::Instantiation(InstantiationError::Resource(_))),
            "{e:?}"
        );
    }
}

#[test]
fn typed_and_dynamic_calls_agree() {
    let m = load(
        r#"(module
             (func (export "mix") (param i32 i64 f32 f64) (result f64 f32 i64 i32)
               (f64.add (local.get 3) (f64.convert_i32_s (local.get 0)))
               (f32.mul (local.get 2) (f32.const 2))
               (i64.sub (local.get 1) (i64.const 1))
               (i32.const -7))
             (func (export "none")))"#,
        Bounds::Guard,
    );
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let typed = i
        .get_typed_func::<(i32, i64, f32, f64), (f64, f32, i64, i32)>(&mut store, "mix")
        .unwrap();
    assert_eq!(
        typed.call(&mut store, (2, 10, 1.5, 0.25)).unwrap(),
        (2.25, 3.0, 9, -7)
    );
    let f = i.get_func(&mut store, "mix").unwrap();
    assert_eq!(f, typed.func());
    let mut r = vec![Val::I32(0); 4];
    f.call(
        &mut store,
        &[
            Val::I32(2),
            Val::I64(10),
            Val::from(1.5f32),
            Val::from(0.25f64),
        ],
        &mut r,
    )
    .unwrap();
    assert_eq!(r[0].f64(), Some(2.25));
    assert_eq!(r[1].f32(), Some(3.0));
    assert_eq!(r[2].i64(), Some(9));
    assert_eq!(r[3].i32(), Some(-7));
    let none = i.get_typed_func::<(), ()>(&mut store, "none").unwrap();
    none.call(&mut store, ()).unwrap();
}

#[test]
fn host_reads_and_writes_memories_tables_and_globals() {
    for b in BOTH {
        let m = load(
            r#"(module
                 (memory (export "memory") 1)
                 (table (export "table") 3 funcref)
                 (table $refs (export "refs") 2 externref)
                 (global (export "mut") (mut f64) (f64.const 1.5))
                 (global (export "const") i64 (i64.const -3))
                 (type $r (func (result i32)))
                 (func $five (export "five") (result i32) (i32.const 5))
                 (func (export "sum") (param i32 i32) (result i32)
                   (local $s i32)
                   (block $done (loop $next
                     (br_if $done (i32.eqz (local.get 1)))
                     (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get 0))))
                     (local.set 0 (i32.add (local.get 0) (i32.const 1)))
                     (local.set 1 (i32.sub (local.get 1) (i32.const 1)))
                     (br $next)))
                   (local.get $s))
                 (func (export "double_global") (result f64)
                   (global.set 0 (f64.mul (global.get 0) (f64.const 2)))
                   (global.get 0))
                 (func (export "call") (param i32) (result i32)
                   (call_indirect (type $r) (local.get 0)))
                 (func (export "get_ref") (param i32) (result externref)
                   (table.get $refs (local.get 0))))"#,
            b,
        );
        let mut store = Store::new(engine(), ());
        let i = instantiate(&mut store, &m);
        let mem = i.get_memory(&mut store, "memory").unwrap();
        mem.write(&mut store, 1000, &[1, 2, 3, 4, 250]).unwrap();
        assert_eq!(
            call_i32(&mut store, &i, "sum", &[Val::I32(1000), Val::I32(5)]).unwrap(),
            260
        );
        mem.data_mut(&mut store)[65535] = 9;
        assert_eq!(
            call_i32(&mut store, &i, "sum", &[Val::I32(65535), Val::I32(1)]).unwrap(),
            9
        );
        assert!(mem.write(&mut store, 65535, &[1, 2]).is_err());
        let mut buf = [0u8; 2];
        assert!(mem.read(&store, usize::MAX, &mut buf).is_err());

        let g = i.get_global(&mut store, "mut").unwrap();
        assert_eq!(g.get(&mut store).f64(), Some(1.5));
        g.set(&mut store, Val::from(4.0f64)).unwrap();
        let d = i
            .get_typed_func::<(), f64>(&mut store, "double_global")
            .unwrap();
        assert_eq!(d.call(&mut store, ()).unwrap(), 8.0);
        assert_eq!(g.get(&mut store).f64(), Some(8.0));
        assert!(g.ty(&store).mutable);
        let c = i.get_global(&mut store, "const").unwrap();
        assert_eq!(c.get(&mut store).i64(), Some(-3));
        let e = c.set(&mut store, Val::I64(1)).unwrap_err();
        assert!(e.to_string().contains("immutable"), "{e}");
        assert_eq!(c.get(&mut store).i64(), Some(-3));

        let t = i.get_table(&mut store, "table").unwrap();
        assert_eq!(t.size(&store), 3);
        let five = i.get_func(&mut store, "five").unwrap();
        t.set(&mut store, 2, Val::FuncRef(Some(five))).unwrap();
        assert_eq!(call_i32(&mut store, &i, "call", &[Val::I32(2)]).unwrap(), 5);
        match t.get(&mut store, 2) {
            Some(Val::FuncRef(Some(f))) => assert_eq!(f, five),
            other => panic!("table.get: {other:?}"),
        }
        assert!(t.set(&mut store, 3, Val::FuncRef(None)).is_err());
        let refs = i.get_table(&mut store, "refs").unwrap();
        let r = ExternRef::new(17u64);
        refs.set(&mut store, 1, Val::ExternRef(Some(r.clone())))
            .unwrap();
        let f = i.get_func(&mut store, "get_ref").unwrap();
        let mut out = [Val::ExternRef(None)];
        f.call(&mut store, &[Val::I32(1)], &mut out).unwrap();
        let got = out[0].externref().unwrap().unwrap();
        assert_eq!(got.downcast_ref::<u64>(), Some(&17));
        assert!(ExternRef::ptr_eq(got, &r));
    }
}

#[test]
fn type_mismatches_name_both_types() {
    let m = load(SMALL, Bounds::Guard);
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let e = i
        .get_typed_func::<(i64, i32), f32>(&mut store, "add")
        .map(|_| ())
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::TypeMismatch { .. }), "{e:?}");
    assert!(
        msg.contains("(i64, i32) -> (f32)") && msg.contains("(i32, i32) -> (i32)"),
        "{msg}"
    );
    let add = i.get_func(&mut store, "add").unwrap();
    let e = add
        .call(&mut store, &[Val::I32(1), Val::F64(0)], &mut [Val::I32(0)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("(i32, i32)") && e.contains("(i32, f64)"), "{e}");
    let e = add
        .call(&mut store, &[Val::I32(1)], &mut [Val::I32(0)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("(i32, i32)") && e.contains("(i32)"), "{e}");
    let e = add
        .call(&mut store, &[Val::I32(1), Val::I32(2)], &mut [])
        .unwrap_err()
        .to_string();
    assert!(e.contains("number of results"), "{e}");
    let g = i.get_global(&mut store, "counter").unwrap();
    let e = g.set(&mut store, Val::I64(1)).unwrap_err().to_string();
    assert!(e.contains("i32") && e.contains("i64"), "{e}");
    let e = i
        .get_typed_func::<(), ()>(&mut store, "no_such")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no_such"), "{e}");

    // A host function of the wrong type for an import.
    let consumer = load(
        r#"(module (import "env" "f" (func (param i32) (result i64))))"#,
        Bounds::Guard,
    );
    let wrong = Func::new(&mut store, functype(&[ValType::F32], &[]), |_, _, _| Ok(()));
    let e = Instance::new(&mut store, &consumer, &[wrong.into()]).unwrap_err();
    assert!(
        matches!(e, Error::Link(LinkError::IncompatibleImport { .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("env::f") && msg.contains("(i32) -> (i64)") && msg.contains("(f32) -> ()"),
        "{msg}"
    );
    // A global where a function is expected.
    let e = Instance::new(&mut store, &consumer, &[g.into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("env::f") && e.contains("global"), "{e}");
    // A host function whose result has the wrong type.
    let liar = load(
        r#"(module (import "env" "f" (func (result i32)))
             (func (export "g") (result i32) (call 0)))"#,
        Bounds::Guard,
    );
    let f = Func::new(&mut store, functype(&[], &[ValType::I32]), |_, _, r| {
        r[0] = Val::I64(5);
        Ok(())
    });
    let li = Instance::new(&mut store, &liar, &[f.into()]).unwrap();
    let e = call_i32(&mut store, &li, "g", &[]).unwrap_err().to_string();
    assert!(e.contains("(i32)") && e.contains("(i64)"), "{e}");
    // Still usable.
    assert_eq!(
        call_i32(&mut store, &i, "add", &[Val::I32(2), Val::I32(3)]).unwrap(),
        5
    );
}

#[test]
fn missing_imports_name_module_and_field() {
    let m = load(
        r#"(module
             (import "env" "present" (func))
             (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
        Bounds::Guard,
    );
    let mut store = Store::new(engine(), ());
    let mut linker = Linker::new(engine());
    linker
        .func_new("env", "present", functype(&[], &[]), |_, _, _| Ok(()))
        .unwrap();
    let e = linker.instantiate(&mut store, &m).unwrap_err();
    assert!(
        matches!(e, Error::Link(LinkError::MissingImport { .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("wasi_snapshot_preview1::fd_write") && msg.contains("func"),
        "{msg}"
    );
    let e = Instance::new(&mut store, &m, &[]).unwrap_err().to_string();
    assert!(e.contains("2 imports") && e.contains("0 were given"), "{e}");
}
