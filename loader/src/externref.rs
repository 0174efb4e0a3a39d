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
//! Collection (see `gc.rs`): when no Wasm frame of the store is on the
//! stack, nothing in the table is reachable from Wasm, so
//! [`VMExternRefActivationsTable::clear`] releases everything (the store does
//! this when its outermost activation returns). While Wasm frames are live,
//! the collector finds the exact set of references they hold through the
//! stack maps and [`VMExternRefActivationsTable::replace_with_roots`] keeps
//! only those.

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
    #[cfg_attr(not(test), allow(dead_code))] // used by the unit tests
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

/// Slots of the first chunk, allocated on the first insertion.
const INITIAL_CHUNK: usize = 512;

/// The store's over-approximation of the references live Wasm frames hold.
/// Compiled code bumps `next` towards `end` inline; see the module docs.
///
/// The chunk is allocated lazily: a store that never passes an externref to
/// Wasm has `next == end == null`, and the first inline insertion takes the
/// slow path, which allocates.
#[repr(C)]
pub(crate) struct VMExternRefActivationsTable {
    pub next: *mut *mut VMExternData,
    pub end: *mut *mut VMExternData,
    chunk: Box<[*mut VMExternData]>,
}

impl VMExternRefActivationsTable {
    pub fn new() -> VMExternRefActivationsTable {
        VMExternRefActivationsTable {
            next: std::ptr::null_mut(),
            end: std::ptr::null_mut(),
            chunk: Box::new([]),
        }
    }

    #[inline]
    fn used(&self) -> usize {
        if self.chunk.is_empty() {
            return 0;
        }
        // SAFETY: next always lies within [chunk start, chunk end].
        (unsafe { self.next.offset_from(self.chunk.as_ptr()) }) as usize
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.used()
    }

    /// Number of slots before the inline path has to take the slow path.
    pub fn capacity(&self) -> usize {
        self.chunk.len()
    }

    /// Inserts `r`, taking a new count on it. Never collects: host-side
    /// insertions (arguments, host results) happen while the references are
    /// on no Wasm stack yet, so a collection here could free them.
    ///
    /// # Safety
    /// `r` must be null or a live `VMExternData`.
    pub unsafe fn insert(&mut self, r: *mut VMExternData) {
        if r.is_null() {
            return;
        }
        // SAFETY: caller contract.
        unsafe { raw_clone(r) };
        // SAFETY: we now own one count of r.
        unsafe { self.insert_owned(r) };
    }

    /// Inserts `r`, handing the table a count the caller already owns.
    ///
    /// # Safety
    /// `r` must be a live `VMExternData` and the caller must own one of its
    /// counts, which the table takes over.
    pub unsafe fn insert_owned(&mut self, r: *mut VMExternData) {
        if self.next == self.end {
            self.grow(self.used() + 1);
        }
        // SAFETY: next < end after grow, so the slot is inside the chunk.
        unsafe {
            self.next.write(r);
            self.next = self.next.add(1);
        }
    }

    /// Makes room for at least `min` entries, keeping the current ones.
    fn grow(&mut self, min: usize) {
        let used = self.used();
        let len = (self.chunk.len() * 2).max(INITIAL_CHUNK).max(min);
        let mut new = vec![std::ptr::null_mut(); len].into_boxed_slice();
        new[..used].copy_from_slice(&self.chunk[..used]);
        self.chunk = new;
        // SAFETY: used <= old len < new len.
        unsafe {
            self.next = self.chunk.as_mut_ptr().add(used);
            self.end = self.chunk.as_mut_ptr().add(self.chunk.len());
        }
    }

    /// The result of a collection: `roots` (each live, found in Wasm frames)
    /// become the table's entries and every previous entry is released.
    ///
    /// Every root is counted *before* any old entry is released, so a
    /// reference that is both cannot reach zero in between. The chunk is
    /// grown so that at least half of it is free afterwards: otherwise a
    /// program holding many live references would collect on every insertion.
    ///
    /// # Safety
    /// Every non-null pointer in `roots` must be a live `VMExternData`.
    pub unsafe fn replace_with_roots(&mut self, roots: &[*mut VMExternData]) {
        for r in roots {
            // SAFETY: caller contract.
            unsafe { raw_clone(*r) };
        }
        self.clear();
        if self.chunk.len() < 2 * roots.len() || self.chunk.is_empty() {
            self.grow(2 * roots.len());
        }
        for r in roots.iter().filter(|r| !r.is_null()) {
            // SAFETY: the count taken above is handed to the table.
            unsafe { self.insert_owned(*r) };
        }
    }

    /// Releases every entry. Only sound when no Wasm frame of the store is on
    /// the stack (nothing else can then hold an entry's pointer uncounted),
    /// or after the live entries were counted again (`replace_with_roots`).
    #[inline]
    pub fn clear(&mut self) {
        // Every outermost call ends here: keep the empty case cheap.
        if self.used() != 0 {
            self.release_all();
        }
    }

    #[cold]
    fn release_all(&mut self) {
        let used = self.used();
        if let Some(start) = self.chunk.first_mut() {
            self.next = start;
        }
        for slot in &mut self.chunk[..used] {
            let r = std::mem::replace(slot, std::ptr::null_mut());
            // SAFETY: every entry holds one count taken at insertion.
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
