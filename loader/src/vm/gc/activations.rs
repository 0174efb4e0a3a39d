//! The store's `VMExternRefActivationsTable`: deferred reference counting.
//!
//! Inside Wasm, references are plain pointers with no count traffic.
//! Instead, every reference that enters Wasm (an argument, a host function's
//! result, `table.get`/`global.get`) is *inserted* into the store's table: a
//! bump chunk of pointers, each holding one count. The table
//! over-approximates what live Wasm frames hold.
//!
//! ```text
//! VMExternRefActivationsTable
//! +------+------+----------------------------+
//! | next | end  | chunk: [*mut VMExternData] |  compiled code: if next != end
//! +------+------+----------------------------+  { *next = r; next += 1; r.count += 1 }
//! ```
//!
//! `next` and `end` are at the offsets `VMOffsets::activations_table_next`
//! / `_end` (checked in `vmcontext.rs`). When no Wasm frame of the store is
//! on the stack, nothing in the table is reachable from Wasm, so
//! [`VMExternRefActivationsTable::clear`] releases everything (the store does
//! this when its outermost activation returns). While Wasm frames are live,
//! the collector (`gc/mod.rs`) finds the exact set of references they hold
//! through the stack maps and [`VMExternRefActivationsTable::replace_with_roots`]
//! keeps only those.

use crate::vm::gc::externref::{raw_clone, raw_release, VMExternRef};
use crate::vm::vmcontext::VMExternData;

/// Slots of the first chunk, allocated on the first insertion.
const INITIAL_CHUNK: usize = 512;

/// The store's over-approximation of the references live Wasm frames hold.
/// Compiled code bumps `next` towards `end` inline; see the module docs.
///
/// The chunk is allocated lazily: a store that never passes an externref to
/// Wasm has `next == end == null`, and the first inline insertion takes the
/// slow path, which allocates.
///
/// Invariant: `next` and `end` are null (empty chunk) or lie inside
/// `[chunk start, chunk end]`, and `chunk[..used]` each hold one count.
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
        // SAFETY: by the type's invariant `next` lies within the chunk (or at
        // its end), so both pointers are in one allocation.
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

    /// Inserts the reference `r` owns, handing its count to the table. Never
    /// collects: host-side insertions (arguments, host results) happen while
    /// the references are on no Wasm stack yet, so a collection here could
    /// free them.
    pub fn insert_handle(&mut self, r: VMExternRef) {
        let p = r.into_raw();
        // SAFETY: `into_raw` gave up the handle's count on the live `p`,
        // which the table takes over.
        unsafe { self.insert_owned(p) };
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
        // SAFETY: after the check and `grow`, `next < end`, so the slot
        // `next` points to is inside the chunk and `next + 1 <= end`.
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
        // SAFETY: `used <= len` and `len` is the new chunk's length, so both
        // results point inside the chunk or one past its end.
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
            // SAFETY: the caller promises each root is null or live.
            unsafe { raw_clone(*r) };
        }
        // SAFETY: every reference live frames hold is a root, which was
        // counted again just above, so no entry's release can free a
        // reference a frame still uses.
        unsafe { self.clear() };
        if self.chunk.len() < 2 * roots.len() || self.chunk.is_empty() {
            self.grow(2 * roots.len());
        }
        for r in roots.iter().filter(|r| !r.is_null()) {
            // SAFETY: `r` is live and the count taken in the first loop is
            // handed to the table.
            unsafe { self.insert_owned(*r) };
        }
    }

    /// Releases every entry.
    ///
    /// # Safety
    /// No Wasm frame of the store may hold an entry's reference uncounted:
    /// either no Wasm frame of the store is on the stack, or every
    /// reference live frames hold was counted again (`replace_with_roots`).
    #[inline]
    pub unsafe fn clear(&mut self) {
        // Every outermost call ends here: keep the empty case cheap.
        if self.used() != 0 {
            // SAFETY: this function's contract is `release_all`'s.
            unsafe { self.release_all() };
        }
    }

    /// The body of [`Self::clear`] for a non-empty table.
    ///
    /// # Safety
    /// As for [`Self::clear`].
    #[cold]
    unsafe fn release_all(&mut self) {
        let used = self.used();
        if let Some(start) = self.chunk.first_mut() {
            self.next = start;
        }
        for slot in &mut self.chunk[..used] {
            let r = std::mem::replace(slot, std::ptr::null_mut());
            // SAFETY: every used entry holds the one count taken when it was
            // inserted, and it is released exactly once (the slot is nulled).
            unsafe { raw_release(r) };
        }
    }
}

impl Drop for VMExternRefActivationsTable {
    fn drop(&mut self) {
        // SAFETY: the table drops with its store, which cannot drop while
        // its Wasm runs (a running call borrows the store), so no Wasm frame
        // holds an entry.
        unsafe { self.clear() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::vm::gc::test_counted::Counted;

    #[test]
    fn activations_table_holds_and_releases() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut t = VMExternRefActivationsTable::new();
        let refs: Vec<_> = (0..2000)
            .map(|_| VMExternRef::new(Counted(drops.clone())))
            .collect();
        for r in &refs {
            t.insert_handle(r.clone());
        }
        assert_eq!(t.len(), 2000);
        assert_eq!(refs[0].strong_count(), 2);
        drop(refs);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        // SAFETY: no Wasm frame exists in this test.
        unsafe { t.clear() };
        assert_eq!(drops.load(Ordering::SeqCst), 2000);
        assert_eq!(t.len(), 0);
        drop(t);
        assert_eq!(drops.load(Ordering::SeqCst), 2000);
    }
}
