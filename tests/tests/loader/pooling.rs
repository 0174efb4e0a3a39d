//! The pooling allocator (`InstanceAllocationStrategy::Pooling`): slots are
//! reused across many instantiations, each limit refuses cleanly with an
//! error naming it, and a reused slot never shows what an earlier instance
//! wrote (same module or another one, after growth, after a failed
//! instantiation).

use super::*;
use wasmc_loader::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

fn pool_engine(f: impl FnOnce(&mut PoolingAllocationConfig)) -> Engine {
    let mut p = PoolingAllocationConfig::default();
    p.total_memories(2)
        .total_tables(2)
        .total_core_instances(4)
        .max_memory_size(64 << 20)
        .table_elements(100);
    f(&mut p);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    Engine::new(&c).unwrap()
}

fn load_in(engine: &Engine, wat: &str, b: Bounds) -> Module {
    Module::from_bytes(engine, &compile(wat, b)).unwrap()
}

/// 8 pages, an image on pages 0 and 3, a table, and writers.
const IMAGED: &str = r#"(module
  (memory (export "mem") 8)
  (data (i32.const 0) "image page zero")
  (data (i32.const 196608) "image page three")
  (table (export "tab") 4 funcref)
  (func $f (result i32) i32.const 1)
  (elem declare func $f)
  (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "fill_table") (table.fill (i32.const 0) (ref.func $f) (i32.const 4))))"#;

/// The same size with no data.
const PLAIN: &str = r#"(module
  (memory (export "mem") 8)
  (table (export "tab") 4 funcref)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;

fn imaged_initial() -> Vec<u8> {
    let mut m = vec![0u8; 8 * 65536];
    m[..15].copy_from_slice(b"image page zero");
    m[196608..196608 + 16].copy_from_slice(b"image page three");
    m
}

fn call0(store: &mut Store<()>, inst: &Instance, name: &str, args: &[Val]) {
    let f = inst.get_func(&mut *store, name).unwrap();
    f.call(&mut *store, args, &mut []).unwrap();
}

/// Writes everywhere an instance can: every page of the memory (host and
/// Wasm, so image pages are copied on write), grown pages, the table.
fn scribble(store: &mut Store<()>, inst: &Instance, round: u8) {
    let mem = inst.get_memory(&mut *store, "mem").unwrap();
    mem.data_mut(&mut *store).fill(0xa0 | (round & 0xf));
    for at in [0, 100, 196608, 8 * 65536 - 1] {
        call0(store, inst, "poke", &[Val::I32(at), Val::I32(0x5a)]);
    }
    assert_eq!(
        call_i32(store, inst, "grow", &[Val::I32(2)]).unwrap(),
        8,
        "grow"
    );
    let d = mem.data_mut(&mut *store);
    d[8 * 65536..].fill(0xee);
    call0(store, inst, "fill_table", &[]);
}

#[test]
fn slots_are_reused_and_come_back_clean() {
    for b in BOTH {
        let engine = pool_engine(|_| {});
        let imaged = load_in(&engine, IMAGED, b);
        let plain = load_in(&engine, PLAIN, b);
        let want = imaged_initial();
        let mut bases = std::collections::HashSet::new();
        for round in 0..150u8 {
            // Mostly the same module (its slot comes back with the image in
            // place), sometimes the other one (the slot is cleared).
            let use_plain = round % 7 == 3;
            let mut store = Store::new(&engine, ());
            let m = if use_plain { &plain } else { &imaged };
            let inst = Instance::new(&mut store, m, &[]).unwrap();
            let mem = inst.get_memory(&mut store, "mem").unwrap();
            bases.insert(mem.data_ptr(&store) as usize);
            assert_eq!(mem.size(&store), 8, "{b:?} round {round}: size");
            let d = mem.data(&store);
            if use_plain {
                assert!(
                    d.iter().all(|x| *x == 0),
                    "{b:?} round {round}: a reused slot is not zero"
                );
            } else {
                assert!(d == &want[..], "{b:?} round {round}: not the initial image");
            }
            let tab = inst.get_table(&mut store, "tab").unwrap();
            assert_eq!(tab.size(&store), 4);
            for i in 0..4 {
                assert!(
                    matches!(tab.get(&mut store, i), Some(Val::FuncRef(None))),
                    "{b:?} round {round}: table slot {i} not null"
                );
            }
            if use_plain {
                // The pages the other module grew into read zero here.
                assert_eq!(
                    call_i32(&mut store, &inst, "grow", &[Val::I32(2)]).unwrap(),
                    8
                );
                let d = mem.data(&store);
                assert!(
                    d[8 * 65536..].iter().all(|x| *x == 0),
                    "{b:?} round {round}"
                );
            } else {
                scribble(&mut store, &inst, round);
            }
        }
        // Two slots in all: every instance ran in one of them.
        assert!(
            bases.len() <= 2,
            "{b:?}: {} distinct memory bases",
            bases.len()
        );
    }
}

/// Two live instances of one module in two slots do not see each other.
#[test]
fn live_instances_of_one_module_are_apart() {
    let engine = pool_engine(|_| {});
    let m = load_in(&engine, IMAGED, Bounds::Guard);
    let mut s1 = Store::new(&engine, ());
    let i1 = Instance::new(&mut s1, &m, &[]).unwrap();
    scribble(&mut s1, &i1, 1);
    let mut s2 = Store::new(&engine, ());
    let i2 = Instance::new(&mut s2, &m, &[]).unwrap();
    let mem2 = i2.get_memory(&mut s2, "mem").unwrap();
    assert!(mem2.data(&s2) == &imaged_initial()[..]);
    let mem1 = i1.get_memory(&mut s1, "mem").unwrap();
    assert_ne!(mem1.data_ptr(&s1), mem2.data_ptr(&s2));
}

#[test]
fn each_limit_refuses_with_an_error_naming_it() {
    // Memory slots: two; a third live memory is refused, and once a store
    // drops its slot serves again.
    let engine = pool_engine(|_| {});
    let m = load_in(&engine, r#"(module (memory 1))"#, Bounds::Guard);
    let mut s1 = Store::new(&engine, ());
    Instance::new(&mut s1, &m, &[]).unwrap();
    let mut s2 = Store::new(&engine, ());
    Instance::new(&mut s2, &m, &[]).unwrap();
    let mut s3 = Store::new(&engine, ());
    let e = Instance::new(&mut s3, &m, &[]).unwrap_err().to_string();
    assert!(e.contains("total_memories"), "{e}");
    drop(s1);
    Instance::new(&mut s3, &m, &[]).unwrap();

    // Tables: a module with a table but no memory hits total_tables.
    let engine = pool_engine(|_| {});
    let t = load_in(&engine, r#"(module (table 1 funcref))"#, Bounds::Guard);
    let mut s = Store::new(&engine, ());
    Instance::new(&mut s, &t, &[]).unwrap();
    Instance::new(&mut s, &t, &[]).unwrap();
    let e = Instance::new(&mut s, &t, &[]).unwrap_err().to_string();
    assert!(e.contains("total_tables"), "{e}");

    // Instances.
    let engine = pool_engine(|p| {
        p.total_core_instances(3);
    });
    let empty = load_in(&engine, r#"(module (func (export "f")))"#, Bounds::Guard);
    let mut s = Store::new(&engine, ());
    for _ in 0..3 {
        Instance::new(&mut s, &empty, &[]).unwrap();
    }
    let e = Instance::new(&mut s, &empty, &[]).unwrap_err().to_string();
    assert!(e.contains("total_core_instances"), "{e}");
    drop(s);
    let mut s = Store::new(&engine, ());
    Instance::new(&mut s, &empty, &[]).unwrap();

    // Sizes: a memory or table larger than a slot, and growth past it.
    let engine = pool_engine(|p| {
        p.max_memory_size(10 * 65536).table_elements(5);
    });
    let mut s = Store::new(&engine, ());
    let big = load_in(&engine, r#"(module (memory 11))"#, Bounds::Guard);
    let e = Instance::new(&mut s, &big, &[]).unwrap_err().to_string();
    assert!(e.contains("max_memory_size"), "{e}");
    let wide = load_in(&engine, r#"(module (table 6 funcref))"#, Bounds::Guard);
    let e = Instance::new(&mut s, &wide, &[]).unwrap_err().to_string();
    assert!(e.contains("table_elements"), "{e}");
    let g = load_in(
        &engine,
        r#"(module (memory 8) (table 4 funcref)
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
             (func (export "tgrow") (param i32) (result i32)
               (table.grow (ref.null func) (local.get 0))))"#,
        Bounds::Explicit,
    );
    let inst = Instance::new(&mut s, &g, &[]).unwrap();
    assert_eq!(call_i32(&mut s, &inst, "grow", &[Val::I32(3)]).unwrap(), -1);
    assert_eq!(call_i32(&mut s, &inst, "grow", &[Val::I32(2)]).unwrap(), 8);
    assert_eq!(
        call_i32(&mut s, &inst, "tgrow", &[Val::I32(2)]).unwrap(),
        -1
    );
    assert_eq!(call_i32(&mut s, &inst, "tgrow", &[Val::I32(1)]).unwrap(), 4);

    // VMContexts: one of more than max_core_instance_size bytes (500
    // funcrefs of 24 bytes) is refused; instance slots are reused, and a
    // reused one has no funcref of the previous instance (ref.func makes it
    // again and calls work).
    let engine = pool_engine(|p| {
        p.max_core_instance_size(4096);
    });
    let mut many = String::from("(module");
    for i in 0..500 {
        many += &format!(" (func (export \"f{i}\") (result i32) i32.const {i})");
    }
    many += ")";
    let big = load_in(&engine, &many, Bounds::Guard);
    let mut s = Store::new(&engine, ());
    let e = Instance::new(&mut s, &big, &[]).unwrap_err().to_string();
    assert!(e.contains("max_core_instance_size"), "{e}");
    let small = load_in(&engine, IMAGED, Bounds::Guard);
    for _ in 0..20 {
        let mut s = Store::new(&engine, ());
        let i = Instance::new(&mut s, &small, &[]).unwrap();
        call0(&mut s, &i, "fill_table", &[]);
        let tab = i.get_table(&mut s, "tab").unwrap();
        let Some(Val::FuncRef(Some(f))) = tab.get(&mut s, 3) else {
            panic!("no function");
        };
        let mut r = [Val::I32(0)];
        f.call(&mut s, &[], &mut r).unwrap();
        assert_eq!(r[0].i32(), Some(1));
    }

    // A bad pool configuration is refused by Engine::new.
    let mut p = PoolingAllocationConfig::default();
    p.max_memory_size(12345);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    let e = Engine::new(&c).unwrap_err().to_string();
    assert!(e.contains("max_memory_size"), "{e}");
}

/// A module whose second element segment fails when the imported global
/// says so, after its first put `$peek` (which reads the module's own
/// memory) into the imported table. Its memory's slot came back holding the
/// data from a successful instantiation; the failed one must not show it,
/// exactly as without pooling: the data segments never ran.
#[test]
fn failed_instantiation_in_a_warm_slot_shows_no_data() {
    const M: &str = r#"(module
      (import "env" "t" (table 2 funcref))
      (import "env" "off" (global i32))
      (memory 1)
      (data (i32.const 0) "secret")
      (func $peek (result i32) (i32.load8_u (i32.const 0)))
      (elem (i32.const 0) $peek)
      (elem (global.get 0) $peek))"#;
    let on_demand = Engine::default();
    let pooled = pool_engine(|_| {});
    for engine in [&on_demand, &pooled] {
        let m = load_in(engine, M, Bounds::Guard);
        let run = |off: i32| {
            let mut s = Store::new(engine, ());
            let ty = TableType {
                elem: RefType::FuncRef,
                min: 2,
                max: None,
                table64: false,
            };
            let t = Table::new(&mut s, ty, Val::FuncRef(None)).unwrap();
            let g = Global::new(
                &mut s,
                GlobalType {
                    ty: ValType::I32,
                    mutable: false,
                },
                Val::I32(off),
            )
            .unwrap();
            let r = Instance::new(&mut s, &m, &[Extern::Table(t), Extern::Global(g)]);
            let Some(Val::FuncRef(Some(peek))) = t.get(&mut s, 0) else {
                panic!("no function in the table");
            };
            let mut out = [Val::I32(0)];
            peek.call(&mut s, &[], &mut out).unwrap();
            (r.is_ok(), out[0].i32().unwrap())
        };
        assert_eq!(run(1), (true, i32::from(b's')));
        assert_eq!(run(1), (true, i32::from(b's')));
        assert_eq!(
            run(5),
            (false, 0),
            "data shown after a failed instantiation"
        );
        assert_eq!(run(1), (true, i32::from(b's')));
    }
}
