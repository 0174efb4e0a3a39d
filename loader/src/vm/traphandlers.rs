//! Catching traps: signal handlers, the per-thread chain of activations, and
//! unwinding to the entry of the current activation.
//!
//! Rules (as in Wasmtime's `traphandlers.rs`):
//! - Every host-to-Wasm call runs inside [`catch_traps`], which records a
//!   catch point (`sigsetjmp` in `helpers.c`) in a thread-local
//!   [`CallThreadState`]. States form a chain, so host -> Wasm -> host -> Wasm
//!   nests; each saves and restores the store's `VMRuntimeLimits` fields.
//! - A fault (SIGSEGV/SIGBUS/SIGILL/SIGFPE) whose PC is in registered Wasm code
//!   and listed in that module's trap table is turned into a trap: the handler
//!   walks the Wasm frames, records them and, for SIGSEGV/SIGBUS, the
//!   faulting data address (`si_addr`, [`FaultAddress`]), and `siglongjmp`s
//!   to the catch point. Any other fault goes to the previous handler. Only
//!   the raw address is stored here: whether it lies in a linear memory (a
//!   guard-region hit) is worked out by the entry, with the store at hand,
//!   when the trap becomes an error (`StoreOpaque::fault_site`).
//! - Runtime code (libcalls, host-function shims) raises with [`raise`]. It
//!   **must not** have anything with a destructor live in its own frames:
//!   the frames between it and the catch point are skipped, not unwound.

use crate::vm::backtrace::{backtrace_pcs, WasmActivation};
use crate::vm::vmcontext::VMRuntimeLimits;
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ffi::c_void;
use std::ptr;
use std::sync::OnceLock;
use wasmc_format::TrapCode;

/// Why an activation was left by unwinding.
pub(crate) enum UnwindReason {
    /// Wasm trapped; `pcs` are the Wasm frames, innermost first.
    /// `first_is_trap_pc` says whether `pcs[0]` is the faulting instruction
    /// (signal) or a return address (libcall). `fault` is where the
    /// faulting data access pointed (SIGSEGV/SIGBUS), `None` for a trap
    /// raised by an explicit check (`ud2`, SIGILL) or by a libcall.
    Trap {
        code: TrapCode,
        pcs: Vec<usize>,
        first_is_trap_pc: bool,
        fault: Option<FaultAddress>,
    },
    /// A host function returned an error (the API layer's error type,
    /// boxed; it unboxes it at the entry).
    Error(HostError),
    /// A host function panicked.
    Panic(Box<dyn Any + Send>),
}

/// Where a faulting data access pointed, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultAddress {
    /// A page fault (SIGSEGV for an unmapped or protected page, SIGBUS) at
    /// this address (`si_addr`).
    At(usize),
    /// A general-protection fault (SIGSEGV with `si_code == SI_KERNEL`):
    /// x86-64 reports no address (`si_addr` is 0). For a memory access it
    /// means a non-canonical address, far outside every memory, so it must
    /// not pass for a fault at null.
    Unknown,
}

/// An error a host function returns through the runtime.
pub(crate) type HostError = Box<dyn std::error::Error + Send + Sync>;

extern "C" {
    fn wasmc_setjmp_call(
        jmpbuf_slot: *mut *mut c_void,
        body: unsafe extern "C" fn(*mut c_void),
        data: *mut c_void,
    ) -> libc::c_int;
    fn wasmc_longjmp(jmpbuf: *mut c_void) -> !;
}

/// One activation: a host-to-Wasm call in progress on this thread.
pub(crate) struct CallThreadState {
    jmp_buf: Cell<*mut c_void>,
    /// Set only right before a jump to the catch point, which takes it:
    /// `ManuallyDrop` spares every normal return a call to drop a `None`.
    unwind: std::mem::ManuallyDrop<UnsafeCell<Option<UnwindReason>>>,
    limits: *const VMRuntimeLimits,
    /// The store's `last_wasm_exit_fp`, `last_wasm_exit_pc` and
    /// `last_wasm_entry_fp` when this activation began: where the enclosing
    /// activation of the same store (if any) left Wasm.
    saved_exit_fp: usize,
    saved_exit_pc: usize,
    saved_entry_fp: usize,
    prev: *const CallThreadState,
}

/// The activations of the store whose runtime limits are `limits` on this
/// thread, innermost first. Only meaningful when called from host or runtime
/// code that Wasm called (so the innermost exit frame is current).
pub(crate) fn activations_of(limits: *const VMRuntimeLimits) -> Vec<WasmActivation> {
    let mut out = Vec::new();
    let mut state = current();
    let mut first = true;
    while !state.is_null() {
        // SAFETY: states in the chain live on the stack frames of
        // `catch_traps` calls on this thread that have not returned yet (each
        // unlinks its state before returning).
        let st = unsafe { &*state };
        if st.limits == limits {
            if first {
                // SAFETY: `limits` equals the limits of a state in the chain,
                // i.e. of a store with an activation in progress on this
                // thread, so it is alive.
                let l = unsafe { &*limits };
                // SAFETY: the limits' cells are only accessed by the thread
                // running the store's Wasm, which is this one; plain reads.
                let a = unsafe {
                    WasmActivation {
                        exit_pc: *l.last_wasm_exit_pc.get(),
                        exit_fp: *l.last_wasm_exit_fp.get(),
                        entry_fp: *l.last_wasm_entry_fp.get(),
                    }
                };
                out.push(a);
                first = false;
            }
            if st.saved_entry_fp != 0 && st.saved_exit_fp != 0 {
                out.push(WasmActivation {
                    exit_pc: st.saved_exit_pc,
                    exit_fp: st.saved_exit_fp,
                    entry_fp: st.saved_entry_fp,
                });
            }
        }
        state = st.prev;
    }
    out
}

thread_local! {
    static CURRENT: Cell<*const CallThreadState> = const { Cell::new(ptr::null()) };
}

#[inline]
/// Whether this thread has an activation of the store whose runtime limits
/// are `limits` in progress (its `catch_traps` has not returned).
fn has_activation_here(limits: *const VMRuntimeLimits) -> bool {
    let mut state = current();
    while !state.is_null() {
        // SAFETY: states in the chain live on the stack frames of
        // `catch_traps` calls on this thread that have not returned yet.
        let st = unsafe { &*state };
        if st.limits == limits {
            return true;
        }
        state = st.prev;
    }
    false
}

fn current() -> *const CallThreadState {
    CURRENT.try_with(|c| c.get()).unwrap_or(ptr::null())
}

unsafe extern "C" fn call_closure<F: FnMut()>(data: *mut c_void) {
    // SAFETY: `data` is the `&mut F` that `catch_traps` passed to
    // `wasmc_setjmp_call`, alive until that call returns.
    let f = unsafe { &mut *(data as *mut F) };
    f();
}

/// Runs `f` (which enters Wasm) as a new activation with `limits`, on a
/// thread that [`thread_setup`] prepared (`floor` is its proof, and cannot
/// leave the thread).
///
/// # Safety
/// `limits` must point to the store's live runtime limits, and `f` must not
/// have destructors that need to run if it is unwound (it only calls a
/// trampoline).
pub(crate) unsafe fn catch_traps<F: FnMut()>(
    limits: *const VMRuntimeLimits,
    max_wasm_stack: usize,
    floor: ThreadFloor,
    mut f: F,
) -> Result<(), UnwindReason> {
    let floor = floor.0;
    // SAFETY: the caller promises `limits` is the store's live limits.
    let l = unsafe { &*limits };
    // SAFETY: the limits' cells are only accessed by the thread running the
    // store's Wasm, which is this one; plain reads.
    let saved = unsafe {
        (
            *l.stack_limit.get(),
            *l.last_wasm_exit_fp.get(),
            *l.last_wasm_exit_pc.get(),
            *l.last_wasm_entry_fp.get(),
        )
    };
    if saved.0 != usize::MAX && !has_activation_here(limits) {
        // The store's Wasm is running, suspended in a host call, on another
        // thread (a host function handed its `Caller`, which is `Send`, to
        // a thread of its own). The store's stack limit is that thread's,
        // meaningless on this stack (no check at all if this stack lies
        // above it: Wasm would run into the guard page and kill the
        // process), and the chain of the store's activations that the
        // collector and backtraces walk is per thread. A store's Wasm runs
        // on one thread at a time: refuse.
        return Err(UnwindReason::Error(Box::new(
            crate::vm::func::RuntimeError(
                "cannot call into a store's Wasm from this thread while its Wasm is running \
                 on another thread (a store runs Wasm on one thread at a time)"
                    .into(),
            ),
        )));
    }
    if saved.0 == usize::MAX {
        let here = 0u8;
        let sp = &here as *const u8 as usize;
        // Never let Wasm run into the thread's guard page: on a thread whose
        // stack is smaller than `max_wasm_stack`, the prologue check must
        // still fire first, leaving room for host functions and builtins.
        let limit = sp.saturating_sub(max_wasm_stack).max(floor);
        // SAFETY: a plain write to the live limits' cell, which only this
        // thread (the one about to run the store's Wasm) accesses.
        unsafe { *l.stack_limit.get() = limit };
    }
    let state = CallThreadState {
        jmp_buf: Cell::new(ptr::null_mut()),
        unwind: std::mem::ManuallyDrop::new(UnsafeCell::new(None)),
        limits,
        saved_exit_fp: saved.1,
        saved_exit_pc: saved.2,
        saved_entry_fp: saved.3,
        prev: current(),
    };
    CURRENT.with(|c| c.set(&state));
    // SAFETY: the jump-buffer slot (in `state`) and the closure `f` outlive
    // the call, and `call_closure::<F>` reads `data` as the `F` it is.
    let ok = unsafe {
        wasmc_setjmp_call(
            state.jmp_buf.as_ptr(),
            call_closure::<F>,
            &mut f as *mut F as *mut c_void,
        )
    };
    CURRENT.with(|c| c.set(state.prev));
    // SAFETY: plain writes restoring the values saved above, on the thread
    // that owns the limits' cells.
    unsafe {
        *l.stack_limit.get() = saved.0;
        *l.last_wasm_exit_fp.get() = saved.1;
        *l.last_wasm_exit_pc.get() = saved.2;
        *l.last_wasm_entry_fp.get() = saved.3;
    }
    if ok != 0 {
        Ok(())
    } else {
        // SAFETY: the activation is over (the state is unlinked), so nothing
        // else can access the cell any more.
        Err(unsafe { (*state.unwind.get()).take() }.expect("unwound without a reason"))
    }
}

/// Leaves the current activation with `reason`.
///
/// # Safety
/// Must be called on a thread inside [`catch_traps`], from runtime code called
/// by Wasm, with no destructors pending in the frames up to the catch point.
pub(crate) unsafe fn raise(reason: UnwindReason) -> ! {
    let state = current();
    if state.is_null() {
        eprintln!("wasmc: trap raised outside a Wasm activation");
        std::process::abort();
    }
    // SAFETY: `state` is non-null, so it lives in the `catch_traps` frame
    // below us on this thread, which only this thread touches; its jump
    // buffer was set by `wasmc_setjmp_call` and is still active.
    unsafe {
        *(*state).unwind.get() = Some(reason);
        wasmc_longjmp((*state).jmp_buf.get())
    }
}

/// Raises a trap from a libcall: the backtrace starts at the exit frame the
/// builtin trampoline recorded.
///
/// # Safety
/// As for [`raise`].
pub(crate) unsafe fn raise_trap(code: TrapCode) -> ! {
    let state = current();
    let pcs = if state.is_null() {
        Vec::new()
    } else {
        // SAFETY: a non-null current state lives in a `catch_traps` frame on
        // this thread, and its limits are the running store's.
        let l = unsafe { &*(*state).limits };
        // SAFETY: the builtin trampoline recorded the exit FP/PC of the
        // calling Wasm frame before calling us, so the frames from there to
        // the entry FP are live, suspended Wasm frames; the cells are read
        // on their own thread.
        unsafe {
            backtrace_pcs(WasmActivation {
                exit_pc: *l.last_wasm_exit_pc.get(),
                exit_fp: *l.last_wasm_exit_fp.get(),
                entry_fp: *l.last_wasm_entry_fp.get(),
            })
        }
    };
    // SAFETY: this function's contract is `raise`'s.
    unsafe {
        raise(UnwindReason::Trap {
            code,
            pcs,
            first_is_trap_pc: false,
            fault: None,
        })
    }
}

// ----- signal handlers -----

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

struct PrevHandlers([libc::sigaction; 4]);
// SAFETY: plain data (handler addresses, flags and masks), written once
// before it is shared and only read afterwards.
unsafe impl Sync for PrevHandlers {}
// SAFETY: plain data with no thread affinity (no pointers it owns).
unsafe impl Send for PrevHandlers {}

static PREV: OnceLock<PrevHandlers> = OnceLock::new();

fn init_handlers() {
    PREV.get_or_init(|| {
        // SAFETY: querying and installing process-wide signal handlers with
        // valid sigaction structs; the previous ones are saved before ours is
        // installed so that chaining always finds them.
        unsafe {
            let mut prev: [libc::sigaction; 4] = std::mem::zeroed();
            for (i, sig) in SIGNALS.iter().enumerate() {
                libc::sigaction(*sig, ptr::null(), &mut prev[i]);
            }
            let saved = PrevHandlers(prev);
            for sig in SIGNALS {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = trap_handler as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, ptr::null_mut());
            }
            saved
        }
    });
}

/// Program counter and frame pointer of the interrupted context.
///
/// # Safety
/// `ctx` must be the `ucontext_t` passed to a signal handler.
unsafe fn context_pc_fp(ctx: *mut c_void) -> (usize, usize) {
    let uc = ctx as *const libc::ucontext_t;
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    // SAFETY: the caller passes the signal handler's context, a valid
    // `ucontext_t` the kernel filled in.
    unsafe {
        let g = &(*uc).uc_mcontext.gregs;
        (
            g[libc::REG_RIP as usize] as usize,
            g[libc::REG_RBP as usize] as usize,
        )
    }
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    // SAFETY: the caller passes the signal handler's context, a valid
    // `ucontext_t` the kernel filled in.
    unsafe {
        let m = &(*uc).uc_mcontext;
        (m.pc as usize, m.regs[29] as usize)
    }
}

unsafe extern "C" fn trap_handler(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut c_void,
) {
    let state = current();
    if !state.is_null() {
        // SAFETY: `ctx` is the context the kernel passed to this handler.
        let (pc, fp) = unsafe { context_pc_fp(ctx) };
        if let Some(code) = crate::vm::code::lookup_trap(pc) {
            // For the other signals `si_addr` is the faulting instruction,
            // not a data address.
            let fault = if signum == libc::SIGSEGV || signum == libc::SIGBUS {
                // SAFETY: `info` is the kernel's `siginfo_t` for this
                // SIGSEGV/SIGBUS, whose `si_code` and `si_addr` fields are
                // set.
                let (si_code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
                Some(if signum == libc::SIGSEGV && si_code == libc::SI_KERNEL {
                    FaultAddress::Unknown
                } else {
                    FaultAddress::At(addr)
                })
            } else {
                None
            };
            // SAFETY: the state is live (this thread is inside `catch_traps`)
            // and its limits are the running store's; the fault is at a trap
            // site of registered Wasm code, so `fp` is that Wasm frame's and
            // its chain reaches the activation's entry FP.
            unsafe {
                let entry_fp = *(*(*state).limits).last_wasm_entry_fp.get();
                let pcs = backtrace_pcs(WasmActivation {
                    exit_pc: pc,
                    exit_fp: fp,
                    entry_fp,
                });
                *(*state).unwind.get() = Some(UnwindReason::Trap {
                    code,
                    pcs,
                    first_is_trap_pc: true,
                    fault,
                });
                wasmc_longjmp((*state).jmp_buf.get());
            }
        }
    }
    // SAFETY: passing on the kernel's own arguments for this signal.
    unsafe { chain(signum, info, ctx) }
}

/// Passes the signal to the handler that was installed before ours.
///
/// # Safety
/// The arguments must be the ones the kernel passed to a signal handler.
unsafe fn chain(signum: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let Some(prev) = PREV.get() else { return };
    let Some(i) = SIGNALS.iter().position(|s| *s == signum) else {
        return;
    };
    let p = &prev.0[i];
    if p.sa_sigaction == libc::SIG_DFL || p.sa_sigaction == libc::SIG_IGN {
        // SAFETY: restoring the default action; returning re-executes the
        // faulting instruction, which then gets the default behaviour.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signum, &sa, ptr::null_mut());
        }
    } else if p.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it
        // has this signature.
        unsafe {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                std::mem::transmute(p.sa_sigaction);
            f(signum, info, ctx)
        }
    } else {
        // SAFETY: a plain handler takes the signal number only.
        unsafe {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(p.sa_sigaction);
            f(signum)
        }
    }
}

// ----- per-thread alternate signal stack -----

const MIN_ALT_STACK: usize = 64 * 1024;

struct AltStack {
    mmap: crate::vm::sys::mmap::Mmap,
    prev: libc::stack_t,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: querying and restoring this thread's signal stack with
        // valid `stack_t`s; ours (its mapping is still alive here) is only
        // replaced if it is the current one, and unmapped after that.
        unsafe {
            let mut cur: libc::stack_t = std::mem::zeroed();
            libc::sigaltstack(ptr::null(), &mut cur);
            if cur.ss_sp
                == self
                    .mmap
                    .as_ptr()
                    .add(crate::vm::sys::mmap::page_size())
                    .cast()
            {
                libc::sigaltstack(&self.prev, ptr::null_mut());
            }
        }
    }
}

thread_local! {
    static ALT_STACK: std::cell::RefCell<Option<AltStack>> = const { std::cell::RefCell::new(None) };
}

/// Stack kept free below the Wasm stack limit for the host functions and
/// builtins that Wasm calls at its deepest point.
const HOST_STACK_RESERVE: usize = 128 * 1024;

/// [`THREAD_FLOOR`] before the thread's first entry into Wasm.
const NOT_SET_UP: usize = usize::MAX;

thread_local! {
    /// The lowest stack address Wasm's stack limit may be set to on this
    /// thread (its stack's low end plus [`HOST_STACK_RESERVE`]; 0 if the
    /// thread library does not say), or [`NOT_SET_UP`]. One read per entry
    /// both says whether the thread is set up and gives the floor.
    static THREAD_FLOOR: Cell<usize> = const { Cell::new(NOT_SET_UP) };
}

/// This thread's stack floor (see [`THREAD_FLOOR`]), from
/// [`thread_setup`]: only it makes one, so holding one means the thread is
/// set up for [`catch_traps`].
/// Not `Send`: a floor is only true of the thread that read it.
#[derive(Clone, Copy)]
pub(crate) struct ThreadFloor(usize, std::marker::PhantomData<*const ()>);

/// This thread's stack floor; the first time the thread enters Wasm, also
/// installs the signal handlers (once per process) and the thread's
/// alternate signal stack. Callers read it first thing on the way into
/// Wasm, before the stack stores of the call: a thread-local read right
/// after them was slow in some runs, depending on where the stack sat
/// (a store and a load 4 KiB apart look dependent to the CPU).
#[inline]
pub(crate) fn thread_setup() -> ThreadFloor {
    let floor = match THREAD_FLOOR.try_with(Cell::get) {
        Ok(floor) if floor != NOT_SET_UP => floor,
        _ => first_entry_setup(),
    };
    ThreadFloor(floor, std::marker::PhantomData)
}

/// [`thread_setup`] on the thread's first entry: out of line, so that the
/// entry path keeps only the read of [`THREAD_FLOOR`].
#[cold]
#[inline(never)]
fn first_entry_setup() -> usize {
    init_handlers();
    ensure_sigaltstack();
    let floor = thread_stack_low().map_or(0, |low| low.saturating_add(HOST_STACK_RESERVE));
    // A thread whose thread-locals are being destroyed cannot record
    // it, and sets up again (harmlessly) at its next entry.
    let _ = THREAD_FLOOR.try_with(|c| c.set(floor));
    floor
}

/// The lowest address of this thread's stack (above its guard page), as the
/// thread library reports it.
fn thread_stack_low() -> Option<usize> {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread; it is
    // destroyed below and only read through pthread_attr_getstack.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut c_void = ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if !ok || addr.is_null() {
            return None;
        }
        Some(addr as usize)
    }
}

fn ensure_sigaltstack() {
    let _ = ALT_STACK.try_with(|slot| {
        if slot.borrow().is_some() {
            return;
        }
        // SAFETY: `stack_t` is plain C data for which all-zero is valid.
        let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: a query (null new stack) with a valid out-pointer.
        unsafe { libc::sigaltstack(ptr::null(), &mut cur) };
        if cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_size >= MIN_ALT_STACK {
            return;
        }
        let page = crate::vm::sys::mmap::page_size();
        let Ok(mut mmap) = crate::vm::sys::mmap::Mmap::reserve(MIN_ALT_STACK + page) else {
            return;
        };
        if mmap.make_accessible(page, MIN_ALT_STACK).is_err() {
            return;
        }
        let new = libc::stack_t {
            // SAFETY: the mapping is `MIN_ALT_STACK + page` long, so one page
            // in stays inside it (the first page is the guard).
            ss_sp: unsafe { mmap.as_ptr().add(page) }.cast(),
            ss_flags: 0,
            ss_size: MIN_ALT_STACK,
        };
        // SAFETY: installing a mapped, read-write stack of `MIN_ALT_STACK`
        // bytes that the thread-local keeps alive until it is uninstalled.
        if unsafe { libc::sigaltstack(&new, ptr::null_mut()) } == 0 {
            *slot.borrow_mut() = Some(AltStack { mmap, prev: cur });
        }
    });
}
