//! `Memory::data_and_store_mut`: a host function holds the guest's bytes
//! and the store's data at once, from a `Caller` (also across re-entry
//! into Wasm, which may grow the memory between two split borrows), from a
//! `Store` and from a `StoreContextMut`; a memory of another store is
//! refused. What the borrow checker must refuse (growing the memory or
//! reaching the data again while the bytes are held, keeping them past the
//! store) is in the method's `compile_fail` doctests.

use super::*;
use wasmc_loader::{AsContextMut, Caller};

/// The store data of these tests.
#[derive(Default)]
struct Seen {
    /// The memory's length in bytes each time a host function split it.
    lens: Vec<usize>,
    /// The bytes `take` copied out of the guest.
    taken: Vec<u8>,
    calls: i32,
}

const GUEST: &str = r#"
(module
  (import "host" "take" (func $take (param i32 i32) (result i32)))
  (import "host" "reenter" (func $reenter))
  (memory (export "memory") 1)
  (data (i32.const 100) "abcdef")
  ;; Grows the memory by a page, then has the host copy the six bytes at
  ;; 100 into its data and write them reversed at the start of the new page.
  (func (export "run") (result i32)
    (drop (memory.grow (i32.const 1)))
    (call $take (i32.const 100) (i32.const 6)))
  (func (export "grow") (drop (memory.grow (i32.const 1))))
  (func (export "reenter") (call $reenter))
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))
"#;

fn memory_of(caller: &mut Caller<'_, Seen>) -> anyhow::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => anyhow::bail!("no exported memory"),
    }
}

fn linker() -> Linker<Seen> {
    let mut linker = Linker::<Seen>::new(engine());
    linker
        .func_wrap(
            "host",
            "take",
            |mut caller: Caller<'_, Seen>, ptr: i32, len: i32| -> anyhow::Result<i32> {
                let memory = memory_of(&mut caller)?;
                let (bytes, seen) = memory.data_and_store_mut(&mut caller);
                seen.lens.push(bytes.len());
                let (ptr, len) = (ptr as usize, len as usize);
                seen.taken = bytes[ptr..ptr + len].to_vec();
                for (i, b) in seen.taken.iter().rev().enumerate() {
                    bytes[65536 + i] = *b;
                }
                seen.calls += 1;
                Ok(seen.calls)
            },
        )
        .unwrap();
    // Splits the borrow, lets it end, calls back into Wasm (which grows the
    // memory), and splits it again: the second view has the new length and
    // writes into the new page.
    linker
        .func_wrap(
            "host",
            "reenter",
            |mut caller: Caller<'_, Seen>| -> anyhow::Result<()> {
                let memory = memory_of(&mut caller)?;
                let (bytes, seen) = memory.data_and_store_mut(&mut caller);
                seen.lens.push(bytes.len());
                let Some(Extern::Func(grow)) = caller.get_export("grow") else {
                    anyhow::bail!("no `grow` export");
                };
                grow.call(&mut caller, &[], &mut [])?;
                let (bytes, seen) = memory.data_and_store_mut(&mut caller);
                seen.lens.push(bytes.len());
                let last = bytes.len() - 1;
                bytes[last] = 0x5a;
                seen.calls += 1;
                Ok(())
            },
        )
        .unwrap();
    linker
}

#[test]
fn host_function_holds_guest_bytes_and_store_data_at_once() {
    for b in BOTH {
        let module = load(GUEST, b);
        let mut store = Store::new(engine(), Seen::default());
        let inst = linker().instantiate(&mut store, &module).unwrap();
        let run = inst.get_typed_func::<(), i32>(&mut store, "run").unwrap();
        assert_eq!(run.call(&mut store, ()).unwrap(), 1, "{b:?}");
        // The host saw the grown memory and copied the guest's bytes...
        assert_eq!(store.data().lens, [2 * 65536], "{b:?}");
        assert_eq!(store.data().taken, b"abcdef", "{b:?}");
        // ...and wrote through the same borrow: Wasm reads what it wrote.
        let load8 = inst.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
        let back: Vec<u8> = (0..6)
            .map(|i| load8.call(&mut store, 65536 + i).unwrap() as u8)
            .collect();
        assert_eq!(back, b"fedcba", "{b:?}");
    }
}

#[test]
fn split_borrows_before_and_after_reentry_see_the_growth() {
    for b in BOTH {
        let module = load(GUEST, b);
        let mut store = Store::new(engine(), Seen::default());
        let inst = linker().instantiate(&mut store, &module).unwrap();
        let reenter = inst
            .get_typed_func::<(), ()>(&mut store, "reenter")
            .unwrap();
        reenter.call(&mut store, ()).unwrap();
        assert_eq!(store.data().lens, [65536, 2 * 65536], "{b:?}");
        assert_eq!(store.data().calls, 1);
        let load8 = inst.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
        assert_eq!(
            load8.call(&mut store, 2 * 65536 - 1).unwrap(),
            0x5a,
            "{b:?}"
        );
    }
}

#[test]
fn split_borrow_from_a_store_and_a_store_context() {
    let module = load(GUEST, Bounds::Guard);
    let mut store = Store::new(engine(), Seen::default());
    let inst = linker().instantiate(&mut store, &module).unwrap();
    let memory = inst.get_memory(&mut store, "memory").unwrap();
    {
        let (bytes, seen) = memory.data_and_store_mut(&mut store);
        seen.taken = bytes[100..106].to_vec();
        bytes[7] = 42;
    }
    assert_eq!(store.data().taken, b"abcdef");
    let mut cx = store.as_context_mut();
    let (bytes, seen) = memory.data_and_store_mut(&mut cx);
    assert_eq!(bytes.len(), 65536);
    seen.calls = i32::from(bytes[7]);
    assert_eq!(store.data().calls, 42);
    let load8 = inst.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
    assert_eq!(load8.call(&mut store, 7).unwrap(), 42);
}

#[test]
fn split_borrow_refuses_a_memory_of_another_store() {
    let module = load(GUEST, Bounds::Guard);
    let mut a = Store::new(engine(), Seen::default());
    let inst = linker().instantiate(&mut a, &module).unwrap();
    let memory = inst.get_memory(&mut a, "memory").unwrap();
    let mut b = Store::new(engine(), Seen::default());
    let panic = catch_unwind(AssertUnwindSafe(|| {
        let (bytes, _) = memory.data_and_store_mut(&mut b);
        bytes.len()
    }))
    .unwrap_err();
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("does not belong"), "{msg}");
}
