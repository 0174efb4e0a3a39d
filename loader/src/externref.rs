//! `externref`: host values behind a reference count, and the store's
//! activations table (deferred reference counting).
//!
//! An `externref` is a `*mut VMExternData`: an atomic reference count
//! followed by the boxed host value. [`ExternRef`] is the host's handle:
//! `Clone` increments, `Drop` decrements and frees at zero.
//!
//! Inside Wasm, references are plain pointers with no count traffic. Instead,
//! every reference that enters Wasm (an argument, a host function's result,
//! `table.get`/`global.get`) is *inserted* into the store's
//! [`VMExternRefActivationsTable`]: a bump chunk of pointers, each holding one
//! count. The table over-approximates what live Wasm frames hold.
//!
//! ```text
//! VMExternRefActivationsTable
//! +------+------+----------------------------+
//! | next | end  | chunk: [*mut VMExternData] |  compiled code: if next != end
//! +------+------+----------------------------+  { *next = r; next += 1; r.count += 1 }
//! ```
//!
//! Collection: when no Wasm frame of the store is on the stack, nothing in
//! the table is reachable from Wasm, so [`VMExternRefActivationsTable::clear`]
//! releases everything (the store does this when its outermost activation
//! returns and in `Store::gc`). While Wasm frames are live the table only
//! grows; a stack-map collector (walk frames from `last_wasm_exit_fp/pc` to
//! `last_wasm_entry_fp`, read the slots listed by `.wasmc.stackmaps`, keep
//! only those) plugs in at [`VMExternRefActivationsTable::insert_slow`].

use crate::vmcontext::VMExternData;
use std::any::Any;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

/// A reference-counted host value that Wasm can hold as `externref`.
pub struct ExternRef {
    ptr: NonNull<VMExternData>,
}

// SAFETY: the value inside is Send + Sync and the count is atomic.
unsafe impl Send for ExternRef {}
// SAFETY: as above; shared access only reads the value.
unsafe impl Sync for ExternRef {}

impl ExternRef {
    /// Wraps `value` with a reference count of one.
    pub fn new<T: Any + Send + Sync>(value: T) -> ExternRef {
        let data = Box::new(VMExternData {
            ref_count: AtomicUsize::new(1),
            value: Box::new(value),
        });
        ExternRef {
            ptr: NonNull::from(Box::leak(data)),
        }
    }

    fn data(&self) -> &VMExternData {
        // SAFETY: we hold a count, so the data is alive.
        unsafe { self.ptr.as_ref() }
    }

    /// The host value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.data().value.downcast_ref()
    }

    /// The host value as `dyn Any`.
    pub fn data_any(&self) -> &(dyn Any + Send + Sync) {
        &*self.data().value
    }

    /// True if both handles refer to the same value.
    pub fn ptr_eq(a: &ExternRef, b: &ExternRef) -> bool {
        a.ptr == b.ptr
    }

    /// The current reference count (handles, tables, globals and activations
    /// table entries).
    pub fn strong_count(&self) -> usize {
        self.data().ref_count.load(Ordering::SeqCst)
    }

    /// The raw pointer, without changing the count.
    pub(crate) fn as_raw(&self) -> *mut VMExternData {
        self.ptr.as_ptr()
    }

    /// Gives up this handle's count and returns the raw pointer.
    #[cfg_attr(not(test), allow(dead_code))] // for the stack-map collector
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
    pub(crate) unsafe fn from_raw(ptr: *mut VMExternData) -> Option<ExternRef> {
        NonNull::new(ptr).map(|ptr| ExternRef { ptr })
    }

    /// A new handle to `ptr` (increments; null gives `None`).
    ///
    /// # Safety
    /// `ptr` must be null or a live `VMExternData`.
    pub(crate) unsafe fn clone_from_raw(ptr: *mut VMExternData) -> Option<ExternRef> {
        let ptr = NonNull::new(ptr)?;
        // SAFETY: the caller promises the data is alive.
        unsafe { ptr.as_ref() }
            .ref_count
            .fetch_add(1, Ordering::Relaxed);
        Some(ExternRef { ptr })
    }
}

impl Clone for ExternRef {
    fn clone(&self) -> ExternRef {
        self.data().ref_count.fetch_add(1, Ordering::Relaxed);
        ExternRef { ptr: self.ptr }
    }
}

impl Drop for ExternRef {
    fn drop(&mut self) {
        if self.data().ref_count.fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            // SAFETY: the count reached zero, so this was the last reference;
            // the allocation came from Box::leak in `new`.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
        }
    }
}

impl fmt::Debug for ExternRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternRef({:p})", self.ptr)
    }
}

/// Increments the count of a non-null raw reference.
///
/// # Safety
/// `ptr` must be null or point to a live `VMExternData`.
pub(crate) unsafe fn raw_clone(ptr: *mut VMExternData) {
    // SAFETY: forwarded contract; the handle is forgotten so the count stays.
    if let Some(r) = unsafe { ExternRef::clone_from_raw(ptr) } {
        std::mem::forget(r);
    }
}

/// Releases one count of a non-null raw reference.
///
/// # Safety
/// `ptr` must be null or a live `VMExternData` and the caller must own one of
/// its counts.
pub(crate) unsafe fn raw_release(ptr: *mut VMExternData) {
    // SAFETY: forwarded contract.
    drop(unsafe { ExternRef::from_raw(ptr) });
}

const INITIAL_CHUNK: usize = 512;

/// The store's over-approximation of the references live Wasm frames hold.
/// Compiled code bumps `next` towards `end` inline; see the module docs.
#[repr(C)]
pub(crate) struct VMExternRefActivationsTable {
    pub next: *mut *mut VMExternData,
    pub end: *mut *mut VMExternData,
    chunk: Box<[*mut VMExternData]>,
}

impl VMExternRefActivationsTable {
    pub fn new() -> VMExternRefActivationsTable {
        let mut chunk: Box<[*mut VMExternData]> =
            vec![std::ptr::null_mut(); INITIAL_CHUNK].into_boxed_slice();
        let next = chunk.as_mut_ptr();
        // SAFETY: one past the end of the chunk.
        let end = unsafe { next.add(chunk.len()) };
        VMExternRefActivationsTable { next, end, chunk }
    }

    fn used(&self) -> usize {
        // SAFETY: next always lies within [chunk start, chunk end].
        (unsafe { self.next.offset_from(self.chunk.as_ptr()) }) as usize
    }

    /// Number of entries.
    #[cfg_attr(not(test), allow(dead_code))] // for the stack-map collector
    pub fn len(&self) -> usize {
        self.used()
    }

    /// Inserts `r`, taking a new count on it.
    ///
    /// # Safety
    /// `r` must be null or a live `VMExternData`.
    pub unsafe fn insert(&mut self, r: *mut VMExternData) {
        if r.is_null() {
            return;
        }
        if self.next == self.end {
            self.grow();
        }
        // SAFETY: caller contract.
        unsafe { raw_clone(r) };
        // SAFETY: next < end after grow, so the slot is inside the chunk.
        unsafe {
            self.next.write(r);
            self.next = self.next.add(1);
        }
    }

    /// The slow path of the inline insertion (the chunk was full). A stack-map
    /// collector would run here; for now the chunk grows.
    ///
    /// # Safety
    /// As for [`Self::insert`].
    pub unsafe fn insert_slow(&mut self, r: *mut VMExternData) {
        // SAFETY: forwarded contract.
        unsafe { self.insert(r) }
    }

    fn grow(&mut self) {
        let used = self.used();
        let mut new = vec![std::ptr::null_mut(); (self.chunk.len() * 2).max(INITIAL_CHUNK)]
            .into_boxed_slice();
        new[..used].copy_from_slice(&self.chunk[..used]);
        self.chunk = new;
        // SAFETY: used <= old len < new len.
        unsafe {
            self.next = self.chunk.as_mut_ptr().add(used);
            self.end = self.chunk.as_mut_ptr().add(self.chunk.len());
        }
    }

    /// Releases every entry. Only sound when no Wasm frame of the store is on
    /// the stack (nothing else can then hold an entry's pointer uncounted).
    pub fn clear(&mut self) {
        let used = self.used();
        let start = self.chunk.as_mut_ptr();
        self.next = start;
        for slot in &mut self.chunk[..used] {
            let r = std::mem::replace(slot, std::ptr::null_mut());
            // SAFETY: every entry holds one count taken in `insert`.
            unsafe { raw_release(r) };
        }
    }
}

impl Drop for VMExternRefActivationsTable {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn refcount_clone_drop() {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = ExternRef::new(Counted(drops.clone()));
        assert_eq!(a.strong_count(), 1);
        let b = a.clone();
        assert_eq!(a.strong_count(), 2);
        assert!(ExternRef::ptr_eq(&a, &b));
        assert!(a.downcast_ref::<Counted>().is_some());
        assert!(a.downcast_ref::<u32>().is_none());
        drop(a);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn raw_round_trip() {
        let a = ExternRef::new(5u32);
        let raw = a.clone().into_raw();
        assert_eq!(a.strong_count(), 2);
        // SAFETY: raw holds the count given up by into_raw.
        let b = unsafe { ExternRef::from_raw(raw) }.unwrap();
        assert_eq!(*b.downcast_ref::<u32>().unwrap(), 5);
        drop(b);
        assert_eq!(a.strong_count(), 1);
    }

    #[test]
    fn activations_table_holds_and_releases() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut t = VMExternRefActivationsTable::new();
        let refs: Vec<_> = (0..2000)
            .map(|_| ExternRef::new(Counted(drops.clone())))
            .collect();
        for r in &refs {
            // SAFETY: r is alive.
            unsafe { t.insert(r.as_raw()) };
            // SAFETY: null is allowed and ignored.
            unsafe { t.insert(std::ptr::null_mut()) };
        }
        assert_eq!(t.len(), 2000);
        assert_eq!(refs[0].strong_count(), 2);
        drop(refs);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        t.clear();
        assert_eq!(drops.load(Ordering::SeqCst), 2000);
        assert_eq!(t.len(), 0);
        drop(t);
        assert_eq!(drops.load(Ordering::SeqCst), 2000);
    }
}
