//! End-to-end tests of the runtime on hand-assembled x86-64 code
//! (`support/mock_x86_64.s`): entry and host trampolines, traps of each kind
//! with backtraces, host errors and panics, re-entry, threads, imports and
//! linking errors. No compiler is involved.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "support/artifact_builder.rs"]
mod artifact_builder;

use artifact_builder::ArtifactBuilder;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wasmc_format::addrmap::AddrMapBuilder;
use wasmc_format::trap::TrapTableBuilder;
use wasmc_format::ImportType;
use wasmc_format::*;
use wasmc_loader::*;

/// The engine every module and store of these tests is made with (a module
/// instantiates only in stores of its own engine).
fn engine() -> &'static wasmc_loader::Engine {
    static E: std::sync::OnceLock<wasmc_loader::Engine> = std::sync::OnceLock::new();
    E.get_or_init(wasmc_loader::Engine::default)
}

// The generated file lists every label of the assembly; tests use some.
#[allow(dead_code)]
mod mock {
    include!("support/mock_x86_64.rs");
}
use mock::*;

fn range(a: u32, b: u32) -> CodeRange {
    CodeRange {
        offset: a,
        len: b - a,
    }
}

fn t(params: &[ValType], results: &[ValType]) -> FuncType {
    FuncType {
        params: params.to_vec(),
        results: results.to_vec(),
    }
}

fn mock_funcs() -> Vec<FuncInfo> {
    let f = |ty: u32, name: &str, a: u32, b: u32| FuncInfo {
        type_index: ty,
        name: Some(name.into()),
        code: Some(DefinedFunc {
            range: range(a, b),
            wasm_offset: 0,
        }),
    };
    vec![
        FuncInfo {
            type_index: 2,
            name: None,
            code: None,
        },
        f(0, "add", F_ADD, F_UNREACHABLE),
        f(1, "unreachable", F_UNREACHABLE, F_CALL_UNREACHABLE),
        f(1, "call_unreachable", F_CALL_UNREACHABLE, F_DIV),
        f(0, "div", F_DIV, F_LOAD),
        f(2, "load", F_LOAD, F_RECURSE),
        f(1, "recurse", F_RECURSE, F_CALL_IMPORT),
        f(2, "call_import", F_CALL_IMPORT, F_LOAD_WIDE),
        f(0, "load_wide", F_LOAD_WIDE, END_FUNCS),
    ]
}

fn mock_info(start: Option<u32>) -> ModuleInfo {
    use ValType::I32;
    let names = [
        "add",
        "unreachable",
        "call_unreachable",
        "div",
        "load",
        "recurse",
        "call_import",
        "load_wide",
    ];
    let mut exports: Vec<Export> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Export {
            name: n.to_string(),
            kind: ExternKind::Func,
            index: i as u32 + 1,
        })
        .collect();
    exports.push(Export {
        name: "memory".into(),
        kind: ExternKind::Memory,
        index: 0,
    });
    ModuleInfo {
        name: Some("mock".into()),
        types: vec![t(&[I32, I32], &[I32]), t(&[], &[]), t(&[I32], &[I32])],
        trampolines: vec![
            TypeTrampolines {
                entry: range(ENTRY_T0, ENTRY_T1),
                host: range(HOST_STUB, END_ALL),
            },
            TypeTrampolines {
                entry: range(ENTRY_T1, ENTRY_T2),
                host: range(HOST_STUB, END_ALL),
            },
            TypeTrampolines {
                entry: range(ENTRY_T2, HOST_T2),
                host: range(HOST_T2, HOST_STUB),
            },
        ],
        imports: vec![Import {
            module: "host".into(),
            field: "double".into(),
            ty: ImportType::Func(2),
        }],
        num_imported_funcs: 1,
        memories: vec![MemoryType {
            min: 1,
            max: Some(2),
            memory64: false,
            shared: false,
        }],
        exports,
        start,
        num_data_segments: 1,
        ..Default::default()
    }
}

/// One active data segment, `[1, 2, 3, 4]` at `4 + 4`, copied at
/// instantiation (no memory image: the mock exercises the copy path).
fn mock_data() -> wasmc_format::segments::DataLayout {
    let seg = wasmc_format::segments::SegmentSource {
        active: Some((
            0,
            ConstExpr(vec![
                ConstOp::I32Const(4),
                ConstOp::I32Const(4),
                ConstOp::I32Add,
            ]),
        )),
        bytes: &[1, 2, 3, 4],
    };
    wasmc_format::segments::layout_data(&[seg], &mock_info(None).memories, 0, false).unwrap()
}

fn mock_bytes_with(start: Option<u32>) -> Vec<u8> {
    let mut traps = TrapTableBuilder::default();
    traps.push(TRAP_UNREACHABLE, TrapCode::UnreachableCodeReached);
    traps.push(TRAP_DIV, TrapCode::IntegerDivisionByZero);
    traps.push(TRAP_LOAD, TrapCode::MemoryOutOfBounds);
    traps.push(TRAP_STACK, TrapCode::StackOverflow);
    traps.push(TRAP_LOAD_WIDE, TrapCode::MemoryOutOfBounds);
    let mut addr = AddrMapBuilder::default();
    addr.push(F_ADD, 100);
    addr.push(F_UNREACHABLE, 200);
    addr.push(F_CALL_UNREACHABLE, 300);
    addr.push(F_CALL_UNREACHABLE + 4, 304);
    addr.push(F_CALL_UNREACHABLE + 9, 309);
    addr.push(F_DIV, 400);
    ArtifactBuilder {
        text: CODE.to_vec(),
        info: mock_info(start),
        funcs: mock_funcs(),
        traps: traps.finish(),
        addrmap: addr.finish(),
        segments: mock_data().segments,
        data: mock_data().data,
        ..Default::default()
    }
    .build()
}

fn mock_module() -> Module {
    Module::from_bytes(engine(), &mock_bytes_with(None)).unwrap()
}

fn double_linker() -> Linker<()> {
    let mut l = Linker::new(engine());
    l.func_new(
        "host",
        "double",
        t(&[ValType::I32], &[ValType::I32]),
        |_, args, res| {
            res[0] = Val::I32(args[0].i32().unwrap() * 2);
            Ok(())
        },
    )
    .unwrap();
    l
}

fn instantiate(store: &mut Store<()>, m: &Module) -> Instance {
    double_linker().instantiate(store, m).unwrap()
}

fn trap_of(r: Result<impl std::fmt::Debug, Error>) -> Trap {
    match r {
        Err(Error::Trap(t)) => t,
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// The VMContext offsets the assembly uses are the ones `VMOffsets` gives
/// the mock module (the assembly cannot compute them; this holds it to
/// them).
#[test]
fn asm_offsets_are_vmoffsets() {
    let o = VMOffsets::for_module(8, &mock_info(None));
    let limits = o.vmctx_runtime_limits();
    assert_eq!(VMCTX_RUNTIME_LIMITS, limits, "vmctx.runtime_limits");
    assert_eq!(LIMITS_STACK_LIMIT, o.limits_stack_limit(), "stack_limit");
    assert_eq!(
        LIMITS_LAST_WASM_EXIT_FP,
        o.limits_last_wasm_exit_fp(),
        "exit fp"
    );
    assert_eq!(
        LIMITS_LAST_WASM_EXIT_PC,
        o.limits_last_wasm_exit_pc(),
        "exit pc"
    );
    assert_eq!(
        LIMITS_LAST_WASM_ENTRY_FP,
        o.limits_last_wasm_entry_fp(),
        "entry fp"
    );
    let import0 = o.vmctx_imported_function(0);
    assert_eq!(
        VMCTX_IMPORTED_FUNCTION0_WASM_CALL,
        import0 + o.vmfunction_import_wasm_call(),
        "imported function 0 code"
    );
    assert_eq!(
        VMCTX_IMPORTED_FUNCTION0_VMCTX,
        import0 + o.vmfunction_import_vmctx(),
        "imported function 0 vmctx"
    );
    assert_eq!(
        VMCTX_DEFINED_MEMORY0_BASE,
        o.vmctx_defined_memory(0) + o.vmmemory_definition_base(),
        "defined memory 0 base"
    );
    assert_eq!(
        VMHOSTFUNC_ARRAY_CALL,
        o.vmhostfunc_array_call(),
        "array_call"
    );
    assert_eq!(
        mock::VALUE_SLOT_SIZE,
        wasmc_format::VALUE_SLOT_SIZE,
        "value slot"
    );
}

#[test]
fn typed_and_dynamic_calls() {
    let m = mock_module();
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let add = i
        .get_typed_func::<(i32, i32), i32>(&mut store, "add")
        .unwrap();
    assert_eq!(add.call(&mut store, (2, 3)).unwrap(), 5);
    let f = i.get_func(&mut store, "add").unwrap();
    let mut out = [Val::I32(0)];
    f.call(&mut store, &[Val::I32(40), Val::I32(2)], &mut out)
        .unwrap();
    assert_eq!(out[0].i32(), Some(42));
    // Wrong types name both.
    let e = i
        .get_typed_func::<i64, i32>(&mut store, "add")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("(i64) -> (i32)") && e.contains("(i32, i32) -> (i32)"),
        "{e}"
    );
    let e = f
        .call(&mut store, &[Val::I64(1), Val::I32(2)], &mut out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("(i32, i32)") && e.contains("(i64, i32)"), "{e}");
}

#[test]
fn traps_with_code_and_backtrace() {
    let m = mock_module();
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let f = i
        .get_typed_func::<(), ()>(&mut store, "unreachable")
        .unwrap();
    let trap = trap_of(f.call(&mut store, ()));
    assert_eq!(trap.code, TrapCode::UnreachableCodeReached);
    assert_eq!(trap.backtrace.len(), 1);
    assert_eq!(trap.backtrace[0].func_name.as_deref(), Some("unreachable"));
    assert_eq!(trap.backtrace[0].func_index, 2);
    assert_eq!(trap.backtrace[0].module_name.as_deref(), Some("mock"));
    assert_eq!(trap.backtrace[0].wasm_offset, Some(200));
    assert!(trap.to_string().contains("unreachable"));

    let f = i
        .get_typed_func::<(), ()>(&mut store, "call_unreachable")
        .unwrap();
    let trap = trap_of(f.call(&mut store, ()));
    let names: Vec<_> = trap
        .backtrace
        .iter()
        .map(|f| f.func_name.clone().unwrap())
        .collect();
    assert_eq!(names, ["unreachable", "call_unreachable"]);
    assert_eq!(trap.backtrace[1].wasm_offset, Some(304));

    let div = i
        .get_typed_func::<(i32, i32), i32>(&mut store, "div")
        .unwrap();
    assert_eq!(div.call(&mut store, (7, 2)).unwrap(), 3);
    let trap = trap_of(div.call(&mut store, (7, 0)));
    assert_eq!(trap.code, TrapCode::IntegerDivisionByZero);
    assert!(trap.to_string().contains("integer divide by zero"));

    let load = i.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
    assert_eq!(load.call(&mut store, 8).unwrap(), 0x0403_0201);
    let trap = trap_of(load.call(&mut store, 70_000));
    assert_eq!(trap.code, TrapCode::MemoryOutOfBounds);
    let trap = trap_of(load.call(&mut store, -1));
    assert_eq!(trap.code, TrapCode::MemoryOutOfBounds);

    let rec = i.get_typed_func::<(), ()>(&mut store, "recurse").unwrap();
    let trap = trap_of(rec.call(&mut store, ()));
    assert_eq!(trap.code, TrapCode::StackOverflow);
    assert!(trap.backtrace.len() > 1000);

    // The store stays usable after every kind of trap.
    let add = i
        .get_typed_func::<(i32, i32), i32>(&mut store, "add")
        .unwrap();
    assert_eq!(add.call(&mut store, (1, 1)).unwrap(), 2);
}

#[test]
fn memory_grows_from_the_host_and_code_sees_it() {
    let m = mock_module();
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let mem = i.get_memory(&mut store, "memory").unwrap();
    assert_eq!(mem.size(&store), 1);
    mem.write(&mut store, 100, &[9, 0, 0, 0]).unwrap();
    let load = i.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
    assert_eq!(load.call(&mut store, 100).unwrap(), 9);
    assert_eq!(mem.grow(&mut store, 1).unwrap(), 1);
    assert!(mem.grow(&mut store, 1).is_err(), "max is 2 pages");
    mem.write(&mut store, 70_000, &[5, 0, 0, 0]).unwrap();
    assert_eq!(load.call(&mut store, 70_000).unwrap(), 5);
    assert_eq!(mem.data(&store)[70_000], 5);
}

#[test]
fn host_functions_errors_panics_and_reentry() {
    let m = mock_module();
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let ci = i
        .get_typed_func::<i32, i32>(&mut store, "call_import")
        .unwrap();
    assert_eq!(ci.call(&mut store, 21).unwrap(), 42);

    // Error from the host function reaches the caller.
    let mut l = Linker::new(engine());
    l.func_new(
        "host",
        "double",
        t(&[ValType::I32], &[ValType::I32]),
        |_, _, _| Err(Error::msg("host says no").into()),
    )
    .unwrap();
    let i2 = l.instantiate(&mut store, &m).unwrap();
    let ci2 = i2
        .get_typed_func::<i32, i32>(&mut store, "call_import")
        .unwrap();
    let e = ci2.call(&mut store, 1).unwrap_err();
    assert_eq!(e.to_string(), "host says no");

    // A panic is resumed on the host side of the entry.
    let mut l = Linker::new(engine());
    l.func_new(
        "host",
        "double",
        t(&[ValType::I32], &[ValType::I32]),
        |_, _, _| panic!("boom in host"),
    )
    .unwrap();
    let i3 = l.instantiate(&mut store, &m).unwrap();
    let ci3 = i3
        .get_typed_func::<i32, i32>(&mut store, "call_import")
        .unwrap();
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = ci3.call(&mut store, 1);
    }))
    .unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"boom in host"));

    // Re-entry: host -> wasm -> host -> wasm, and a trap in the inner
    // activation seen by the host function.
    let mut l = Linker::new(engine());
    l.func_new(
        "host",
        "double",
        t(&[ValType::I32], &[ValType::I32]),
        |mut caller, args, res| {
            let x = args[0].i32().unwrap();
            let add = caller.get_export("add").unwrap().into_func().unwrap();
            let mut out = [Val::I32(0)];
            add.call(&mut caller, &[Val::I32(x), Val::I32(x)], &mut out)?;
            let div = caller.get_export("div").unwrap().into_func().unwrap();
            let e = div
                .call(&mut caller, &[Val::I32(1), Val::I32(0)], &mut [Val::I32(0)])
                .unwrap_err();
            assert_eq!(e.as_trap().unwrap().code, TrapCode::IntegerDivisionByZero);
            res[0] = out[0].clone();
            Ok(())
        },
    )
    .unwrap();
    let i4 = l.instantiate(&mut store, &m).unwrap();
    let ci4 = i4
        .get_typed_func::<i32, i32>(&mut store, "call_import")
        .unwrap();
    assert_eq!(ci4.call(&mut store, 5).unwrap(), 10);
    // After the nested trap the outer activation's limits were restored.
    assert_eq!(ci4.call(&mut store, 6).unwrap(), 12);
    let f = i4
        .get_typed_func::<(), ()>(&mut store, "unreachable")
        .unwrap();
    assert_eq!(
        trap_of(f.call(&mut store, ())).code,
        TrapCode::UnreachableCodeReached
    );
}

#[test]
fn link_errors_name_things() {
    let m = mock_module();
    let mut store = Store::new(engine(), ());
    let e = Linker::new(engine())
        .instantiate(&mut store, &m)
        .unwrap_err()
        .to_string();
    assert!(e.contains("host::double"), "{e}");
    let mut l = Linker::new(engine());
    l.func_new("host", "double", t(&[], &[]), |_, _, _| Ok(()))
        .unwrap();
    let e = l.instantiate(&mut store, &m).unwrap_err().to_string();
    assert!(e.contains("host::double"), "{e}");
    assert!(
        e.contains("func (i32) -> (i32)") && e.contains("func () -> ()"),
        "{e}"
    );
    let mem = Memory::new(
        &mut store,
        MemoryType {
            min: 1,
            max: None,
            memory64: false,
            shared: false,
        },
    )
    .unwrap();
    let e = Instance::new(&mut store, &m, &[mem.into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("expected func") && e.contains("found memory"),
        "{e}"
    );
}

#[test]
fn instances_link_to_each_other() {
    let m = mock_module();
    let mut store = Store::new(engine(), ());
    let a = instantiate(&mut store, &m);
    // b imports a's `call_import` (i32 -> i32) as `host::double`.
    let mut l = Linker::new(engine());
    l.instance(&mut store, "a", a).unwrap();
    let ci = l.get(&mut store, "a", "call_import").unwrap();
    l.define(&store, "host", "double", ci).unwrap();
    let b = l.instantiate(&mut store, &m).unwrap();
    let f = b
        .get_typed_func::<i32, i32>(&mut store, "call_import")
        .unwrap();
    assert_eq!(f.call(&mut store, 4).unwrap(), 8);
}

#[test]
fn start_function_trap_fails_instantiation() {
    let m = Module::from_bytes(engine(), &mock_bytes_with(Some(2))).unwrap();
    let mut store = Store::new(engine(), ());
    let e = double_linker().instantiate(&mut store, &m).unwrap_err();
    assert_eq!(e.as_trap().unwrap().code, TrapCode::UnreachableCodeReached);
    // The store is still usable.
    let m2 = mock_module();
    let i = instantiate(&mut store, &m2);
    let add = i
        .get_typed_func::<(i32, i32), i32>(&mut store, "add")
        .unwrap();
    assert_eq!(add.call(&mut store, (1, 2)).unwrap(), 3);
}

#[test]
fn threads_trap_concurrently_on_one_module() {
    let m = mock_module();
    let ok = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for n in 0..4 {
            let m = m.clone();
            let ok = ok.clone();
            s.spawn(move || {
                let mut store = Store::new(engine(), ());
                let i = instantiate(&mut store, &m);
                let div = i
                    .get_typed_func::<(i32, i32), i32>(&mut store, "div")
                    .unwrap();
                let load = i.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
                let rec = i.get_typed_func::<(), ()>(&mut store, "recurse").unwrap();
                for k in 0..50 {
                    assert_eq!(div.call(&mut store, (10 * n + k, 1)).unwrap(), 10 * n + k);
                    assert_eq!(
                        trap_of(div.call(&mut store, (1, 0))).code,
                        TrapCode::IntegerDivisionByZero
                    );
                    assert_eq!(
                        trap_of(load.call(&mut store, 1 << 20)).code,
                        TrapCode::MemoryOutOfBounds
                    );
                    if k % 10 == 0 {
                        assert_eq!(
                            trap_of(rec.call(&mut store, ())).code,
                            TrapCode::StackOverflow
                        );
                    }
                }
                ok.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(ok.load(Ordering::SeqCst), 4);
}

#[test]
fn from_file_and_corrupted_artifacts() {
    let bytes = mock_bytes_with(None);
    let dir = std::env::temp_dir().join(format!("wasmc-loader-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mock.o");
    std::fs::write(&path, &bytes).unwrap();
    let m = Module::from_file(engine(), &path).unwrap();
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let add = i
        .get_typed_func::<(i32, i32), i32>(&mut store, "add")
        .unwrap();
    assert_eq!(add.call(&mut store, (20, 22)).unwrap(), 42);
    m.verify_content_hash().unwrap();

    let e = Module::from_file(engine(), dir.join("missing.o"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.o"), "{e}");
    for n in [0, 10, 64, bytes.len() / 2] {
        assert!(Module::from_bytes(engine(), &bytes[..n]).is_err());
    }
    for n in (bytes.len() / 2..bytes.len()).step_by(7) {
        let _ = Module::from_bytes(engine(), &bytes[..n]);
    }
    for k in (0..bytes.len()).step_by(13) {
        let mut b = bytes.clone();
        b[k] ^= 0x55;
        // Text flips load (the code is trusted as far as its origin); the
        // content hash catches them.
        if let Ok(m) = Module::from_bytes(engine(), &b) {
            let _ = m.verify_content_hash();
        }
    }
    let mut foreign = ArtifactBuilder {
        text: CODE.to_vec(),
        info: mock_info(None),
        funcs: mock_funcs(),
        segments: mock_data().segments,
        data: mock_data().data,
        ..Default::default()
    };
    foreign.header.cpu_features = vec!["avx512vbmi-unknown".into()];
    let e = Module::from_bytes(engine(), &foreign.build())
        .unwrap_err()
        .to_string();
    assert!(e.contains("cpu feature"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn externref_counts_in_tables_globals_and_store() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let r = ExternRef::new(Counted(drops.clone()));
    {
        let mut store = Store::new(engine(), ());
        let tt = TableType {
            elem: RefType::ExternRef,
            min: 3,
            max: Some(10),
            table64: false,
        };
        let table = Table::new(&mut store, tt, Val::ExternRef(Some(r.clone()))).unwrap();
        assert_eq!(r.strong_count(), 4);
        table.set(&mut store, 0, Val::ExternRef(None)).unwrap();
        assert_eq!(r.strong_count(), 3);
        table
            .grow(&mut store, 2, Val::ExternRef(Some(r.clone())))
            .unwrap();
        assert_eq!(r.strong_count(), 5);
        let got = table.get(&mut store, 4).unwrap();
        assert!(ExternRef::ptr_eq(got.externref().unwrap().unwrap(), &r));
        drop(got);
        let g = Global::new(
            &mut store,
            GlobalType {
                ty: ValType::ExternRef,
                mutable: true,
            },
            Val::ExternRef(Some(r.clone())),
        )
        .unwrap();
        assert_eq!(r.strong_count(), 6);
        g.set(&mut store, Val::ExternRef(None)).unwrap();
        assert_eq!(r.strong_count(), 5);
        g.set(&mut store, Val::ExternRef(Some(r.clone()))).unwrap();
        assert!(g.set(&mut store, Val::I32(1)).is_err());
        store.gc();
    }
    assert_eq!(r.strong_count(), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(r);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// An access out of bounds that faults inside the memory's reservation
/// (accessible pages, the rest of the reservation, the guard region) is
/// placed there: the trap carries the Wasm address and the memory's current
/// size.
#[test]
fn memory_faults_carry_the_wasm_address_and_size() {
    let m = mock_module();
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, &m);
    let mem = i.get_memory(&mut store, "memory").unwrap();
    let load = i.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
    let wide = i
        .get_typed_func::<(i32, i32), i32>(&mut store, "load_wide")
        .unwrap();
    let fault = |t: Trap| {
        assert_eq!(t.code, TrapCode::MemoryOutOfBounds, "{t}");
        let f = t.memory_fault.unwrap_or_else(|| panic!("no fault: {t}"));
        assert_eq!(f.memory, mem);
        assert_eq!(t.fault_address(), Some(f.wasm_address));
        assert!(t.to_string().contains(&format!(
            "memory fault at wasm address {:#x} in linear memory of size {:#x}",
            f.wasm_address, f.memory_size
        )));
        (f.wasm_address, f.memory_size)
    };
    assert_eq!(
        fault(trap_of(load.call(&mut store, 70_000))),
        (70_000, 0x1_0000)
    );
    assert_eq!(
        fault(trap_of(load.call(&mut store, -1))),
        (0xffff_ffff, 0x1_0000)
    );
    // Past the 4 GiB reservation, in the guard region.
    assert_eq!(
        fault(trap_of(wide.call(&mut store, (0x10, 1)))),
        (0x1_0000_0010, 0x1_0000)
    );
    // The size is the current one.
    mem.grow(&mut store, 1).unwrap();
    assert_eq!(load.call(&mut store, 70_000).unwrap(), 0);
    assert_eq!(
        fault(trap_of(load.call(&mut store, 0x2_0000))),
        (0x2_0000, 0x2_0000)
    );
}

/// Set in a child process of `a_memory_fault_outside_every_memory_aborts`
/// to the `load_wide` arguments `lo,hi` it should call.
const WILD_CHILD_ENV: &str = "WASMC_MOCK_WILD_LOAD";

/// A memory access that faults outside every memory of its store escaped
/// its reservation (a missing bounds check): the loader prints the trap and
/// aborts, for a page fault (1 TiB below the base: canonical, and nothing
/// is mapped there in a small process whose mappings sit near the top of
/// the address space) and for a general-protection fault (1 TiB or 2^63
/// above it: not canonical, reported without an address, which must not
/// pass for a fault at null).
#[test]
fn a_memory_fault_outside_every_memory_aborts() {
    if let Ok(job) = std::env::var(WILD_CHILD_ENV) {
        let (lo, hi) = job.split_once(',').unwrap();
        let m = mock_module();
        let mut store = Store::new(engine(), ());
        let i = instantiate(&mut store, &m);
        let wide = i
            .get_typed_func::<(i32, i32), i32>(&mut store, "load_wide")
            .unwrap();
        let r = wide.call(&mut store, (lo.parse().unwrap(), hi.parse().unwrap()));
        // Not reached: the process aborts.
        eprintln!("child returned: {r:?}");
        std::process::exit(0);
    }
    for (hi, site) in [
        (-0x100, "host address"),
        (0x100, "non-canonical"),
        (i32::MIN, "non-canonical"),
    ] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_memory_fault_outside_every_memory_aborts",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WILD_CHILD_ENV, format!("0,{hi}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "hi {hi:#x}: {stderr}"
        );
        assert!(
            stderr.contains("outside every linear memory")
                && stderr.contains(site)
                && stderr.contains("load_wide"),
            "hi {hi:#x}: {stderr}"
        );
    }
}
