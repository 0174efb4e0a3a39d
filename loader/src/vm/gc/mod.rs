//! The externref collector: deferred reference counting with stack maps.
//!
//! Compiled code never touches reference counts for values on its stack.
//! Instead every reference that enters a Wasm activation is counted once by
//! the store's activations table (`activations.rs`), which therefore
//! over-approximates what Wasm frames hold. A collection finds the exact set:
//!
//! 1. For each activation of the store on this thread (innermost first,
//!    `traphandlers::activations_of`), walk the Wasm frames from where Wasm
//!    was left (`last_wasm_exit_fp/pc`, recorded by the host and builtin
//!    trampolines) to the frame called by the entry trampoline
//!    (`last_wasm_entry_fp`), through the frame-pointer chain, with the one
//!    walker that backtraces use too (`backtrace.rs`):
//!
//!    ```text
//!    exit_fp -> [saved fp | return addr]   frame suspended at exit_pc
//!                 |
//!                 v
//!               [saved fp | return addr]   ... until saved fp == entry_fp
//!    ```
//!
//!    Tail calls (`return_call`) replace a frame in place, keeping its saved
//!    FP and return address, so the chain stays intact; when the outermost
//!    Wasm frame tail-calls a host function, `exit_fp` is `entry_fp` itself
//!    and the activation has no Wasm frame.
//!
//! 2. For each frame, look up the stack map keyed by *exactly* its return
//!    address (`.wasmc.stackmaps`; no entry means no live reference) and read
//!    the listed slots at `fp - frame_span + offset`.
//! 3. Count every reference found, then release every entry of the table;
//!    the found set becomes the table. Counting first means a reference that
//!    is both found and in the table never reaches zero in between.
//!
//! Collections run when the table's chunk is full (the inline insertion's
//! slow path), on `Store::gc` / `Caller::gc`, and — in stress mode — at every
//! builtin call and host call. They never run during a host-side insertion
//! (arguments into Wasm, host-function results): those references are on no
//! Wasm stack yet, so a collection then could free them (Wasmtime's
//! CVE-2021-39216).
//!
//! If a walk meets a frame it cannot account for (a return address outside
//! registered Wasm code, a malformed stack-map section, a broken chain) the
//! collection frees nothing and is counted in [`GcStats::failed_walks`]:
//! keeping the over-approximation is always safe.

pub(crate) mod activations;
pub(crate) mod externref;

use crate::vm::backtrace::walk;
use crate::vm::code::RootScanner;
use crate::vm::gc::externref::raw_clone;
use crate::vm::store::StoreOpaque;
use crate::vm::traphandlers::activations_of;
use crate::vm::vmcontext::VMExternData;
use std::time::{Duration, Instant};

/// Statistics of a store's externref collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Collections run so far.
    pub collections: u64,
    /// References currently in the activations table.
    pub table_len: usize,
    /// Slots in the activations table's chunk.
    pub table_capacity: usize,
    /// References found live in Wasm frames by the last collection.
    pub last_roots: usize,
    /// Wasm frames walked by the last collection.
    pub last_frames: usize,
    /// Total time spent collecting.
    pub time: Duration,
    /// Collections that could not walk the stack and freed nothing.
    pub failed_walks: u64,
}

/// Runs a collection for `store` (see the module docs).
pub(crate) fn collect(store: &mut StoreOpaque) {
    let start = Instant::now();
    store.gc_stats.collections += 1;
    if store.wasm_depth == 0 {
        // SAFETY: `wasm_depth == 0`: no activation of this store is in
        // progress, so no Wasm frame of it is on the stack.
        unsafe { store.activations.clear() };
        store.gc_stats.last_roots = 0;
        store.gc_stats.last_frames = 0;
    } else {
        let mut roots = Vec::new();
        let mut frames = 0;
        let activations = activations_of(store.limits_ptr());
        // None on this thread although Wasm of the store is running: it is
        // suspended in a host call on another thread (whose `Caller` was
        // sent here), and its frames cannot be found from this one. Freeing
        // what the activations table holds would free references those
        // frames still use: count it as a failed walk, which frees nothing.
        let mut ok = !activations.is_empty();
        {
            // Dropped before any reference is released (see RootScanner).
            let mut scanner = RootScanner::new();
            for a in activations {
                if a.exit_fp == a.entry_fp {
                    // Wasm was left from the entry trampoline's own frame:
                    // the outermost Wasm function tail-called a host
                    // function (`return_call`), which replaced its frame. A
                    // suspended Wasm frame always lies below `entry_fp`, so
                    // this activation holds no Wasm frame and no root.
                    continue;
                }
                // The frame pointer of the previous (callee) frame visited.
                let mut callee_fp = None;
                let visit = |pc, fp| {
                    // SAFETY: `walk` visits only live Wasm frames, innermost
                    // first: `fp` is the frame pointer of the frame suspended
                    // at return address `pc`, and `callee_fp` that of the
                    // live Wasm frame it called.
                    let r = unsafe { scanner.frame_roots(pc, fp, callee_fp, &mut roots) };
                    callee_fp = Some(fp);
                    r
                };
                // SAFETY: `wasm_depth > 0`, so we are in host or runtime code
                // called from the store's innermost activation on this
                // thread, and every listed activation is suspended: its
                // frames are live and unchanging.
                let r = unsafe { walk(a, visit) };
                match r {
                    Ok(n) => frames += n,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
        }
        if ok {
            roots.retain(|r| !r.is_null());
            roots.sort_unstable();
            roots.dedup();
            // SAFETY: each root was read from a live frame slot the compiler
            // listed as holding a reference, so it is alive (counted by the
            // table, a table element, a global or a host handle).
            unsafe { store.activations.replace_with_roots(&roots) };
            store.gc_stats.last_roots = roots.len();
            store.gc_stats.last_frames = frames;
        } else {
            store.gc_stats.failed_walks += 1;
        }
    }
    store.gc_stats.time += start.elapsed();
    store.gc_stats.table_len = store.activations.len();
    store.gc_stats.table_capacity = store.activations.capacity();
}

/// The slow path of compiled code's inline insertion: the chunk is full.
/// `r` is held (counted) across the collection, then handed to the table.
///
/// # Safety
/// `r` must be null or a live `VMExternData`, and this must be called from
/// compiled code of `store` (through the builtin trampoline).
pub(crate) unsafe fn insert_slow(store: &mut StoreOpaque, r: *mut VMExternData) {
    if r.is_null() {
        return;
    }
    // SAFETY: the caller passes a live `r`; this count keeps it alive during
    // the collection (which may release the table's entries).
    unsafe { raw_clone(r) };
    collect(store);
    // SAFETY: `r` is still alive (we hold the count taken above), which is
    // handed to the table.
    unsafe { store.activations.insert_owned(r) };
}

/// In stress mode, collects now. Called at every safepoint the runtime
/// reaches: after each builtin's work and when a host function is entered.
#[inline]
pub(crate) fn stress(store: &mut StoreOpaque) {
    if store.gc_stress {
        collect(store);
    }
}

/// A host value that counts its drops, for the collector's unit tests.
#[cfg(test)]
pub(crate) mod test_counted {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    pub(crate) struct Counted(pub(crate) Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
