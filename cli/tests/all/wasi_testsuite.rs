//! The official WASI testsuite (preview 1) through `wasmc run`.
//!
//! A runner of our own that follows the suite's `doc/specification.md` (no
//! Python): every `*.wasm` under `tests/{assemblyscript,c,rust}/testsuite/
//! wasm32-wasip1/` is a test; its `.json` (or the defaults) gives the
//! arguments, the environment, the directory to preopen as `/` and the
//! expected exit code and output. Each test runs as
//! `wasmc run --env K=V... --dir COPY::/ MODULE ARGS...` with stdin an open,
//! empty pipe (as the suite's executor gives it), where COPY is a fresh copy
//! of the fixture directory (the shared one stays untouched, and its
//! missing write bits are restored in the copy, as a git checkout has
//! them). Expected output is compared as the suite's executor does: the
//! first `len(expected)` characters of the stream must equal it.
//!
//! The suite is `$WASMC_WASI_TESTSUITE`, else `../shared/wasi-testsuite`
//! beside the repository; if it is missing the test fails (never skips).
//! Every failing test is listed with its reason. `cli/tests/wasi-expected-failures.txt`
//! may list tests known to fail, each with a reason; a
//! listed test that passes is an error (the list only shrinks).

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest a single test may run.
const TIMEOUT: Duration = Duration::from_secs(120);

fn suite_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("WASMC_WASI_TESTSUITE") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wasi-testsuite"),
    };
    dir.join("tests").is_dir().then_some(dir)
}

/// One test: what the specification asks for.
#[derive(Debug, Default)]
struct Spec {
    args: Vec<String>,
    env: BTreeMap<String, String>,
    root: Option<PathBuf>,
    exit_code: i32,
    stdout: String,
    stderr: String,
}

fn string_map(v: &Value, what: &str) -> Result<BTreeMap<String, String>, String> {
    let Some(obj) = v.as_object() else {
        return Err(format!("`{what}` is not an object"));
    };
    obj.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_string())),
            None => Err(format!("`{what}.{k}` is not a string")),
        })
        .collect()
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("`{what}` is not an array"))?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("`{what}` holds a non-string"))
        })
        .collect()
}

/// Reads `test.json` beside `wasm`, in the legacy form or the
/// operation-based one (with `run`, `read` and `wait`: the only operations
/// preview-1 command tests use).
fn read_spec(wasm: &Path) -> Result<Spec, String> {
    let json = wasm.with_extension("json");
    let mut spec = Spec::default();
    let Ok(text) = std::fs::read_to_string(&json) else {
        return Ok(spec);
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    let base = wasm.parent().expect("test in a directory");
    let run = |spec: &mut Spec, v: &Value| -> Result<(), String> {
        if let Some(a) = v.get("args") {
            spec.args = strings(a, "args")?;
        }
        if let Some(e) = v.get("env") {
            spec.env = string_map(e, "env")?;
        }
        if let Some(r) = v.get("root").and_then(Value::as_str) {
            spec.root = Some(base.join(r));
        }
        Ok(())
    };
    if let Some(ops) = v.get("operations") {
        if v.get("proposals")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty())
        {
            return Err("needs WASI proposals this runner does not provide".into());
        }
        for op in ops.as_array().ok_or("`operations` is not an array")? {
            let payload = || {
                op.get("payload")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            match op.get("type").and_then(Value::as_str) {
                Some("run") => run(&mut spec, op)?,
                Some("wait") => {
                    spec.exit_code = op.get("exit_code").and_then(Value::as_i64).unwrap_or(0) as i32
                }
                Some("read") => match op.get("id").and_then(Value::as_str).unwrap_or("stdout") {
                    "stdout" => spec.stdout = payload(),
                    "stderr" => spec.stderr = payload(),
                    other => return Err(format!("read of unknown stream `{other}`")),
                },
                other => return Err(format!("unsupported operation {other:?}")),
            }
        }
    } else {
        run(&mut spec, &v)?;
        if let Some(c) = v.get("exit_code") {
            spec.exit_code = c.as_i64().ok_or("`exit_code` is not an integer")? as i32;
        }
        for (key, field) in [("stdout", &mut spec.stdout), ("stderr", &mut spec.stderr)] {
            if let Some(s) = v.get(key) {
                *field = s.as_str().ok_or(format!("`{key}` is not a string"))?.into();
            }
        }
    }
    Ok(spec)
}

/// Copies `from` into `to` (which must not exist), symlinks as symlinks,
/// with the write bits a checkout has.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ty = e.file_type()?;
        if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ty.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

/// Runs one test; `Err` says why it failed.
fn run_test(wasm: &Path, work: &Path) -> Result<(), String> {
    let spec = read_spec(wasm)?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmc"));
    cmd.arg("run");
    for (k, v) in &spec.env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    if let Some(root) = &spec.root {
        let copy = work.join("root");
        copy_tree(root, &copy).map_err(|e| format!("copying {}: {e}", root.display()))?;
        let mut dir = copy.into_os_string();
        dir.push("::/");
        cmd.arg("--dir").arg(dir);
    }
    cmd.arg(wasm).args(&spec.args).current_dir(work);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("spawning wasmc: {e}"))?;
    // Held open (and empty) until the program has exited.
    let stdin = child.stdin.take();
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(stdin);
    let stdout = String::from_utf8_lossy(&out.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    let show = || format!("\n      stdout: {stdout:?}\n      stderr: {stderr:?}");
    let code = status.code();
    if code != Some(spec.exit_code) {
        return Err(format!(
            "exit status {code:?}, expected {}{}",
            spec.exit_code,
            show()
        ));
    }
    // As the suite's executor: read len(expected) characters and compare.
    for (name, want, got) in [
        ("stdout", &spec.stdout, &stdout),
        ("stderr", &spec.stderr, &stderr),
    ] {
        let prefix: String = got.chars().take(want.chars().count()).collect();
        if prefix != *want {
            return Err(format!("{name} {prefix:?}, expected {want:?}{}", show()));
        }
    }
    Ok(())
}

fn expected_failures() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasi-expected-failures.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return BTreeMap::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("`{l}`: expected `lang/test: reason`"));
            assert!(
                !reason.trim().is_empty(),
                "`{l}`: every entry needs a reason"
            );
            (name.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

#[test]
fn wasi_testsuite_preview1() {
    let Some(suite) = suite_dir() else {
        panic!(
            "WASI testsuite NOT FOUND: set WASMC_WASI_TESTSUITE or place it at \
             ../shared/wasi-testsuite (see README.md). Failing rather than skipping."
        );
    };
    let mut tests = Vec::new();
    for lang in ["assemblyscript", "c", "rust"] {
        let dir = suite
            .join("tests")
            .join(lang)
            .join("testsuite/wasm32-wasip1");
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.expect("dir entry").path();
            if p.extension().is_some_and(|x| x == "wasm") {
                let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
                tests.push((format!("{lang}/{stem}"), p));
            }
        }
    }
    tests.sort();
    assert_eq!(tests.len(), 72, "the preview-1 suite has 72 tests");

    let work = crate::common::tmp_dir("wasi-testsuite");
    let next = AtomicUsize::new(0);
    let results = Mutex::new(BTreeMap::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((name, wasm)) = tests.get(i) else {
                    break;
                };
                let dir = work.join(name.replace('/', "-"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("work dir");
                let r = run_test(wasm, &dir);
                results.lock().unwrap().insert(name.clone(), r);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let expected = expected_failures();
    let mut report = String::new();
    let (mut passed, mut failed, mut xfail) = (0, Vec::new(), 0);
    for (name, r) in &results {
        match (r, expected.get(name)) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => {
                failed.push(name.clone());
                report.push_str(&format!(
                    "  {name}: passes but is listed in wasi-expected-failures.txt: remove it\n"
                ));
            }
            (Err(_), Some(_)) => xfail += 1,
            (Err(e), None) => {
                failed.push(name.clone());
                report.push_str(&format!("  {name}: {e}\n"));
            }
        }
    }
    for name in expected.keys() {
        assert!(
            results.contains_key(name),
            "expected failure `{name}` is not a test"
        );
    }
    println!("WASI testsuite (preview 1) through `wasmc run`: {passed} of 72 passed, {xfail} expected failures");
    if !failed.is_empty() {
        panic!(
            "{} WASI test(s) failed: {}\n{report}",
            failed.len(),
            failed.join(", ")
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}
