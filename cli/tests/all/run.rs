//! `wasmc run` through the real binary: `--invoke` with i32/i64/f32/f64
//! arguments prints the results one per line; a trap prints the trap and its
//! backtrace and exits 134; without `--invoke` the `_start` or `main`
//! export runs; a wrong argument count or type is a usage error (2);
//! corrupted, truncated, foreign and missing artifacts are errors (126, 127),
//! never panics or signals (`wasmc run` verifies the content hash before
//! running anything), with the same message as `wasmc inspect` and an I/O
//! error printed once; `--timeout` (142) and `--fuel` (152) stop a guest,
//! and need the checks compiled in (128 without). WASI programs, also under
//! `--timeout`/`--fuel`: `wasi_c.rs` and `wasi_testsuite.rs`.

use crate::common::{tmp_dir, wasmc, wasmc_compile};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    tmp_dir("run").join(name)
}

/// Compiles `wat` with the `wasmc compile` command into `name` and returns
/// the artifact's path.
fn compile(name: &str, wat: &str, extra: &[&str]) -> PathBuf {
    let src = tmp(&format!("{name}.wat"));
    std::fs::write(&src, wat).unwrap();
    let out = tmp(&format!("{name}.o"));
    wasmc_compile(&src, &out, extra);
    out
}

/// `wasmc run [OPTIONS] MODULE ARGS...`: `args` may start with wasmc's
/// options (`--invoke NAME`, `--timeout D`, `--fuel N`, each with its
/// value), which go before the module: everything after it is the
/// program's.
fn run(artifact: &Path, args: &[&str]) -> (bool, Option<i32>, String, String) {
    let mut all = vec!["run"];
    let mut args = args;
    while let [opt @ ("--invoke" | "--timeout" | "--fuel"), value, rest @ ..] = args {
        all.extend([*opt, *value]);
        args = rest;
    }
    all.push(artifact.to_str().unwrap());
    all.extend_from_slice(args);
    let o = wasmc(&all);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "wasmc panicked on {args:?}: {stderr}"
    );
    (
        o.status.success(),
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr,
    )
}

const CALC: &str = r#"
(module $calc
  (func $add (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "mul64") (param i64 i64) (result i64)
    (i64.mul (local.get 0) (local.get 1)))
  (func (export "half32") (param f32) (result f32)
    (f32.div (local.get 0) (f32.const 2)))
  (func (export "sqrt64") (param f64) (result f64)
    (f64.sqrt (local.get 0)))
  (func (export "split") (param i64) (result i32 i64 f64)
    (i32.wrap_i64 (local.get 0))
    (i64.shr_u (local.get 0) (i64.const 32))
    (f64.convert_i64_s (local.get 0)))
  (func (export "nothing"))
  (func $inner (param i32) (result i32)
    (i32.div_u (i32.const 10) (local.get 0)))
  (func $crash (export "crash") (param i32) (result i32)
    (i32.add (call $inner (local.get 0)) (i32.const 1)))
  (func $boom (export "boom") (unreachable)))
"#;

#[test]
fn invoke_prints_results_one_per_line() {
    for bounds in ["guard", "explicit"] {
        let a = compile(
            &format!("calc-{bounds}"),
            CALC,
            &["--bounds-checks", bounds],
        );
        let cases: &[(&[&str], &str)] = &[
            (&["--invoke", "add", "40", "2"], "42\n"),
            (&["--invoke", "add", "-5", "3"], "-2\n"),
            // An unsigned spelling of an i32 wraps.
            (&["--invoke", "add", "4294967295", "1"], "0\n"),
            (&["--invoke", "mul64", "4294967296", "-3"], "-12884901888\n"),
            (&["--invoke", "half32", "3"], "1.5\n"),
            (&["--invoke", "half32", "-0.5"], "-0.25\n"),
            (&["--invoke", "sqrt64", "2"], "1.4142135623730951\n"),
            (&["--invoke", "split", "8589934597"], "5\n2\n8589934597\n"),
            (&["--invoke", "nothing"], ""),
        ];
        for (args, want) in cases {
            let (ok, _, stdout, stderr) = run(&a, args);
            assert!(ok, "{args:?}: {stderr}");
            assert_eq!(stdout, *want, "{bounds} {args:?}");
        }
    }
}

#[test]
fn a_trap_prints_the_trap_and_backtrace_and_fails() {
    let a = compile("calc-trap", CALC, &[]);
    let (ok, code, stdout, stderr) = run(&a, &["--invoke", "crash", "0"]);
    assert!(!ok);
    assert_eq!(code, Some(134));
    assert_eq!(stdout, "");
    assert!(stderr.contains("integer divide by zero"), "{stderr}");
    assert!(stderr.contains("wasm backtrace"), "{stderr}");
    let inner = stderr.find("calc!inner").expect("inner frame");
    let crash = stderr.find("calc!crash").expect("crash frame");
    assert!(inner < crash, "innermost frame first: {stderr}");
    // The same function without the trap.
    let (ok, _, stdout, _) = run(&a, &["--invoke", "crash", "5"]);
    assert!(ok);
    assert_eq!(stdout, "3\n");

    let (ok, code, _, stderr) = run(&a, &["--invoke", "boom"]);
    assert!(!ok && code == Some(134));
    assert!(
        stderr.contains("unreachable") && stderr.contains("calc!boom"),
        "{stderr}"
    );
}

#[test]
fn without_invoke_runs_start_or_main() {
    // `_start` wins over `main`.
    let both = compile(
        "both",
        r#"(module (func (export "_start") (result i32) (i32.const 1))
                   (func (export "main") (result i32) (i32.const 2)))"#,
        &[],
    );
    let (ok, _, stdout, stderr) = run(&both, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "1\n");

    let main = compile(
        "main",
        r#"(module (func (export "main") (result i64) (i64.const 832040)))"#,
        &[],
    );
    let (ok, _, stdout, _) = run(&main, &[]);
    assert!(ok);
    assert_eq!(stdout, "832040\n");

    // A start function runs at instantiation; a trapping `_start` fails.
    let start = compile("start", r#"(module (func $s unreachable) (start $s))"#, &[]);
    let (ok, code, _, stderr) = run(&start, &[]);
    assert!(!ok && code == Some(134));
    assert!(
        stderr.contains("instantiating") && stderr.contains("unreachable"),
        "{stderr}"
    );

    // No entry point: nothing runs, success; arguments are an error.
    let none = compile("none", r#"(module (func (export "f")))"#, &[]);
    let (ok, _, stdout, _) = run(&none, &[]);
    assert!(ok);
    assert_eq!(stdout, "");
    let (ok, code, _, stderr) = run(&none, &["1"]);
    assert!(!ok && code == Some(2));
    assert!(stderr.contains("no --invoke"), "{stderr}");
    // An entry point with parameters needs --invoke.
    let (ok, code, _, stderr) = run(
        &compile(
            "main-params",
            r#"(module (func (export "main") (param i32)))"#,
            &[],
        ),
        &[],
    );
    assert!(!ok && code == Some(2));
    assert!(stderr.contains("--invoke main"), "{stderr}");
}

#[test]
fn wrong_arguments_are_clear_errors() {
    let a = compile("calc-args", CALC, &[]);
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--invoke", "add", "1"],
            &[
                "`add`",
                "(i32, i32) -> (i32)",
                "expected 2 arguments, got 1",
            ],
        ),
        (
            &["--invoke", "add", "1", "2", "3"],
            &["expected 2 arguments, got 3"],
        ),
        (
            &["--invoke", "add", "1", "abc"],
            &["argument `abc` is not a valid i32"],
        ),
        (
            &["--invoke", "add", "1", "1.5"],
            &["argument `1.5` is not a valid i32"],
        ),
        (
            &["--invoke", "add", "1", "4294967296"],
            &["argument `4294967296` is not a valid i32"],
        ),
        (
            &["--invoke", "mul64", "1", "x"],
            &["argument `x` is not a valid i64"],
        ),
        (
            &["--invoke", "half32", "one"],
            &["argument `one` is not a valid f32"],
        ),
        (
            &["--invoke", "missing"],
            &["no exported function `missing`"],
        ),
    ];
    for (args, wants) in cases {
        let (ok, code, stdout, stderr) = run(&a, args);
        assert!(!ok && code == Some(2), "{args:?} succeeded");
        assert_eq!(stdout, "", "{args:?}");
        for w in *wants {
            assert!(stderr.contains(w), "{args:?}: `{stderr}` lacks `{w}`");
        }
    }
}

#[test]
fn corrupted_and_foreign_artifacts_are_errors_not_panics() {
    let a = compile("calc-corrupt", CALC, &[]);
    let good = std::fs::read(&a).unwrap();
    let bad = tmp("bad.o");
    // Truncations.
    for n in [0, 10, 64, good.len() / 3, good.len() / 2, good.len() - 1] {
        std::fs::write(&bad, &good[..n]).unwrap();
        let (ok, code, _, stderr) = run(&bad, &["--invoke", "add", "1", "2"]);
        assert!(!ok && code == Some(126), "truncated to {n} ran");
        assert!(stderr.starts_with("error: loading"), "{stderr}");
        // `inspect` says the same after its own prefix (once the ELF magic
        // is there: before, `run` also considers Wasm and WAT).
        if n < 4 {
            continue;
        }
        let o = wasmc(&["inspect", bad.to_str().unwrap()]);
        let inspect_err = String::from_utf8_lossy(&o.stderr).into_owned();
        let tail = |s: &str| {
            s.split_once(": ")
                .map(|(_, t)| t.split_once(": ").map(|(_, t)| t.to_string()))
        };
        assert_eq!(tail(&stderr), tail(&inspect_err), "truncated to {n}");
    }
    // Bit flips: `wasmc run` checks the content hash, which covers the
    // header, `.text`, the tables and the module info, so a flip there is a
    // load error; a flip elsewhere (symbols, padding) changes nothing that
    // runs, or breaks the ELF container. Never a panic (checked in `run`) or
    // a signal.
    let parsed = wasmc_loader::artifact::ParsedArtifact::parse(&good).unwrap();
    let r = parsed.ranges().clone();
    let hashed = [r.text, r.meta, r.traps, r.stackmaps, r.addrmap, r.data];
    let mut hash_errors = 0;
    for i in (0..good.len()).step_by(23) {
        let mut b = good.clone();
        b[i] ^= 1 << (i % 8);
        std::fs::write(&bad, &b).unwrap();
        let (ok, code, stdout, stderr) = run(&bad, &["--invoke", "add", "1", "2"]);
        assert!(matches!(code, Some(0) | Some(126)), "flip at {i}: {code:?}");
        if hashed.iter().any(|s| s.contains(&i)) {
            assert!(!ok, "flip at {i} in a hashed section ran");
            hash_errors += usize::from(stderr.contains("content hash"));
        } else if ok {
            assert_eq!(stdout, "3\n", "flip at {i}");
        }
    }
    assert!(hash_errors > 20, "{hash_errors}");
    // The source runs too: `run` compiles .wat and .wasm in memory.
    let wat = tmp("calc-src.wat");
    std::fs::write(&wat, CALC).unwrap();
    // A .wat is compiled by `run` itself, not refused.
    let (ok, _, stdout, stderr) = run(&wat, &["--invoke", "add", "1", "2"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "3\n");
    // Not a module at all, invalid, or missing.
    let junk = tmp("junk.txt");
    std::fs::write(&junk, "hello").unwrap();
    let bad_wat = tmp("bad.wat");
    std::fs::write(&bad_wat, "(module (func (result i32)))").unwrap();
    for (path, code_want, want) in [
        (
            Path::new(env!("CARGO_BIN_EXE_wasmc")),
            126,
            "not a wasmc artifact",
        ),
        (junk.as_path(), 126, "not a WebAssembly module"),
        (bad_wat.as_path(), 126, "compiling"),
        (Path::new("/nonexistent/app.o"), 127, "/nonexistent/app.o"),
    ] {
        let (ok, code, _, stderr) = run(path, &[]);
        assert!(
            !ok && code == Some(code_want),
            "{}: {code:?}",
            path.display()
        );
        assert!(stderr.contains(want), "{}: {stderr}", path.display());
        assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    }
    // An artifact for another architecture names the field.
    let other = if cfg!(target_arch = "aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    };
    let foreign = compile("calc-foreign", CALC, &["--target", other]);
    let (ok, _, _, stderr) = run(&foreign, &["--invoke", "add", "1", "2"]);
    assert!(!ok);
    assert!(stderr.contains("architecture"), "{stderr}");
}

#[test]
fn instantiation_and_setup_failures_have_their_status() {
    // An import nothing defines (WASI is linked, `env` is not).
    let a = compile(
        "needs-env",
        r#"(module (import "env" "log" (func (param i32))) (func (export "_start")))"#,
        &[],
    );
    let (ok, code, _, stderr) = run(&a, &[]);
    assert!(!ok && code == Some(128), "{code:?}");
    assert!(stderr.contains("unknown import: `env::log`"), "{stderr}");
    // A WASI import of the wrong type.
    let a = compile(
        "bad-wasi-type",
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i64)))
                   (func (export "_start")))"#,
        &[],
    );
    let (ok, code, _, stderr) = run(&a, &[]);
    assert!(!ok && code == Some(128), "{code:?}");
    assert!(
        stderr.contains("wasi_snapshot_preview1::fd_write"),
        "{stderr}"
    );
    // A --dir that does not exist.
    let hello = crate::common::example("hello.wat");
    let o = wasmc(&["run", "--dir", "/nonexistent/dir", hello.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(128));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/dir"));
    // (`--env NAME` without `=` passes wasmc's own value: `wasi_guest.rs`.)
    // No MODULE at all is clap's usage error.
    assert_eq!(wasmc(&["run"]).status.code(), Some(2));
}

// ----- interruption: --timeout and --fuel -----

const SPIN: &str = r#"
(module $spin
  (func $spin (export "spin") (loop (br 0)))
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
"#;

#[test]
fn timeout_stops_an_infinite_loop_in_wat_and_in_an_artifact() {
    let src = tmp("spin_timeout.wat");
    std::fs::write(&src, SPIN).unwrap();
    let artifact = compile("spin_epochs", SPIN, &["--epoch-interruption"]);
    for input in [&src, &artifact] {
        let t0 = std::time::Instant::now();
        let (ok, code, _, err) = run(input, &["--timeout", "1s", "--invoke", "spin"]);
        let took = t0.elapsed();
        assert!(!ok);
        assert_eq!(code, Some(142), "{err}");
        assert!(
            err.contains("interrupted") && err.contains("--timeout 1s"),
            "{err}"
        );
        assert!(err.contains("wasm trap: interrupt"), "{err}");
        assert!(took >= std::time::Duration::from_secs(1), "{took:?}");
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    }
    // The start function runs under the same deadline.
    let start = tmp("spin_start.wat");
    std::fs::write(&start, "(module (func $s (loop (br 0))) (start $s))").unwrap();
    let (ok, code, _, err) = run(&start, &["--timeout", "1s"]);
    assert!(!ok);
    assert_eq!(code, Some(142), "{err}");
    assert!(
        err.contains("instantiating") && err.contains("wasm trap: interrupt"),
        "{err}"
    );
    // A guest that finishes in time is not disturbed.
    let (ok, _, out, err) = run(&src, &["--timeout", "10s", "--invoke", "add", "2", "3"]);
    assert!(ok, "{err}");
    assert_eq!(out, "5\n");
}

#[test]
fn fuel_stops_an_infinite_loop_in_wat_and_in_an_artifact() {
    let src = tmp("spin_fuel.wat");
    std::fs::write(&src, SPIN).unwrap();
    let artifact = compile("spin_fuel", SPIN, &["--fuel"]);
    for input in [&src, &artifact] {
        let (ok, code, _, err) = run(input, &["--fuel", "10000", "--invoke", "spin"]);
        assert!(!ok);
        assert_eq!(code, Some(152), "{err}");
        assert!(
            err.contains("out of fuel") && err.contains("10000"),
            "{err}"
        );
        assert!(err.contains("all fuel consumed"), "{err}");
        let (ok, _, out, err) = run(input, &["--fuel", "3", "--invoke", "add", "2", "3"]);
        assert!(ok, "{err}");
        assert_eq!(out, "5\n");
    }
}

#[test]
fn timeout_or_fuel_on_an_artifact_without_the_checks_is_a_clear_error() {
    let plain = compile("spin_plain", SPIN, &[]);
    let (ok, code, _, err) = run(&plain, &["--timeout", "1s", "--invoke", "spin"]);
    assert!(!ok);
    assert_eq!(code, Some(128));
    assert!(
        err.contains("without epoch checks") && err.contains("--epoch-interruption"),
        "{err}"
    );
    let (ok, code, _, err) = run(&plain, &["--fuel", "100", "--invoke", "spin"]);
    assert!(!ok);
    assert_eq!(code, Some(128));
    assert!(
        err.contains("without fuel counting") && err.contains("--fuel"),
        "{err}"
    );
    // A duration without a unit is a usage error.
    let (ok, code, _, err) = run(&plain, &["--timeout", "5", "--invoke", "spin"]);
    assert!(!ok);
    assert_eq!(code, Some(2));
    assert!(err.contains("no unit"), "{err}");
}

#[test]
fn options_after_module_are_the_programs_with_a_hint() {
    // `wasmc run app.o --invoke add 1 2`, as the `run` before WASI took
    // it: `--invoke` is now the program's argument; a module without an
    // entry point says where wasmc's options go.
    let a = compile("calc-late-options", CALC, &[]);
    let o = wasmc(&["run", a.to_str().unwrap(), "--invoke", "add", "1", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`--invoke` after MODULE is an argument of the program")
            && err.contains("before MODULE"),
        "{err}"
    );
    // Also when the module has an entry point: it would run, ignoring
    // arguments it cannot read (it does not import `args_get`).
    let m = compile(
        "main-late-options",
        r#"(module (func (export "main") (result i32) (i32.const 7))
                   (func (export "f") (param i32) (result i32) (local.get 0)))"#,
        &[],
    );
    let o = wasmc(&["run", m.to_str().unwrap(), "--invoke", "f", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "", "main must not run");
    assert!(
        err.contains("imports no `args_get`") && err.contains("before MODULE"),
        "{err}"
    );
    // The same for a WASI program that does not read its arguments (one
    // that does gets them: `wasi_c.rs`, `arguments_and_environment...`).
    let hello = crate::common::example("hello.wat");
    let o = wasmc(&["run", hello.to_str().unwrap(), "--fuel", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`--fuel` after MODULE"), "{err}");
    // Arguments that are not wasmc's options get no hint.
    let o = wasmc(&["run", a.to_str().unwrap(), "1", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("no --invoke") && !err.contains("before MODULE"),
        "{err}"
    );
}

/// An option `run` does not know, before MODULE, is a usage error naming
/// it (as `wasmtime run --bogus` is), not a module file called `--bogus`; a
/// file whose name starts with `-` runs as `./-name`.
#[test]
fn unknown_options_before_the_module_are_usage_errors() {
    let hello = crate::common::example("hello.wat");
    for bogus in ["--bogus", "-x"] {
        let o = wasmc(&["run", bogus, hello.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bogus}: {err}");
        assert!(
            err.contains(&format!("unknown option `{bogus}`")) && !err.contains("reading"),
            "{bogus}: {err}"
        );
    }
    let dir = tmp_dir("run-dash");
    let dashed = dir.join("-hello.wat");
    std::fs::copy(&hello, &dashed).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wasmc"))
        .current_dir(&dir)
        .args(["run", "./-hello.wat"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!o.stdout.is_empty());
}

#[test]
fn io_errors_print_once_and_as_inspect_prints_them() {
    // A missing file and a directory: `run` and `inspect` both name the
    // file and the OS error, once, on one line.
    let dir = tmp_dir("run");
    for (path, os_error) in [
        ("/nonexistent/app.o", "No such file or directory"),
        (dir.to_str().unwrap(), "Is a directory"),
    ] {
        let (ok, code, _, run_err) = run(Path::new(path), &[]);
        assert!(!ok);
        assert_eq!(code, Some(127), "{run_err}");
        let o = wasmc(&["inspect", path]);
        assert_eq!(o.status.code(), Some(1));
        let inspect_err = String::from_utf8_lossy(&o.stderr).into_owned();
        for err in [&run_err, &inspect_err] {
            assert_eq!(err.matches(os_error).count(), 1, "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(path), "{err}");
        }
        assert_eq!(run_err, inspect_err);
    }
}

#[test]
fn help_and_readme_list_the_same_exit_statuses() {
    // `wasmc run --help` and the README's table are one table: the same
    // statuses, so neither can drift from the other.
    let o = wasmc(&["run", "--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    let block = help
        .split_once("Exit status:\n")
        .unwrap_or_else(|| panic!("no exit statuses in --help: {help}"))
        .1;
    let from_help: Vec<&str> = block
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .filter(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let table = readme
        .split_once("The\nexit status tells what happened:")
        .expect("the README's exit-status table")
        .1;
    let from_readme: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("| status"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .collect();
    assert_eq!(
        from_help,
        ["0-125", "2", "126", "127", "128", "134", "142", "152"]
    );
    assert_eq!(from_readme, from_help);
}
