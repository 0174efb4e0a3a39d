//! Independent probes of the WebAssembly 3.0 features (issue 14) through
//! the public API: tail calls across instances and into host functions with
//! many (stack) arguments, references through cross-instance tail calls
//! while collections run, 64-bit memories made and grown by the host,
//! extended constant expressions over host globals, and import matching of
//! 64-bit tables' limits. Each test asserts what the spec (or Wasmtime, where
//! the spec is silent) says a user sees.

use std::sync::Arc;
use wasmc_compiler::{compile, CompileOptions, MemoryStrategy, OptLevel};
use wasmc_loader::format::{GlobalType, MemoryType, RefType, TableType, ValType};
use wasmc_loader::{
    Caller, Engine, Error, Func, FuncType, Global, Instance, Linker, Memory, Module, Store, Table,
    TrapCode, Val,
};
use wasmc_tests::tracked::{linker as tracked_linker, returned_id, Log};

fn engine() -> &'static Engine {
    static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    E.get_or_init(Engine::default)
}

fn module_with(wat: &str, opt: OptLevel, memory: MemoryStrategy) -> Module {
    let opts = CompileOptions {
        opt_level: opt,
        memory,
        ..Default::default()
    };
    Module::from_bytes(engine(), &compile(wat.as_bytes(), &opts).unwrap()).unwrap()
}

fn module(wat: &str) -> Module {
    module_with(wat, OptLevel::Speed, CompileOptions::default().memory)
}

fn configs() -> [(OptLevel, MemoryStrategy); 2] {
    [
        (OptLevel::None, MemoryStrategy::Explicit),
        (OptLevel::Speed, CompileOptions::default().memory),
    ]
}

fn call(store: &mut Store<()>, i: &Instance, name: &str, args: &[Val]) -> Result<Vec<Val>, Error> {
    let f = i
        .get_func(&mut *store, name)
        .unwrap_or_else(|| panic!("no export {name}"));
    let n = f.ty(&*store).results.len();
    let mut r = vec![Val::I32(0); n];
    f.call(&mut *store, args, &mut r).map(|()| r)
}

fn trap_code(r: Result<Vec<Val>, Error>) -> TrapCode {
    r.expect_err("a trap").as_trap().expect("a trap").code
}

/// The callee side of a ping-pong of tail calls between two instances: `B`
/// owns the table through which it tail-calls back into `A`.
const PONG: &str = r#"
(module
  (import "host" "gc" (func $gc))
  (import "host" "check" (func $check (param externref i32)))
  (import "host" "make" (func $make (param i32) (result externref)))
  (type $step (func (param i32 externref externref) (result externref)))
  (table (export "t") 1 funcref)
  (func (export "pong") (type $step)
    (drop (call $make (i32.const -1)))
    (if (i32.eqz (i32.rem_u (local.get 0) (i32.const 97))) (then (call $gc)))
    (if (i32.eqz (local.get 0))
      (then
        (call $gc)
        (call $check (local.get 1) (i32.const 1))
        (call $check (local.get 2) (i32.const 2))
        (return (local.get 2))))
    (return_call_indirect (type $step)
      (i32.sub (local.get 0) (i32.const 1)) (local.get 1) (local.get 2) (i32.const 0))))
"#;

const PING: &str = r#"
(module
  (import "host" "make" (func $make (param i32) (result externref)))
  (type $step (func (param i32 externref externref) (result externref)))
  (import "b" "pong" (func $pong (type $step)))
  (import "b" "t" (table 1 funcref))
  (elem (i32.const 0) $ping)
  (func $ping (type $step)
    (drop (call $make (i32.const -2)))
    (return_call $pong (local.get 0) (local.get 2) (local.get 1)))
  (func (export "run") (param i32) (result externref)
    (call $ping (local.get 0) (call $make (i32.const 2)) (call $make (i32.const 1)))))
"#;

#[test]
fn refs_survive_tail_calls_between_instances() {
    for (opt, mem) in configs() {
        for stress in [false, true] {
            let what = format!("{opt:?}, stress {stress}");
            let log = Arc::new(Log::default());
            let mut store = Store::new(engine(), ());
            store.set_gc_stress(stress);
            let mut l = tracked_linker(engine(), &log);
            let b = l
                .instantiate(&mut store, &module_with(PONG, opt, mem))
                .unwrap();
            l.instance(&mut store, "b", b).unwrap();
            let a = l
                .instantiate(&mut store, &module_with(PING, opt, mem))
                .unwrap();
            // An even number of hops: `ping` swaps the two refs each time.
            let n = if stress { 400 } else { 200_000 };
            let r = call(&mut store, &a, "run", &[Val::I32(n)]).unwrap();
            assert_eq!(returned_id(&r[0]), Some(2), "{what}");
            let errors = log.errors.lock().unwrap().clone();
            assert!(errors.is_empty(), "{what}: {errors:?}");
            assert_eq!(store.gc_stats().failed_walks, 0, "{what}");
            assert!(log.gcs() >= 2, "{what}");
            drop(r);
            store.gc();
            assert!(log.is_dropped(1) && log.is_dropped(2), "{what}");
        }
    }
}

/// Tail calls into a host function with more arguments than fit in
/// registers, directly and through a table, from the outermost Wasm frame
/// and from a nested one.
#[test]
fn tail_calls_into_a_host_function_with_stack_arguments() {
    const WAT: &str = r#"
(module
  (type $wide (func (param i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64 i64 i64) (result i64)))
  (import "host" "wide" (func $wide (type $wide)))
  (table 1 funcref)
  (elem (i32.const 0) $wide)
  (func $direct (export "direct") (param i64) (result i64)
    (return_call $wide (i32.const 1) (i64.const 2) (f32.const 3) (f64.const 4)
      (i32.const 5) (i64.const 6) (f32.const 7) (f64.const 8)
      (i32.const 9) (i64.const 10) (f32.const 11) (f64.const 12) (i64.const 13) (local.get 0)))
  (func $indirect (export "indirect") (param i64) (result i64)
    (return_call_indirect (type $wide) (i32.const 1) (i64.const 2) (f32.const 3) (f64.const 4)
      (i32.const 5) (i64.const 6) (f32.const 7) (f64.const 8)
      (i32.const 9) (i64.const 10) (f32.const 11) (f64.const 12) (i64.const 13) (local.get 0)
      (i32.const 0)))
  (func (export "nested") (param i64) (result i64)
    (i64.add (call $direct (local.get 0)) (call $indirect (local.get 0)))))
"#;
    for (opt, mem) in configs() {
        let mut store = Store::new(engine(), ());
        let mut l = Linker::new(engine());
        let params = vec![
            ValType::I32,
            ValType::I64,
            ValType::F32,
            ValType::F64,
            ValType::I32,
            ValType::I64,
            ValType::F32,
            ValType::F64,
            ValType::I32,
            ValType::I64,
            ValType::F32,
            ValType::F64,
            ValType::I64,
            ValType::I64,
        ];
        let ty = FuncType {
            params,
            results: vec![ValType::I64],
        };
        l.func_new("host", "wide", ty, |_: Caller<'_, ()>, a, r| {
            // A weighted sum tells a swapped pair of arguments apart.
            let x = |v: &Val| match *v {
                Val::I32(x) => x as f64,
                Val::I64(x) => x as f64,
                Val::F32(x) => f32::from_bits(x) as f64,
                Val::F64(x) => f64::from_bits(x),
                _ => f64::NAN,
            };
            let s: f64 = a[..13]
                .iter()
                .enumerate()
                .map(|(w, v)| (w + 1) as f64 * x(v))
                .sum();
            r[0] = Val::I64(s as i64 * 1000 + a[13].i64().unwrap());
            Ok(())
        })
        .unwrap();
        let i = l
            .instantiate(&mut store, &module_with(WAT, opt, mem))
            .unwrap();
        // sum of w * w for w in 1..=13 = 819
        for name in ["direct", "indirect"] {
            let r = call(&mut store, &i, name, &[Val::I64(7)]).unwrap();
            assert_eq!(r[0].i64(), Some(819_007), "{opt:?}: {name}");
        }
        let r = call(&mut store, &i, "nested", &[Val::I64(7)]).unwrap();
        assert_eq!(r[0].i64(), Some(2 * 819_007), "{opt:?}");
    }
}

/// `return_call_indirect` checks the type of a host function placed in a
/// table by the host, and traps on null and out-of-bounds entries.
#[test]
fn return_call_indirect_checks_host_functions_in_tables() {
    const WAT: &str = r#"
(module
  (table (export "t") 3 funcref)
  (type $r (func (result i32)))
  (type $p (func (param i32) (result i32)))
  (func (export "call_r") (param i32) (result i32)
    (return_call_indirect (type $r) (local.get 0)))
  (func (export "call_p") (param i32) (result i32)
    (return_call_indirect (type $p) (i32.const 41) (local.get 0))))
"#;
    let mut store = Store::new(engine(), ());
    let i = Instance::new(&mut store, &module(WAT), &[]).unwrap();
    let t = i.get_table(&mut store, "t").unwrap();
    let inc = Func::wrap(&mut store, |x: i32| x + 1);
    t.set(&mut store, 0, Val::FuncRef(Some(inc))).unwrap();
    let r = call(&mut store, &i, "call_p", &[Val::I32(0)]).unwrap();
    assert_eq!(r[0].i32(), Some(42));
    assert_eq!(
        trap_code(call(&mut store, &i, "call_r", &[Val::I32(0)])),
        TrapCode::BadSignature
    );
    assert_eq!(
        trap_code(call(&mut store, &i, "call_r", &[Val::I32(1)])),
        TrapCode::IndirectCallToNull
    );
    for idx in [3, -1] {
        assert_eq!(
            trap_code(call(&mut store, &i, "call_p", &[Val::I32(idx)])),
            TrapCode::UndefinedElement
        );
    }
}

/// A trap in a function reached by a tail call into another instance
/// carries a backtrace naming the trapping function.
#[test]
fn trap_after_a_cross_instance_tail_call() {
    let mut store = Store::new(engine(), ());
    let mut l = Linker::new(engine());
    let b = l
        .instantiate(
            &mut store,
            &module(
                r#"(module (func $div (export "div") (param i32) (result i32)
                     (i32.div_u (i32.const 10) (local.get 0))))"#,
            ),
        )
        .unwrap();
    l.instance(&mut store, "b", b).unwrap();
    let a = l
        .instantiate(
            &mut store,
            &module(
                r#"(module (import "b" "div" (func $div (param i32) (result i32)))
                     (func $jump (export "jump") (param i32) (result i32)
                       (return_call $div (local.get 0))))"#,
            ),
        )
        .unwrap();
    assert_eq!(
        call(&mut store, &a, "jump", &[Val::I32(5)]).unwrap()[0].i32(),
        Some(2)
    );
    let err = call(&mut store, &a, "jump", &[Val::I32(0)]).unwrap_err();
    let trap = err.as_trap().expect("a trap");
    assert_eq!(trap.code, TrapCode::IntegerDivisionByZero);
    let frames: Vec<String> = trap.backtrace.iter().map(|f| f.to_string()).collect();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(frames[0].contains("div"), "{frames:?}");
    // The store stays usable.
    assert_eq!(
        call(&mut store, &a, "jump", &[Val::I32(1)]).unwrap()[0].i32(),
        Some(10)
    );
}

/// Ten million tail calls run in constant stack at every optimization level.
#[test]
fn ten_million_tail_calls() {
    const WAT: &str = r#"
(module
  (type $t (func (param i64 i64) (result i64)))
  (table 1 funcref) (elem (i32.const 0) $odd)
  (func $even (export "even") (param i64 i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then (local.get 1))
      (else (return_call_indirect (type $t)
              (i64.sub (local.get 0) (i64.const 1)) (i64.add (local.get 1) (i64.const 3))
              (i32.const 0)))))
  (func $odd (type $t)
    (return_call $even (local.get 0) (i64.add (local.get 1) (i64.const -1)))))
"#;
    for (opt, mem) in configs() {
        let mut store = Store::new(engine(), ());
        store.set_max_wasm_stack(64 * 1024);
        let i = Instance::new(&mut store, &module_with(WAT, opt, mem), &[]).unwrap();
        let n = 10_000_000i64;
        let r = call(&mut store, &i, "even", &[Val::I64(n), Val::I64(0)]).unwrap();
        assert_eq!(r[0].i64(), Some(2 * n), "{opt:?}");
    }
}

/// A host-made 64-bit memory: its type, growth at the edges of the
/// address space (an error, never a panic), and import matching.
#[test]
fn host_made_64_bit_memories() {
    let mut store = Store::new(engine(), ());
    let ty = MemoryType {
        min: 1,
        max: None,
        memory64: true,
        shared: false,
    };
    let m = Memory::new(&mut store, ty).unwrap();
    assert!(m.ty(&store).memory64);
    for delta in [u64::MAX, 1 << 48, (1 << 48) - 1, 1 << 32, 65536] {
        assert!(m.grow(&mut store, delta).is_err(), "grow by {delta:#x}");
        assert_eq!(m.size(&store), 1, "grow by {delta:#x}");
    }
    assert_eq!(m.grow(&mut store, 2).unwrap(), 1);
    assert_eq!(m.data_size(&store), 3 * 65536);
    for min in [u64::MAX, 1 << 48, (1 << 48) + 1, 65537] {
        let e = Memory::new(&mut store, MemoryType { min, ..ty });
        assert!(e.is_err(), "memory of {min:#x} pages");
    }
    let e = Memory::new(
        &mut store,
        MemoryType {
            min: 2,
            max: Some(1),
            ..ty
        },
    );
    assert!(e.is_err());

    let user = module(
        r#"(module (import "h" "m" (memory i64 1))
             (func (export "store") (param i64 i32) (i32.store8 (local.get 0) (local.get 1)))
             (func (export "size") (result i64) (memory.size)))"#,
    );
    let i = Instance::new(&mut store, &user, &[m.into()]).unwrap();
    call(
        &mut store,
        &i,
        "store",
        &[Val::I64(3 * 65536 - 1), Val::I32(7)],
    )
    .unwrap();
    assert_eq!(m.data(&store)[3 * 65536 - 1], 7);
    assert_eq!(
        trap_code(call(
            &mut store,
            &i,
            "store",
            &[Val::I64(3 * 65536), Val::I32(7)]
        )),
        TrapCode::MemoryOutOfBounds
    );
    assert_eq!(call(&mut store, &i, "size", &[]).unwrap()[0].i64(), Some(3));
    // The same memory is not a 32-bit memory.
    let user32 = module(r#"(module (import "h" "m" (memory 1)))"#);
    let e = Instance::new(&mut store, &user32, &[m.into()]).unwrap_err();
    assert!(e.to_string().contains("i64"), "{e}");
    // Nor is a 32-bit one a 64-bit memory.
    let m32 = Memory::new(
        &mut store,
        MemoryType {
            memory64: false,
            ..ty
        },
    )
    .unwrap();
    assert!(Instance::new(&mut store, &user, &[m32.into()]).is_err());
}

/// Extended constant expressions over host-made globals: wrapping
/// arithmetic, and segment offsets computed from them checked at
/// instantiation.
#[test]
fn extended_const_over_host_globals() {
    const WAT: &str = r#"
(module
  (import "h" "a" (global $a i32))
  (import "h" "b" (global $b i64))
  (global (export "sum") i32 (i32.add (global.get $a) (i32.const 0x7fffffff)))
  (global (export "prod") i64 (i64.mul (global.get $b) (global.get $b)))
  (global (export "mix") i64 (i64.sub (i64.mul (global.get $b) (i64.const 3)) (global.get $b)))
  (memory (export "m") 1)
  (data (i32.mul (global.get $a) (i32.const 16)) "hi"))
"#;
    let m = module(WAT);
    let mut store = Store::new(engine(), ());
    let g = |store: &mut Store<()>, ty, v| {
        Global::new(&mut *store, GlobalType { ty, mutable: false }, v).unwrap()
    };
    let a = g(&mut store, ValType::I32, Val::I32(2));
    let b = g(&mut store, ValType::I64, Val::I64(i64::MIN + 5));
    let i = Instance::new(&mut store, &m, &[a.into(), b.into()]).unwrap();
    let get = |store: &mut Store<()>, name| i.get_global(&mut *store, name).unwrap().get(store);
    assert_eq!(get(&mut store, "sum").i32(), Some(i32::MIN + 1));
    assert_eq!(
        get(&mut store, "prod").i64(),
        Some((i64::MIN + 5).wrapping_mul(i64::MIN + 5))
    );
    assert_eq!(
        get(&mut store, "mix").i64(),
        Some((i64::MIN + 5).wrapping_mul(2))
    );
    let mem = i.get_memory(&mut store, "m").unwrap();
    assert_eq!(&mem.data(&store)[32..34], b"hi");
    // 4096 * 16 = 65536: the segment starts at the end of the memory.
    let a = g(&mut store, ValType::I32, Val::I32(4096));
    let e = Instance::new(&mut store, &m, &[a.into(), b.into()]).unwrap_err();
    assert!(e.to_string().contains("out of bounds memory access"), "{e}");
    // 2^28 * 16 wraps to 0: in bounds.
    let a = g(&mut store, ValType::I32, Val::I32(1 << 28));
    let i = Instance::new(&mut store, &m, &[a.into(), b.into()]).unwrap();
    let mem = i.get_memory(&mut store, "m").unwrap();
    assert_eq!(&mem.data(&store)[0..2], b"hi");
}

/// The import check of a 64-bit table compares its declared limits in 64
/// bits: an exporter whose maximum is above the importer's is refused
/// even when both are above 2^32 - 1 (the spec's `imports.wast` rule).
#[test]
fn table64_import_limits_compare_in_64_bits() {
    let mut store = Store::new(engine(), ());
    let exporter = module(r#"(module (table (export "t") i64 2 0x100000005 externref))"#);
    let e = Instance::new(&mut store, &exporter, &[]).unwrap();
    let t = e.get_table(&mut store, "t").unwrap();
    for (max, ok) in [
        ("0x100000005", true),
        ("0x100000006", true),
        ("0x100000004", false),
        ("0xffffffff", false),
    ] {
        let importer = module(&format!(
            r#"(module (import "e" "t" (table i64 2 {max} externref)))"#
        ));
        let r = Instance::new(&mut store, &importer, &[t.into()]);
        assert_eq!(r.is_ok(), ok, "importer's maximum {max}");
    }
    // The handle shows the declared maximum.
    assert_eq!(t.ty(&store).max, Some(0x1_0000_0005));
    // A 32-bit table's maximum must fit 32 bits; a 64-bit table's need not.
    for (table64, ok) in [(false, false), (true, true)] {
        let ty = TableType {
            elem: RefType::ExternRef,
            min: 1,
            max: Some(1 << 32),
            table64,
        };
        let r = Table::new(&mut store, ty, Val::ExternRef(None));
        assert_eq!(r.is_ok(), ok, "table64 {table64}");
    }
}

/// Fuel is counted through tail calls: each `return_call` iteration costs
/// the same, so the fuel used grows linearly with the iteration count (a
/// count lost at the replaced frame would make it constant).
#[test]
fn fuel_is_counted_through_tail_calls() {
    const WAT: &str = r#"
(module
  (type $t (func (param i64) (result i64)))
  (table 1 funcref) (elem (i32.const 0) $ind)
  (func $dir (export "dir") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 0))
      (else (return_call $dir (i64.sub (local.get 0) (i64.const 1))))))
  (func $ind (export "ind") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 0))
      (else (return_call_indirect (type $t) (i64.sub (local.get 0) (i64.const 1)) (i32.const 0))))))
"#;
    let opts = CompileOptions {
        interruption: wasmc_compiler::Interruption {
            fuel: true,
            epochs: false,
        },
        ..Default::default()
    };
    let m = Module::from_bytes(engine(), &compile(WAT.as_bytes(), &opts).unwrap()).unwrap();
    for name in ["dir", "ind"] {
        let used = |n: i64| {
            let mut store = Store::new(engine(), ());
            store.set_fuel(1 << 40).unwrap();
            let i = Instance::new(&mut store, &m, &[]).unwrap();
            call(&mut store, &i, name, &[Val::I64(n)]).unwrap();
            (1u64 << 40) - store.get_fuel().unwrap()
        };
        let (a, b, c) = (used(10), used(20), used(30));
        assert!(b > a, "{name}: {a} {b} {c}");
        assert_eq!(b - a, c - b, "{name}: {a} {b} {c}");
        // Each iteration runs at least its compare, branch and subtract.
        assert!((b - a) / 10 >= 3, "{name}: {a} {b} {c}");
        // Running out of fuel in a tail-call loop traps.
        let mut store = Store::new(engine(), ());
        store.set_fuel(b).unwrap();
        let i = Instance::new(&mut store, &m, &[]).unwrap();
        assert_eq!(
            trap_code(call(&mut store, &i, name, &[Val::I64(1_000_000)])),
            TrapCode::OutOfFuel,
            "{name}"
        );
    }
}

/// Several memories of both index types in pooled slots: every access is
/// checked against its own memory, never reaching a neighbouring slot, and
/// growth stops at the pool's limit.
#[test]
fn multi_memory64_in_the_pooling_allocator() {
    use wasmc_loader::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};
    let mut p = PoolingAllocationConfig::default();
    p.total_memories(8)
        .total_tables(4)
        .total_core_instances(4)
        .max_memory_size(4 << 16);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    let engine = Engine::new(&c).unwrap();
    const WAT: &str = r#"
(module
  (memory $a 1)
  (memory $b i64 1)
  (memory $c i64 2)
  (data (memory $c) (i64.const 0) "c")
  (func (export "ld_b") (param i64) (result i32) (i32.load8_u $b (local.get 0)))
  (func (export "st_b") (param i64) (i32.store8 $b (local.get 0) (i32.const 1)))
  (func (export "ld_c") (param i64) (result i32) (i32.load8_u $c (local.get 0)))
  (func (export "grow_b") (param i64) (result i64) (memory.grow $b (local.get 0))))
"#;
    for (opt, mem) in configs() {
        let opts = CompileOptions {
            opt_level: opt,
            memory: mem,
            ..Default::default()
        };
        let m = Module::from_bytes(&engine, &compile(WAT.as_bytes(), &opts).unwrap()).unwrap();
        let mut store = Store::new(&engine, ());
        let i = Instance::new(&mut store, &m, &[]).unwrap();
        assert_eq!(
            call(&mut store, &i, "ld_c", &[Val::I64(0)]).unwrap()[0].i32(),
            Some(b'c' as i32)
        );
        for addr in [
            65536i64,
            6 << 30, // one 6 GiB slot further: the next memory's slot
            (6 << 30) * 2,
            1 << 33,
            -1,
        ] {
            assert_eq!(
                trap_code(call(&mut store, &i, "ld_b", &[Val::I64(addr)])),
                TrapCode::MemoryOutOfBounds,
                "{opt:?}: {addr:#x}"
            );
            assert_eq!(
                trap_code(call(&mut store, &i, "st_b", &[Val::I64(addr)])),
                TrapCode::MemoryOutOfBounds,
                "{opt:?}: {addr:#x}"
            );
        }
        assert_eq!(
            call(&mut store, &i, "grow_b", &[Val::I64(4)]).unwrap()[0].i64(),
            Some(-1)
        );
        assert_eq!(
            call(&mut store, &i, "grow_b", &[Val::I64(3)]).unwrap()[0].i64(),
            Some(1)
        );
        call(&mut store, &i, "st_b", &[Val::I64(4 * 65536 - 1)]).unwrap();
        assert_eq!(
            trap_code(call(&mut store, &i, "st_b", &[Val::I64(4 * 65536)])),
            TrapCode::MemoryOutOfBounds
        );
        // Memory c is untouched by the stores to b.
        assert_eq!(
            call(&mut store, &i, "ld_c", &[Val::I64(65535)]).unwrap()[0].i32(),
            Some(0)
        );
    }
}

/// Relaxed madd on the baseline CPU is a call of the fma builtins per lane,
/// added after the stack maps were computed: references live across those
/// calls and a following collection must still be found, in stress mode
/// too (where every safepoint collects).
#[test]
fn refs_live_across_relaxed_madd_calls_survive_collections() {
    const WAT: &str = r#"
(module
  (import "host" "make" (func $make (param i32) (result externref)))
  (import "host" "check" (func $check (param externref i32)))
  (import "host" "gc" (func $gc))
  (func (export "run") (param $n i32) (result f32)
    (local $r externref) (local $v v128)
    (local.set $r (call $make (i32.const 5)))
    (local.set $v (v128.const f32x4 1 1 1 1))
    (loop $l
      (local.set $v (f32x4.relaxed_madd (local.get $v) (v128.const f32x4 2 2 2 2)
                                        (v128.const f32x4 -1 -1 -1 -1)))
      (drop (call $make (i32.const -1)))
      (call $gc)
      (call $check (local.get $r) (i32.const 5))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (f32x4.extract_lane 3 (local.get $v))))
"#;
    for (opt, mem) in configs() {
        for stress in [false, true] {
            let log = Arc::new(Log::default());
            let mut store = Store::new(engine(), ());
            store.set_gc_stress(stress);
            let i = tracked_linker(engine(), &log)
                .instantiate(&mut store, &module_with(WAT, opt, mem))
                .unwrap();
            let r = call(&mut store, &i, "run", &[Val::I32(50)]).unwrap();
            // 2 * 1 - 1 = 1, every time.
            assert_eq!(r[0].f32(), Some(1.0), "{opt:?}, stress {stress}");
            let errors = log.errors.lock().unwrap().clone();
            assert!(errors.is_empty(), "{opt:?}, stress {stress}: {errors:?}");
            assert_eq!(store.gc_stats().failed_walks, 0);
            // The collections ran and freed the garbage.
            assert!(log.is_dropped(-1), "{opt:?}, stress {stress}");
        }
    }
}

/// Pooled and on-demand memories keep a module's initial contents per
/// memory index for the next instance: with several memories of both
/// index types, each comes back as its own image (never another memory's,
/// never the previous instance's writes or growth).
#[test]
fn reused_memories_come_back_as_their_own_images() {
    use wasmc_loader::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};
    const WAT: &str = r#"
(module
  (memory (export "a") 1)
  (memory (export "b") i64 2)
  (memory (export "c") i64 1 4)
  (data (memory 0) (i32.const 0) "first")
  (data (memory 1) (i64.const 65536) "second")
  (data (memory 2) (i64.const 10) "third"))
"#;
    let mut p = PoolingAllocationConfig::default();
    p.total_memories(6)
        .total_tables(2)
        .total_core_instances(2)
        .max_memory_size(8 << 16);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    let pooled = Engine::new(&c).unwrap();
    for engine in [engine(), &pooled] {
        let m = Module::from_bytes(
            engine,
            &compile(WAT.as_bytes(), &Default::default()).unwrap(),
        )
        .unwrap();
        let expect = [
            ("a", 1usize, 0usize, &b"first"[..]),
            ("b", 2, 65536, b"second"),
            ("c", 1, 10, b"third"),
        ];
        for round in 0..3 {
            let mut store = Store::new(engine, ());
            let i = Instance::new(&mut store, &m, &[]).unwrap();
            for (name, pages, at, bytes) in expect {
                let mem = i.get_memory(&mut store, name).unwrap();
                assert_eq!(mem.size(&store), pages as u64, "round {round}: {name}");
                let d = mem.data(&store);
                assert_eq!(&d[at..at + bytes.len()], bytes, "round {round}: {name}");
                let zeros = d.iter().filter(|&&x| x == 0).count();
                assert_eq!(zeros, d.len() - bytes.len(), "round {round}: {name}");
            }
            // Scribble over everything and grow, for the next round to see
            // none of it.
            for (name, _, _, _) in expect {
                let mem = i.get_memory(&mut store, name).unwrap();
                mem.grow(&mut store, 1).unwrap();
                mem.data_mut(&mut store).fill(0xa5);
            }
        }
    }
}

/// A host function with more v128 parameters than vector registers,
/// reached by a tail call: every lane of every argument arrives, and its
/// v128 result goes back to the caller of the replaced frame.
#[test]
fn tail_call_into_a_host_function_with_v128_stack_arguments() {
    const WAT: &str = r#"
(module
  (type $h (func (param v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 i32 v128) (result v128)))
  (import "host" "sum" (func $sum (type $h)))
  (func $go (export "go") (param i32) (result v128)
    (return_call $sum
      (v128.const i32x4 1 2 3 4) (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0)
      (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0)
      (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0)
      (v128.const i32x4 10 20 30 40) (local.get 0) (v128.const i32x4 100 200 300 400)))
  (func (export "nested") (param i32) (result v128)
    (i32x4.add (call $go (local.get 0)) (v128.const i32x4 1 1 1 1))))
"#;
    let lanes = |v: u128| -> [u32; 4] { std::array::from_fn(|i| (v >> (32 * i)) as u32) };
    let join = |l: [u32; 4]| -> u128 { (0..4).map(|i| (l[i] as u128) << (32 * i)).sum() };
    for (opt, mem) in configs() {
        let mut store = Store::new(engine(), ());
        let mut l = Linker::new(engine());
        let mut params = vec![ValType::V128; 10];
        params.extend([ValType::I32, ValType::V128]);
        let ty = FuncType {
            params,
            results: vec![ValType::V128],
        };
        l.func_new("host", "sum", ty, move |_: Caller<'_, ()>, a, r| {
            let mut acc = [0u32; 4];
            for (k, v) in a.iter().enumerate() {
                let Val::V128(v) = *v else { continue };
                // Weighted by position: a swapped argument shows.
                for (x, y) in acc.iter_mut().zip(lanes(v)) {
                    *x = x.wrapping_add(y.wrapping_mul(k as u32 + 1));
                }
            }
            let n = a[10].i32().unwrap() as u32;
            r[0] = Val::V128(join(acc.map(|x| x + n)));
            Ok(())
        })
        .unwrap();
        let i = l
            .instantiate(&mut store, &module_with(WAT, opt, mem))
            .unwrap();
        // lane j: (j+1) * 1 + 10(j+1) * 10 + 100(j+1) * 12 + 5
        let want = |extra: u32| join(std::array::from_fn(|j| (j as u32 + 1) * 1301 + 5 + extra));
        let r = call(&mut store, &i, "go", &[Val::I32(5)]).unwrap();
        assert!(
            matches!(r[0], Val::V128(v) if v == want(0)),
            "{opt:?}: {:?}",
            r[0]
        );
        let r = call(&mut store, &i, "nested", &[Val::I32(5)]).unwrap();
        assert!(
            matches!(r[0], Val::V128(v) if v == want(1)),
            "{opt:?}: {:?}",
            r[0]
        );
    }
}
