//! memory64 (64-bit memories and tables) and multi-memory through the
//! loader, in both memory strategies: every access beyond the current length
//! traps, however far (past the guard-mode reservation, near 2^64, with an
//! offset that overflows), growth fails cleanly instead of wrapping, and the
//! index type is part of an import's type.

use wasmc_compiler::{compile, CompileOptions, MemoryStrategy, OptLevel};
use wasmc_loader::{Engine, Error, Instance, Linker, Module, Store, TrapCode, Val};

const MODULE: &str = r#"
(module
  (memory $m64 (export "m64") i64 1 4)
  (memory $m32 1 1)
  (table $t i64 2 funcref)
  (elem (table $t) (i64.const 1) func $seven)
  (type $ret_i32 (func (result i32)))
  (func $seven (result i32) (i32.const 7))
  (func (export "load") (param i64) (result i32) (i32.load $m64 (local.get 0)))
  (func (export "load_off") (param i64) (result i32)
    (i32.load $m64 offset=0x7fffffffffff0000 (local.get 0)))
  (func (export "store") (param i64 i32) (i32.store $m64 (local.get 0) (local.get 1)))
  (func (export "size") (result i64) (memory.size $m64))
  (func (export "grow") (param i64) (result i64) (memory.grow $m64 (local.get 0)))
  (func (export "fill") (param i64 i64) (memory.fill $m64 (local.get 0) (i32.const 0xab) (local.get 1)))
  ;; Between a 64-bit and a 32-bit memory: the length is an i32.
  (func (export "copy_to_32") (param i64 i32 i32)
    (memory.copy $m32 $m64 (local.get 1) (local.get 0) (local.get 2)))
  (func (export "load32") (param i32) (result i32) (i32.load $m32 (local.get 0)))
  (func (export "tsize") (result i64) (table.size $t))
  (func (export "tgrow") (param i64) (result i64) (table.grow $t (ref.null func) (local.get 0)))
  (func (export "call") (param i64) (result i32) (call_indirect $t (type $ret_i32) (local.get 0)))
)
"#;

fn instance(strategy: MemoryStrategy, opt: OptLevel) -> (Store<()>, Instance) {
    let opts = CompileOptions {
        memory: strategy,
        opt_level: opt,
        ..Default::default()
    };
    let module = Module::from_bytes(engine(), &compile(MODULE.as_bytes(), &opts).unwrap()).unwrap();
    let mut store = Store::new(engine(), ());
    let i = Instance::new(&mut store, &module, &[]).unwrap();
    (store, i)
}

fn call(store: &mut Store<()>, i: &Instance, name: &str, args: &[Val]) -> Result<Vec<Val>, Error> {
    let f = i.get_func(&mut *store, name).unwrap();
    let n = f.ty(&*store).results.len();
    let mut r = vec![Val::I32(0); n];
    f.call(&mut *store, args, &mut r).map(|()| r)
}

fn trap(r: Result<Vec<Val>, Error>) -> TrapCode {
    r.expect_err("a trap").as_trap().expect("a trap").code
}

fn configs() -> Vec<(MemoryStrategy, OptLevel)> {
    vec![
        (CompileOptions::default().memory, OptLevel::Speed),
        (MemoryStrategy::Explicit, OptLevel::None),
    ]
}

#[test]
fn out_of_bounds_64_bit_addresses_trap() {
    for (strategy, opt) in configs() {
        let (mut s, i) = instance(strategy, opt);
        let what = format!("{strategy:?}, {opt:?}");
        call(&mut s, &i, "store", &[Val::I64(65532), Val::I32(42)]).unwrap();
        assert_eq!(
            call(&mut s, &i, "load", &[Val::I64(65532)]).unwrap()[0].i32(),
            Some(42),
            "{what}"
        );
        for addr in [
            65533i64,          // straddles the end
            65536,             // the first byte past it
            1 << 32,           // past a guard-mode reservation
            (1 << 32) + 65532, // ... by the in-bounds offset
            i64::MAX,          // far
            -4,                // 2^64 - 4
        ] {
            assert_eq!(
                trap(call(&mut s, &i, "load", &[Val::I64(addr)])),
                TrapCode::MemoryOutOfBounds,
                "{what}: load at {addr:#x}"
            );
        }
        // The static offset plus the address is 2^64: modulo 2^64 it would
        // be address 0, which is in bounds.
        assert_eq!(
            trap(call(
                &mut s,
                &i,
                "load_off",
                &[Val::I64(i64::MIN + 0x1_0000)]
            )),
            TrapCode::MemoryOutOfBounds,
            "{what}: offset overflow"
        );
        assert_eq!(
            trap(call(&mut s, &i, "fill", &[Val::I64(65000), Val::I64(1000)])),
            TrapCode::MemoryOutOfBounds,
            "{what}: fill"
        );
        assert_eq!(
            trap(call(&mut s, &i, "fill", &[Val::I64(1), Val::I64(-1)])),
            TrapCode::MemoryOutOfBounds,
            "{what}: fill of 2^64 - 1 bytes"
        );
        // A trapping access changed nothing.
        assert_eq!(
            call(&mut s, &i, "load", &[Val::I64(65532)]).unwrap()[0].i32(),
            Some(42),
            "{what}"
        );
    }
}

#[test]
fn grow_is_64_bit_and_never_wraps() {
    for (strategy, opt) in configs() {
        let (mut s, i) = instance(strategy, opt);
        let what = format!("{strategy:?}, {opt:?}");
        let size = |s: &mut Store<()>| call(s, &i, "size", &[]).unwrap()[0].i64();
        assert_eq!(size(&mut s), Some(1), "{what}");
        assert_eq!(
            call(&mut s, &i, "grow", &[Val::I64(2)]).unwrap()[0].i64(),
            Some(1)
        );
        assert_eq!(size(&mut s), Some(3), "{what}");
        // Beyond the declared maximum, and deltas that would wrap.
        for delta in [2i64, 1 << 32, 1 << 48, i64::MAX, -1] {
            assert_eq!(
                call(&mut s, &i, "grow", &[Val::I64(delta)]).unwrap()[0].i64(),
                Some(-1),
                "{what}: grow by {delta:#x}"
            );
        }
        assert_eq!(size(&mut s), Some(3), "{what}");
        // The grown pages are usable and the end moved.
        call(&mut s, &i, "store", &[Val::I64(3 * 65536 - 4), Val::I32(5)]).unwrap();
        assert_eq!(
            trap(call(&mut s, &i, "load", &[Val::I64(3 * 65536 - 3)])),
            TrapCode::MemoryOutOfBounds
        );
    }
}

#[test]
fn copy_between_a_64_and_a_32_bit_memory() {
    for (strategy, opt) in configs() {
        let (mut s, i) = instance(strategy, opt);
        call(&mut s, &i, "store", &[Val::I64(100), Val::I32(0x1234_5678)]).unwrap();
        call(
            &mut s,
            &i,
            "copy_to_32",
            &[Val::I64(100), Val::I32(8), Val::I32(4)],
        )
        .unwrap();
        assert_eq!(
            call(&mut s, &i, "load32", &[Val::I32(8)]).unwrap()[0].i32(),
            Some(0x1234_5678)
        );
        assert_eq!(
            trap(call(
                &mut s,
                &i,
                "copy_to_32",
                &[Val::I64(1 << 40), Val::I32(0), Val::I32(4)]
            )),
            TrapCode::MemoryOutOfBounds
        );
    }
}

#[test]
fn tables_with_64_bit_indices() {
    for (strategy, opt) in configs() {
        let (mut s, i) = instance(strategy, opt);
        let what = format!("{strategy:?}, {opt:?}");
        assert_eq!(
            call(&mut s, &i, "call", &[Val::I64(1)]).unwrap()[0].i32(),
            Some(7)
        );
        assert_eq!(
            trap(call(&mut s, &i, "call", &[Val::I64(0)])),
            TrapCode::IndirectCallToNull,
            "{what}"
        );
        for idx in [2i64, 1 << 32, (1 << 32) + 1, -1] {
            assert_eq!(
                trap(call(&mut s, &i, "call", &[Val::I64(idx)])),
                TrapCode::UndefinedElement,
                "{what}: call_indirect {idx:#x}"
            );
        }
        // A delta that does not fit 32 bits fails without growing (and is
        // not truncated to its low half, which would grow by 1).
        for delta in [(1i64 << 32) + 1, -1] {
            assert_eq!(
                call(&mut s, &i, "tgrow", &[Val::I64(delta)]).unwrap()[0].i64(),
                Some(-1),
                "{what}: table.grow {delta:#x}"
            );
        }
        assert_eq!(call(&mut s, &i, "tsize", &[]).unwrap()[0].i64(), Some(2));
        assert_eq!(
            call(&mut s, &i, "tgrow", &[Val::I64(3)]).unwrap()[0].i64(),
            Some(2)
        );
        assert_eq!(call(&mut s, &i, "tsize", &[]).unwrap()[0].i64(), Some(5));
    }
}

#[test]
fn index_type_is_part_of_an_import_type() {
    let opts = CompileOptions::default();
    let exporter =
        Module::from_bytes(engine(), &compile(MODULE.as_bytes(), &opts).unwrap()).unwrap();
    let importer = Module::from_bytes(
        engine(),
        &compile(br#"(module (import "e" "m64" (memory 1)))"#, &opts).unwrap(),
    )
    .unwrap();
    let mut s = Store::new(engine(), ());
    let e = Instance::new(&mut s, &exporter, &[]).unwrap();
    let mut l = Linker::new(engine());
    l.instance(&mut s, "e", e).unwrap();
    let err = l.instantiate(&mut s, &importer).unwrap_err().to_string();
    assert!(err.contains("memory i64"), "{err}");
    let ok = Module::from_bytes(
        engine(),
        &compile(br#"(module (import "e" "m64" (memory i64 1)))"#, &opts).unwrap(),
    )
    .unwrap();
    l.instantiate(&mut s, &ok).unwrap();
}

fn engine() -> &'static Engine {
    static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    E.get_or_init(Engine::default)
}
