//! [`ExternRef`]: the host's handle to a reference-counted host value that
//! Wasm can hold as `externref`. The counting, and how references stay alive
//! while Wasm holds them, are the runtime's (`vm::gc`).

use crate::vm::gc::externref::VMExternRef;
use std::any::Any;
use std::fmt;

/// A reference-counted host value that Wasm can hold as `externref`.
/// `Clone` adds a count, `Drop` releases one; the value is dropped with the
/// last count (handles, tables, globals and running Wasm all hold counts).
#[derive(Clone)]
pub struct ExternRef(pub(crate) VMExternRef);

impl ExternRef {
    /// Wraps `value` with a reference count of one.
    pub fn new<T: Any + Send + Sync>(value: T) -> ExternRef {
        ExternRef(VMExternRef::new(value))
    }

    /// The host value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.value().downcast_ref()
    }

    /// The host value as `dyn Any`.
    pub fn data_any(&self) -> &(dyn Any + Send + Sync) {
        self.0.value()
    }

    /// True if both handles refer to the same value.
    pub fn ptr_eq(a: &ExternRef, b: &ExternRef) -> bool {
        VMExternRef::ptr_eq(&a.0, &b.0)
    }

    /// The current reference count (handles, tables, globals and activations
    /// table entries).
    pub fn strong_count(&self) -> usize {
        self.0.strong_count()
    }
}

impl fmt::Debug for ExternRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternRef({:p})", self.0.as_raw())
    }
}
