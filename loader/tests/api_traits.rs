//! The traits the public types promise, checked at compile time: every one
//! is `Debug` (so `unwrap`, `unwrap_err` and `{:?}` work on results and
//! values holding them), errors are `std::error::Error + Send + Sync +
//! 'static` (so `?` turns them into `anyhow::Error`), and the thread-safety
//! the crate documents: engines, modules, linkers, pre-instances and
//! handles are `Send + Sync`, a store is `Send` when its data is.

use wasmc_loader::*;

fn debug<T: std::fmt::Debug>() {}
fn error<T: std::error::Error + Send + Sync + 'static>() {}
fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

#[test]
fn every_public_type_is_debug() {
    debug::<Config>();
    debug::<Engine>();
    debug::<InstanceAllocationStrategy>();
    debug::<PoolingAllocationConfig>();
    debug::<Error>();
    debug::<InstantiationError>();
    debug::<LinkError>();
    debug::<LoadError>();
    debug::<ExternRef>();
    debug::<Global>();
    debug::<Instance>();
    debug::<InstancePre<()>>();
    debug::<Linker<()>>();
    debug::<Memory>();
    debug::<Module>();
    debug::<Store<()>>();
    debug::<StoreOpaque>();
    debug::<StoreContext<'static, ()>>();
    debug::<StoreContextMut<'static, ()>>();
    debug::<Table>();
    debug::<FrameInfo>();
    debug::<Trap>();
    debug::<TrapCode>();
    debug::<Func>();
    debug::<TypedFunc<(i32, i64), f32>>();
    debug::<Caller<'static, ()>>();
    debug::<Val>();
    debug::<Extern>();
    debug::<FuncType>();
    debug::<ValType>();
    debug::<GlobalType>();
    debug::<MemoryType>();
    debug::<TableType>();
    debug::<RefType>();
    debug::<ImportType>();
    debug::<ExportType>();
    debug::<ExternType>();
    debug::<TrustPolicy>();
    debug::<Verified>();
    debug::<GcStats>();
}

#[test]
fn errors_convert_to_anyhow() {
    error::<Error>();
    error::<LoadError>();
    error::<LinkError>();
    error::<InstantiationError>();
    error::<Trap>();
}

#[test]
fn thread_safety_as_documented() {
    send_sync::<Engine>();
    send_sync::<Module>();
    send_sync::<Linker<()>>();
    send_sync::<InstancePre<()>>();
    send_sync::<Func>();
    send_sync::<TypedFunc<i32, i32>>();
    send_sync::<Instance>();
    send_sync::<Memory>();
    send_sync::<Table>();
    send_sync::<Global>();
    send_sync::<ExternRef>();
    send_sync::<Val>();
    send::<Store<()>>();
    send::<Store<String>>();
}
