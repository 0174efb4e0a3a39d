//! Independent probes of the WebAssembly 3.0 features (issue 14) through
//! `wasmc`: the scripts of `cli/tests/wast3/` (tail calls, memory64 and
//! multi-memory edges, 64-bit tables, extended constant expressions,
//! instantiation order, one memory imported twice, relaxed dot overflow)
//! under both memory strategies and both optimization levels, `-W` naming
//! the feature a module needs in every case (and taking Wasmtime's names of
//! proposals wasmc does not implement), `wasmc run -W`, the `--cpu` preset
//! the help names, and interrupting tail-call loops.

use crate::common::{tmp_dir, wasmc};
use std::path::PathBuf;
use wasmc_cli::wast::{run_script, WastOptions};
use wasmc_compiler::{CompileOptions, MemoryStrategy, OptLevel};

const SCRIPTS: &[(&str, &str)] = &[
    ("tail_calls", include_str!("../wast3/tail_calls.wast")),
    (
        "memory64_multi_memory",
        include_str!("../wast3/memory64_multi_memory.wast"),
    ),
    ("table64", include_str!("../wast3/table64.wast")),
    (
        "table64_limits",
        include_str!("../wast3/table64_limits.wast"),
    ),
    (
        "extended_const",
        include_str!("../wast3/extended_const.wast"),
    ),
    (
        "instantiation_order",
        include_str!("../wast3/instantiation_order.wast"),
    ),
    (
        "aliased_memories",
        include_str!("../wast3/aliased_memories.wast"),
    ),
    ("relaxed_dot", include_str!("../wast3/relaxed_dot.wast")),
];

#[test]
fn wasm3_scripts_pass_in_every_configuration() {
    let mut failed = Vec::new();
    for (name, script) in SCRIPTS {
        for (memory, opt) in [
            (CompileOptions::default().memory, OptLevel::Speed),
            (MemoryStrategy::Explicit, OptLevel::None),
        ] {
            let opts = WastOptions {
                compile: CompileOptions {
                    memory,
                    opt_level: opt,
                    ..Default::default()
                },
                ..Default::default()
            };
            let report = run_script(script, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(report.passed > 0, "{name}");
            for f in &report.failures {
                failed.push(format!(
                    "{name}.wast:{} ({memory:?}, {opt:?}): {}: expected {}, got {}",
                    f.line, f.command, f.expected, f.actual
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn write(name: &str, wat: &str) -> PathBuf {
    let p = tmp_dir("wasm3-probes").join(name);
    std::fs::write(&p, wat).expect("write module");
    p
}

/// `wasmc compile` of `wat` with `-W` arguments: the error text, which
/// must not be a panic.
fn compile_err(name: &str, wat: &str, w: &[&str]) -> String {
    let input = write(&format!("{name}.wat"), wat);
    let out = input.with_extension("o");
    let mut args = vec![
        "compile",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    for t in w {
        args.extend_from_slice(&["-W", t]);
    }
    let o = wasmc(&args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{name} compiled with -W {w:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("not enabled"), "{err}");
    err
}

#[test]
fn w_names_the_disabled_feature_a_module_needs() {
    for (name, wat, w, feature) in [
        (
            "econst_global",
            "(module (global i32 (i32.add (i32.const 1) (i32.const 2))))",
            &["extended-const=n"][..],
            "extended-const",
        ),
        (
            "econst_data",
            "(module (import \"a\" \"g\" (global i32)) (memory 1) \
               (data (i32.mul (global.get 0) (i32.const 2)) \"x\"))",
            &["extended-const=n"][..],
            "extended-const",
        ),
        (
            "passive_data",
            "(module (memory 1) (data \"x\"))",
            &["bulk-memory=n"][..],
            "bulk-memory",
        ),
        (
            "elem_exprs",
            "(module (table 1 funcref) (func $f) (elem (i32.const 0) funcref (ref.func $f)))",
            &["bulk-memory=n"][..],
            "bulk-memory",
        ),
        (
            "elem_declare",
            "(module (func $f) (elem declare func $f))",
            &["reference-types=n"][..],
            "reference-types",
        ),
    ] {
        let e = compile_err(name, wat, w);
        assert!(
            e.contains(&format!(
                "WebAssembly feature `{feature}` is disabled by the compile options"
            )),
            "{name}: {e}"
        );
    }
    // Two features off that the module needs together: one of them is
    // named, never a proposal the module does not use.
    let e = compile_err(
        "two_off",
        "(module (table 1 funcref) (elem funcref (ref.null func)))",
        &["bulk-memory=n,reference-types=n"],
    );
    assert!(
        e.contains("is disabled by the compile options")
            && (e.contains("`bulk-memory`") || e.contains("`reference-types`")),
        "{e}"
    );
    assert!(!e.contains("not supported"), "{e}");
}

#[test]
fn run_takes_w_like_compile() {
    let tail = write(
        "run_tail.wat",
        "(module (func $f (export \"f\") (result i32) (return_call $g)) \
           (func $g (result i32) (i32.const 42)))",
    );
    let o = wasmc(&[
        "run",
        "-W",
        "tail-call=n",
        "--invoke",
        "f",
        tail.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(126), "{err}");
    assert!(
        err.contains("WebAssembly feature `tail-call` is disabled"),
        "{err}"
    );
    let o = wasmc(&[
        "run",
        "-W",
        "simd=n",
        "--invoke",
        "f",
        tail.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "42");
    // An artifact that uses a feature -W turns off is refused.
    let artifact = tail.with_extension("o");
    let o = wasmc(&[
        "compile",
        tail.to_str().unwrap(),
        "-o",
        artifact.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let a = artifact.to_str().unwrap();
    let o = wasmc(&["run", "-W", "tail-call=n", "--invoke", "f", a]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(126), "{err}");
    assert!(
        err.contains("uses WebAssembly feature `tail-call`, which -W turned off"),
        "{err}"
    );
    let o = wasmc(&["run", "-W", "simd=n", "--invoke", "f", a]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "42");
    let o = wasmc(&["run", "-W", "tail-calls=n", tail.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown WebAssembly feature `tail-calls`"),
        "{err}"
    );
}

#[test]
fn tail_call_loops_are_interrupted() {
    let wat = write(
        "tail_loop.wat",
        r#"(module
  (func $loop (export "loop") (param i64) (result i64)
    (return_call $loop (i64.add (local.get 0) (i64.const 1))))
  (type $t (func (param i64) (result i64)))
  (table 1 funcref) (elem (i32.const 0) $iloop)
  (func $iloop (export "iloop") (param i64) (result i64)
    (return_call_indirect (type $t) (i64.add (local.get 0) (i64.const 1)) (i32.const 0))))"#,
    );
    let w = wat.to_str().unwrap();
    for f in ["loop", "iloop"] {
        let o = wasmc(&["run", "--timeout", "300ms", "--invoke", f, w, "0"]);
        assert_eq!(o.status.code(), Some(142), "{f}: timeout");
        let o = wasmc(&["run", "--fuel", "100000", "--invoke", f, w, "0"]);
        assert_eq!(o.status.code(), Some(152), "{f}: fuel");
    }
}

#[test]
fn documented_cpu_presets_exist() {
    // `wasmc compile --help` names `x86-64-v3` as an example of --cpu.
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let input = write(
        "madd.wat",
        "(module (func (export \"f\") (param v128 v128 v128) (result v128) \
           (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2))))",
    );
    let help = String::from_utf8_lossy(&wasmc(&["compile", "--help"]).stdout).to_string();
    assert!(help.contains("x86-64-v3"), "{help}");
    let out = input.with_extension("o");
    let o = wasmc(&[
        "compile",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--cpu",
        "x86-64-v3",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = wasmc(&["inspect", "--json", out.to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cpu = j["header"].to_string();
    for f in ["avx2", "fma", "bmi2", "lzcnt"] {
        assert!(cpu.contains(f), "{f}: {cpu}");
    }
}

#[test]
fn w_takes_wasmtime_names_of_unimplemented_proposals() {
    let m = write(
        "plain.wat",
        "(module (func (export \"f\") (result i32) (i32.const 5)))",
    );
    let out = m.with_extension("o");
    let o = wasmc(&[
        "compile",
        m.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-W",
        "threads=n,gc=n",
        "-W",
        "exceptions=n",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = compile_err("threads_on", "(module)", &["threads"]);
    assert!(e.contains("not supported by wasmc: threads"), "{e}");
    let e = compile_err("gc_on", "(module)", &["gc=y"]);
    assert!(e.contains("not supported by wasmc: GC"), "{e}");
}
