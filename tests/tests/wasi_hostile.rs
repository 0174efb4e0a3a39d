//! wasmc-wasi against hostile guests, in-process: a module that imports
//! every `wasi_snapshot_preview1` function and re-exports each as
//! `call_NAME`, so the test writes the guest's memory and calls any
//! function with any arguments. Escapes from a preopen (`..`, absolute
//! paths, symlinks, hard links, renames) fail with Wasmtime's errno and
//! leave the outside untouched; descriptors renumbered onto stdio or a
//! preopen, closed and reused behave; and a seeded fuzzer makes random
//! calls with mostly bad arguments: every call returns an errno in range or
//! traps, the host never panics, and nothing outside the sandbox changes.

use std::path::{Path, PathBuf};
use wasmc_compiler::CompileOptions;
use wasmc_loader::{Engine, Error, Instance, Linker, Memory, Module, Store, Val};
use wasmc_tests::fuzz::Rng;
use wasmc_wasi::pipe::{ReadPipe, WritePipe};
use wasmc_wasi::{WasiCtx, WasiCtxBuilder};

/// Every function: its name and parameter types (`i` i32, `I` i64), all
/// returning an errno but `proc_exit`.
const FUNCTIONS: &[(&str, &str)] = &[
    ("args_get", "ii"),
    ("args_sizes_get", "ii"),
    ("environ_get", "ii"),
    ("environ_sizes_get", "ii"),
    ("clock_res_get", "ii"),
    ("clock_time_get", "iIi"),
    ("fd_advise", "iIIi"),
    ("fd_allocate", "iII"),
    ("fd_close", "i"),
    ("fd_datasync", "i"),
    ("fd_fdstat_get", "ii"),
    ("fd_fdstat_set_flags", "ii"),
    ("fd_fdstat_set_rights", "iII"),
    ("fd_filestat_get", "ii"),
    ("fd_filestat_set_size", "iI"),
    ("fd_filestat_set_times", "iIIi"),
    ("fd_pread", "iiiIi"),
    ("fd_prestat_get", "ii"),
    ("fd_prestat_dir_name", "iii"),
    ("fd_pwrite", "iiiIi"),
    ("fd_read", "iiii"),
    ("fd_readdir", "iiiIi"),
    ("fd_renumber", "ii"),
    ("fd_seek", "iIii"),
    ("fd_sync", "i"),
    ("fd_tell", "ii"),
    ("fd_write", "iiii"),
    ("path_create_directory", "iii"),
    ("path_filestat_get", "iiiii"),
    ("path_filestat_set_times", "iiiiIIi"),
    ("path_link", "iiiiiii"),
    ("path_open", "iiiiiIIii"),
    ("path_readlink", "iiiiii"),
    ("path_remove_directory", "iii"),
    ("path_rename", "iiiiii"),
    ("path_symlink", "iiiii"),
    ("path_unlink_file", "iii"),
    ("poll_oneoff", "iiii"),
    ("proc_exit", "i"),
    ("proc_raise", "i"),
    ("sched_yield", ""),
    ("random_get", "ii"),
    ("sock_accept", "iii"),
    ("sock_recv", "iiiiii"),
    ("sock_send", "iiiii"),
    ("sock_shutdown", "ii"),
];

/// The guest's memory: one page.
const MEMORY: u32 = 65536;

/// The module: every function imported and re-exported as `call_NAME`.
fn guest_wat() -> String {
    let mut imports = String::new();
    let mut exports = String::new();
    for (name, params) in FUNCTIONS {
        let tys: Vec<&str> = params
            .chars()
            .map(|c| if c == 'i' { "i32" } else { "i64" })
            .collect();
        let result = if *name == "proc_exit" {
            ""
        } else {
            "(result i32)"
        };
        imports.push_str(&format!(
            "(import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} (param {}) {result}))\n",
            tys.join(" ")
        ));
        let gets: String = (0..tys.len()).map(|i| format!("(local.get {i})")).collect();
        exports.push_str(&format!(
            "(func (export \"call_{name}\") (param {}) {result} (call ${name} {gets}))\n",
            tys.join(" ")
        ));
    }
    format!("(module {imports} (memory (export \"memory\") 1) {exports})")
}

fn module(engine: &Engine) -> Module {
    let artifact =
        wasmc_compiler::compile(guest_wat().as_bytes(), &CompileOptions::default()).unwrap();
    Module::from_bytes(engine, &artifact).unwrap()
}

/// One instance of the guest with `sandbox` preopened as `/sandbox` (fd 3)
/// and in-memory stdio.
struct Guest {
    store: Store<WasiCtx>,
    instance: Instance,
    memory: Memory,
    /// The length of the second path ([`Guest::second`]).
    second_len: usize,
}

impl Guest {
    fn new(engine: &Engine, module: &Module, sandbox: &Path) -> Guest {
        let mut linker = Linker::<WasiCtx>::new(engine);
        wasmc_wasi::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx).unwrap();
        let wasi = WasiCtxBuilder::new()
            .args(&["guest".to_string(), "arg".to_string()])
            .unwrap()
            .env("K", "V")
            .unwrap()
            .stdin(Box::new(ReadPipe::from("stdin data")))
            .stdout(Box::new(WritePipe::new_in_memory()))
            .stderr(Box::new(WritePipe::new_in_memory()))
            .preopened_dir(wasmc_wasi::open_dir(sandbox).unwrap(), "/sandbox")
            .unwrap()
            .build();
        let mut store = Store::new(engine, wasi);
        let instance = linker.instantiate(&mut store, module).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        Guest {
            store,
            instance,
            memory,
            second_len: 0,
        }
    }

    fn write(&mut self, at: u32, bytes: &[u8]) {
        self.memory
            .write(&mut self.store, at as usize, bytes)
            .unwrap();
    }

    fn read_u32(&mut self, at: u32) -> u32 {
        let mut b = [0; 4];
        self.memory.read(&self.store, at as usize, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    /// Calls `name` with `args`: its errno, or the error it failed with.
    fn call(&mut self, name: &str, args: &[Val]) -> Result<i32, Error> {
        let f = self
            .instance
            .get_func(&mut self.store, &format!("call_{name}"))
            .unwrap();
        let mut results = vec![Val::I32(0); f.ty(&self.store).results.len()];
        f.call(&mut self.store, args, &mut results)?;
        Ok(results.first().and_then(Val::i32).unwrap_or(0))
    }

    /// Calls a path function of the preopen with `path` written at 1024:
    /// `args` with `P` for the pointer and `L` for the length.
    fn path_call(&mut self, name: &str, path: &[u8], args: &[Arg]) -> i32 {
        self.write(1024, path);
        let vals: Vec<Val> = args
            .iter()
            .map(|a| match a {
                Arg::P => Val::I32(1024),
                Arg::L => Val::I32(path.len() as i32),
                Arg::P2 => Val::I32(2048),
                Arg::L2 => Val::I32(self.second_len as i32),
                Arg::I(v) => Val::I32(*v),
                Arg::J(v) => Val::I64(*v),
            })
            .collect();
        self.call(name, &vals)
            .unwrap_or_else(|e| panic!("{name}({path:?}): {e}"))
    }
}

/// An argument of [`Guest::path_call`].
#[derive(Clone, Copy, Debug)]
enum Arg {
    /// The path's pointer and length.
    P,
    L,
    /// The second path's (written by [`Guest::second`]).
    P2,
    L2,
    I(i32),
    J(i64),
}
use Arg::{I, J, L, L2, P, P2};

impl Guest {
    /// Writes a second path at 2048, for the two-path functions.
    fn second(&mut self, path: &[u8]) -> &mut Guest {
        self.write(2048, path);
        self.second_len = path.len();
        self
    }
}

// errno values of preview 1.
const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const ILSEQ: i32 = 25;
const INVAL: i32 = 28;
const LOOP: i32 = 32;
const NOENT: i32 = 44;
const NOTDIR: i32 = 54;
const PERM: i32 = 63;
const ISDIR: i32 = 31;
const EXIST: i32 = 20;
const NOTSUP: i32 = 58;

const FD_SANDBOX: i32 = 3;
const OFLAGS_CREAT: i32 = 1;
const OFLAGS_DIRECTORY: i32 = 2;
const LOOKUP_SYMLINK_FOLLOW: i32 = 1;
const RIGHTS_ALL: i64 = 0x1fff_ffff;

/// `base/sandbox` (preopened) beside `base/outside/secret.txt`, fresh.
fn layout(tag: &str) -> (PathBuf, PathBuf) {
    let base =
        std::env::temp_dir().join(format!("wasmc-wasi-hostile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (sandbox, outside) = (base.join("sandbox"), base.join("outside"));
    std::fs::create_dir_all(sandbox.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::fs::write(sandbox.join("file.txt"), "inside").unwrap();
    (sandbox, outside)
}

/// Everything under `dir`: relative paths, with file contents and link
/// targets, sorted.
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let what = if meta.is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                todo.push(p);
                "dir".to_string()
            } else {
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

/// `path_open` of the preopen: the errno, and the new descriptor on success.
fn open(g: &mut Guest, path: &[u8], dirflags: i32, oflags: i32, rights: i64) -> (i32, i32) {
    let errno = g.path_call(
        "path_open",
        path,
        &[
            I(FD_SANDBOX),
            I(dirflags),
            P,
            L,
            I(oflags),
            J(rights),
            J(rights),
            I(0),
            I(4000),
        ],
    );
    (
        errno,
        if errno == 0 {
            g.read_u32(4000) as i32
        } else {
            -1
        },
    )
}

/// Symlinks the host left in the sandbox: out of it (relative, absolute,
/// to a file), and a loop.
fn plant_symlinks(sandbox: &Path, outside: &Path) {
    use std::os::unix::fs::symlink;
    symlink("../outside", sandbox.join("up")).unwrap();
    symlink(outside, sandbox.join("abs")).unwrap();
    symlink("/etc/passwd", sandbox.join("passwd")).unwrap();
    symlink("loop2", sandbox.join("loop1")).unwrap();
    symlink("loop1", sandbox.join("loop2")).unwrap();
}

#[test]
fn escapes_from_the_preopen_fail_with_wasmtimes_errno() {
    let (sandbox, outside) = layout("escape");
    plant_symlinks(&sandbox, &outside);
    let before = snapshot(&outside);
    let engine = Engine::default();
    let mut g = Guest::new(&engine, &module(&engine), &sandbox);
    const FOLLOW: i32 = LOOKUP_SYMLINK_FOLLOW;

    // Opening, for reading and for creating: EPERM, cap-std's answer (and
    // Wasmtime's) for a path that leads outside, however it gets there.
    for (path, oflags) in [
        (&b"../outside/secret.txt"[..], 0),
        (b"/etc/passwd", 0),
        (b"sub/../../outside/secret.txt", 0),
        (b"up/secret.txt", 0),
        (b"abs/secret.txt", 0),
        (b"passwd", 0),
        (b"../outside/new.txt", OFLAGS_CREAT),
        (b"up/new.txt", OFLAGS_CREAT),
    ] {
        let (errno, _) = open(&mut g, path, FOLLOW, oflags, RIGHTS_ALL);
        assert_eq!(errno, PERM, "{}", String::from_utf8_lossy(path));
    }
    // Not following the last symlink: O_NOFOLLOW's ELOOP; a loop: ELOOP.
    assert_eq!(open(&mut g, b"passwd", 0, 0, RIGHTS_ALL).0, LOOP);
    assert_eq!(open(&mut g, b"loop1", FOLLOW, 0, RIGHTS_ALL).0, LOOP);
    // Paths that are not paths.
    assert_eq!(open(&mut g, b"\xff\xfe", FOLLOW, 0, RIGHTS_ALL).0, ILSEQ);
    assert_eq!(open(&mut g, b"a\0b", FOLLOW, 0, RIGHTS_ALL).0, INVAL);
    assert_eq!(open(&mut g, b"", FOLLOW, 0, RIGHTS_ALL).0, NOENT);

    // Every other path function, on a path that leads outside.
    for (name, path, second, args) in [
        (
            "path_create_directory",
            &b"../outside/d"[..],
            &b""[..],
            vec![I(3), P, L],
        ),
        ("path_create_directory", b"up/d", b"", vec![I(3), P, L]),
        // An absolute symlink is refused even inside (a program outside
        // the sandbox might follow it); a relative one may point anywhere,
        // since following it is checked (below).
        (
            "path_symlink",
            b"/etc/passwd",
            b"new_link",
            vec![P, L, I(3), P2, L2],
        ),
        (
            "path_symlink",
            b"x",
            b"../outside/link",
            vec![P, L, I(3), P2, L2],
        ),
        (
            "path_link",
            b"../outside/secret.txt",
            b"hard",
            vec![I(3), I(0), P, L, I(3), P2, L2],
        ),
        (
            "path_link",
            b"up/secret.txt",
            b"hard",
            vec![I(3), I(0), P, L, I(3), P2, L2],
        ),
        (
            "path_link",
            b"file.txt",
            b"../outside/hard",
            vec![I(3), I(0), P, L, I(3), P2, L2],
        ),
        (
            "path_rename",
            b"../outside/secret.txt",
            b"stolen",
            vec![I(3), P, L, I(3), P2, L2],
        ),
        (
            "path_rename",
            b"up/secret.txt",
            b"stolen",
            vec![I(3), P, L, I(3), P2, L2],
        ),
        (
            "path_rename",
            b"file.txt",
            b"../outside/moved",
            vec![I(3), P, L, I(3), P2, L2],
        ),
        (
            "path_rename",
            b"file.txt",
            b"up/moved",
            vec![I(3), P, L, I(3), P2, L2],
        ),
        (
            "path_unlink_file",
            b"../outside/secret.txt",
            b"",
            vec![I(3), P, L],
        ),
        ("path_unlink_file", b"up/secret.txt", b"", vec![I(3), P, L]),
        (
            "path_remove_directory",
            b"../outside",
            b"",
            vec![I(3), P, L],
        ),
        (
            "path_filestat_get",
            b"up",
            b"",
            vec![I(3), I(FOLLOW), P, L, I(4096)],
        ),
        (
            "path_filestat_get",
            b"../outside",
            b"",
            vec![I(3), I(0), P, L, I(4096)],
        ),
        (
            "path_filestat_set_times",
            b"up/secret.txt",
            b"",
            vec![I(3), I(FOLLOW), P, L, J(0), J(0), I(5)],
        ),
        // An absolute link's target is not shown (cap-std, as Wasmtime).
        (
            "path_readlink",
            b"abs",
            b"",
            vec![I(3), P, L, I(4096), I(100), I(4000)],
        ),
    ] {
        let errno = g.second(second).path_call(name, path, &args);
        let (path, second) = (
            String::from_utf8_lossy(path),
            String::from_utf8_lossy(second),
        );
        assert_eq!(errno, PERM, "{name} {path} {second}");
    }
    // Hard links never follow symlinks (wasi-common, as Wasmtime: EINVAL).
    let errno = g.second(b"hard").path_call(
        "path_link",
        b"up/secret.txt",
        &[I(3), I(FOLLOW), P, L, I(3), P2, L2],
    );
    assert_eq!(errno, INVAL);
    // A relative symlink out can be made and read, not followed.
    let errno = g.second(b"rel_out").path_call(
        "path_symlink",
        b"../outside/secret.txt",
        &[P, L, I(3), P2, L2],
    );
    assert_eq!(errno, SUCCESS);
    assert_eq!(open(&mut g, b"rel_out", FOLLOW, 0, RIGHTS_ALL).0, PERM);
    let errno = g.path_call(
        "path_readlink",
        b"up",
        &[I(3), P, L, I(4096), I(100), I(4000)],
    );
    assert_eq!(errno, SUCCESS);
    let n = g.read_u32(4000) as usize;
    let mut target = vec![0; n];
    g.memory.read(&g.store, 4096, &mut target).unwrap();
    assert_eq!(target, b"../outside");

    drop(g);
    assert_eq!(snapshot(&outside), before);
    assert!(!sandbox.join("hard").exists() && !sandbox.join("stolen").exists());
}

#[test]
fn descriptors_renumbered_closed_and_misused() {
    let (sandbox, _) = layout("fds");
    let engine = Engine::default();
    let mut g = Guest::new(&engine, &module(&engine), &sandbox);
    let call = |g: &mut Guest, name: &str, args: &[Arg]| g.path_call(name, b"", args);

    // Directories as files, files as directories.
    assert_eq!(call(&mut g, "fd_read", &[I(3), I(0), I(0), I(4000)]), BADF);
    assert_eq!(call(&mut g, "fd_write", &[I(3), I(0), I(0), I(4000)]), BADF);
    assert_eq!(call(&mut g, "fd_seek", &[I(3), J(0), I(0), I(4000)]), BADF);
    assert_eq!(
        open(&mut g, b"file.txt", 0, OFLAGS_DIRECTORY, RIGHTS_ALL).0,
        NOTDIR
    );
    assert_eq!(open(&mut g, b"file.txt/", 0, 0, RIGHTS_ALL).0, NOTDIR);
    assert_eq!(open(&mut g, b"sub", 0, 0, RIGHTS_ALL).0, ISDIR);
    let errno = g.path_call("path_unlink_file", b"sub", &[I(3), P, L]);
    assert_eq!(errno, ISDIR);
    let errno = g.path_call("path_remove_directory", b"file.txt", &[I(3), P, L]);
    assert_eq!(errno, NOTDIR);
    let errno = g.path_call("path_create_directory", b"file.txt", &[I(3), P, L]);
    assert_eq!(errno, EXIST);
    let (errno, file) = open(&mut g, b"file.txt", 0, 0, RIGHTS_ALL);
    assert_eq!(errno, SUCCESS);
    // Listing a file: wasi-common's EBADF (Wasmtime's newer preview-1
    // implementation says ENOTDIR; both are errors).
    assert_eq!(
        call(
            &mut g,
            "fd_readdir",
            &[I(file), I(4096), I(100), J(0), I(4000)]
        ),
        BADF
    );
    let errno = g.path_call(
        "path_open",
        b"x",
        &[I(file), I(0), P, L, I(0), J(0), J(0), I(0), I(4000)],
    );
    assert_eq!(errno, NOTDIR);

    // Renumbering needs both descriptors open (Wasmtime: EBADF).
    assert_eq!(call(&mut g, "fd_renumber", &[I(0), I(100)]), BADF);
    assert_eq!(call(&mut g, "fd_renumber", &[I(100), I(1)]), BADF);
    assert_eq!(call(&mut g, "fd_renumber", &[I(3), I(3)]), SUCCESS);
    assert_eq!(call(&mut g, "fd_prestat_get", &[I(3), I(4000)]), SUCCESS);
    // A file opened read-only, renumbered onto stdout, is still read-only.
    let (errno, ro) = open(&mut g, b"file.txt", 0, 0, 0x2 /* FD_READ */);
    assert_eq!(errno, SUCCESS);
    assert_eq!(call(&mut g, "fd_renumber", &[I(ro), I(1)]), SUCCESS);
    g.write(0, &[16, 0, 0, 0, 4, 0, 0, 0]);
    assert_eq!(call(&mut g, "fd_write", &[I(1), I(0), I(1), I(4000)]), BADF);
    assert_eq!(call(&mut g, "fd_fdstat_get", &[I(ro), I(4000)]), BADF);
    // stdout renumbered onto the preopen replaces it: no more paths.
    assert_eq!(call(&mut g, "fd_renumber", &[I(2), I(3)]), SUCCESS);
    assert_eq!(call(&mut g, "fd_prestat_get", &[I(3), I(4000)]), BADF);
    assert_eq!(open(&mut g, b"file.txt", 0, 0, RIGHTS_ALL).0, NOTDIR);
    // Closed descriptors stay closed.
    assert_eq!(call(&mut g, "fd_close", &[I(3)]), SUCCESS);
    assert_eq!(call(&mut g, "fd_close", &[I(3)]), BADF);
    assert_eq!(call(&mut g, "fd_close", &[I(file)]), SUCCESS);
    assert_eq!(call(&mut g, "fd_filestat_get", &[I(file), I(4000)]), BADF);
    assert_eq!(open(&mut g, b"file.txt", 0, 0, RIGHTS_ALL).0, BADF);
    drop(g);
    assert_eq!(
        std::fs::read_to_string(sandbox.join("file.txt")).unwrap(),
        "inside"
    );
}

#[test]
fn path_open_with_trunc_and_append_appends() {
    // O_TRUNC with FDFLAGS_APPEND is opened without append, which is then
    // set (std's open options refuse the pair: `preview1.rs`), keeping
    // NONBLOCK; the SYNC family is refused at open (ENOTSUP, wasi-common).
    let (sandbox, _) = layout("trunc-append");
    let engine = Engine::default();
    let mut g = Guest::new(&engine, &module(&engine), &sandbox);
    const TRUNC: i32 = 1 << 3;
    const APPEND: i32 = 1;
    const DSYNC: i32 = 1 << 1;
    const NONBLOCK: i32 = 1 << 2;
    for fdflags in [APPEND, APPEND | NONBLOCK] {
        std::fs::write(sandbox.join("log.txt"), "old contents").unwrap();
        let errno = g.path_call(
            "path_open",
            b"log.txt",
            &[
                I(3),
                I(0),
                P,
                L,
                I(TRUNC),
                J(RIGHTS_ALL),
                J(RIGHTS_ALL),
                I(fdflags),
                I(4000),
            ],
        );
        assert_eq!(errno, SUCCESS, "fdflags {fdflags:#x}");
        let fd = g.read_u32(4000) as i32;
        // fdstat: the flags are at offset 2.
        assert_eq!(
            g.path_call("fd_fdstat_get", b"", &[I(fd), I(4096)]),
            SUCCESS
        );
        let mut flags = [0; 2];
        g.memory.read(&g.store, 4098, &mut flags).unwrap();
        assert_eq!(i32::from(flags[0]), fdflags);
        // Two writes after a seek to the start both append.
        g.write(0, &[16, 0, 0, 0, 3, 0, 0, 0]);
        g.write(16, b"abc");
        for _ in 0..2 {
            assert_eq!(
                g.path_call("fd_seek", b"", &[I(fd), J(0), I(0), I(4000)]),
                SUCCESS
            );
            assert_eq!(
                g.path_call("fd_write", b"", &[I(fd), I(0), I(1), I(4000)]),
                SUCCESS
            );
        }
        assert_eq!(g.path_call("fd_close", b"", &[I(fd)]), SUCCESS);
        assert_eq!(
            std::fs::read_to_string(sandbox.join("log.txt")).unwrap(),
            "abcabc"
        );
    }
    let errno = g.path_call(
        "path_open",
        b"log.txt",
        &[
            I(3),
            I(0),
            P,
            L,
            I(TRUNC),
            J(RIGHTS_ALL),
            J(RIGHTS_ALL),
            I(APPEND | DSYNC),
            I(4000),
        ],
    );
    assert_eq!(errno, NOTSUP);
}

// ----- the fuzzer -----

/// Where the fuzzer lays out what it writes before each call.
const PATH1: u32 = 1024;
const PATH2: u32 = 2048;
const RESULT: u32 = 4000;
const IOVS: u32 = 4096;
const SUBS: u32 = 12288;
const BUFS: u32 = 16384;

/// Paths a hostile program tries: escapes, odd forms, and names inside.
const PATHS: &[&[u8]] = &[
    b"file.txt",
    b"sub",
    b"sub/new",
    b"new.txt",
    b"link",
    b"up",
    b"up/secret.txt",
    b"passwd",
    b"loop1",
    b"..",
    b"../outside",
    b"../outside/secret.txt",
    b"../outside/new",
    b"sub/../../outside/secret.txt",
    b"/etc/passwd",
    b"/",
    b".",
    b"",
    b"sub/",
    b"file.txt/",
    b"\xff\xfe",
    b"a\0b",
    b"sub/./../sub//new",
    b"../sandbox/file.txt",
];

/// What each parameter of a function is, for the fuzzer: `f` a
/// descriptor, `r` a result pointer, `b`/`l` a buffer and its length,
/// `s`/`t` the first/second path (pointer and length: two parameters),
/// `v`/`n` an iovec array and its count, `F` flags or an enum, `R` rights,
/// `I` a 64-bit size, offset or time, `S`/`e` subscriptions and events.
const SHAPES: &[(&str, &str)] = &[
    ("args_get", "bb"),
    ("args_sizes_get", "rr"),
    ("environ_get", "bb"),
    ("environ_sizes_get", "rr"),
    ("clock_res_get", "Fr"),
    ("clock_time_get", "FIr"),
    ("fd_advise", "fIIF"),
    ("fd_allocate", "fII"),
    ("fd_close", "f"),
    ("fd_datasync", "f"),
    ("fd_fdstat_get", "fr"),
    ("fd_fdstat_set_flags", "fF"),
    ("fd_fdstat_set_rights", "fRR"),
    ("fd_filestat_get", "fr"),
    ("fd_filestat_set_size", "fI"),
    ("fd_filestat_set_times", "fIIF"),
    ("fd_pread", "fvnIr"),
    ("fd_prestat_get", "fr"),
    ("fd_prestat_dir_name", "fbl"),
    ("fd_pwrite", "fvnIr"),
    ("fd_read", "fvnr"),
    ("fd_readdir", "fblIr"),
    ("fd_renumber", "ff"),
    ("fd_seek", "fIFr"),
    ("fd_sync", "f"),
    ("fd_tell", "fr"),
    ("fd_write", "fvnr"),
    ("path_create_directory", "fs"),
    ("path_filestat_get", "fFsr"),
    ("path_filestat_set_times", "fFsIIF"),
    ("path_link", "fFsft"),
    ("path_open", "fFsFRRFr"),
    ("path_readlink", "fsblr"),
    ("path_remove_directory", "fs"),
    ("path_rename", "fsft"),
    ("path_symlink", "sft"),
    ("path_unlink_file", "fs"),
    ("poll_oneoff", "Sern"),
    ("proc_exit", "F"),
    ("proc_raise", "F"),
    ("sched_yield", ""),
    ("random_get", "bl"),
    ("sock_accept", "fFr"),
    ("sock_recv", "fvnFrr"),
    ("sock_send", "fvnFr"),
    ("sock_shutdown", "fF"),
];

/// The arguments of one call of a function of shape `shape`: mostly of the
/// kind the parameter takes (an open descriptor, the laid-out path with
/// its length, a small count), one in eight hostile (out of bounds,
/// misaligned, huge, negative, a path's length that is not its own).
fn args(rng: &mut Rng, shape: &str, fds: &[i32], paths: [usize; 2]) -> Vec<Val> {
    let mut out = Vec::new();
    for kind in shape.chars() {
        let bad = rng.chance(1, 8);
        let hostile = |rng: &mut Rng| -> i32 {
            match rng.below(6) {
                0 => -1,
                1 => MEMORY as i32,
                2 => (MEMORY - rng.range(1, 7)) as i32,
                3 => rng.next_u64() as i32,
                4 => rng.below(MEMORY) as i32 | 1,
                _ => 0,
            }
        };
        match kind {
            'f' if bad => out.push(Val::I32(hostile(rng))),
            'f' if rng.chance(1, 2) => out.push(Val::I32(3)),
            'f' => out.push(Val::I32(fds[rng.index(fds.len())])),
            'r' | 'b' | 'v' | 'S' | 'e' if bad => out.push(Val::I32(hostile(rng))),
            'r' => out.push(Val::I32(RESULT as i32)),
            'b' => out.push(Val::I32((BUFS + 8 * rng.below(512)) as i32)),
            'v' => out.push(Val::I32((IOVS + 8 * rng.below(4)) as i32)),
            'S' => out.push(Val::I32(SUBS as i32)),
            'e' => out.push(Val::I32((BUFS + 8 * rng.below(64)) as i32)),
            'l' | 'n' if bad => out.push(Val::I32(hostile(rng))),
            'l' => out.push(Val::I32(rng.below(512) as i32)),
            'n' => out.push(Val::I32(rng.below(9) as i32)),
            's' | 't' => {
                let (at, len) = if kind == 's' {
                    (PATH1, paths[0])
                } else {
                    (PATH2, paths[1])
                };
                if bad {
                    out.push(Val::I32(hostile(rng)));
                    out.push(Val::I32(hostile(rng)));
                } else {
                    out.push(Val::I32(at as i32));
                    out.push(Val::I32(len as i32));
                }
            }
            'F' if bad => out.push(Val::I32(rng.next_u64() as i32)),
            // Flags and enums: 0 and 1 are valid for all, larger values
            // for some.
            'F' => out.push(Val::I32(match rng.below(4) {
                0 | 1 => 0,
                2 => 1,
                _ => rng.below(16) as i32,
            })),
            'R' => out.push(Val::I64(match rng.below(8) {
                0 => 0,
                1 => rng.next_u64() as i64,
                _ => RIGHTS_ALL,
            })),
            'I' => out.push(Val::I64(match rng.below(8) {
                0 => 0,
                1 => i64::from(rng.below(4096)),
                2 => 1 << 20,
                3 => -1,
                4 => i64::MAX,
                5 => i64::MIN,
                _ => i64::from(rng.below(64)),
            })),
            other => unreachable!("shape {other}"),
        }
    }
    out
}

/// Lays out the areas of one call: two paths, iovecs into `BUFS` (some
/// running out of memory), and subscriptions whose clocks wait at most a
/// millisecond (a random timeout would sleep for centuries).
fn lay_out(g: &mut Guest, rng: &mut Rng, fds: &[i32]) -> [usize; 2] {
    let p1 = PATHS[rng.index(PATHS.len())];
    let p2 = PATHS[rng.index(PATHS.len())];
    g.write(PATH1, p1);
    g.write(PATH2, p2);
    let mut iovs = Vec::new();
    for _ in 0..8 {
        let (buf, len) = match rng.below(10) {
            0 => (MEMORY - 4, 100),
            1 => (rng.next_u64() as u32, rng.next_u64() as u32),
            _ => (BUFS + rng.below(4096), rng.below(512)),
        };
        iovs.extend(buf.to_le_bytes());
        iovs.extend(len.to_le_bytes());
    }
    g.write(IOVS, &iovs);
    // A subscription is 48 bytes: userdata, tag (0 clock, 1 read, 2 write),
    // then a clock {id u32 @16, timeout u64 @24, precision @32, flags u16
    // @40} or an fd (u32 @16).
    let mut subs = vec![0u8; 48 * 8];
    for s in subs.chunks_mut(48) {
        s[8] = rng.below(4) as u8;
        if s[8] == 0 {
            s[16..20].copy_from_slice(&rng.below(5).to_le_bytes());
            s[24..32].copy_from_slice(&u64::from(rng.below(1_000_000)).to_le_bytes());
            s[40..42].copy_from_slice(&(rng.below(3) as u16).to_le_bytes());
        } else {
            s[16..20].copy_from_slice(&fds[rng.index(fds.len())].to_le_bytes());
        }
    }
    g.write(SUBS, &subs);
    [p1.len(), p2.len()]
}

/// One fuzz case: `calls` random calls on a fresh sandbox. Panics (naming
/// the seed and the last calls) if a call panics the host, returns an
/// errno out of range or an error that is not a host function's, or if
/// anything outside the sandbox changed.
fn fuzz_case(engine: &Engine, module: &Module, seed: u64, calls: usize) {
    let (sandbox, outside) = layout(&format!("fuzz-{seed}"));
    plant_symlinks(&sandbox, &outside);
    let base = sandbox.parent().unwrap().to_path_buf();
    let before = snapshot(&outside);
    let mut rng = Rng::new(seed);
    let mut g = Guest::new(engine, module, &sandbox);
    let mut fds = vec![0, 1, 2, 3];
    let mut trace: Vec<String> = Vec::new();
    for i in 0..calls {
        // path_open, the door to everything else, a sixth of the time.
        let name = if rng.chance(1, 6) {
            "path_open"
        } else {
            FUNCTIONS[rng.index(FUNCTIONS.len())].0
        };
        // A fresh context now and then: the preopen may have been closed.
        if i % 50 == 49 {
            g = Guest::new(engine, module, &sandbox);
            fds.truncate(4);
        }
        if name == "proc_exit" && !rng.chance(1, 20) {
            continue;
        }
        let shape = SHAPES.iter().find(|(n, _)| *n == name).unwrap().1;
        let paths = lay_out(&mut g, &mut rng, &fds);
        let mut args = args(&mut rng, shape, &fds, paths);
        // Closing or replacing the preopen ends most of what can follow:
        // rarely.
        if matches!(name, "fd_close" | "fd_renumber")
            && args.iter().any(|a| a.i32() == Some(3))
            && !rng.chance(1, 10)
        {
            for a in args.iter_mut().filter(|a| a.i32() == Some(3)) {
                *a = Val::I32(fds[rng.index(fds.len())].max(4));
            }
        }
        trace.push(format!("{name}{args:?}"));
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.call(name, &args)));
        let context = || {
            format!(
                "seed {seed}, calls:\n  {}",
                trace[trace.len().saturating_sub(8)..].join("\n  ")
            )
        };
        match outcome {
            Err(_) => panic!("the host panicked; {}", context()),
            Ok(Ok(errno)) => {
                assert!((0..=76).contains(&errno), "errno {errno}; {}", context());
                if errno == 0 {
                    let fd = g.read_u32(RESULT) as i32;
                    if (0..1000).contains(&fd) && !fds.contains(&fd) {
                        fds.push(fd);
                    }
                }
            }
            Ok(Err(e)) => {
                assert!(
                    matches!(e, Error::Host(_)),
                    "not a host function's error: {e}; {}",
                    context()
                );
                assert!(!e.to_string().is_empty());
            }
        }
    }
    drop(g);
    assert_eq!(snapshot(&outside), before, "seed {seed}");
    let mut top: Vec<String> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["outside", "sandbox"], "seed {seed}");
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn fuzz_random_calls_with_bad_arguments() {
    let engine = Engine::default();
    let m = module(&engine);
    // WASMC_WASI_FUZZ=N runs N seeds (from WASMC_WASI_FUZZ_SEED, default 0).
    let seeds: u64 = std::env::var("WASMC_WASI_FUZZ")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    let first: u64 = std::env::var("WASMC_WASI_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for seed in first..first + seeds {
        fuzz_case(&engine, &m, seed, 300);
    }
}
