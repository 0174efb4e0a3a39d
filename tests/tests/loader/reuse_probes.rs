//! Adversarial probes of reuse (issue 15): a memory's reservation or pool
//! slot, a pooled table vector and a pooled VMContext slot go from one
//! instance to the next, and nothing of the previous instance may show:
//! every byte and `memory.size` of a reused memory equal a fresh
//! instance's, after writes inside and outside the images, growth, a trap
//! in the start function, a failed data segment, another module or another
//! memory index in between, random modules sharing few slots. Also: a
//! refused instantiation (a pool limit, a limiter, a size) keeps no slot
//! and counts as no instance, an allocation the host cannot make is an
//! error rather than an abort, a dropped module's images leave its free
//! slots, concurrent instantiation from one `InstancePre`, engines and
//! modules dropped while their instances live, lazy tables over reused
//! pooled vectors, dropped segments stay with their instance.

use super::*;
use wasmc_loader::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

fn pool_engine(f: impl FnOnce(&mut PoolingAllocationConfig)) -> Engine {
    let mut p = PoolingAllocationConfig::default();
    p.total_memories(4)
        .total_tables(4)
        .total_core_instances(8)
        .max_memory_size(64 << 20)
        .table_elements(64);
    f(&mut p);
    let mut c = Config::new();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    Engine::new(&c).unwrap()
}

fn load_in(engine: &Engine, wat: &str, b: Bounds) -> Module {
    Module::from_bytes(engine, &compile(wat, b)).unwrap()
}

/// Both allocation strategies, each with its own engine.
fn engines() -> Vec<(&'static str, Engine)> {
    vec![
        ("on-demand", Engine::default()),
        ("pooled", pool_engine(|_| {})),
    ]
}

/// Two memories of 3 pages (multi-memory): images on pages 0 and 2 of
/// memory 0, on page 1 of memory 1; a passive segment; writers for both.
const TWO: &str = r#"(module
  (memory $a (export "a") 3 6)
  (memory $b (export "b") 3 6)
  (data (memory $a) (i32.const 0) "A-zero")
  (data (memory $a) (i32.const 131072) "A-two")
  (data (memory $b) (i32.const 65536) "B-one")
  (data $p "passive!")
  (func (export "poke_a") (param i32 i32) (i32.store8 $a (local.get 0) (local.get 1)))
  (func (export "poke_b") (param i32 i32) (i32.store8 $b (local.get 0) (local.get 1)))
  (func (export "grow_a") (param i32) (result i32) (memory.grow $a (local.get 0)))
  (func (export "grow_b") (param i32) (result i32) (memory.grow $b (local.get 0)))
  (func (export "init_b") (param i32) (memory.init $b $p (local.get 0) (i32.const 0) (i32.const 8)))
  (func (export "drop_p") (data.drop $p)))"#;

/// The same memory sizes, no data.
const TWO_PLAIN: &str = r#"(module
  (memory (export "a") 3 6)
  (memory (export "b") 3 6))"#;

fn two_initial() -> (Vec<u8>, Vec<u8>) {
    let mut a = vec![0u8; 3 * 65536];
    a[..6].copy_from_slice(b"A-zero");
    a[131072..131077].copy_from_slice(b"A-two");
    let mut b = vec![0u8; 3 * 65536];
    b[65536..65541].copy_from_slice(b"B-one");
    (a, b)
}

fn call(store: &mut Store<()>, inst: &Instance, name: &str, args: &[Val]) -> Result<(), Error> {
    let f = inst
        .get_func(&mut *store, name)
        .unwrap_or_else(|| panic!("no export {name}"));
    let n = f.ty(&*store).results.len();
    let mut r = vec![Val::I32(0); n];
    f.call(&mut *store, args, &mut r)
}

/// Every byte and the size of export `name` equal `want`.
fn assert_memory(store: &mut Store<()>, inst: &Instance, name: &str, want: &[u8], what: &str) {
    let m = inst.get_memory(&mut *store, name).unwrap();
    assert_eq!(
        m.size(&*store) as usize * 65536,
        want.len(),
        "{what}: size of {name}"
    );
    let d = m.data(&*store);
    if let Some(i) = d.iter().zip(want).position(|(x, y)| x != y) {
        panic!(
            "{what}: {name}[{i:#x}] is {:#x}, a fresh instance has {:#x}",
            d[i], want[i]
        );
    }
}

/// Writes every page of both memories (host and Wasm), grows both and
/// writes the grown pages, initialises and drops the passive segment.
fn scribble_two(store: &mut Store<()>, inst: &Instance, v: u8) {
    for name in ["a", "b"] {
        let m = inst.get_memory(&mut *store, name).unwrap();
        m.data_mut(&mut *store).fill(v);
    }
    for at in [0, 65536, 131072, 3 * 65536 - 1] {
        call(store, inst, "poke_a", &[Val::I32(at), Val::I32(0x77)]).unwrap();
        call(store, inst, "poke_b", &[Val::I32(at), Val::I32(0x77)]).unwrap();
    }
    assert_eq!(call_i32(store, inst, "grow_a", &[Val::I32(2)]).unwrap(), 3);
    assert_eq!(call_i32(store, inst, "grow_b", &[Val::I32(3)]).unwrap(), 3);
    for name in ["a", "b"] {
        let m = inst.get_memory(&mut *store, name).unwrap();
        m.data_mut(&mut *store)[3 * 65536..].fill(v ^ 0xff);
    }
    call(store, inst, "init_b", &[Val::I32(10)]).unwrap();
    call(store, inst, "drop_p", &[]).unwrap();
}

/// Instances of one multi-memory module, another module with the same
/// memory sizes, and host memories come and go in both strategies; each
/// new instance's memories are byte for byte a fresh instance's, its
/// passive segment is not dropped, and growth starts from the initial
/// size again.
#[test]
fn reused_memories_equal_fresh_ones_byte_for_byte() {
    let (want_a, want_b) = two_initial();
    let zero = vec![0u8; 3 * 65536];
    for (name, engine) in engines() {
        for b in BOTH {
            let two = load_in(&engine, TWO, b);
            let plain = load_in(&engine, TWO_PLAIN, b);
            for round in 0..24u8 {
                let what = format!("{name} {b:?} round {round}");
                let mut store = Store::new(&engine, ());
                if round % 5 == 2 {
                    // A host memory of the same size in between.
                    let ty = MemoryType {
                        min: 3,
                        max: Some(6),
                        memory64: false,
                        shared: false,
                    };
                    let m = Memory::new(&mut store, ty).unwrap();
                    assert!(m.data(&store).iter().all(|x| *x == 0), "{what}: host");
                    m.data_mut(&mut store).fill(0x33);
                }
                if round % 4 == 3 {
                    let inst = instantiate(&mut store, &plain);
                    assert_memory(&mut store, &inst, "a", &zero, &what);
                    assert_memory(&mut store, &inst, "b", &zero, &what);
                    for n in ["a", "b"] {
                        let m = inst.get_memory(&mut store, n).unwrap();
                        m.data_mut(&mut store).fill(0x44);
                        assert_eq!(m.grow(&mut store, 1).unwrap(), 3, "{what}");
                        m.data_mut(&mut store).fill(0x45);
                    }
                    continue;
                }
                let inst = instantiate(&mut store, &two);
                assert_memory(&mut store, &inst, "a", &want_a, &what);
                assert_memory(&mut store, &inst, "b", &want_b, &what);
                // The passive segment is there (not dropped by the last
                // instance).
                call(&mut store, &inst, "init_b", &[Val::I32(100)]).unwrap();
                let mb = inst.get_memory(&mut store, "b").unwrap();
                assert_eq!(&mb.data(&store)[100..108], b"passive!", "{what}");
                scribble_two(&mut store, &inst, round.wrapping_mul(37) | 1);
                // After data.drop, a non-empty memory.init traps here only.
                let t = expect_trap(call(&mut store, &inst, "init_b", &[Val::I32(0)]));
                assert_eq!(t.code, TrapCode::MemoryOutOfBounds, "{what}");
            }
        }
    }
}

/// A start function that writes everywhere and then traps, in a warm slot:
/// the next instance in that slot still shows only the initial contents.
#[test]
fn a_trapping_start_function_leaves_nothing_behind() {
    const M: &str = r#"(module
      (global $trap (import "env" "trap") i32)
      (memory (export "m") 2 4)
      (data (i32.const 65536) "image")
      (func $start
        (memory.fill (i32.const 0) (i32.const 0xab) (i32.const 131072))
        (drop (memory.grow (i32.const 1)))
        (memory.fill (i32.const 131072) (i32.const 0xcd) (i32.const 65536))
        (if (global.get $trap) (then unreachable)))
      (start $start))"#;
    let mut want = vec![0u8; 2 * 65536];
    want[65536..65541].copy_from_slice(b"image");
    for (name, engine) in engines() {
        let m = load_in(&engine, M, Bounds::Guard);
        for round in 0..8 {
            let trap = round % 2 == 0;
            let mut store = Store::new(&engine, ());
            let g = Global::new(
                &mut store,
                GlobalType {
                    ty: ValType::I32,
                    mutable: false,
                },
                Val::I32(trap as i32),
            )
            .unwrap();
            let r = Instance::new(&mut store, &m, &[Extern::Global(g)]);
            if trap {
                assert!(r.is_err(), "{name} round {round}: the start did not trap");
                continue;
            }
            // The start ran without trapping: its own writes, 3 pages.
            let inst = r.unwrap();
            let mem = inst.get_memory(&mut store, "m").unwrap();
            assert_eq!(mem.size(&store), 3, "{name} round {round}");
            drop(store);
            // A store whose instance has no start: initial contents only.
            let mut store = Store::new(&engine, ());
            let plain = load_in(
                &engine,
                r#"(module (memory (export "m") 2 4) (data (i32.const 65536) "image"))"#,
                Bounds::Guard,
            );
            let inst = instantiate(&mut store, &plain);
            assert_memory(&mut store, &inst, "m", &want, &format!("{name} {round}"));
        }
        // The same module whose start traps, then a clean run of a module
        // sharing nothing: the next instance of `m` without a trap shows
        // the start's writes of *this* run only (3 pages, 0xab/0xcd).
        let mut store = Store::new(&engine, ());
        let g = Global::new(
            &mut store,
            GlobalType {
                ty: ValType::I32,
                mutable: false,
            },
            Val::I32(0),
        )
        .unwrap();
        let inst = Instance::new(&mut store, &m, &[Extern::Global(g)]).unwrap();
        let mut w = vec![0xabu8; 2 * 65536];
        w.extend(std::iter::repeat_n(0xcd, 65536));
        assert_memory(&mut store, &inst, "m", &w, name);
    }
}

/// A data segment fails after the images and an element segment put a
/// writer into an imported table: the writer can still write the failed
/// instance's memory. The next instance of the module (same slot or
/// reservation) shows none of it.
#[test]
fn writes_through_a_failed_instance_do_not_reach_the_next() {
    const M: &str = r#"(module
      (import "env" "t" (table 1 funcref))
      (import "env" "off" (global i32))
      (memory (export "m") 1 3)
      (data (i32.const 0) "first")
      (data (global.get 0) "second")
      (func $w
        (memory.fill (i32.const 0) (i32.const 0x99) (i32.const 65536))
        (drop (memory.grow (i32.const 2)))
        (memory.fill (i32.const 65536) (i32.const 0x98) (i32.const 131072)))
      (elem (i32.const 0) $w))"#;
    for (name, engine) in engines() {
        let m = load_in(&engine, M, Bounds::Explicit);
        for round in 0..6 {
            let fail = round % 2 == 1;
            let mut s = Store::new(&engine, ());
            let t = Table::new(
                &mut s,
                TableType {
                    elem: RefType::FuncRef,
                    min: 1,
                    max: None,
                    table64: false,
                },
                Val::FuncRef(None),
            )
            .unwrap();
            let off = if fail { 65536 - 3 } else { 100 };
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
            assert_eq!(r.is_err(), fail, "{name} round {round}");
            if let Ok(inst) = r {
                let mut want = vec![0u8; 65536];
                want[..5].copy_from_slice(b"first");
                want[100..106].copy_from_slice(b"second");
                assert_memory(&mut s, &inst, "m", &want, &format!("{name} {round}"));
            }
            let Some(Val::FuncRef(Some(w))) = t.get(&mut s, 0) else {
                panic!("{name} round {round}: no writer in the table");
            };
            w.call(&mut s, &[], &mut []).unwrap();
        }
    }
}

/// Memory64 memories in the pool: images, growth, reuse; the reused slot
/// equals a fresh one and `memory.size` is the initial size again.
#[test]
fn memory64_slots_are_reused_clean() {
    const M: &str = r#"(module
      (memory (export "m") i64 2 5)
      (data (i64.const 70000) "sixty-four")
      (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
      (func (export "size") (result i64) (memory.size))
      (func (export "poke") (param i64 i32) (i32.store8 (local.get 0) (local.get 1))))"#;
    let mut want = vec![0u8; 2 * 65536];
    want[70000..70010].copy_from_slice(b"sixty-four");
    for (name, engine) in engines() {
        let m = load_in(&engine, M, Bounds::Explicit);
        for round in 0..6 {
            let mut s = Store::new(&engine, ());
            let inst = instantiate(&mut s, &m);
            let what = format!("{name} round {round}");
            assert_memory(&mut s, &inst, "m", &want, &what);
            let mut r = [Val::I64(0)];
            let size = inst.get_func(&mut s, "size").unwrap();
            size.call(&mut s, &[], &mut r).unwrap();
            assert_eq!(r[0].i64(), Some(2), "{what}");
            let grow = inst.get_func(&mut s, "grow").unwrap();
            grow.call(&mut s, &[Val::I64(3)], &mut r).unwrap();
            assert_eq!(r[0].i64(), Some(2), "{what}");
            grow.call(&mut s, &[Val::I64(1)], &mut r).unwrap();
            assert_eq!(r[0].i64(), Some(-1), "{what}: past the maximum");
            for at in [0i64, 70000, 5 * 65536 - 1] {
                call(&mut s, &inst, "poke", &[Val::I64(at), Val::I32(0x5c)]).unwrap();
            }
        }
    }
}

/// A memory's slot is refused (`total_memories`) in a store that keeps
/// trying: every failed attempt must give back what it took (its
/// VMContext slot, its table), so that once the memory is free again the
/// same store instantiates, and the error stays the one naming the limit
/// that refused.
#[test]
fn failed_allocations_give_their_pool_slots_back() {
    const M: &str = r#"(module (table 2 funcref) (memory 1))"#;
    let engine = pool_engine(|p| {
        p.total_memories(1).total_tables(3).total_core_instances(3);
    });
    let m = load_in(&engine, M, Bounds::Guard);
    let mut holder = Store::new(&engine, ());
    instantiate(&mut holder, &m);
    let mut s = Store::new(&engine, ());
    for attempt in 0..6 {
        let e = Instance::new(&mut s, &m, &[]).unwrap_err().to_string();
        assert!(e.contains("total_memories"), "attempt {attempt}: {e}");
    }
    drop(holder);
    Instance::new(&mut s, &m, &[]).unwrap_or_else(|e| panic!("after the holder dropped: {e}"));
}

/// One pooled engine, one `InstancePre`, several threads each with its own
/// stores: every instance starts from the initial contents and sees only
/// its own writes; stores drop on one thread while others instantiate.
#[test]
fn threads_instantiate_one_instance_pre_from_one_pool() {
    let engine = pool_engine(|p| {
        p.total_memories(16)
            .total_tables(16)
            .total_core_instances(32);
    });
    let m = load_in(&engine, TWO, Bounds::Guard);
    let linker: Linker<()> = Linker::new(&engine);
    let pre = linker.instantiate_pre(&m).unwrap();
    let (want_a, want_b) = two_initial();
    std::thread::scope(|sc| {
        for t in 0..4u8 {
            let (pre, engine, want_a, want_b) = (&pre, &engine, &want_a, &want_b);
            sc.spawn(move || {
                for round in 0..20u8 {
                    let what = format!("thread {t} round {round}");
                    let mut s = Store::new(engine, ());
                    let inst = pre.instantiate(&mut s).unwrap();
                    assert_memory(&mut s, &inst, "a", want_a, &what);
                    assert_memory(&mut s, &inst, "b", want_b, &what);
                    let v = 0x10 * (t + 1) + round % 16;
                    scribble_two(&mut s, &inst, v);
                    std::thread::yield_now();
                    let ma = inst.get_memory(&mut s, "a").unwrap();
                    let d = ma.data(&s);
                    assert_eq!(d.len(), 5 * 65536, "{what}");
                    assert!(
                        d[65537..131072].iter().all(|x| *x == v),
                        "{what}: another's write"
                    );
                    assert!(d[3 * 65536..].iter().all(|x| *x == v ^ 0xff), "{what}");
                }
            });
        }
    });
}

/// An engine and a module dropped while their store and instances live:
/// the instances keep working, and the store drops cleanly afterwards; a
/// new module then gets none of the old one's memory contents.
#[test]
fn engine_and_module_dropped_while_instances_live() {
    const M: &str = r#"(module (memory (export "m") 1) (data (i32.const 8) "old")
      (func (export "peek") (result i32) (i32.load8_u (i32.const 8))))"#;
    for pooled in [false, true] {
        let engine = if pooled {
            pool_engine(|_| {})
        } else {
            Engine::default()
        };
        let m = load_in(&engine, M, Bounds::Guard);
        let mut s = Store::new(&engine, ());
        let inst = instantiate(&mut s, &m);
        drop(m);
        drop(engine);
        assert_eq!(
            call_i32(&mut s, &inst, "peek", &[]).unwrap(),
            i32::from(b'o')
        );
        let mem = inst.get_memory(&mut s, "m").unwrap();
        mem.data_mut(&mut s)[8] = b'X';
        assert_eq!(
            call_i32(&mut s, &inst, "peek", &[]).unwrap(),
            i32::from(b'X')
        );
        drop(s);
        // Fresh engine and modules reusing whatever was freed.
        let engine = if pooled {
            pool_engine(|_| {})
        } else {
            Engine::default()
        };
        for _ in 0..4 {
            let other = load_in(
                &engine,
                r#"(module (memory (export "m") 1)
                   (func (export "peek") (result i32) (i32.load8_u (i32.const 8))))"#,
                Bounds::Guard,
            );
            let mut s = Store::new(&engine, ());
            let inst = instantiate(&mut s, &other);
            assert_eq!(call_i32(&mut s, &inst, "peek", &[]).unwrap(), 0);
            let mem = inst.get_memory(&mut s, "m").unwrap();
            assert!(mem.data(&s).iter().all(|x| *x == 0));
            mem.data_mut(&mut s).fill(7);
        }
    }
}

/// Lazy tables over pooled vectors reused by modules with fewer and more
/// elements: untouched elements are the segment's functions or null, never
/// a function (or a dangling pointer) of the vector's last table; active
/// segments count as dropped for `table.init`; `table.copy` out of an
/// untouched range copies the segment's functions.
#[test]
fn lazy_tables_over_reused_pooled_vectors() {
    let big = r#"(module
      (table (export "t") 40 funcref)
      (func $a (result i32) i32.const 11)
      (func $b (result i32) i32.const 12)
      (elem (i32.const 30) $a $b)
      (func (export "call") (param i32) (result i32) (call_indirect (result i32) (local.get 0)))
      (func (export "fill") (table.fill (i32.const 0) (ref.func $b) (i32.const 40))))"#;
    let small = r#"(module
      (table (export "t") 10 funcref)
      (type $r (func (result i32)))
      (func $c (result i32) i32.const 21)
      (func $d (result i32) i32.const 22)
      (elem (i32.const 2) $c)
      (elem $pass func $d)
      (func (export "call") (param i32) (result i32) (call_indirect (type $r) (local.get 0)))
      (func (export "is_null") (param i32) (result i32) (ref.is_null (table.get (local.get 0))))
      (func (export "init_active") (param i32) (table.init 0 (i32.const 0) (i32.const 0) (local.get 0)))
      (func (export "init_pass") (table.init $pass (i32.const 5) (i32.const 0) (i32.const 1)))
      (func (export "copy") (table.copy (i32.const 6) (i32.const 2) (i32.const 2)))
      (func (export "grow") (param i32) (result i32) (table.grow (ref.null func) (local.get 0))))"#;
    let engine = pool_engine(|p| {
        p.total_tables(1);
    });
    for b in BOTH {
        let big = load_in(&engine, big, b);
        let small = load_in(&engine, small, b);
        for round in 0..6 {
            let what = format!("{b:?} round {round}");
            {
                let mut s = Store::new(&engine, ());
                let i = instantiate(&mut s, &big);
                assert_eq!(call_i32(&mut s, &i, "call", &[Val::I32(31)]).unwrap(), 12);
                let t = expect_trap(call(&mut s, &i, "call", &[Val::I32(5)]));
                assert_eq!(t.code, TrapCode::IndirectCallToNull, "{what}");
                call(&mut s, &i, "fill", &[]).unwrap();
            }
            let mut s = Store::new(&engine, ());
            let i = instantiate(&mut s, &small);
            let tab = i.get_table(&mut s, "t").unwrap();
            assert_eq!(tab.size(&s), 10, "{what}");
            for k in 0..10 {
                let null = call_i32(&mut s, &i, "is_null", &[Val::I32(k)]).unwrap();
                assert_eq!(null, (k != 2) as i32, "{what}: element {k}");
            }
            // Active segment 0 was dropped by instantiation.
            call(&mut s, &i, "init_active", &[Val::I32(0)]).unwrap();
            let t = expect_trap(call(&mut s, &i, "init_active", &[Val::I32(1)]));
            assert_eq!(t.code, TrapCode::TableOutOfBounds, "{what}");
            call(&mut s, &i, "init_pass", &[]).unwrap();
            call(&mut s, &i, "copy", &[]).unwrap();
            assert_eq!(call_i32(&mut s, &i, "call", &[Val::I32(5)]).unwrap(), 22);
            assert_eq!(call_i32(&mut s, &i, "call", &[Val::I32(6)]).unwrap(), 21);
            let t = expect_trap(call(&mut s, &i, "call", &[Val::I32(7)]));
            assert_eq!(t.code, TrapCode::IndirectCallToNull, "{what}");
            // Grown elements, up to the pool's 64, are null too.
            assert_eq!(call_i32(&mut s, &i, "grow", &[Val::I32(54)]).unwrap(), 10);
            assert_eq!(call_i32(&mut s, &i, "grow", &[Val::I32(1)]).unwrap(), -1);
            for k in 10..64 {
                assert!(
                    matches!(tab.get(&mut s, k), Some(Val::FuncRef(None))),
                    "{what}: grown element {k}"
                );
            }
        }
    }
}

/// The `/proc/self/maps` lines of mappings that overlap `[start, end)`.
fn mappings_in(start: usize, end: usize) -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|l| {
            let range = l.split(' ').next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            let a = usize::from_str_radix(a, 16).unwrap();
            let b = usize::from_str_radix(b, 16).unwrap();
            a < end && start < b
        })
        .map(str::to_string)
        .collect()
}

/// A pool slot keeps a module's images mapped only while the module can
/// still use them: once the module is dropped, its free slots no longer map
/// its sealed data (as the on-demand reservations' `forget_module` does),
/// or they would pin the module's image pages for as long as the slot sits
/// unused in the pool.
#[test]
fn a_dropped_modules_images_leave_its_free_pool_slots() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let engine = pool_engine(|_| {});
    let m = load_in(
        &engine,
        r#"(module (memory (export "m") 4) (data (i32.const 0) "pinned?"))"#,
        Bounds::Guard,
    );
    let mut s = Store::new(&engine, ());
    let inst = instantiate(&mut s, &m);
    let base = inst.get_memory(&mut s, "m").unwrap().data_ptr(&s) as usize;
    let file_backed = |what: &str| {
        let lines = mappings_in(base, base + 4 * 65536);
        let files: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("memfd") || l.contains('/'))
            .collect();
        (!files.is_empty(), format!("{what}:\n{}", lines.join("\n")))
    };
    let (mapped, why) = file_backed("while live");
    assert!(
        mapped,
        "the image is not mapped from the sealed data: {why}"
    );
    drop(s);
    let (mapped, why) = file_backed("store dropped, module live");
    assert!(mapped, "the free slot lost its image: {why}");
    drop(m);
    let (mapped, why) = file_backed("module dropped");
    assert!(!mapped, "a dropped module's image still mapped: {why}");

    // The module dropped first, then its store (which held the last
    // reference): the slot comes back, and is cleared as the module goes.
    let m = load_in(
        &engine,
        r#"(module (memory (export "m") 4) (data (i32.const 0) "pinned?"))"#,
        Bounds::Guard,
    );
    let mut s = Store::new(&engine, ());
    let inst = instantiate(&mut s, &m);
    let mem = inst.get_memory(&mut s, "m").unwrap();
    assert_eq!(mem.data_ptr(&s) as usize, base, "not the warm slot");
    drop(m);
    let (mapped, why) = file_backed("module dropped, store live");
    assert!(mapped, "the live memory lost its image: {why}");
    drop(s);
    let (mapped, why) = file_backed("store dropped after its module");
    assert!(!mapped, "a dropped module's image still mapped: {why}");
}

/// Refuses the second memory an instantiation asks for.
struct SecondMemoryRefused {
    asked: usize,
}

impl wasmc_loader::ResourceLimiter for SecondMemoryRefused {
    fn memory_growing(
        &mut self,
        current: usize,
        _: usize,
        _: Option<usize>,
    ) -> anyhow::Result<bool> {
        if current == 0 {
            self.asked += 1;
            return Ok(self.asked % 2 == 1);
        }
        Ok(true)
    }
    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> anyhow::Result<bool> {
        Ok(true)
    }
}

/// Refusals (a limiter refusing the second memory, a table or a VMContext
/// over the pool's sizes) take nothing from the pool: the same store then
/// instantiates as many instances as the pool has slots.
#[test]
fn refused_instantiations_leave_the_pool_whole() {
    let engine = pool_engine(|p| {
        p.total_memories(2)
            .total_tables(2)
            .total_core_instances(2)
            .table_elements(8)
            .max_core_instance_size(4096);
    });
    let two = load_in(&engine, TWO, Bounds::Guard);
    let mut s = Store::new(&engine, SecondMemoryRefused { asked: 0 });
    s.limiter(|l| l);
    for round in 0..4 {
        let e = Instance::new(&mut s, &two, &[]).unwrap_err().to_string();
        assert!(e.contains("limiter"), "round {round}: {e}");
    }
    let wide = load_in(
        &engine,
        r#"(module (memory 1) (table 9 funcref))"#,
        Bounds::Guard,
    );
    let mut many = String::from("(module (memory 1) (table 1 funcref)");
    for i in 0..300 {
        many += &format!(" (func (export \"f{i}\"))");
    }
    many += ")";
    let big = load_in(&engine, &many, Bounds::Guard);
    let mut s = Store::new(&engine, ());
    for round in 0..4 {
        let e = Instance::new(&mut s, &wide, &[]).unwrap_err().to_string();
        assert!(e.contains("table_elements"), "round {round}: {e}");
        let e = Instance::new(&mut s, &big, &[]).unwrap_err().to_string();
        assert!(e.contains("max_core_instance_size"), "round {round}: {e}");
    }
    let ok = load_in(
        &engine,
        r#"(module (memory 1) (table 8 funcref))"#,
        Bounds::Guard,
    );
    instantiate(&mut s, &ok);
    instantiate(&mut s, &ok);
    let e = Instance::new(&mut s, &ok, &[]).unwrap_err().to_string();
    assert!(e.contains("total_core_instances"), "{e}");
}

/// `memory.init` of an active segment that a memory image applied: it was
/// dropped by instantiation, in every instance of a reused slot (a length
/// of 0 is fine, any more traps), and a data segment into an imported
/// memory is applied by every instantiation while the defined memory's
/// image comes from the slot.
#[test]
fn image_segments_are_dropped_and_imported_memories_still_get_their_data() {
    const M: &str = r#"(module
      (import "env" "mem" (memory 1))
      (memory $own (export "own") 2)
      (data (memory $own) (i32.const 65536) "own image")
      (data (memory 0) (i32.const 16) "into the import")
      (func (export "init0") (param i32)
        (memory.init $own 0 (i32.const 0) (i32.const 0) (local.get 0))))"#;
    for (name, engine) in engines() {
        let m = load_in(&engine, M, Bounds::Guard);
        let mut want = vec![0u8; 2 * 65536];
        want[65536..65545].copy_from_slice(b"own image");
        for round in 0..4 {
            let what = format!("{name} round {round}");
            let mut s = Store::new(&engine, ());
            let ty = MemoryType {
                min: 1,
                max: None,
                memory64: false,
                shared: false,
            };
            let imported = Memory::new(&mut s, ty).unwrap();
            let inst = Instance::new(&mut s, &m, &[Extern::Memory(imported)]).unwrap();
            assert_eq!(&imported.data(&s)[16..31], b"into the import", "{what}");
            assert_memory(&mut s, &inst, "own", &want, &what);
            call(&mut s, &inst, "init0", &[Val::I32(0)]).unwrap();
            let t = expect_trap(call(&mut s, &inst, "init0", &[Val::I32(1)]));
            assert_eq!(t.code, TrapCode::MemoryOutOfBounds, "{what}");
            let own = inst.get_memory(&mut s, "own").unwrap();
            own.data_mut(&mut s).fill(0x5e);
        }
    }
}

/// Host functions of one linker in one `InstancePre`, called from several
/// threads' stores of a pooled engine at once; each store's data is its
/// own.
#[test]
fn instance_pre_with_host_functions_across_threads() {
    const M: &str = r#"(module
      (import "env" "h" (func $h (param i32) (result i32)))
      (memory (export "m") 1)
      (data (i32.const 0) "\01")
      (func (export "run") (param i32) (result i32)
        (i32.add (call $h (local.get 0)) (i32.load8_u (i32.const 0)))))"#;
    let engine = pool_engine(|p| {
        p.total_memories(8).total_core_instances(8);
    });
    let m = load_in(&engine, M, Bounds::Guard);
    let mut linker: Linker<u32> = Linker::new(&engine);
    linker
        .func_wrap("env", "h", |c: wasmc_loader::Caller<'_, u32>, x: i32| {
            x * 10 + *c.data() as i32
        })
        .unwrap();
    let pre = linker.instantiate_pre(&m).unwrap();
    // The pre keeps what it resolved: the linker and the module handle may
    // go.
    drop(linker);
    drop(m);
    std::thread::scope(|sc| {
        for t in 0..4u32 {
            let (pre, engine) = (&pre, &engine);
            sc.spawn(move || {
                for round in 0..25 {
                    let mut s = Store::new(engine, t);
                    let inst = pre.instantiate(&mut s).unwrap();
                    let run = inst.get_typed_func::<i32, i32>(&mut s, "run").unwrap();
                    assert_eq!(run.call(&mut s, round).unwrap(), round * 10 + t as i32 + 1);
                    let mem = inst.get_memory(&mut s, "m").unwrap();
                    mem.data_mut(&mut s)[0] = 200;
                }
            });
        }
    });
}

/// A store of another engine: an `InstancePre` (and `Instance::new`)
/// refuse it with an error, whatever the strategies.
#[test]
fn instance_pre_refuses_a_store_of_another_engine() {
    let pooled = pool_engine(|_| {});
    let other = Engine::default();
    let m = load_in(&pooled, r#"(module (memory 1))"#, Bounds::Guard);
    let pre = Linker::<()>::new(&pooled).instantiate_pre(&m).unwrap();
    let mut s = Store::new(&other, ());
    assert!(pre.instantiate(&mut s).is_err());
    assert!(Instance::new(&mut s, &m, &[]).is_err());
    let mut s = Store::new(&pooled, ());
    pre.instantiate(&mut s).unwrap();
}

/// A pool whose `table_elements` cannot be allocated per table (here
/// 2^32 - 1 pointers, 32 GiB, each) refuses the instantiation with an
/// error, and so does a host table of that minimum; the host process
/// must not abort on a failed allocation. Run in a child process, which an
/// abort would kill.
#[test]
fn an_unallocatable_table_capacity_is_an_error_not_an_abort() {
    if child_job().as_deref() == Some("table") {
        let engine = pool_engine(|p| {
            p.table_elements(u32::MAX);
        });
        let m = load_in(&engine, r#"(module (table 1 funcref))"#, Bounds::Guard);
        // More attempts than table slots (4): a refusal gives its slot back.
        for _ in 0..6 {
            let mut s = Store::new(&engine, ());
            match Instance::new(&mut s, &m, &[]) {
                Ok(_) => println!("instantiated"),
                Err(e) => println!("refused: {e}"),
            }
        }
        // On demand, with the store's table limit lifted: a host table of
        // 2^32 - 1 elements (the validator keeps modules' tables smaller).
        let mut c = Config::new();
        c.max_table_elements(u32::MAX);
        let engine = Engine::new(&c).unwrap();
        let mut s = Store::new(&engine, ());
        let ty = TableType {
            elem: RefType::FuncRef,
            min: u32::MAX,
            max: None,
            table64: false,
        };
        match Table::new(&mut s, ty, Val::FuncRef(None)) {
            Ok(_) => println!("on demand: instantiated"),
            Err(e) => println!("on demand: refused: {e}"),
        }
        return;
    }
    let out = run_child(
        module_path!(),
        "an_unallocatable_table_capacity_is_an_error_not_an_abort",
        "table",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child died: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Either is right, depending on the host's memory; a refusal names the
    // limit.
    assert!(
        stdout.contains("instantiated") || stdout.contains("table_elements"),
        "{stdout}"
    );
    assert!(!stdout.contains("total_tables"), "{stdout}");
    assert!(stdout.contains("on demand: "), "{stdout}");
}

/// A module dropped with everything of it, then another module of the
/// same shape (likely at the same addresses) with other data: its
/// instances show its own data, never the dropped module's, whichever
/// slot or reservation they get.
#[test]
fn a_new_module_in_a_dropped_ones_place_shows_its_own_data() {
    let text = |s: &str| {
        format!(
            r#"(module (memory (export "m") 2) (data (i32.const 65530) "{s}")
                 (data (i32.const 70000) "{s}"))"#
        )
    };
    for (name, engine) in engines() {
        for round in 0..6 {
            let tag = format!("module-{round}");
            let m = load_in(&engine, &text(&tag), Bounds::Guard);
            for k in 0..2 {
                let mut s = Store::new(&engine, ());
                let inst = instantiate(&mut s, &m);
                let mut want = vec![0u8; 2 * 65536];
                want[65530..65530 + tag.len()].copy_from_slice(tag.as_bytes());
                want[70000..70000 + tag.len()].copy_from_slice(tag.as_bytes());
                assert_memory(&mut s, &inst, "m", &want, &format!("{name} {round}.{k}"));
                let mem = inst.get_memory(&mut s, "m").unwrap();
                mem.data_mut(&mut s)[65530..65540].fill(b'!');
            }
            drop(m);
        }
    }
}

/// `elem.drop` and `data.drop` are per instance: a later instance of the
/// module (in the dropping instance's warm slot, its table vector reused)
/// still has its passive segments, and its lazy table its active ones.
#[test]
fn dropped_segments_stay_with_their_instance() {
    const M: &str = r#"(module
      (type $r (func (result i32)))
      (table (export "t") 4 funcref)
      (memory (export "m") 1)
      (func $one (result i32) i32.const 1)
      (func $two (result i32) i32.const 2)
      (elem (i32.const 0) $one)
      (elem $p func $two)
      (data $d "bytes")
      (func (export "call") (param i32) (result i32) (call_indirect (type $r) (local.get 0)))
      (func (export "tinit") (table.init $p (i32.const 1) (i32.const 0) (i32.const 1)))
      (func (export "minit") (memory.init $d (i32.const 0) (i32.const 0) (i32.const 5)))
      (func (export "drops") (elem.drop $p) (data.drop $d))
      (func (export "clobber") (table.fill (i32.const 0) (ref.func $two) (i32.const 4))))"#;
    for (name, engine) in engines() {
        let m = load_in(&engine, M, Bounds::Guard);
        for round in 0..4 {
            let what = format!("{name} round {round}");
            let mut s = Store::new(&engine, ());
            let i = instantiate(&mut s, &m);
            assert_eq!(
                call_i32(&mut s, &i, "call", &[Val::I32(0)]).unwrap(),
                1,
                "{what}"
            );
            let t = expect_trap(call(&mut s, &i, "call", &[Val::I32(1)]));
            assert_eq!(t.code, TrapCode::IndirectCallToNull, "{what}");
            call(&mut s, &i, "tinit", &[]).unwrap_or_else(|e| panic!("{what}: {e}"));
            call(&mut s, &i, "minit", &[]).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                call_i32(&mut s, &i, "call", &[Val::I32(1)]).unwrap(),
                2,
                "{what}"
            );
            let mem = i.get_memory(&mut s, "m").unwrap();
            assert_eq!(&mem.data(&s)[..5], b"bytes", "{what}");
            call(&mut s, &i, "drops", &[]).unwrap();
            let t = expect_trap(call(&mut s, &i, "tinit", &[]));
            assert_eq!(t.code, TrapCode::TableOutOfBounds, "{what}");
            let t = expect_trap(call(&mut s, &i, "minit", &[]));
            assert_eq!(t.code, TrapCode::MemoryOutOfBounds, "{what}");
            call(&mut s, &i, "clobber", &[]).unwrap();
        }
    }
}

/// A random data segment of a random module: at a constant offset (in or
/// out of bounds), at the imported global's offset, or passive.
enum RandSeg {
    Const(u32, Vec<u8>),
    Global(Vec<u8>),
    Passive,
}

/// Random modules sharing few pool slots (or the on-demand reservations),
/// instantiated in a random order with random imported offsets, some stores
/// kept alive across rounds, every instance scribbled over and grown: each
/// new instance's memory equals the segments applied in order to a zero
/// memory, and an out-of-bounds segment fails with its index.
#[test]
fn random_modules_in_few_slots_match_their_segments() {
    use wasmc_tests::fuzz::Rng;
    let mut rng = Rng::new(0x5eed_0015);
    let mut specs = Vec::new();
    for _ in 0..8 {
        let pages = 1 + rng.below_u64(3);
        let size = pages * 65536;
        let mut segs = Vec::new();
        for _ in 0..1 + rng.below_u64(6) {
            let len = match rng.below_u64(3) {
                0 => rng.below_u64(20),
                1 => 4096 * (1 + rng.below_u64(2)),
                _ => rng.below_u64(9000),
            };
            let b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8 | 1).collect();
            segs.push(match rng.below_u64(8) {
                0 => RandSeg::Passive,
                1 => RandSeg::Global(b[..b.len().min(40)].to_vec()),
                2 => RandSeg::Const((size - len / 2) as u32, b),
                3 => RandSeg::Const((rng.below_u64((size - len) / 4096 + 1) * 4096) as u32, b),
                _ => RandSeg::Const(rng.below_u64(size - len + 1) as u32, b),
            });
        }
        let mut wat = format!(
            "(module (import \"env\" \"g\" (global i32)) (memory (export \"mem\") {pages} 8)\n"
        );
        for s in &segs {
            let hex = |b: &[u8]| b.iter().map(|x| format!("\\{x:02x}")).collect::<String>();
            wat += &match s {
                RandSeg::Const(o, b) => {
                    format!("(data (i32.const {}) \"{}\")\n", *o as i32, hex(b))
                }
                RandSeg::Global(b) => format!("(data (global.get 0) \"{}\")\n", hex(b)),
                RandSeg::Passive => "(data \"passive\")\n".to_string(),
            };
        }
        wat += ")";
        specs.push((pages, segs, wat));
    }
    let expected = |pages: u64, segs: &[RandSeg], g: u32| {
        let mut mem = vec![0u8; (pages * 65536) as usize];
        for (i, s) in segs.iter().enumerate() {
            let (off, b) = match s {
                RandSeg::Const(o, b) => (*o, b),
                RandSeg::Global(b) => (g, b),
                RandSeg::Passive => continue,
            };
            let end = u64::from(off) + b.len() as u64;
            if end > mem.len() as u64 {
                return (mem, Some(i as u32));
            }
            mem[off as usize..end as usize].copy_from_slice(b);
        }
        (mem, None)
    };
    let engines = [
        ("on-demand", Engine::default()),
        (
            "pooled",
            pool_engine(|p| {
                p.total_memories(3).total_core_instances(6);
            }),
        ),
    ];
    for (name, engine) in &engines {
        let modules: Vec<Module> = specs
            .iter()
            .map(|(_, _, wat)| load_in(engine, wat, Bounds::Guard))
            .collect();
        let mut kept: Vec<Store<()>> = Vec::new();
        let (mut fine, mut failed) = (0, 0);
        for round in 0..120 {
            let k = rng.below_u64(modules.len() as u64) as usize;
            let (pages, segs, wat) = &specs[k];
            let g = rng.below_u64(pages * 65536 + 64) as u32;
            let (want, oob) = expected(*pages, segs, g);
            let what = format!("{name} round {round} module {k} g {g}");
            let mut s = Store::new(engine, ());
            let glob = Global::new(
                &mut s,
                GlobalType {
                    ty: ValType::I32,
                    mutable: false,
                },
                Val::I32(g as i32),
            )
            .unwrap();
            match (
                Instance::new(&mut s, &modules[k], &[Extern::Global(glob)]),
                oob,
            ) {
                (Ok(inst), None) => {
                    let mem = inst.get_memory(&mut s, "mem").unwrap();
                    assert_eq!(mem.size(&s), *pages, "{what}");
                    let d = mem.data(&s);
                    if let Some(i) = d.iter().zip(&want).position(|(x, y)| x != y) {
                        panic!(
                            "{what}: byte {i:#x} is {:#x}, want {:#x}\n{wat}",
                            d[i], want[i]
                        );
                    }
                    let grow = rng.below_u64(3);
                    mem.grow(&mut s, grow).unwrap();
                    let d = mem.data_mut(&mut s);
                    for _ in 0..50 {
                        let at = rng.below_u64(d.len() as u64) as usize;
                        d[at] = rng.next_u64() as u8;
                    }
                    if rng.below_u64(4) == 0 {
                        d.fill(0xfe);
                    }
                    fine += 1;
                }
                (
                    Err(Error::Instantiation(InstantiationError::DataSegmentOutOfBounds {
                        segment,
                        ..
                    })),
                    Some(i),
                ) => {
                    assert_eq!(segment, i, "{what}");
                    failed += 1;
                }
                (r, oob) => panic!("{what}: {:?}, expected oob {oob:?}", r.err()),
            }
            // Keep at most two stores alive, dropping a random one.
            kept.push(s);
            if kept.len() > 2 {
                let i = rng.below_u64(kept.len() as u64) as usize;
                kept.swap_remove(i);
            }
        }
        assert!(
            fine > 30 && failed > 5,
            "{name}: {fine} instances, {failed} failures"
        );
    }
}

/// Allows one instance per store and any growth.
struct OneInstance;

impl wasmc_loader::ResourceLimiter for OneInstance {
    fn memory_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> anyhow::Result<bool> {
        Ok(true)
    }
    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> anyhow::Result<bool> {
        Ok(true)
    }
    fn instances(&self) -> usize {
        1
    }
}

/// On demand too, an instantiation whose memory cannot be made (larger
/// than the engine's `max_memory_pages`) leaves no instance in the store:
/// a store allowed one instance still gets it afterwards.
#[test]
fn a_memory_that_cannot_be_made_leaves_no_instance_behind() {
    let mut c = Config::new();
    c.max_memory_pages(2);
    let engine = Engine::new(&c).unwrap();
    let big = load_in(
        &engine,
        r#"(module (table 1 funcref) (memory 3))"#,
        Bounds::Guard,
    );
    let ok = load_in(
        &engine,
        r#"(module (table 1 funcref) (memory 2))"#,
        Bounds::Guard,
    );
    let mut s = Store::new(&engine, OneInstance);
    s.limiter(|l| l);
    for _ in 0..3 {
        let e = Instance::new(&mut s, &big, &[]).unwrap_err().to_string();
        assert!(e.contains("exceeds the limit"), "{e}");
    }
    Instance::new(&mut s, &ok, &[]).unwrap_or_else(|e| panic!("after refusals: {e}"));
    let e = Instance::new(&mut s, &ok, &[]).unwrap_err().to_string();
    assert!(e.contains("instances"), "{e}");
}

/// A multi-memory module whose second memory is over `max_memory_size`:
/// its first memory's slot (warm, holding the image of an earlier
/// instance) goes back untouched, so that the one slot of the pool still
/// serves the module's first memory afterwards, with its image and nothing
/// else.
#[test]
fn a_refused_second_memory_gives_the_first_ones_slot_back() {
    let engine = pool_engine(|p| {
        p.total_memories(1).max_memory_size(4 * 65536);
    });
    let one = load_in(
        &engine,
        r#"(module (memory (export "m") 2) (data (i32.const 5) "warm"))"#,
        Bounds::Guard,
    );
    let two = load_in(
        &engine,
        r#"(module (memory (export "m") 2) (memory 5) (data (i32.const 5) "two"))"#,
        Bounds::Guard,
    );
    let mut want = vec![0u8; 2 * 65536];
    want[5..9].copy_from_slice(b"warm");
    let mut s = Store::new(&engine, ());
    for round in 0..4 {
        {
            let mut s = Store::new(&engine, ());
            let i = instantiate(&mut s, &one);
            assert_memory(&mut s, &i, "m", &want, &format!("round {round}"));
            let m = i.get_memory(&mut s, "m").unwrap();
            m.data_mut(&mut s).fill(0x11);
        }
        let e = Instance::new(&mut s, &two, &[]).unwrap_err().to_string();
        assert!(e.contains("max_memory_size"), "round {round}: {e}");
    }
}

/// A memory of no pages, grown and written, then its slot or reservation
/// reused: the next instance has no pages again, and the page it grows
/// reads zero; a zero-length segment at the end is in bounds, one past it
/// is not.
#[test]
fn an_empty_memory_grown_and_reused_starts_empty() {
    const M: &str = r#"(module
      (import "env" "g" (global i32))
      (memory (export "m") 0 2)
      (data (i32.const 0) "")
      (data (global.get 0) "")
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;
    for (name, engine) in engines() {
        let m = load_in(&engine, M, Bounds::Explicit);
        for round in 0..4 {
            let what = format!("{name} round {round}");
            let mut s = Store::new(&engine, ());
            let g = Global::new(
                &mut s,
                GlobalType {
                    ty: ValType::I32,
                    mutable: false,
                },
                Val::I32(round % 2),
            )
            .unwrap();
            let r = Instance::new(&mut s, &m, &[Extern::Global(g)]);
            if round % 2 == 1 {
                let e = r
                    .err()
                    .unwrap_or_else(|| panic!("{what}: offset 1 accepted"));
                assert!(
                    matches!(
                        e,
                        Error::Instantiation(InstantiationError::DataSegmentOutOfBounds {
                            segment: 1,
                            ..
                        })
                    ),
                    "{what}: {e}"
                );
                continue;
            }
            let i = r.unwrap();
            let mem = i.get_memory(&mut s, "m").unwrap();
            assert_eq!(mem.size(&s), 0, "{what}");
            assert_eq!(call_i32(&mut s, &i, "grow", &[Val::I32(2)]).unwrap(), 0);
            assert!(mem.data(&s).iter().all(|x| *x == 0), "{what}: grown pages");
            mem.data_mut(&mut s).fill(0x42);
        }
    }
}

/// Threads load, instantiate and drop their own modules over one pool of
/// few slots, so that dropped modules' slots are cleared while other
/// threads take and give back slots: every instance shows exactly its own
/// module's data.
#[test]
fn modules_dropped_while_other_threads_use_the_pool() {
    let engine = pool_engine(|p| {
        p.total_memories(4).total_core_instances(8);
    });
    let artifacts: Vec<Vec<u8>> = (0..3)
        .map(|t| {
            compile(
                &format!(
                    r#"(module (memory (export "m") 2) (data (i32.const 65000) "thread {t} data"))"#
                ),
                Bounds::Guard,
            )
        })
        .collect();
    std::thread::scope(|sc| {
        for (t, artifact) in artifacts.iter().enumerate() {
            let engine = &engine;
            sc.spawn(move || {
                let tag = format!("thread {t} data");
                let mut want = vec![0u8; 2 * 65536];
                want[65000..65000 + tag.len()].copy_from_slice(tag.as_bytes());
                for round in 0..30 {
                    let m = Module::from_bytes(engine, artifact).unwrap();
                    for _ in 0..2 {
                        let mut s = Store::new(engine, ());
                        // Four slots, three threads: never refused.
                        let i = Instance::new(&mut s, &m, &[])
                            .unwrap_or_else(|e| panic!("thread {t} round {round}: {e}"));
                        assert_memory(&mut s, &i, "m", &want, &format!("thread {t} round {round}"));
                        let mem = i.get_memory(&mut s, "m").unwrap();
                        mem.data_mut(&mut s).fill(t as u8 + 1);
                    }
                    drop(m);
                }
            });
        }
    });
}

/// A lazy 64-bit table: an index of 2^32 + k is out of bounds for
/// `call_indirect`, `table.get` and the host, never element k; its
/// untouched elements are the segment's.
#[test]
fn a_lazy_table64_does_not_wrap_indices() {
    const M: &str = r#"(module
      (type $r (func (result i32)))
      (table (export "t") i64 4 funcref)
      (func $a (result i32) i32.const 7)
      (elem (table 0) (i64.const 1) func $a)
      (func (export "call") (param i64) (result i32) (call_indirect (type $r) (local.get 0)))
      (func (export "is_null") (param i64) (result i32) (ref.is_null (table.get (local.get 0)))))"#;
    for (name, engine) in engines() {
        for b in BOTH {
            let what = format!("{name} {b:?}");
            let m = load_in(&engine, M, b);
            let mut s = Store::new(&engine, ());
            let i = instantiate(&mut s, &m);
            let wrap = Val::I64((1 << 32) + 1);
            let t = expect_trap(call(&mut s, &i, "call", std::slice::from_ref(&wrap)));
            assert!(
                matches!(
                    t.code,
                    TrapCode::UndefinedElement | TrapCode::TableOutOfBounds
                ),
                "{what}: {:?}",
                t.code
            );
            let t = expect_trap(call(&mut s, &i, "is_null", &[wrap]));
            assert_eq!(t.code, TrapCode::TableOutOfBounds, "{what}");
            assert_eq!(
                call_i32(&mut s, &i, "call", &[Val::I64(1)]).unwrap(),
                7,
                "{what}"
            );
            assert_eq!(
                call_i32(&mut s, &i, "is_null", &[Val::I64(2)]).unwrap(),
                1,
                "{what}"
            );
            let tab = i.get_table(&mut s, "t").unwrap();
            assert!(
                matches!(tab.get(&mut s, 1), Some(Val::FuncRef(Some(_)))),
                "{what}"
            );
        }
    }
}
