//! `wasmc compile` through the real binary: ELF layout seen by readelf,
//! byte-identical output for any thread count, and clear errors.

use crate::common::{tmp_dir, wasmc, wasmc_compile};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    tmp_dir("cli").join(name)
}

fn example() -> PathBuf {
    crate::common::example("fib.wat")
}

fn compile_ok(input: &Path, out: &Path, extra: &[&str]) -> Vec<u8> {
    wasmc_compile(input, out, extra);
    std::fs::read(out).unwrap()
}

fn readelf(flag: &str, file: &Path) -> String {
    let o = Command::new("readelf")
        .args([flag, "-W", file.to_str().unwrap()])
        .output()
        .expect("readelf (binutils) must be installed; .ci/run installs it");
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn readelf_shows_sections_and_function_symbols() {
    let out = tmp("fib.o");
    compile_ok(&example(), &out, &[]);
    let sections = readelf("-S", &out);
    for name in wasmc_format::sections::SECTIONS.map(|s| s.name) {
        assert!(
            sections.contains(name),
            "section {name} missing:\n{sections}"
        );
    }
    let header = readelf("-h", &out);
    assert!(header.contains("REL (Relocatable file)"), "{header}");
    let symbols = readelf("-s", &out);
    for sym in [
        "wasm[0]::fib",
        "wasm[1]::fib_iter",
        "wasm[2]::div",
        "wasm[3]::main",
    ] {
        assert!(symbols.contains(sym), "symbol {sym} missing:\n{symbols}");
    }
    let relocs = readelf("-r", &out);
    assert!(
        relocs.contains("no relocations"),
        ".text must need no relocations:\n{relocs}"
    );
}

/// A module with many functions calling each other and using memory, tables
/// and traps, so that parallel compilation has something to reorder.
fn big_module() -> String {
    let mut wat = String::from(
        "(module (memory 1) (table 300 funcref) (type $t (func (param i32) (result i32)))\n",
    );
    for i in 0..300 {
        let next = (i + 1) % 300;
        wat.push_str(&format!(
            "(func $f{i} (export \"f{i}\") (param i32) (result i32)
               (if (result i32) (i32.eqz (local.get 0)) (then (i32.load offset={i} (i32.const 0)))
                 (else (call_indirect (type $t) (i32.sub (local.get 0) (i32.const 1)) (i32.const {next})))))\n"
        ));
    }
    wat.push_str("(elem (i32.const 0)");
    for i in 0..300 {
        wat.push_str(&format!(" $f{i}"));
    }
    wat.push_str("))");
    wat
}

#[test]
fn output_is_identical_for_any_thread_count() {
    let input = tmp("big.wat");
    std::fs::write(&input, big_module()).unwrap();
    let a = compile_ok(&input, &tmp("a.o"), &["-j", "1"]);
    let b = compile_ok(&input, &tmp("b.o"), &["-j", "2"]);
    let c = compile_ok(&input, &tmp("c.o"), &[]);
    let d = compile_ok(&input, &tmp("d.o"), &["-j", "2"]);
    assert!(a.len() > 10_000);
    assert!(a == b, "-j 1 and -j 2 differ");
    assert!(a == c, "default -j differs");
    assert!(b == d, "two runs differ");
}

#[test]
fn invalid_wasm_is_an_error_naming_the_offset() {
    let input = tmp("bad.wasm");
    // A valid header and a type section with a truncated entry.
    std::fs::write(&input, b"\0asm\x01\0\0\0\x01\x05\x01\x60\x01").unwrap();
    let o = wasmc(&[
        "compile",
        input.to_str().unwrap(),
        "-o",
        tmp("bad.o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("invalid WebAssembly at offset 0x"), "{err}");
    assert!(
        !tmp("bad.o").exists(),
        "no artifact may be written for bad input"
    );

    let input = tmp("bad.wat");
    std::fs::write(&input, "(module (func (result i32) (i64.const 1)))").unwrap();
    let o = wasmc(&[
        "compile",
        input.to_str().unwrap(),
        "-o",
        tmp("bad2.o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("type mismatch"), "{err}");
}

#[test]
fn bad_options_and_missing_files_are_errors() {
    let out = tmp("x.o");
    let ex = example();
    let o = wasmc(&[
        "compile",
        ex.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--cpu",
        "frobnicate",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown CPU feature `frobnicate`"));

    let o = wasmc(&[
        "compile",
        "/nonexistent/x.wasm",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("reading /nonexistent/x.wasm"));

    let o = wasmc(&[
        "compile",
        ex.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--target",
        "nonsense-triple-x",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("target"));
}

#[test]
fn every_option_combination_compiles() {
    let ex = example();
    for (i, extra) in [
        vec!["--opt-level", "none"],
        vec!["--opt-level", "speed-and-size"],
        vec!["--bounds-checks", "explicit"],
        vec!["--cpu", "native"],
        vec!["--cpu", "avx2,bmi2"],
        vec!["--target", "aarch64-unknown-linux-gnu"],
    ]
    .into_iter()
    .enumerate()
    {
        let out = tmp(&format!("opt{i}.o"));
        let bytes = compile_ok(&ex, &out, &extra);
        assert_eq!(&bytes[..4], b"\x7fELF");
    }
    let arm = readelf("-h", &tmp("opt5.o"));
    assert!(arm.contains("AArch64"), "{arm}");
}
