//! Instantiation with imports: host functions of several signatures (every
//! value type, multi-value results); memories, tables and globals imported
//! from another instance and from the host; memory-strategy mismatches;
//! `Linker::instance`; the start function.

use super::*;

const HOST_SIGS: &str = r#"
(module $hostsigs
  (import "host" "nop" (func $nop))
  (import "host" "inc" (func $inc (param i32) (result i32)))
  (import "host" "mix" (func $mix (param i64 f32 f64) (result f64 i64 f32 i32)))
  (import "host" "all" (func $all
    (param i32 i64 f32 f64 v128 funcref externref)
    (result externref funcref v128 f64 f32 i64 i32)))
  (func $ninety_nine (export "ninety_nine") (result i32) (i32.const 99))
  (elem declare func $ninety_nine)
  (func (export "call_nop") (call $nop) (call $nop))
  (func (export "call_inc") (param i32) (result i32)
    (call $inc (call $inc (local.get 0))))
  (func (export "call_mix") (param i64 f32 f64) (result f64 i64 f32 i32)
    (call $mix (local.get 0) (local.get 1) (local.get 2)))
  (func (export "call_all") (param externref)
    (result externref funcref v128 f64 f32 i64 i32)
    (call $all (i32.const -5) (i64.const 0x100000001) (f32.const 1.5)
      (f64.const -2.25) (v128.const i64x2 1 2) (ref.func $ninety_nine)
      (local.get 0))))
"#;

#[test]
fn host_functions_of_many_signatures() {
    use ValType::*;
    for b in BOTH {
        let m = load(HOST_SIGS, b);
        let mut store = Store::new(engine(), ());
        let nops = Arc::new(AtomicUsize::new(0));
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut linker = Linker::new(engine());
        let n = nops.clone();
        linker
            .func_new("host", "nop", functype(&[], &[]), move |_, _, _| {
                n.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
        linker
            .func_new("host", "inc", functype(&[I32], &[I32]), |_, p, r| {
                r[0] = Val::I32(p[0].i32().unwrap().wrapping_add(1));
                Ok(())
            })
            .unwrap();
        linker
            .func_new(
                "host",
                "mix",
                functype(&[I64, F32, F64], &[F64, I64, F32, I32]),
                |_, p, r| {
                    r[0] = Val::from(p[2].f64().unwrap() * 2.0);
                    r[1] = Val::I64(p[0].i64().unwrap() + 1);
                    r[2] = Val::from(p[1].f32().unwrap() * 2.0);
                    r[3] = Val::I32(3);
                    Ok(())
                },
            )
            .unwrap();
        let s = seen.clone();
        linker
            .func_new(
                "host",
                "all",
                functype(
                    &[I32, I64, F32, F64, V128, FuncRef, ExternRef],
                    &[ExternRef, FuncRef, V128, F64, F32, I64, I32],
                ),
                move |mut caller, p, r| {
                    // The funcref is callable from the host.
                    let f = *p[5].funcref().unwrap().expect("non-null funcref");
                    let mut out = [Val::I32(0)];
                    f.call(&mut caller, &[], &mut out)?;
                    let ext = p[6].externref().unwrap().cloned();
                    s.lock().unwrap().push(format!(
                        "{} {} {} {} {:#x} {} {:?}",
                        p[0].i32().unwrap(),
                        p[1].i64().unwrap(),
                        p[2].f32().unwrap(),
                        p[3].f64().unwrap(),
                        match p[4] {
                            Val::V128(v) => v,
                            _ => 0,
                        },
                        out[0].i32().unwrap(),
                        ext.as_ref().and_then(|e| e.downcast_ref::<String>()),
                    ));
                    r[0] = Val::ExternRef(ext);
                    r[1] = Val::FuncRef(Some(f));
                    r[2] = Val::V128(u128::MAX - 1);
                    r[3] = Val::from(6.5f64);
                    r[4] = Val::from(-0.5f32);
                    r[5] = Val::I64(i64::MIN);
                    r[6] = Val::I32(-1);
                    Ok(())
                },
            )
            .unwrap();
        let i = linker.instantiate(&mut store, &m).unwrap();

        i.get_func(&mut store, "call_nop")
            .unwrap()
            .call(&mut store, &[], &mut [])
            .unwrap();
        assert_eq!(nops.load(Ordering::SeqCst), 2);

        let inc = i
            .get_typed_func::<i32, i32>(&mut store, "call_inc")
            .unwrap();
        assert_eq!(inc.call(&mut store, 40).unwrap(), 42);
        assert_eq!(inc.call(&mut store, i32::MAX).unwrap(), i32::MIN + 1);

        let mix = i
            .get_typed_func::<(i64, f32, f64), (f64, i64, f32, i32)>(&mut store, "call_mix")
            .unwrap();
        assert_eq!(
            mix.call(&mut store, (41, 1.25, 10.5)).unwrap(),
            (21.0, 42, 2.5, 3)
        );

        let token = wasmc_loader::ExternRef::new(String::from("token"));
        let all = i.get_func(&mut store, "call_all").unwrap();
        let mut r: Vec<Val> = all
            .ty(&store)
            .results
            .iter()
            .map(|t| Val::default_for(*t))
            .collect();
        all.call(&mut store, &[Val::ExternRef(Some(token.clone()))], &mut r)
            .unwrap();
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            [format!(
                "-5 4294967297 1.5 -2.25 {:#x} 99 Some(\"token\")",
                1u128 | (2u128 << 64)
            )]
        );
        let back = r[0].externref().unwrap().expect("non-null externref");
        assert!(wasmc_loader::ExternRef::ptr_eq(back, &token));
        let f = *r[1].funcref().unwrap().expect("non-null funcref");
        assert_eq!(f, i.get_func(&mut store, "ninety_nine").unwrap());
        assert!(matches!(r[2], Val::V128(v) if v == u128::MAX - 1));
        assert_eq!(r[3].f64(), Some(6.5));
        assert_eq!(r[4].f32(), Some(-0.5));
        assert_eq!(r[5].i64(), Some(i64::MIN));
        assert_eq!(r[6].i32(), Some(-1));

        // A host function called directly from the host.
        let direct = Func::new(&mut store, functype(&[I32, I32], &[I32, I64]), |_, p, r| {
            r[0] = Val::I32(p[0].i32().unwrap() * p[1].i32().unwrap());
            r[1] = Val::I64(7);
            Ok(())
        });
        let t = direct.typed::<(i32, i32), (i32, i64)>(&store).unwrap();
        assert_eq!(t.call(&mut store, (6, 7)).unwrap(), (42, 7));
    }
}

const PROVIDER: &str = r#"
(module $provider
  (memory (export "mem") 1 3)
  (table (export "tab") 2 funcref)
  (global (export "glob") (mut i64) (i64.const 40))
  (func $seven (export "seven") (result i32) (i32.const 7))
  (elem (i32.const 0) $seven)
  (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))
"#;

const CONSUMER: &str = r#"
(module $consumer
  (import "p" "mem" (memory 1))
  (import "p" "tab" (table 2 funcref))
  (import "p" "glob" (global $g (mut i64)))
  (import "p" "seven" (func $seven (result i32)))
  (type $r (func (result i32)))
  (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "bump") (result i64)
    (global.set $g (i64.add (global.get $g) (i64.const 2)))
    (global.get $g))
  (func (export "via_table") (param i32) (result i32)
    (call_indirect (type $r) (local.get 0)))
  (func (export "direct") (result i32) (call $seven))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
"#;

#[test]
fn imports_from_another_instance_via_linker() {
    for b in BOTH {
        let provider = load(PROVIDER, b);
        let consumer = load(CONSUMER, b);
        let mut store = Store::new(engine(), ());
        let p = instantiate(&mut store, &provider);
        let mut linker = Linker::new(engine());
        linker.instance(&mut store, "p", p).unwrap();
        let c = linker.instantiate(&mut store, &consumer).unwrap();

        // Memory is shared both ways.
        let poke = c
            .get_typed_func::<(i32, i32), ()>(&mut store, "poke")
            .unwrap();
        poke.call(&mut store, (100, 0xab)).unwrap();
        assert_eq!(
            call_i32(&mut store, &p, "peek", &[Val::I32(100)]).unwrap(),
            0xab
        );
        let mem = p.get_memory(&mut store, "mem").unwrap();
        mem.write(&mut store, 200, &[0x5a]).unwrap();
        assert_eq!(
            call_i32(&mut store, &c, "peek", &[Val::I32(200)]).unwrap(),
            0x5a
        );
        // A grow through the importer is seen by the exporter and the host.
        assert_eq!(call_i32(&mut store, &c, "grow", &[Val::I32(1)]).unwrap(), 1);
        assert_eq!(mem.size(&store), 2);
        poke.call(&mut store, (65536 + 5, 9)).unwrap();
        assert_eq!(
            call_i32(&mut store, &p, "peek", &[Val::I32(65536 + 5)]).unwrap(),
            9
        );
        // The declared maximum (3) holds for the importer too.
        assert_eq!(
            call_i32(&mut store, &c, "grow", &[Val::I32(2)]).unwrap(),
            -1
        );

        // Global.
        let bump = c.get_typed_func::<(), i64>(&mut store, "bump").unwrap();
        assert_eq!(bump.call(&mut store, ()).unwrap(), 42);
        let g = p.get_global(&mut store, "glob").unwrap();
        assert_eq!(g.get(&mut store).i64(), Some(42));
        g.set(&mut store, Val::I64(100)).unwrap();
        assert_eq!(bump.call(&mut store, ()).unwrap(), 102);

        // Table and function.
        assert_eq!(
            call_i32(&mut store, &c, "via_table", &[Val::I32(0)]).unwrap(),
            7
        );
        assert_eq!(call_i32(&mut store, &c, "direct", &[]).unwrap(), 7);
        let t = expect_trap(call_i32(&mut store, &c, "via_table", &[Val::I32(1)]));
        assert_eq!(t.code, TrapCode::IndirectCallToNull);
        let tab = p.get_table(&mut store, "tab").unwrap();
        let seven = p.get_func(&mut store, "seven").unwrap();
        tab.set(&mut store, 1, Val::FuncRef(Some(seven))).unwrap();
        assert_eq!(
            call_i32(&mut store, &c, "via_table", &[Val::I32(1)]).unwrap(),
            7
        );
    }
}

#[test]
fn imports_from_the_host() {
    use ValType::*;
    for b in BOTH {
        let consumer = load(CONSUMER, b);
        let mut store = Store::new(engine(), ());
        let mem = Memory::new(
            &mut store,
            MemoryType {
                min: 1,
                max: Some(2),
                memory64: false,
                shared: false,
            },
        )
        .unwrap();
        let tab = Table::new(
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
        let glob = Global::new(
            &mut store,
            GlobalType {
                ty: I64,
                mutable: true,
            },
            Val::I64(-2),
        )
        .unwrap();
        let eleven = Func::new(&mut store, functype(&[], &[I32]), |_, _, r| {
            r[0] = Val::I32(11);
            Ok(())
        });
        tab.set(&mut store, 1, Val::FuncRef(Some(eleven))).unwrap();
        let c = Instance::new(
            &mut store,
            &consumer,
            &[mem.into(), tab.into(), glob.into(), eleven.into()],
        )
        .unwrap();
        mem.write(&mut store, 7, &[77]).unwrap();
        assert_eq!(
            call_i32(&mut store, &c, "peek", &[Val::I32(7)]).unwrap(),
            77
        );
        call_i32(&mut store, &c, "poke", &[Val::I32(8), Val::I32(88)]).unwrap_err();
        let poke = c.get_func(&mut store, "poke").unwrap();
        poke.call(&mut store, &[Val::I32(8), Val::I32(88)], &mut [])
            .unwrap();
        let mut buf = [0u8; 2];
        mem.read(&store, 7, &mut buf).unwrap();
        assert_eq!(buf, [77, 88]);
        assert_eq!(call_i32(&mut store, &c, "grow", &[Val::I32(1)]).unwrap(), 1);
        assert_eq!(mem.size(&store), 2);
        assert_eq!(
            call_i32(&mut store, &c, "grow", &[Val::I32(1)]).unwrap(),
            -1
        );
        let bump = c.get_typed_func::<(), i64>(&mut store, "bump").unwrap();
        assert_eq!(bump.call(&mut store, ()).unwrap(), 0);
        assert_eq!(glob.get(&mut store).i64(), Some(0));
        assert_eq!(call_i32(&mut store, &c, "direct", &[]).unwrap(), 11);
        assert_eq!(
            call_i32(&mut store, &c, "via_table", &[Val::I32(1)]).unwrap(),
            11
        );
        let t = expect_trap(call_i32(&mut store, &c, "via_table", &[Val::I32(0)]));
        assert_eq!(t.code, TrapCode::IndirectCallToNull);
        let t = expect_trap(call_i32(&mut store, &c, "via_table", &[Val::I32(2)]));
        assert_eq!(t.code, TrapCode::UndefinedElement);
        // A table grown by the host is seen by Wasm.
        assert_eq!(
            tab.grow(&mut store, 1, Val::FuncRef(Some(eleven))).unwrap(),
            2
        );
        assert_eq!(
            call_i32(&mut store, &c, "via_table", &[Val::I32(2)]).unwrap(),
            11
        );
    }
}

/// Every memory the loader creates has the full guard layout (the sandbox is
/// the loader's, not the artifact's), so memories are shared between code
/// compiled for either strategy, in both directions.
#[test]
fn memories_link_across_memory_strategies() {
    let mut store = Store::new(engine(), ());
    for (pb, cb) in [
        (Bounds::Explicit, Bounds::Guard),
        (Bounds::Guard, Bounds::Explicit),
    ] {
        let provider = load(PROVIDER, pb);
        let consumer = load(CONSUMER, cb);
        let p = instantiate(&mut store, &provider);
        let mut linker = Linker::new(engine());
        linker.instance(&mut store, "p", p).unwrap();
        let c = linker.instantiate(&mut store, &consumer).unwrap();
        assert_eq!(call_i32(&mut store, &c, "direct", &[]).unwrap(), 7);
    }
}

/// Like the spec's `register`: module B imports functions and state of
/// module A by the name A was registered under.
#[test]
fn linker_instance_links_two_modules() {
    let a = load(
        r#"(module $a
             (global $n (export "n") (mut i32) (i32.const 0))
             (func (export "next") (result i32)
               (global.set $n (i32.add (global.get $n) (i32.const 1)))
               (global.get $n)))"#,
        Bounds::Guard,
    );
    let b = load(
        r#"(module $b
             (import "counter" "next" (func $next (result i32)))
             (import "counter" "n" (global $n (mut i32)))
             (func (export "twice") (result i32)
               (drop (call $next))
               (i32.add (call $next) (global.get $n))))"#,
        Bounds::Guard,
    );
    let mut store = Store::new(engine(), ());
    let mut linker = Linker::new(engine());
    let ia = linker.instantiate(&mut store, &a).unwrap();
    linker.instance(&mut store, "counter", ia).unwrap();
    let ib = linker.instantiate(&mut store, &b).unwrap();
    assert_eq!(call_i32(&mut store, &ib, "twice", &[]).unwrap(), 4);
    assert_eq!(call_i32(&mut store, &ib, "twice", &[]).unwrap(), 8);
    assert_eq!(call_i32(&mut store, &ia, "next", &[]).unwrap(), 5);
    // The definitions are usable through the linker by name.
    let f = linker
        .get(&mut store, "counter", "next")
        .and_then(Extern::into_func)
        .unwrap();
    let mut r = [Val::I32(0)];
    f.call(&mut store, &[], &mut r).unwrap();
    assert_eq!(r[0].i32(), Some(6));
    // A linker definition from another store is refused.
    let mut other = Store::new(engine(), ());
    let e = linker.instantiate(&mut other, &b).unwrap_err();
    assert!(e.to_string().contains("different store"), "{e}");
}

#[test]
fn start_function_runs_at_instantiation() {
    let m = load(
        r#"(module
             (import "host" "started" (func $started (param i32)))
             (global $g (export "g") (mut i32) (i32.const 0))
             (memory (export "memory") 1)
             (data (i32.const 0) "\05")
             (func $start
               (global.set $g (i32.add (i32.load8_u (i32.const 0)) (i32.const 37)))
               (call $started (global.get $g)))
             (start $start))"#,
        Bounds::Guard,
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let mut linker = Linker::new(engine());
    linker
        .func_new(
            "host",
            "started",
            functype(&[ValType::I32], &[]),
            move |_, p, _| {
                s.lock().unwrap().push(p[0].i32().unwrap());
                Ok(())
            },
        )
        .unwrap();
    let mut store = Store::new(engine(), ());
    let i = linker.instantiate(&mut store, &m).unwrap();
    assert_eq!(*seen.lock().unwrap(), [42]);
    let g = i.get_global(&mut store, "g").unwrap();
    assert_eq!(g.get(&mut store).i32(), Some(42));

    // A trapping start function fails the instantiation with the trap.
    let m = load(
        r#"(module (func $bad_start unreachable) (start $bad_start))"#,
        Bounds::Guard,
    );
    let t = expect_trap(Instance::new(&mut store, &m, &[]));
    assert_eq!(t.code, TrapCode::UnreachableCodeReached);
    assert_eq!(frame_names(&t), ["bad_start"]);
    // The store is still usable.
    assert_eq!(g.get(&mut store).i32(), Some(42));
}
