//! Helpers shared by the tests that drive the `wasmc` binary: running it, a
//! per-process temporary directory, and `wasmc compile` with a success check.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `wasmc` binary built for these tests.
pub fn wasmc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmc"))
        .args(args)
        .output()
        .expect("run wasmc")
}

/// A temporary directory for this test binary (`tag`) and process.
pub fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wasmc-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A bundled example module.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// Runs `wasmc compile INPUT -o OUT EXTRA...` and asserts that it succeeded.
pub fn wasmc_compile(input: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "compile",
        input.to_str().expect("utf-8 path"),
        "-o",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let o = wasmc(&args);
    assert!(
        o.status.success(),
        "wasmc compile {} failed: {}",
        input.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}
