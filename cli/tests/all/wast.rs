//! `wasmc wast` reports a deliberately wrong script's failures precisely,
//! through the library's runner and through the binary built with these
//! tests (never a binary left over in `target/`).

use crate::common::{tmp_dir, wasmc};
use wasmc_cli::wast::{run_script, WastOptions};

const SCRIPT: &str = r#"(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
  (func (export "nan") (result f32) (f32.div (f32.const 0) (f32.const 0))))
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 4))
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_trap (invoke "div" (i32.const 1) (i32.const 1)) "integer divide by zero")
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "unreachable")
(assert_return (invoke "nan") (f32.const nan:canonical))
(assert_return (invoke "nan") (f32.const 0))
(assert_invalid (module (func (result i32) (i64.const 0))) "type mismatch")
(assert_invalid (module (func (result i32) (i32.const 0))) "type mismatch")
(assert_return (invoke "missing"))
"#;

#[test]
fn wrong_script_failures_are_reported_precisely() {
    let report = run_script(SCRIPT, &WastOptions::default()).unwrap();
    let lines: Vec<(usize, &str)> = report
        .failures
        .iter()
        .map(|f| (f.line, f.command))
        .collect();
    assert_eq!(
        lines,
        [
            (6, "assert_return"),
            (8, "assert_trap"),
            (9, "assert_trap"),
            (11, "assert_return"),
            (13, "assert_invalid"),
            (14, "assert_return"),
        ]
    );
    assert_eq!(report.passed, 5);
    let f = &report.failures[0];
    assert_eq!(f.expected, "[i32:4]");
    assert_eq!(f.actual, "[i32:3]");
    assert!(report.failures[1].actual.contains("[i32:1]"));
    assert!(report.failures[2].actual.contains("integer divide by zero"));
    assert!(report.failures[5].actual.contains("no such function"));
}

#[test]
fn wasmc_wast_cli_prints_failures_and_summary() {
    let dir = tmp_dir("wast-cli");
    let path = dir.join("wrong.wast");
    std::fs::write(&path, SCRIPT).unwrap();
    let out = wasmc(&["wast", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{}:6: assert_return: expected [i32:4], got [i32:3]",
            path.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "5 passed, 6 failed"),
        "{stdout}"
    );
}
