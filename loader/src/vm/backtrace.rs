//! The one frame-pointer walker, used by trap backtraces and by the
//! collector's root scan.
//!
//! Every Wasm function keeps frame pointers, so the Wasm frames of an
//! activation form a chain from where Wasm was left to the frame the entry
//! trampoline called:
//!
//! ```text
//!  higher addresses
//!  | entry trampoline frame |  <- entry_fp (recorded by the entry trampoline)
//!  | outermost Wasm frame   |  [fp] == entry_fp: the walk ends here
//!  |          ...           |
//!  | innermost Wasm frame   |  <- exit_fp, suspended at exit_pc
//!  lower addresses
//!
//!  each frame: [fp] = caller's fp, [fp + word] = return address into caller
//! ```
//!
//! (x86-64 and aarch64 lay the saved frame pointer and return address out
//! the same way.) The walk visits `(pc, fp)` for each Wasm frame, innermost
//! first, and stops successfully at the frame whose caller is the entry
//! trampoline. It stops with an error, after the frames it already visited,
//! when the chain is not what compiled code leaves: a null PC or frame
//! pointer, a caller frame not above its callee (stacks grow down), more
//! than [`MAX_WASM_FRAMES`] frames, or a visitor error. Callers decide what
//! an error means: a backtrace keeps the frames found so far, a collection
//! frees nothing.

/// Where one activation of a store left Wasm: its innermost Wasm frame is
/// `exit_fp` (suspended at `exit_pc`) and its outermost Wasm frame is the one
/// whose caller's frame pointer is `entry_fp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WasmActivation {
    pub exit_pc: usize,
    pub exit_fp: usize,
    pub entry_fp: usize,
}

/// Most frames one activation may have before its chain is deemed corrupt:
/// a 256 MiB stack of the smallest (16-byte) frames.
pub(crate) const MAX_WASM_FRAMES: usize = 1 << 24;

/// Why a walk stopped before the entry frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkError {
    /// A null PC or frame pointer.
    NullFrame,
    /// A caller's frame pointer not above its callee's.
    BrokenChain,
    /// More than [`MAX_WASM_FRAMES`] frames.
    TooDeep,
    /// A return address outside registered Wasm code (from a visitor).
    NotWasm,
    /// A module's stack-map section is malformed (from a visitor).
    BadStackMap,
}

/// Visits the Wasm frames of `a`, innermost first, with `(pc, fp)`: `pc` is
/// the frame's current PC (`a.exit_pc` for the first, the return address
/// into it for the others). Returns the number of frames visited.
///
/// # Safety
/// The frames of `a` must be live and unchanging during the walk: `a` was
/// recorded by the trampolines of an activation that is suspended (in a
/// host call, a builtin or a signal handler) on this thread, or its exit
/// frame is the faulting frame of a trap on this thread.
pub(crate) unsafe fn walk(
    a: WasmActivation,
    mut visit: impl FnMut(usize, usize) -> Result<(), WalkError>,
) -> Result<usize, WalkError> {
    const WORD: usize = std::mem::size_of::<usize>();
    let (mut pc, mut fp) = (a.exit_pc, a.exit_fp);
    let mut frames = 0;
    loop {
        if pc == 0 || fp == 0 {
            return Err(WalkError::NullFrame);
        }
        if frames == MAX_WASM_FRAMES {
            return Err(WalkError::TooDeep);
        }
        visit(pc, fp)?;
        frames += 1;
        if fp == a.entry_fp {
            return Ok(frames);
        }
        // SAFETY: `fp` is the frame pointer of a live Wasm frame (the
        // caller's contract for the first frame; for the others, the chain
        // was checked to move strictly up the stack towards `entry_fp`).
        // With frame pointers kept, its first two words are the caller's
        // frame pointer and the return address into the caller.
        let (caller_fp, ret) = unsafe { (*(fp as *const usize), *((fp + WORD) as *const usize)) };
        if caller_fp == a.entry_fp {
            return Ok(frames);
        }
        if caller_fp <= fp {
            return Err(WalkError::BrokenChain);
        }
        pc = ret;
        fp = caller_fp;
    }
}

/// The PCs of the Wasm frames of `a`, innermost first, for a backtrace: as
/// many as the walk reached (a broken chain truncates the backtrace).
///
/// # Safety
/// As for [`walk`].
pub(crate) unsafe fn backtrace_pcs(a: WasmActivation) -> Vec<usize> {
    let mut pcs = Vec::new();
    // SAFETY: the caller's contract is `walk`'s. An error only ends the
    // backtrace early; the frames before it were visited.
    let _ = unsafe {
        walk(a, |pc, _| {
            pcs.push(pc);
            Ok(())
        })
    };
    pcs
}
