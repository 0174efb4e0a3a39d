//! Stack overflow on threads whose native stack is smaller than the store's
//! Wasm stack budget: the prologue's limit check must fire before the thread's
//! guard page is reached, so the host sees a trap instead of a crash.

use super::engine;
use wasmc_compiler::{compile, CompileOptions};
use wasmc_loader::{Linker, Module, Store, TrapCode};

const RECURSE: &str = r#"
(module
  (func $r (export "r") (param i64) (result i64)
    (local i64 i64 i64 i64)
    (i64.add (call $r (i64.add (local.get 0) (i64.const 1))) (local.get 1))))
"#;

#[test]
fn infinite_recursion_on_small_thread_stacks_traps() {
    let module = Module::from_bytes(
        engine(),
        &compile(RECURSE.as_bytes(), &CompileOptions::default()).unwrap(),
    )
    .unwrap();
    for stack in [160 * 1024, 256 * 1024, 1024 * 1024] {
        let module = module.clone();
        let code = std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || {
                let mut store = Store::new(engine(), ());
                // A budget larger than the whole thread stack.
                store.set_max_wasm_stack(8 << 20);
                let i = Linker::new(engine())
                    .instantiate(&mut store, &module)
                    .unwrap();
                let f = i.get_typed_func::<i64, i64>(&mut store, "r").unwrap();
                let mut codes = Vec::new();
                for _ in 0..3 {
                    let e = f.call(&mut store, 0).unwrap_err();
                    codes.push(e.as_trap().map(|t| t.code));
                }
                codes
            })
            .unwrap()
            .join()
            .expect("the thread must not crash");
        assert_eq!(
            code,
            [Some(TrapCode::StackOverflow); 3],
            "thread stack {stack}"
        );
    }
}
