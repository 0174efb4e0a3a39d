//! The runtime side of `externref`: [`VMExternRef`], an owning, reference
//! counted pointer to a [`VMExternData`], and the raw count operations that
//! tables, globals, segments and the activations table use.
//!
//! An `externref` is a `*mut VMExternData`: an atomic reference count
//! followed by the boxed host value (layout in `vmcontext.rs`, offsets in
//! [`wasmc_format::VMOffsets`]). Inside Wasm, references are plain pointers
//! with no count traffic (see `activations.rs` for how they stay alive).
//! Outside Wasm, every holder owns one count:
//!
//! - a [`VMExternRef`] (and so the public `ExternRef` that wraps it):
//!   `Clone` increments, `Drop` decrements and frees at zero;
//! - an externref table element, global, passive element segment or
//!   activations-table entry, through [`raw_clone`] / [`raw_release`].

use crate::vm::vmcontext::VMExternData;
use std::any::Any;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

/// An owned count on a live [`VMExternData`].
pub(crate) struct VMExternRef {
    ptr: NonNull<VMExternData>,
}

// SAFETY: the value inside is `Send + Sync` (`VMExternData::value`) and the
// count is atomic, so the handle can move to and be shared with any thread.
unsafe impl Send for VMExternRef {}
// SAFETY: shared access reads the value (`Sync`) and changes the count only
// through atomic operations.
unsafe impl Sync for VMExternRef {}

impl VMExternRef {
    /// Wraps `value` with a reference count of one.
    pub(crate) fn new<T: Any + Send + Sync>(value: T) -> VMExternRef {
        let data = Box::new(VMExternData {
            ref_count: AtomicUsize::new(1),
            value: Box::new(value),
        });
        VMExternRef {
            ptr: NonNull::from(Box::leak(data)),
        }
    }

    fn data(&self) -> &VMExternData {
        // SAFETY: this handle owns a count, so the allocation is alive for
        // at least as long as `&self`.
        unsafe { self.ptr.as_ref() }
    }

    /// The host value.
    pub(crate) fn value(&self) -> &(dyn Any + Send + Sync) {
        &*self.data().value
    }

    /// True if both handles point to the same value.
    pub(crate) fn ptr_eq(a: &VMExternRef, b: &VMExternRef) -> bool {
        a.ptr == b.ptr
    }

    /// The current reference count.
    pub(crate) fn strong_count(&self) -> usize {
        self.data().ref_count.load(Ordering::SeqCst)
    }

    /// The raw pointer, without changing the count.
    pub(crate) fn as_raw(&self) -> *mut VMExternData {
        self.ptr.as_ptr()
    }

    /// Gives up this handle's count and returns the raw pointer.
    pub(crate) fn into_raw(self) -> *mut VMExternData {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Takes over one count of `ptr` (null gives `None`).
    ///
    /// # Safety
    /// `ptr` must be null or a live `VMExternData` whose count includes one
    /// that the caller hands over.
    pub(crate) unsafe fn from_raw(ptr: *mut VMExternData) -> Option<VMExternRef> {
        NonNull::new(ptr).map(|ptr| VMExternRef { ptr })
    }

    /// A new handle to `ptr` (increments; null gives `None`).
    ///
    /// # Safety
    /// `ptr` must be null or a live `VMExternData`.
    pub(crate) unsafe fn clone_from_raw(ptr: *mut VMExternData) -> Option<VMExternRef> {
        let ptr = NonNull::new(ptr)?;
        // SAFETY: the caller promises the data is alive; a shared reference
        // to its atomic count is all we take.
        unsafe { ptr.as_ref() }
            .ref_count
            .fetch_add(1, Ordering::Relaxed);
        Some(VMExternRef { ptr })
    }
}

impl Clone for VMExternRef {
    fn clone(&self) -> VMExternRef {
        self.data().ref_count.fetch_add(1, Ordering::Relaxed);
        VMExternRef { ptr: self.ptr }
    }
}

impl Drop for VMExternRef {
    fn drop(&mut self) {
        if self.data().ref_count.fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            // SAFETY: the count reached zero, so this was the last holder;
            // the allocation came from `Box::leak` in `new`.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
        }
    }
}

/// Increments the count of a non-null raw reference.
///
/// # Safety
/// `ptr` must be null or point to a live `VMExternData`.
pub(crate) unsafe fn raw_clone(ptr: *mut VMExternData) {
    // SAFETY: the caller promises `ptr` is null or live, which is
    // `clone_from_raw`'s whole contract; the handle is forgotten so the new
    // count stays with the caller.
    if let Some(r) = unsafe { VMExternRef::clone_from_raw(ptr) } {
        std::mem::forget(r);
    }
}

/// Releases one count of a non-null raw reference.
///
/// # Safety
/// `ptr` must be null or a live `VMExternData` and the caller must own one of
/// its counts.
pub(crate) unsafe fn raw_release(ptr: *mut VMExternData) {
    // SAFETY: the caller owns one count of the live (or null) `ptr`, which
    // `from_raw` takes over; dropping the handle releases it.
    drop(unsafe { VMExternRef::from_raw(ptr) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::vm::gc::test_counted::Counted;

    #[test]
    fn refcount_clone_drop() {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = VMExternRef::new(Counted(drops.clone()));
        assert_eq!(a.strong_count(), 1);
        let b = a.clone();
        assert_eq!(a.strong_count(), 2);
        assert!(VMExternRef::ptr_eq(&a, &b));
        assert!(a.value().downcast_ref::<Counted>().is_some());
        assert!(a.value().downcast_ref::<u32>().is_none());
        drop(a);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn raw_round_trip() {
        let a = VMExternRef::new(5u32);
        let raw = a.clone().into_raw();
        assert_eq!(a.strong_count(), 2);
        // SAFETY: `raw` holds the count that `into_raw` gave up.
        let b = unsafe { VMExternRef::from_raw(raw) }.unwrap();
        assert_eq!(b.value().downcast_ref::<u32>(), Some(&5));
        drop(b);
        assert_eq!(a.strong_count(), 1);
    }
}
