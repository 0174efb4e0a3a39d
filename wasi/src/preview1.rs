//! The glue between wasi-common's generated `wasi_snapshot_preview1`
//! functions and the loader's host functions, for both ways of finding the
//! WASI context: in the store's data ([`add_to_linker`], through a getter)
//! or shared outside it ([`add_to_linker_shared`], a [`SharedWasiCtx`]).
//! There is one definition of the 46 functions, [`define_all`], generic
//! over a private [`Context`] implemented by both.
//!
//! wiggle generates one `async fn NAME(ctx, memory, arg0, ...) ->
//! anyhow::Result<i32>` per WASI function from the witx; it decodes
//! pointers against the guest memory (bounds and alignment checked) and
//! turns wasi-common's errors into `errno` results. Each host function here
//! does three things:
//! 1. [`with_guest`]: finds the calling instance's exported `memory`,
//!    splits the store into that memory's bytes and its data
//!    ([`wasmc_loader::Memory::data_and_store_mut`]) and gets the WASI
//!    context from the [`Context`] (the only place that knows where they
//!    live);
//! 2. runs the generated function to completion (wasi-common's `sync`
//!    implementations never wait, so a single poll finishes them);
//! 3. [`finish`]: passes the result to Wasm, or turns an error (the guest
//!    exiting, a trap raised by wasi-common) into the loader's error.
//!
//! The parameter types below are checked by the compiler against wiggle's
//! generated signatures, so a wrong type here does not build.

use crate::{I32Exit, WasiCtx};
use std::sync::{Arc, Mutex};
use wasi_common::snapshots::preview_1::types::{Errno, Error as WasiError, Fd, Filetype, Rights};
use wasi_common::snapshots::preview_1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wasmc_loader::{Caller, Error, Extern, FuncType, LinkError, Linker, Val, ValType};
use wiggle::GuestMemory;

/// A WASI context shared by the host functions of a linker, for
/// [`add_to_linker_shared`]: every instance made through that linker, in
/// any store, uses this one context.
///
/// The context is only ever borrowed through the lock, never cloned:
/// wasi-common allows some changes (`fd_fdstat_set_flags`) only while it
/// holds the sole reference to its context.
#[derive(Clone)]
pub struct SharedWasiCtx(Arc<Mutex<WasiCtx>>);

impl SharedWasiCtx {
    /// Shares `ctx` (built with [`crate::WasiCtxBuilder`]).
    pub fn new(ctx: WasiCtx) -> SharedWasiCtx {
        SharedWasiCtx(Arc::new(Mutex::new(ctx)))
    }
}

/// The import module name of WASI preview 1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// Where the host functions find the WASI context of a call, given the
/// store's data `T`.
trait Context<T>: Clone + Send + Sync + 'static {
    /// Runs `f` with the context.
    fn with<R>(
        &self,
        data: &mut T,
        f: impl FnOnce(&mut WasiCtx) -> Result<R, Error>,
    ) -> Result<R, Error>;
}

/// The context is in the store's data: [`add_to_linker`]'s getter.
#[derive(Clone, Copy)]
struct InData<G>(G);

impl<T, G> Context<T> for InData<G>
where
    G: Fn(&mut T) -> &mut WasiCtx + Copy + Send + Sync + 'static,
{
    fn with<R>(
        &self,
        data: &mut T,
        f: impl FnOnce(&mut WasiCtx) -> Result<R, Error>,
    ) -> Result<R, Error> {
        f((self.0)(data))
    }
}

/// The context is shared outside the store: locked for each call.
impl<T> Context<T> for SharedWasiCtx {
    fn with<R>(
        &self,
        _: &mut T,
        f: impl FnOnce(&mut WasiCtx) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut cx = self
            .0
            .lock()
            .map_err(|_| Error::msg("WASI context poisoned by an earlier panic"))?;
        f(&mut cx)
    }
}

/// Runs `f` with the WASI context and the guest memory of one host call.
fn with_guest<T: 'static, C: Context<T>, R>(
    caller: &mut Caller<'_, T>,
    cx: &C,
    f: impl FnOnce(&mut WasiCtx, &mut GuestMemory<'_>) -> Result<R, Error>,
) -> Result<R, Error> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(Error::msg(
            "WASI function called by a module that exports no memory named `memory`",
        ));
    };
    let (bytes, data) = memory.data_and_store_mut(caller);
    let mut memory = GuestMemory::Unshared(bytes);
    cx.with(data, |wasi| f(wasi, &mut memory))
}

/// The result of a trait method of wasi-common's context (used where this
/// file checks something before or after the generated function): its
/// value, or its error as an errno for Wasm.
fn trait_call<T>(
    name: &str,
    r: anyhow::Result<Result<T, WasiError>>,
) -> Result<Result<T, i32>, Error> {
    match r.map_err(|e| host_error(name, e))? {
        Ok(v) => Ok(Ok(v)),
        Err(e) => match e.downcast() {
            Ok(errno) => Ok(Err(errno as i32)),
            Err(e) => Err(host_error(name, e)),
        },
    }
}

/// The loader's view of the outcome of the WASI function `name`.
/// `proc_exit` comes back as an [`I32Exit`] error (see
/// [`crate::exit_code`]); any other error is a trap raised by wasi-common
/// (a pointer out of bounds, an invalid exit status, for example).
fn finish<T>(name: &str, r: anyhow::Result<anyhow::Result<T>>) -> Result<T, Error> {
    r.and_then(|r| r).map_err(|e| host_error(name, e))
}

/// A trap raised in the WASI function `name`, named: wasi-common's own
/// messages ("Pointer out of bounds: Region { .. }", "proc_raise
/// unsupported") do not say which function raised them, and the loader
/// gives a host function's error no Wasm backtrace. wiggle's errors in
/// decoding arguments and writing results already name it ("In func
/// wasi_snapshot_preview1::fd_write at write size: ..."). The context keeps
/// the error's type reachable by downcasting.
fn host_error(name: &str, e: anyhow::Error) -> Error {
    match e.downcast::<I32Exit>() {
        Ok(exit) => Error::host(exit),
        Err(e) if matches!(e.downcast_ref(), Some(wiggle::GuestError::InFunc { .. })) => {
            Error::Host(e)
        }
        Err(e) => Error::Host(e.context(format!("{MODULE}::{name}"))),
    }
}

/// Defines one typed host function per entry, calling wiggle's function of
/// the same name with the Wasm arguments.
macro_rules! define {
    ($linker:ident, $ctx:ident; $($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $({
            let ctx = $ctx.clone();
            $linker.func_wrap(
                MODULE,
                stringify!($name),
                move |mut caller: Caller<'_, T>, $($arg: $ty),*| -> Result<$ret, Error> {
                    with_guest(&mut caller, &ctx, |cx, memory| {
                        finish(stringify!($name), wiggle::run_in_dummy_executor(p1::$name(
                            cx,
                            memory,
                            $($arg),*
                        )))
                    })
                },
            )?;
        })*
    };
}

/// The names of the functions, in witx order but for `path_open` (last).
macro_rules! names {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        /// The names of the functions [`add_to_linker`] defines: all of
        /// `wasi_snapshot_preview1`.
        pub const FUNCTIONS: &[&str] = &[
            $(stringify!($name),)*
            "fd_fdstat_set_rights", "fd_renumber", "path_open", "sock_shutdown",
        ];
    };
}

/// Calls `$m!($($pre)* ; LIST)` with the signatures of the functions that
/// go straight to wasi-common (all but the four of [`define_all`]'s second
/// part).
macro_rules! with_functions {
    ($m:ident!($($pre:tt)*)) => {
        $m! { $($pre)*
        args_get(argv: i32, buf: i32) -> i32;
        args_sizes_get(argc: i32, buf_len: i32) -> i32;
        environ_get(environ: i32, buf: i32) -> i32;
        environ_sizes_get(count: i32, buf_len: i32) -> i32;
        clock_res_get(id: i32, out: i32) -> i32;
        clock_time_get(id: i32, precision: i64, out: i32) -> i32;
        fd_advise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
        fd_allocate(fd: i32, offset: i64, len: i64) -> i32;
        fd_close(fd: i32) -> i32;
        fd_datasync(fd: i32) -> i32;
        fd_fdstat_get(fd: i32, out: i32) -> i32;
        fd_fdstat_set_flags(fd: i32, flags: i32) -> i32;
        fd_filestat_get(fd: i32, out: i32) -> i32;
        fd_filestat_set_size(fd: i32, size: i64) -> i32;
        fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, flags: i32) -> i32;
        fd_pread(fd: i32, iovs: i32, iovs_len: i32, offset: i64, out: i32) -> i32;
        fd_prestat_get(fd: i32, out: i32) -> i32;
        fd_prestat_dir_name(fd: i32, path: i32, path_len: i32) -> i32;
        fd_pwrite(fd: i32, iovs: i32, iovs_len: i32, offset: i64, out: i32) -> i32;
        fd_read(fd: i32, iovs: i32, iovs_len: i32, out: i32) -> i32;
        fd_readdir(fd: i32, buf: i32, buf_len: i32, cookie: i64, out: i32) -> i32;
        fd_seek(fd: i32, offset: i64, whence: i32, out: i32) -> i32;
        fd_sync(fd: i32) -> i32;
        fd_tell(fd: i32, out: i32) -> i32;
        fd_write(fd: i32, iovs: i32, iovs_len: i32, out: i32) -> i32;
        path_create_directory(fd: i32, path: i32, path_len: i32) -> i32;
        path_filestat_get(fd: i32, flags: i32, path: i32, path_len: i32, out: i32) -> i32;
        path_filestat_set_times(
            fd: i32, flags: i32, path: i32, path_len: i32, atim: i64, mtim: i64, fst_flags: i32
        ) -> i32;
        path_link(
            old_fd: i32, old_flags: i32, old_path: i32, old_len: i32,
            new_fd: i32, new_path: i32, new_len: i32
        ) -> i32;
        path_readlink(fd: i32, path: i32, path_len: i32, buf: i32, buf_len: i32, out: i32) -> i32;
        path_remove_directory(fd: i32, path: i32, path_len: i32) -> i32;
        path_rename(
            fd: i32, old_path: i32, old_len: i32, new_fd: i32, new_path: i32, new_len: i32
        ) -> i32;
        path_symlink(old_path: i32, old_len: i32, fd: i32, new_path: i32, new_len: i32) -> i32;
        path_unlink_file(fd: i32, path: i32, path_len: i32) -> i32;
        poll_oneoff(subs: i32, events: i32, n: i32, out: i32) -> i32;
        proc_exit(status: i32) -> ();
        proc_raise(signal: i32) -> i32;
        sched_yield() -> i32;
        random_get(buf: i32, buf_len: i32) -> i32;
        sock_accept(fd: i32, flags: i32, out: i32) -> i32;
        sock_recv(
            fd: i32, iovs: i32, iovs_len: i32, flags: i32, out_len: i32, out_flags: i32
        ) -> i32;
        sock_send(fd: i32, iovs: i32, iovs_len: i32, flags: i32, out: i32) -> i32;
        }
    };
}

with_functions!(names!());

/// Defines every function of `wasi_snapshot_preview1` in `linker`, acting
/// on the WASI context that `get` finds in the store's data (Wasmtime's
/// `wasmtime_wasi::preview1::add_to_linker_sync(&mut linker, |s| &mut
/// s.wasi)`). Each store has its own context, so one linker (or one
/// [`wasmc_loader::InstancePre`]) serves any number of program runs, each
/// with its own arguments, environment, stdio and preopens.
///
/// ```
/// use wasmc_loader::{Engine, Linker, Store};
/// use wasmc_wasi::{WasiCtx, WasiCtxBuilder};
///
/// struct MyState {
///     wasi: WasiCtx,
///     requests: u32,
/// }
///
/// let engine = Engine::default();
/// let mut linker = Linker::<MyState>::new(&engine);
/// wasmc_wasi::add_to_linker(&mut linker, |s: &mut MyState| &mut s.wasi)?;
/// let wasi = WasiCtxBuilder::new().args(&["app".to_string()])?.build();
/// let store = Store::new(&engine, MyState { wasi, requests: 0 });
/// // A store holding a context may move to another thread.
/// std::thread::spawn(move || drop(store)).join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The context must not be cloned while the program runs (a [`WasiCtx`]
/// is reference counted): wasi-common refuses `fd_fdstat_set_flags` unless
/// it holds the sole reference.
///
/// Errors if `linker` refuses a definition: a name it already defines,
/// with shadowing off ([`Linker::allow_shadowing`]).
///
/// Four functions check something before or after wasi-common's, where
/// wasi-common 25 departs from what current WASI runtimes do (and the WASI
/// testsuite checks):
/// - `fd_renumber` to a descriptor that is not open is `EBADF` (wasi-common
///   would create it);
/// - `sock_shutdown` of something that is not a socket is `ENOTSOCK`;
/// - `fd_fdstat_set_rights` is `ENOTSUP` once the descriptor is checked:
///   wasi-common keeps no rights per descriptor, so claiming to drop them
///   would be a lie (Wasmtime answers the same);
/// - `path_open` with `O_TRUNC` and `FDFLAGS_APPEND` together (valid POSIX,
///   refused by the std/cap-std open options wasi-common builds) opens
///   without append and then sets it.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&mut T) -> &mut WasiCtx + Copy + Send + Sync + 'static,
) -> Result<(), LinkError> {
    define_all(linker, InData(get))
}

/// Defines every function of `wasi_snapshot_preview1` in `linker`, acting
/// on `ctx` whatever the store: for a linker of any `T` that does not hold
/// the context. Every instance made through this linker, in any store,
/// shares the one context (its stdio, descriptor table and preopens); for
/// a context per store, use [`add_to_linker`].
pub fn add_to_linker_shared<T: 'static>(
    linker: &mut Linker<T>,
    ctx: &SharedWasiCtx,
) -> Result<(), LinkError> {
    define_all(linker, ctx.clone())
}

/// Defines the 46 functions in `linker`, finding the context through
/// `ctx`: the one implementation behind [`add_to_linker`] and
/// [`add_to_linker_shared`] (see the former for the four functions that
/// do more than call wasi-common).
fn define_all<T: 'static, C: Context<T>>(linker: &mut Linker<T>, ctx: C) -> Result<(), LinkError> {
    with_functions!(define!(linker, ctx;));

    let c = ctx.clone();
    linker.func_wrap(
        MODULE,
        "fd_renumber",
        move |mut caller: Caller<'_, T>, from: i32, to: i32| -> Result<i32, Error> {
            with_guest(&mut caller, &c, |cx, memory| {
                if !cx.table().contains_key(to as u32) {
                    return Ok(Errno::Badf as i32);
                }
                finish(
                    "fd_renumber",
                    wiggle::run_in_dummy_executor(p1::fd_renumber(cx, memory, from, to)),
                )
            })
        },
    )?;

    let c = ctx.clone();
    linker.func_wrap(
        MODULE,
        "sock_shutdown",
        move |mut caller: Caller<'_, T>, fd: i32, how: i32| -> Result<i32, Error> {
            with_guest(&mut caller, &c, |cx, memory| {
                let stat =
                    wiggle::run_in_dummy_executor(cx.fd_fdstat_get(memory, Fd::from(fd as u32)));
                match trait_call("sock_shutdown", stat)? {
                    Err(errno) => return Ok(errno),
                    Ok(st)
                        if !matches!(
                            st.fs_filetype,
                            Filetype::SocketStream | Filetype::SocketDgram
                        ) =>
                    {
                        return Ok(Errno::Notsock as i32)
                    }
                    Ok(_) => {}
                }
                finish(
                    "sock_shutdown",
                    wiggle::run_in_dummy_executor(p1::sock_shutdown(cx, memory, fd, how)),
                )
            })
        },
    )?;

    let c = ctx.clone();
    linker.func_wrap(
        MODULE,
        "fd_fdstat_set_rights",
        move |mut caller: Caller<'_, T>,
              fd: i32,
              base: i64,
              inheriting: i64|
              -> Result<i32, Error> {
            with_guest(&mut caller, &c, |cx, memory| {
                let r = wiggle::run_in_dummy_executor(cx.fd_fdstat_set_rights(
                    memory,
                    Fd::from(fd as u32),
                    Rights::from_bits_truncate(base as u64),
                    Rights::from_bits_truncate(inheriting as u64),
                ));
                Ok(match trait_call("fd_fdstat_set_rights", r)? {
                    Err(errno) => errno,
                    Ok(()) => Errno::Notsup as i32,
                })
            })
        },
    )?;

    // `path_open` has nine parameters, more than a typed host function
    // takes: it goes through the `Val` interface. The loader checks the
    // argument types against `ty` before the call.
    use ValType::{I32, I64};
    let ty = FuncType {
        params: vec![I32, I32, I32, I32, I32, I64, I64, I32, I32],
        results: vec![I32],
    };
    let c = ctx;
    linker.func_new(MODULE, "path_open", ty, move |mut caller, args, results| {
        let bad = || Error::msg("path_open: argument of the wrong type");
        let i = |n: usize| args.get(n).and_then(Val::i32).ok_or_else(bad);
        let l = |n: usize| args.get(n).and_then(Val::i64).ok_or_else(bad);
        let (fd, dirflags, path, path_len, oflags) = (i(0)?, i(1)?, i(2)?, i(3)?, i(4)?);
        let (base, inheriting, fdflags, out) = (l(5)?, l(6)?, i(7)?, i(8)?);
        const OFLAGS_TRUNC: i32 = 1 << 3;
        const FDFLAGS_APPEND: i32 = 1 << 0;
        let append_later = oflags & OFLAGS_TRUNC != 0 && fdflags & FDFLAGS_APPEND != 0;
        let open_flags = if append_later {
            fdflags & !FDFLAGS_APPEND
        } else {
            fdflags
        };
        results[0] = Val::I32(with_guest(&mut caller, &c, |cx, memory| {
            let errno = finish(
                "path_open",
                wiggle::run_in_dummy_executor(p1::path_open(
                    cx, memory, fd, dirflags, path, path_len, oflags, base, inheriting, open_flags,
                    out,
                )),
            )?;
            if !append_later || errno != 0 {
                return Ok(errno);
            }
            // path_open succeeded, so `out` is in bounds and holds the fd.
            let GuestMemory::Unshared(bytes) = &*memory else {
                return Err(Error::msg("path_open: shared memories are not supported"));
            };
            let at = out as u32 as usize;
            let new_fd = bytes
                .get(at..at + 4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| Error::msg("path_open: result pointer out of bounds"))?;
            let errno = finish(
                "path_open",
                wiggle::run_in_dummy_executor(p1::fd_fdstat_set_flags(cx, memory, new_fd, fdflags)),
            )?;
            if errno != 0 {
                let _ = finish(
                    "path_open",
                    wiggle::run_in_dummy_executor(p1::fd_close(cx, memory, new_fd)),
                );
            }
            Ok(errno)
        })?);
        Ok(())
    })?;
    Ok(())
}
