//! WebAssembly features through the `wasmc` binary: `-W NAME=n` turns one
//! off, the header records the features a module uses and `inspect` shows
//! them, and proposals wasmc does not implement are refused by name.

use crate::common::{tmp_dir, wasmc};
use serde_json::Value;
use std::path::PathBuf;

fn write(name: &str, wat: &str) -> PathBuf {
    let p = tmp_dir("features").join(name);
    std::fs::write(&p, wat).expect("write module");
    p
}

/// `wasmc compile` of `wat` with `extra` arguments: the artifact's header
/// features as `inspect --json` shows them, or the error text.
fn features_of(name: &str, wat: &str, extra: &[&str]) -> Result<Vec<String>, String> {
    let input = write(&format!("{name}.wat"), wat);
    let out = input.with_extension("o");
    let mut args = vec![
        "compile",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = wasmc(&args);
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!err.contains("panicked"), "{err}");
        return Err(err);
    }
    let o = wasmc(&["inspect", "--json", out.to_str().unwrap()]);
    assert!(o.status.success());
    let j: Value = serde_json::from_slice(&o.stdout).expect("json");
    Ok(j["header"]["wasm_features"]
        .as_array()
        .expect("wasm_features")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect())
}

#[test]
fn header_records_the_features_a_module_uses() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("mvp", "(module (func (result i32) (i32.const 1)))", &[]),
        (
            "tail",
            "(module (func $f (return_call $f)))",
            &["tail-call"],
        ),
        (
            "econst",
            "(module (global i32 (i32.add (i32.const 1) (i32.const 2))))",
            &["extended-const"],
        ),
        (
            "mm",
            "(module (memory 1) (memory 1) (func (drop (i32.load 1 (i32.const 0)))))",
            &["multi-memory"],
        ),
        (
            "m64",
            "(module (memory i64 1) (func (drop (i32.load (i64.const 0)))))",
            &["memory64"],
        ),
        (
            "relaxed",
            "(module (func (param v128) (result v128) (i8x16.relaxed_swizzle (local.get 0) (local.get 0))))",
            &["simd", "relaxed-simd"],
        ),
        (
            "mixed",
            "(module (func (param i32) (result i32 i32) (i32.extend8_s (local.get 0)) (local.get 0)))",
            &["sign-extension", "multi-value"],
        ),
    ];
    for (name, wat, want) in cases {
        let got = features_of(name, wat, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn w_turns_a_feature_off() {
    let tail = "(module (func $f (return_call $f)))";
    let e = features_of("tail_off", tail, &["-W", "tail-call=n"]).unwrap_err();
    assert!(
        e.contains("WebAssembly feature `tail-call` is disabled by the compile options"),
        "{e}"
    );
    assert!(!e.contains("not enabled"), "{e}");
    // Lists and repeats; the last setting wins.
    let e = features_of(
        "tail_off2",
        tail,
        &["-W", "simd=n,tail-call=n", "-W", "memory64=n"],
    )
    .unwrap_err();
    assert!(e.contains("`tail-call` is disabled"), "{e}");
    assert!(features_of("tail_on", tail, &["-W", "tail-call=n", "-W", "tail-call"]).is_ok());
    let m = "(module (memory 1) (memory 1))";
    let e = features_of("mm_off", m, &["-W", "multi-memory=n"]).unwrap_err();
    assert!(e.contains("`multi-memory` is disabled"), "{e}");
    let e = features_of("bad", tail, &["-W", "tail-calls=n"]).unwrap_err();
    assert!(
        e.contains("unknown WebAssembly feature `tail-calls`"),
        "{e}"
    );
    assert!(e.contains("tail-call"), "the known names are listed: {e}");
}

#[test]
fn unsupported_proposals_are_refused_by_name() {
    for (name, wat, proposal) in [
        (
            "threads",
            "(module (memory 1 1 shared) (func (drop (i32.atomic.load (i32.const 0)))))",
            "threads",
        ),
        (
            "eh",
            "(module (tag) (func (throw 0)))",
            "exception handling",
        ),
        (
            "gc",
            "(module (type (struct)) (func (drop (struct.new 0))))",
            "GC",
        ),
    ] {
        let e = features_of(name, wat, &[]).unwrap_err();
        assert!(
            e.contains(&format!("not supported by wasmc: {proposal}")),
            "{name}: {e}"
        );
        assert!(!e.contains("not enabled"), "{name}: {e}");
    }
}

#[test]
fn inspect_shows_each_memory_and_its_index_type() {
    let input = write(
        "mems.wat",
        r#"(module (import "m" "a" (memory 1)) (memory i64 2 3) (memory 0)
             (table i64 1 funcref))"#,
    );
    let out = input.with_extension("o");
    let o = wasmc(&[
        "compile",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = wasmc(&["inspect", "--json", out.to_str().unwrap()]);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mems = j["memories"].as_array().unwrap();
    assert_eq!(mems.len(), 3);
    assert_eq!(mems[0]["imported"], true);
    assert_eq!(mems[0]["index_type"], "i32");
    assert_eq!(mems[1]["index_type"], "i64");
    assert_eq!(mems[1]["min_pages"], 2);
    assert_eq!(mems[1]["max_pages"], 3);
    assert_eq!(mems[2]["index_type"], "i32");
    assert_eq!(j["tables"][0]["index_type"], "i64");
    let text = String::from_utf8(wasmc(&["inspect", out.to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("i64, min 2 max 3 pages"), "{text}");
    assert!(text.contains("multi-memory, memory64"), "{text}");
}
