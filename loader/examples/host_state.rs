//! Host state in a `Store<T>`: host functions count calls and collect
//! output in the store's data, a resource limiter caps memory growth, the
//! module is resolved once (`InstancePre`) and instantiated in two stores,
//! and one store moves to another thread.
//!
//! `cargo run -p wasmc-loader --example host_state`

use wasmc_loader::{Caller, Engine, Linker, Module, ResourceLimiter, Store};

const WAT: &str = r#"
(module
  (import "host" "emit" (func $emit (param i32)))
  (memory 1)
  (func (export "count") (param $n i32)
    (local $i i32)
    (loop $l
      (call $emit (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
  (func (export "grow") (param i32) (result i32)
    (memory.grow (local.get 0))))
"#;

/// Refuses memories larger than `max_bytes`.
struct MemoryCap {
    max_bytes: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> anyhow::Result<bool> {
        Ok(desired <= self.max_bytes)
    }
    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> anyhow::Result<bool> {
        Ok(true)
    }
}

/// The store's data.
struct Host {
    name: &'static str,
    emitted: Vec<i32>,
    limiter: MemoryCap,
}

fn main() -> anyhow::Result<()> {
    let artifact = wasmc_compiler::compile(WAT.as_bytes(), &Default::default())?;
    let engine = Engine::default();
    let module = Module::from_bytes(&engine, &artifact)?;

    let mut linker = Linker::<Host>::new(&engine);
    linker.func_wrap("host", "emit", |mut caller: Caller<'_, Host>, x: i32| {
        caller.data_mut().emitted.push(x);
    })?;
    let pre = linker.instantiate_pre(&module)?;

    for (name, n) in [("first", 3), ("second", 5)] {
        let host = Host {
            name,
            emitted: Vec::new(),
            limiter: MemoryCap {
                max_bytes: 4 * 65536,
            },
        };
        let mut store = Store::new(&engine, host);
        store.limiter(|h| &mut h.limiter);
        let instance = pre.instantiate(&mut store)?;
        let count = instance.get_typed_func::<i32, ()>(&mut store, "count")?;
        let grow = instance.get_typed_func::<i32, i32>(&mut store, "grow")?;

        // The store (with its instance) moves to another thread and back.
        let mut store = std::thread::spawn(move || -> anyhow::Result<_> {
            count.call(&mut store, n)?;
            Ok(store)
        })
        .join()
        .expect("the worker thread panicked")?;

        let within = grow.call(&mut store, 2)?; // 1 -> 3 pages: allowed
        let beyond = grow.call(&mut store, 10)?; // 3 -> 13 pages: refused
        let host = store.into_data();
        println!(
            "{}: emitted {:?}; memory.grow 2 -> {within}, memory.grow 10 -> {beyond}",
            host.name, host.emitted
        );
    }
    Ok(())
}
