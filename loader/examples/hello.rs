//! The smallest embedding: compile a module (the build step; a service would
//! load an artifact written by `wasmc compile` with `Module::from_file`),
//! load it, link a host function and call an export.
//!
//! `cargo run -p wasmc-loader --example hello`

use wasmc_loader::{Caller, Engine, Linker, Module, Store};

const WAT: &str = r#"
(module
  (import "host" "print" (func $print (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Hello, world!")
  (func (export "hello")
    i32.const 16   ;; address
    i32.const 13   ;; length
    call $print))
"#;

fn main() -> anyhow::Result<()> {
    let artifact = wasmc_compiler::compile(WAT.as_bytes(), &Default::default())?;

    let engine = Engine::default();
    let module = Module::from_bytes(&engine, &artifact)?;
    let mut linker = Linker::<()>::new(&engine);
    linker.func_wrap(
        "host",
        "print",
        |mut caller: Caller<'_, ()>, ptr: i32, len: i32| -> anyhow::Result<()> {
            let memory = caller
                .get_export("memory")
                .and_then(|e| e.into_memory())
                .ok_or_else(|| anyhow::anyhow!("the caller exports no memory"))?;
            let mut buf = vec![0; len as usize];
            memory.read(&caller, ptr as usize, &mut buf)?;
            println!("{}", String::from_utf8(buf)?);
            Ok(())
        },
    )?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module)?;
    let hello = instance.get_typed_func::<(), ()>(&mut store, "hello")?;
    hello.call(&mut store, ())?;
    Ok(())
}
