//! The runtime underneath the public API: everything compiled code touches,
//! and all of the loader's unsafe code but the few places `lib.rs` lists.
//!
//! Nothing here imports the API layer (`crate::func`, `crate::store`, ...):
//! where the runtime must call back into it (host functions), it does so
//! through the [`func::HostCall`] trait, and the API layer's data it keeps
//! for host-side use is opaque (`dyn Any`). Each public handle calls into
//! this layer through a function whose contract is written down; the safe
//! ones check what they rely on, the `unsafe fn`s say what their caller must.
//!
//! | module | owns |
//! |---|---|
//! | `vmcontext` | the `#[repr(C)]` structs compiled code reads, checked against `VMOffsets` |
//! | `store` | [`store::StoreOpaque`]: the store's runtime state, its table/global operations, the split borrow of a memory's bytes and the host data |
//! | `instance` | instance state and instantiation (VMContext setup, segments) |
//! | `func` | function records, entering Wasm, the host shim |
//! | `values` | values crossing the API boundary and typed access to value slots |
//! | `memory`, `table`, `global` | the data behind the public handles |
//! | `pool` | the pooling allocator: memory and table slots, instance count |
//! | `code` | code memory, the registry of loaded `.text` ranges, PC lookups |
//! | `traphandlers` | signal handlers, activations, `sigsetjmp`/`siglongjmp` (`helpers.c`) |
//! | `backtrace` | the one frame-pointer walker (backtraces and GC roots) |
//! | `libcalls` | the builtins compiled code calls |
//! | `gc` | `externref` counts, the activations table, the collector |
//! | `types` | canonical function type ids, import matching |
//! | `sys` | the OS layer (virtual memory) |

pub(crate) mod backtrace;
pub(crate) mod code;
pub(crate) mod func;
pub(crate) mod gc;
pub(crate) mod global;
pub(crate) mod instance;
pub(crate) mod libcalls;
pub(crate) mod memory;
pub(crate) mod pool;
pub(crate) mod store;
pub(crate) mod sys;
pub(crate) mod table;
pub(crate) mod traphandlers;
pub(crate) mod types;
pub(crate) mod values;
pub(crate) mod vmcontext;
