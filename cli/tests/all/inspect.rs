//! `wasmc inspect` end to end: the real binary on artifacts compiled from the
//! bundled examples (text tables, `--json`, part selection, `--disas`,
//! `--check`), its figures checked against what the modules contain; and
//! truncated, bit-flipped and foreign files, which must give a clear error
//! and a non-zero exit, never a panic (the library function on thousands of
//! variants in-process, the binary on a handful).

use crate::common::{example, tmp_dir, wasmc, wasmc_compile};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wasmc_cli::inspect::{self, Options, Parts};

fn dir() -> PathBuf {
    tmp_dir("inspect")
}

fn compile(wat: &str, out: &str, extra: &[&str]) -> PathBuf {
    let out = dir().join(out);
    wasmc_compile(&example(wat), &out, extra);
    out
}

/// The fixtures, compiled once per test binary.
struct Artifacts {
    traps: PathBuf,
    traps_explicit: PathBuf,
    externref: PathBuf,
    fib: PathBuf,
}

fn artifacts() -> &'static Artifacts {
    static A: OnceLock<Artifacts> = OnceLock::new();
    A.get_or_init(|| Artifacts {
        traps: compile("traps.wat", "traps.o", &[]),
        traps_explicit: compile(
            "traps.wat",
            "traps-explicit.o",
            &["--bounds-checks", "explicit"],
        ),
        externref: compile("externref.wat", "externref.o", &[]),
        fib: compile("fib.wat", "fib.o", &[]),
    })
}

fn inspect_ok(path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["inspect", path.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let o = wasmc(&args);
    assert!(
        o.status.success(),
        "wasmc {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8 output")
}

fn inspect_json(path: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = inspect_ok(path, &args);
    serde_json::from_str(&out).expect("inspect --json prints one JSON document")
}

/// Runs the binary on a bad file: exit status 1, one `error:` line, no panic.
fn inspect_fails(path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["inspect", path.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let o = wasmc(&args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

#[test]
fn text_shows_header_sections_functions_and_segments() {
    let out = inspect_ok(&artifacts().traps, &[]);
    let version = format!(
        "wasmc artifact v{}, written by wasmc",
        wasmc_format::header::FORMAT_VERSION
    );
    for needle in [
        version.as_str(),
        "this host       loadable",
        ".wasmc.traps",
        "Functions (7)",
        "wasm[0]::div",
        "Exports (8)",
        "IntegerDivisionByZero",
        "IntegerOverflow",
        "UnreachableCodeReached",
        "wasm[3]::boom+0x",
        "Data segments (3)",
        "in a memory image",
        "passive",
        "Element segments (1)",
        "table 0 at (i32.const 0)",
        "Totals",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn text_columns_are_aligned() {
    let out = inspect_ok(&artifacts().traps, &["--functions"]);
    let lines: Vec<&str> = out.lines().skip(1).filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 8, "{out}");
    // The signature column starts at the same place on every row.
    let col = lines[0].find("signature").expect("header row");
    for l in &lines[1..] {
        assert_eq!(l.find('('), Some(col), "misaligned row {l:?} in:\n{out}");
    }
}

#[test]
fn json_figures_match_the_traps_module() {
    let j = inspect_json(&artifacts().traps, &[]);
    assert_eq!(j["schema_version"], 4);
    assert_eq!(
        j["header"]["format_version"],
        wasmc_format::header::FORMAT_VERSION
    );
    // The features the module uses: its passive data segment.
    assert_eq!(
        j["header"]["wasm_features"],
        serde_json::json!(["bulk-memory"])
    );
    assert_eq!(j["host"]["loadable"], true);
    assert_eq!(j["totals"]["functions"], 7);
    assert_eq!(j["totals"]["defined_functions"], 7);
    let exports: Vec<&str> = j["exports"]
        .as_array()
        .expect("exports")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        exports,
        ["memory", "table", "div", "rem", "boom", "load", "apply", "init"]
    );

    let traps = j["traps"].as_array().expect("traps");
    let kinds_in = |func: u64| -> Vec<&str> {
        traps
            .iter()
            .filter(|t| t["location"]["function"] == func)
            .map(|t| t["kind"].as_str().expect("kind"))
            .collect()
    };
    assert!(kinds_in(0).contains(&"IntegerDivisionByZero"), "{traps:?}");
    assert!(kinds_in(1).contains(&"IntegerDivisionByZero"), "{traps:?}");
    assert_eq!(kinds_in(3), ["UnreachableCodeReached"]);
    // Guard mode: the load itself is a fault site.
    assert_eq!(kinds_in(4), ["MemoryOutOfBounds"]);
    let apply = kinds_in(5);
    for k in ["IndirectCallToNull", "BadSignature"] {
        assert!(apply.contains(&k), "{apply:?}");
    }
    // Every trap lies inside its function and its label says where.
    let funcs = j["functions"].as_array().expect("functions");
    for t in traps {
        let f = &funcs[t["location"]["function"].as_u64().expect("in a function") as usize];
        let start = f["code_offset"].as_u64().expect("offset");
        let off = t["code_offset"].as_u64().expect("offset");
        assert!(off >= start && off < start + f["code_size"].as_u64().expect("size"));
        assert_eq!(t["location"]["offset"].as_u64(), Some(off - start));
        let label = t["location"]["label"].as_str().expect("label");
        assert!(
            label.starts_with(f["symbol"].as_str().expect("symbol")),
            "{label}"
        );
    }
    // Per-function counts agree with the table.
    let counted: u64 = funcs.iter().map(|f| f["traps"].as_u64().unwrap_or(0)).sum();
    assert_eq!(counted, traps.len() as u64);

    let data = j["data_segments"].as_array().expect("data");
    // The two active segments are applied by the memory image: the
    // artifact keeps no record of them, so only their kind and how they are
    // applied are known.
    let sizes: Vec<Option<u64>> = data.iter().map(|d| d["size"].as_u64()).collect();
    assert_eq!(sizes, [None, None, Some(13)]);
    assert_eq!(data[1]["kind"], "active");
    assert_eq!(data[1]["offset_expr"], Value::Null);
    assert_eq!(data[1]["memory"], Value::Null);
    assert_eq!(data[2]["kind"], "passive");
    // Both active segments are in the memory image (one 4 KiB page); only
    // the passive segment's bytes are stored as such.
    assert_eq!(data[0]["init"], "image");
    assert_eq!(data[1]["init"], "image");
    assert_eq!(data[2]["init"], Value::Null);
    assert_eq!(data[2]["data_offset"], 4096);
    let images = j["memory_images"].as_array().expect("images");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["memory_offset"], 0);
    assert_eq!(images[0]["size"], 4096);
    assert_eq!(j["totals"]["data_bytes"], 4096 + 13);
    let elems = j["element_segments"].as_array().expect("elements");
    assert_eq!(elems.len(), 1);
    assert_eq!(elems[0]["size"], 3);
    assert_eq!(elems[0]["functions"], serde_json::json!([0, 1, 2]));
    assert!(j["relocations"].as_array().expect("relocs").is_empty());
    let sections: Vec<&str> = j["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    for s in [
        ".text",
        ".wasmc.meta",
        ".wasmc.traps",
        ".wasmc.segments",
        ".wasmc.data",
    ] {
        assert!(sections.contains(&s), "{sections:?}");
    }
    assert_eq!(
        j["totals"]["code_bytes"],
        j["sections"]
            .as_array()
            .expect("sections")
            .iter()
            .find(|s| s["name"] == ".text")
            .expect(".text")["size"]
    );
    // Only the builtins the code calls get a trampoline: traps.wat's
    // `memory.init`, and the cold path of its `call_indirect` (a funcref
    // table element not initialised yet).
    let builtins: Vec<&str> = j["trampolines"]
        .as_array()
        .expect("trampolines")
        .iter()
        .filter(|t| t["kind"] == "builtin")
        .map(|t| t["name"].as_str().expect("builtin name"))
        .collect();
    assert_eq!(builtins, ["memory_init", "table_get_lazy_funcref"]);
}

/// `inspect` says which data segments are copied at instantiation and why.
#[test]
fn data_segments_say_image_or_copy() {
    let wat = dir().join("global-offsets.wat");
    std::fs::write(
        &wat,
        r#"(module (import "env" "g" (global i32)) (memory 1)
             (data (i32.const 8) "image")
             (data (global.get 0) "global")
             (data (i32.const 16) "after"))"#,
    )
    .unwrap();
    let out = dir().join("global-offsets.o");
    wasmc_compile(&wat, &out, &[]);
    let j = inspect_json(&out, &[]);
    let inits: Vec<&str> = j["data_segments"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["init"].as_str().expect("init"))
        .collect();
    assert_eq!(inits, ["image", "copy: offset reads a global", "copy"]);
    // Copied segments keep their records; the imaged one has none.
    let data = j["data_segments"].as_array().expect("data");
    assert_eq!(data[2]["offset_expr"], "i32.const 16");
    assert_eq!(data[2]["size"], 5);
    assert_eq!(data[0]["size"], Value::Null);
    let text = inspect_ok(&out, &[]);
    assert!(text.contains("copy: offset reads a global"), "{text}");
    assert!(text.contains("Memory images"), "{text}");
}

#[test]
fn explicit_bounds_checks_are_recorded() {
    let j = inspect_json(&artifacts().traps_explicit, &[]);
    assert_eq!(j["header"]["memory_strategy"]["kind"], "explicit");
    let load_traps: Vec<&Value> = j["traps"]
        .as_array()
        .expect("traps")
        .iter()
        .filter(|t| t["location"]["function"] == 4)
        .collect();
    assert_eq!(load_traps.len(), 1, "{load_traps:?}");
    assert_eq!(load_traps[0]["kind"], "MemoryOutOfBounds");
    let g = inspect_json(&artifacts().traps, &[]);
    assert_eq!(g["header"]["memory_strategy"]["kind"], "guard");
}

#[test]
fn externref_stack_maps_and_imports() {
    let j = inspect_json(&artifacts().externref, &[]);
    assert_eq!(j["totals"]["functions"], 5);
    assert_eq!(j["totals"]["imported_functions"], 1);
    let imports = j["imports"].as_array().expect("imports");
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0]["module"], "host");
    assert_eq!(imports[0]["field"], "observe");
    assert_eq!(imports[0]["kind"], "func");
    let funcs = j["functions"].as_array().expect("functions");
    assert_eq!(funcs[0]["imported"], true);
    assert_eq!(funcs[0]["code_offset"], Value::Null);
    assert_eq!(funcs[2]["exports"], serde_json::json!(["keep"]));

    // `keep` holds its externref across the call to `$g`: one safepoint,
    // one slot, keyed by a return address inside `keep`.
    let maps = j["stack_maps"].as_array().expect("stack maps");
    let keep: Vec<&Value> = maps
        .iter()
        .filter(|m| m["location"]["function"] == 2)
        .collect();
    assert_eq!(keep.len(), 1, "{maps:?}");
    assert_eq!(keep[0]["slots"].as_array().expect("slots").len(), 1);
    assert_eq!(funcs[2]["safepoints"], 1);
    let ret = keep[0]["return_offset"].as_u64().expect("return");
    let start = funcs[2]["code_offset"].as_u64().expect("start");
    assert!(ret > start && ret < start + funcs[2]["code_size"].as_u64().expect("size"));
    // `pass` holds nothing across its call.
    assert_eq!(funcs[3]["safepoints"], 0);
    assert_eq!(j["totals"]["stack_maps"], maps.len());

    let text = inspect_ok(&artifacts().externref, &["--stack-maps"]);
    assert!(text.starts_with("Stack maps ("), "{text}");
    assert!(text.contains("wasm[2]::keep+0x"), "{text}");
    assert!(!text.contains("Functions ("), "{text}");
}

#[test]
fn part_flags_select_parts() {
    let a = &artifacts().traps;
    let j = inspect_json(a, &["--traps", "--relocs"]);
    let keys: Vec<&str> = j
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    for k in ["schema_version", "file", "traps", "relocations"] {
        assert!(keys.contains(&k), "{keys:?}");
    }
    let text = inspect_ok(a, &["--functions"]);
    assert!(text.starts_with("Functions (7)"), "{text}");
    assert!(!text.contains("Traps ("), "{text}");
    let text = inspect_ok(a, &["--relocs"]);
    assert!(text.starts_with("Relocations (0)"), "{text}");
}

#[test]
fn disassembly_marks_traps_and_safepoints() {
    let out = inspect_ok(&artifacts().traps, &["--disas", "div"]);
    assert!(out.starts_with("wasm[0]::div (function 0"), "{out}");
    assert!(out.contains("; trap: IntegerDivisionByZero"), "{out}");
    assert!(!out.contains("wasm[1]::rem"), "{out}");
    // By index, by symbol and by builtin name.
    assert!(
        inspect_ok(&artifacts().traps, &["--disas", "3"]).contains("trap: UnreachableCodeReached")
    );
    assert!(
        inspect_ok(&artifacts().traps, &["--disas", "wasm[4]::load"])
            .contains("trap: MemoryOutOfBounds")
    );
    assert!(inspect_ok(&artifacts().traps, &["--disas", "memory_init"])
        .starts_with("<builtin memory_init>"));
    // A builtin the module never calls has no trampoline to show.
    let out = wasmc(&[
        "inspect",
        artifacts().traps.to_str().unwrap(),
        "--disas",
        "memory_grow",
    ]);
    assert_eq!(out.status.code(), Some(1));

    let out = inspect_ok(&artifacts().externref, &["--disas", "keep"]);
    let marked: Vec<&str> = out.lines().filter(|l| l.contains("safepoint:")).collect();
    assert_eq!(marked.len(), 1, "{out}");
    assert!(marked[0].contains("1 externref slot"), "{out}");
    assert!(
        marked[0].contains("<wasm[1]::g>"),
        "the call names its target: {out}"
    );

    // Every function, and JSON.
    let all = inspect_ok(&artifacts().fib, &["--disas"]);
    for f in [
        "wasm[0]::fib",
        "wasm[1]::fib_iter",
        "wasm[2]::div",
        "wasm[3]::main",
    ] {
        assert!(all.contains(&format!("{f} (function")), "{f}");
    }
    let j = inspect_json(&artifacts().externref, &["--disas", "keep"]);
    let regions = j["disassembly"]["regions"].as_array().expect("regions");
    assert_eq!(regions.len(), 1);
    let sp: Vec<&Value> = regions[0]["instructions"]
        .as_array()
        .expect("instructions")
        .iter()
        .filter(|i| !i["safepoint_slots"].is_null())
        .collect();
    assert_eq!(sp.len(), 1);

    let err = inspect_fails(&artifacts().traps, &["--disas", "no_such_function"]);
    assert!(
        err.contains("no function or trampoline `no_such_function`"),
        "{err}"
    );
}

#[test]
fn check_passes_here_and_names_what_differs() {
    let out = inspect_ok(&artifacts().fib, &["--check"]);
    assert_eq!(out, "ok: loadable on this host\n");
    let j = inspect_json(&artifacts().fib, &["--check"]);
    assert_eq!(j["host"]["loadable"], true);
    assert_eq!(j["needs_imports"], serde_json::json!([]));

    // A WASI program is loadable, and --check says what it needs.
    let hello = compile("hello.wat", "hello.o", &[]);
    let out = inspect_ok(&hello, &["--check"]);
    assert_eq!(
        out,
        "ok: loadable on this host\n\
         needs imports from the host (instantiation fails unless they are defined):\n  \
         wasi_snapshot_preview1 (WASI preview 1: `wasmc run`, wasmc-wasi): fd_write (func)\n"
    );
    let j = inspect_json(&hello, &["--check"]);
    assert_eq!(j["needs_imports"][0]["module"], "wasi_snapshot_preview1");
    assert_eq!(j["needs_imports"][0]["fields"][0], "fd_write (func)");

    // An artifact for another architecture parses, and --check says why it
    // cannot load here.
    let other = if cfg!(target_arch = "aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    };
    let foreign = compile("externref.wat", "foreign.o", &["--target", other]);
    let path = foreign.to_str().expect("utf-8 path");
    let o = wasmc(&["inspect", path, "--check"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("not loadable on this host"), "{out}");
    assert!(out.contains("architecture: artifact needs"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("cannot be loaded on this host"),
        "{err}"
    );
    // Plain inspect still works on it, disassembly included, and reports it.
    let text = inspect_ok(&foreign, &[]);
    assert!(text.contains("NOT loadable"), "{text}");
    assert!(inspect_ok(&foreign, &["--disas", "keep"]).contains("safepoint: 1 externref slot"));
}

#[test]
fn modified_code_fails_check_on_the_content_hash() {
    let bytes = std::fs::read(&artifacts().fib).expect("read");
    let a = inspect::inspect(&bytes, None).expect("inspect");
    let text_at = a
        .sections
        .iter()
        .find(|s| s.name == ".text")
        .expect(".text")
        .offset as usize;
    let mut b = bytes.clone();
    b[text_at + 5] ^= 0x10;
    let path = dir().join("fib-modified.o");
    std::fs::write(&path, &b).expect("write");
    let o = wasmc(&["inspect", path.to_str().expect("path"), "--check"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("content hash mismatch"), "{out}");
    // Inspecting it still works and says the same.
    let text = inspect_ok(&path, &[]);
    assert!(text.contains("NOT loadable") && text.contains("content hash mismatch"));
}

#[test]
fn bad_files_give_clear_errors_from_the_binary() {
    let good = std::fs::read(&artifacts().traps).expect("read");
    let d = dir();
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    };
    for (n, expect) in [
        (0, "only 0 bytes"),
        (3, "only 3 bytes"),
        (40, "shorter than an ELF64 header"),
        (good.len() / 2, "truncated artifact"),
        (good.len() - 1, "truncated artifact"),
    ] {
        let p = write(&format!("trunc-{n}.o"), &good[..n]);
        let err = inspect_fails(&p, &[]);
        assert!(err.contains(expect), "truncated at {n}: {err}");
        inspect_fails(&p, &["--check"]);
        inspect_fails(&p, &["--json"]);
    }
    // Metadata magic broken: the header decoder names it.
    let meta = inspect::inspect(&good, None)
        .expect("inspect")
        .sections
        .iter()
        .find(|s| s.name == ".wasmc.meta")
        .expect("meta")
        .offset as usize;
    let mut b = good.clone();
    b[meta + 1] ^= 0xff;
    let err = inspect_fails(&write("badmagic.o", &b), &[]);
    assert!(err.contains("bad magic"), "{err}");
    let mut b = good.clone();
    b[meta + 8] = 9;
    let err = inspect_fails(&write("badversion.o", &b), &["--check"]);
    assert!(err.contains("format version 9"), "{err}");
    // Not artifacts at all.
    let err = inspect_fails(&example("fib.wat"), &[]);
    assert!(
        err.contains("compile it with `wasmc compile` first"),
        "{err}"
    );
    let err = inspect_fails(&write("module.wasm", b"\0asm\x01\0\0\0"), &[]);
    assert!(err.contains("WebAssembly binary"), "{err}");
    let err = inspect_fails(&d.join("does-not-exist.o"), &[]);
    assert!(err.contains("does-not-exist.o"), "{err}");
}

/// Everything the CLI can print, in-process, on one input; must not panic.
fn exercise(bytes: &[u8], disas: bool) -> bool {
    let mut ok = false;
    for json in [false, true] {
        let opts = Options {
            parts: Parts::default(),
            json,
            disas: None,
        };
        ok |= inspect::render(bytes, None, &opts).is_ok();
    }
    if disas {
        let opts = Options {
            parts: Parts {
                traps: true,
                ..Parts::default()
            },
            json: false,
            disas: Some(None),
        };
        let _ = inspect::render(bytes, None, &opts);
    }
    let _ = inspect::check(bytes);
    ok
}

#[test]
fn truncated_artifacts_never_panic() {
    for path in [&artifacts().traps, &artifacts().externref] {
        let bytes = std::fs::read(path).expect("read");
        assert!(exercise(&bytes, true));
        for n in 0..bytes.len() {
            assert!(
                inspect::inspect(&bytes[..n], None).is_err(),
                "truncated at {n} of {} was accepted",
                bytes.len()
            );
        }
    }
}

#[test]
fn bit_flipped_artifacts_never_panic() {
    let bytes = std::fs::read(&artifacts().externref).expect("read");
    let mut accepted = 0;
    let mut rejected = 0;
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 1 << (i % 8);
        if exercise(&b, i % 16 == 0) {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    // Flips in padding or code still inspect; flips in headers do not.
    assert!(
        accepted > 0 && rejected > 0,
        "{accepted} accepted, {rejected} rejected"
    );
    // Every bit of the metadata and tables, one at a time.
    let report = inspect::inspect(&bytes, None).expect("inspect");
    for s in report
        .sections
        .iter()
        .filter(|s| s.name.starts_with(".wasmc."))
    {
        let start = s.offset as usize;
        let end = (start + s.size as usize).min(bytes.len());
        for i in start..end {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let _ = inspect::inspect(&b, None);
            }
        }
    }
}

/// Every key the JSON output can contain is documented in docs/inspect-json.md.
#[test]
fn every_json_key_is_documented() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/inspect-json.md"),
    )
    .expect("docs/inspect-json.md");
    fn keys(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    out.push(k.clone());
                    keys(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    for (path, extra) in [
        (&artifacts().traps, &[][..]),
        (&artifacts().externref, &[][..]),
        (&artifacts().externref, &["--disas", "keep"][..]),
        (&artifacts().fib, &["--check"][..]),
    ] {
        keys(&inspect_json(path, extra), &mut all);
    }
    all.sort();
    all.dedup();
    let missing: Vec<&String> = all
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(missing.is_empty(), "undocumented JSON keys: {missing:?}");
}
