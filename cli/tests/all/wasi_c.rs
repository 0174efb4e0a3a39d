//! WASI programs written in C (`cli/tests/wasi/cases.c`, built here with
//! `clang --target=wasm32-wasi` against Debian's wasi-libc) run through
//! `wasmc run`: stdio, stdin, arguments and environment with spaces and
//! UTF-8, exit statuses, files in a preopened directory, attempts to
//! escape it, 1 MiB of output, memory growth past 64 MiB, a trap, and
//! `--timeout`/`--fuel` on a WASI program (also one blocked in a host
//! call, and one that exits 124/125 itself).
//!
//! clang, lld, wasi-libc and the wasm32 compiler runtime must be installed
//! (`.ci/run` installs them); without them these tests fail, naming the
//! packages.

use crate::common::{self, tmp_dir, wasmc, wasmc_compile};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Builds the C program `src` for wasm32-wasi into `wasm`.
fn clang_wasi(src: &Path, wasm: &Path) {
    let out = Command::new("clang")
        .args([
            "--target=wasm32-wasi",
            "-O2",
            "-Wall",
            "-Werror",
            "-Wl,--strip-all",
            "-o",
        ])
        .arg(wasm)
        .arg(src)
        .output()
        .unwrap_or_else(|e| {
            panic!("running clang: {e}: install clang lld wasi-libc libclang-rt-dev-wasm32")
        });
    assert!(
        out.status.success(),
        "clang --target=wasm32-wasi failed (are clang lld wasi-libc \
         libclang-rt-dev-wasm32 installed?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cases.c` as a .wasm and as an artifact, built once per test binary.
fn cases() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tmp_dir("wasi-c");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasi/cases.c");
        let wasm = dir.join("cases.wasm");
        clang_wasi(&src, &wasm);
        let artifact = dir.join("cases.o");
        wasmc_compile(&wasm, &artifact, &[]);
        (wasm, artifact)
    })
}

/// `wasmc run OPTS... ARTIFACT ARGS...` with `stdin` as standard input.
fn run_with(opts: &[&str], args: &[&str], stdin: &[u8]) -> Output {
    run_module(&cases().1, opts, args, stdin)
}

/// `wasmc run OPTS... MODULE ARGS...` with `stdin` as standard input.
fn run_module(module: &Path, opts: &[&str], args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmc"))
        .arg("run")
        .args(opts)
        .arg(module)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wasmc");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child.wait_with_output().expect("wait for wasmc");
    writer.join().unwrap().expect("write stdin");
    out
}

fn run(opts: &[&str], args: &[&str]) -> Output {
    run_with(opts, args, b"")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn arguments_and_environment_with_spaces_and_utf8() {
    let o = run(
        &[
            "--env",
            "GREETING=hello world",
            "--env",
            "ÜNÏCODE=čšž ✓ 日本",
        ],
        &[
            "echo",
            "two words",
            "ünïcödé ✓",
            "--not-an-option",
            "",
            "--invoke",
            "f",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // MODULE's file name only, as `wasmtime run` gives it.
    let argv0 = cases().1.file_name().unwrap().to_string_lossy().to_string();
    assert!(!argv0.contains('/'), "{argv0}");
    assert_eq!(
        text(&o.stdout),
        format!(
            "arg 0 [{argv0}]\narg 1 [echo]\narg 2 [two words]\narg 3 [ünïcödé ✓]\n\
             arg 4 [--not-an-option]\narg 5 []\narg 6 [--invoke]\narg 7 [f]\n\
             env [GREETING=hello world]\n\
             env [ÜNÏCODE=čšž ✓ 日本]\n"
        )
    );
    // Nothing of wasmc's own environment leaks in.
    let o = run(&[], &["echo"]);
    assert!(!text(&o.stdout).contains("env ["), "{}", text(&o.stdout));
}

#[test]
fn argv0_is_the_file_name_or_what_argv0_says() {
    let o = run(&["--argv0", "prog name ✓"], &["echo", "x"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("arg 0 [prog name ✓]\narg 1 [echo]\narg 2 [x]\n"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn stdout_stderr_and_stdin() {
    let o = run(&[], &["stdio"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "to stdout\n");
    assert_eq!(text(&o.stderr), "to stderr\n");

    let input = "hello wasi\nsecond line ✓\n".repeat(1000);
    let o = run_with(&[], &["cat"], input.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), input.to_ascii_uppercase());
    assert_eq!(text(&o.stderr), format!("read {} bytes\n", input.len()));
}

#[test]
fn exit_statuses_are_the_programs() {
    for code in ["0", "1", "7", "42", "125"] {
        let o = run(&[], &["exit", code]);
        assert_eq!(o.status.code(), Some(code.parse().unwrap()), "exit({code})");
        assert_eq!(text(&o.stderr), "", "exit({code})");
        let o = run(&[], &["return", code]);
        assert_eq!(
            o.status.code(),
            Some(code.parse().unwrap()),
            "return {code}"
        );
    }
    // WASI statuses stop at 125; wasi-common makes a larger one a trap.
    let o = run(&[], &["exit", "126"]);
    assert_eq!(o.status.code(), Some(134));
    assert!(
        text(&o.stderr).contains("exit status"),
        "{}",
        text(&o.stderr)
    );
    // A usage message from the program itself, with its status.
    let o = run(&[], &[]);
    assert_eq!(o.status.code(), Some(64));
    assert_eq!(text(&o.stderr), "usage: cases CASE [ARGS]\n");
}

#[test]
fn a_trap_prints_trap_and_backtrace_with_status_134() {
    let o = run(&[], &["trap"]);
    assert_eq!(o.status.code(), Some(134));
    let err = text(&o.stderr);
    assert!(err.contains("wasm trap: unreachable"), "{err}");
    assert!(err.contains("wasm backtrace:"), "{err}");
    assert!(err.contains("calling `_start`"), "{err}");
}

#[test]
fn files_in_a_preopened_directory() {
    let dir = tmp_dir("wasi-c").join("files");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("given.txt"), "from the host\n").unwrap();
    let opt = format!("{}::/sandbox", dir.display());
    let o = run(&["--dir", &opt], &["files", "/sandbox"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert_eq!(text(&o.stdout), "files ok\n");
    // What the guest left, seen from the host.
    assert_eq!(
        std::fs::read_to_string(dir.join("given.txt")).unwrap(),
        "from the guest\n"
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["given.txt"]);

    // HOST_DIR alone is mapped under its own name.
    let dir2 = dir.join("plain");
    std::fs::create_dir(&dir2).unwrap();
    std::fs::write(dir2.join("given.txt"), "from the host\n").unwrap();
    let d = dir2.display().to_string();
    let o = run(&["--dir", &d], &["files", &d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

#[test]
fn escaping_the_preopen_fails_with_the_wasi_error() {
    let base = tmp_dir("wasi-c").join("escape");
    let _ = std::fs::remove_dir_all(&base);
    let (sandbox, outside) = (base.join("sandbox"), base.join("outside"));
    std::fs::create_dir_all(sandbox.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    // Symlinks the host left in the sandbox: relative up and out, absolute.
    std::os::unix::fs::symlink("../outside", sandbox.join("up")).unwrap();
    std::os::unix::fs::symlink(&outside, sandbox.join("abs")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", sandbox.join("passwd")).unwrap();
    std::os::unix::fs::symlink("sub/../../outside/secret.txt", sandbox.join("tricky")).unwrap();

    let opt = format!("{}::/sandbox", sandbox.display());
    let paths = [
        // `..` out of the preopen, directly and after a real directory.
        "/sandbox/../outside/secret.txt",
        "/sandbox/sub/../../outside/secret.txt",
        "/sandbox/sub/../../outside/created.txt",
        // Symlinks pointing out.
        "/sandbox/up/secret.txt",
        "/sandbox/up/created.txt",
        "/sandbox/abs/secret.txt",
        "/sandbox/passwd",
        "/sandbox/tricky",
    ];
    let mut args = vec!["escape"];
    args.extend(paths);
    let o = run(&["--dir", &opt], &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), paths.len(), "{out}");
    for (line, path) in lines.iter().zip(paths) {
        // strerror(EPERM): the WASI error cap-std's resolution gives a
        // path that leads outside its preopen (as in Wasmtime), for reading
        // and for creating alike.
        assert_eq!(
            *line,
            format!("{path}: Operation not permitted / Operation not permitted")
        );
    }
    // Paths under no preopen: wasi-libc finds no directory to resolve them
    // in (ENOTCAPABLE) and never calls the host.
    let o = run(
        &["--dir", &opt],
        &[
            "escape",
            "/etc/passwd",
            "/outside/secret.txt",
            "../outside/secret.txt",
        ],
    );
    assert_eq!(
        text(&o.stdout),
        "/etc/passwd: Capabilities insufficient / Capabilities insufficient\n\
         /outside/secret.txt: Capabilities insufficient / Capabilities insufficient\n\
         ../outside/secret.txt: Capabilities insufficient / Capabilities insufficient\n"
    );
    // Nothing was created outside.
    let mut names: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["secret.txt"]);
}

#[test]
fn one_mebibyte_of_output() {
    let o = run(&[], &["bigout"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout.len(), 1 << 20);
    for (i, line) in text(&o.stdout).lines().enumerate() {
        let fill = char::from(b'a' + (i % 26) as u8).to_string().repeat(55);
        assert_eq!(line, format!("{i:08}{fill}"), "line {i}");
    }
}

#[test]
fn memory_grows_past_64_mib() {
    let o = run(&[], &["grow"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let out = text(&o.stdout);
    let mib: u32 = out
        .strip_prefix("grew to ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(mib >= 100, "{out}");
    // sum over i in steps of 4096 of (i*7 mod 256) + ((n-1-i)*7 mod 256)
    let n: usize = 100 << 20;
    let sum: u32 = (0..n)
        .step_by(4096)
        .map(|i| u32::from((i * 7) as u8) + u32::from(((n - 1 - i) * 7) as u8))
        .sum();
    assert!(out.ends_with(&format!("checksum {sum}\n")), "{out}");
}

#[test]
fn wasm_and_wat_run_directly() {
    // The .wasm itself, compiled in memory.
    let o = Command::new(env!("CARGO_BIN_EXE_wasmc"))
        .args(["run"])
        .arg(&cases().0)
        .args(["exit", "9"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(9), "{}", text(&o.stderr));
    // The README's hello.wat.
    let hello = common::example("hello.wat");
    let o = wasmc(&["run", hello.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "Hello, WASI!\n");
    // The README's hello.c, as the README builds and runs it.
    let wasm = tmp_dir("wasi-c").join("hello.wasm");
    clang_wasi(&common::example("hello.c"), &wasm);
    let wasm = wasm.to_str().unwrap();
    let o = wasmc(&["run", wasm]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "Hello, WASI!\n");
    let o = wasmc(&["run", "--env", "LANG=C", wasm, "second arg"]);
    assert_eq!(text(&o.stdout), "Hello, second arg!\n");
}

#[test]
fn timeout_and_fuel_stop_a_wasi_program() {
    let wasm = &cases().0;
    let t0 = Instant::now();
    let o = run_module(wasm, &["--timeout", "1s"], &["spin"], b"");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(142), "{err}");
    assert_eq!(text(&o.stdout), "spinning\n");
    assert!(err.contains("--timeout 1s expired"), "{err}");
    assert!(err.contains("wasm trap: interrupt"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());

    let o = run_module(wasm, &["--fuel", "1000000"], &["spin"], b"");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(152), "{err}");
    assert_eq!(text(&o.stdout), "spinning\n");
    assert!(err.contains("all 1000000 units of --fuel"), "{err}");
    assert!(err.contains("all fuel consumed"), "{err}");
}

#[test]
fn timeout_ends_a_program_blocked_in_a_host_call() {
    // Sleeping in poll_oneoff and reading a stdin that never ends reach no
    // epoch check: the watchdog ends the process itself, with the same
    // status, one `--timeout` after plus its grace period.
    let wasm = &cases().0;
    let t0 = Instant::now();
    let o = run_module(wasm, &["--timeout", "1s"], &["sleep", "60"], b"");
    let took = t0.elapsed();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(142), "{err}");
    assert_eq!(text(&o.stdout), "sleeping\n");
    assert!(
        err.contains("--timeout 1s expired") && err.contains("blocked in a host call"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmc"))
        .args(["run", "--timeout", "1s"])
        .arg(wasm)
        .arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wasmc");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"partial input").unwrap();
    // `stdin` stays open until the child has exited.
    let o = child.wait_with_output().expect("wait for wasmc");
    drop(stdin);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(142), "{err}");
    assert!(err.contains("blocked in a host call"), "{err}");

    // A sleep that ends before the timeout is not disturbed.
    let o = run_module(wasm, &["--timeout", "30s"], &["sleep", "1"], b"");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "sleeping\nwoke up\n");
}

#[test]
fn a_programs_own_status_passes_through_under_timeout_and_fuel() {
    // Also 124 and 125, `timeout(1)`'s statuses, which a program may use
    // itself: wasmc's interruptions are 142 and 152 (tested above), so the
    // two never meet.
    let wasm = &cases().0;
    for code in ["124", "125"] {
        let o = run_module(
            wasm,
            &["--timeout", "30s", "--fuel", "100000000"],
            &["exit", code],
            b"",
        );
        assert_eq!(
            o.status.code(),
            Some(code.parse().unwrap()),
            "{}",
            text(&o.stderr)
        );
        assert_eq!(text(&o.stderr), "");
    }
}
