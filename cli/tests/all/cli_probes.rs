//! Adversarial probes of the `wasmc` command line as operators and build steps
//! use it: what `inspect` (text and `--json`) says about unusual modules,
//! how every subcommand fails on bad input (exit status, a clear message, no
//! panic), and that a failing `compile` or `sign` neither leaves a partial
//! file nor damages the one it would replace.

use super::common::{tmp_dir, wasmc, wasmc_compile};
use std::path::{Path, PathBuf};
use std::process::Output;

/// Import and export names with quotes, backslashes, newlines, carriage
/// returns, NUL, DEL, an escape sequence, non-ASCII and U+2028; exported
/// globals of every value type; a 0-page memory.
const NAMES_WAT: &str = r#"(module
  (import "m\"q\\x" "f\nerror: forged line\r\t\00\7f" (func (param i32)))
  (import "é✓🎉" "\e2\80\a8sep" (global i32))
  (memory (export "mem\0a0") 0)
  (global (export "g_i32") i32 (i32.const -1))
  (global (export "g_i64") (mut i64) (i64.const 9223372036854775807))
  (global (export "g_f32") f32 (f32.const nan))
  (global (export "g_f64") f64 (f64.const -inf))
  (global (export "g_v128") v128 (v128.const i32x4 1 2 3 4))
  (global (export "g_fr") funcref (ref.null func))
  (global (export "g_er") externref (ref.null extern))
  (func (export "\1b[31mred") (param i32) local.get 0 call 0)
)"#;

/// Three memories (one 64-bit), a 64-bit table, active, passive and
/// declarative segments.
const MULTI_WAT: &str = r#"(module
  (memory $a 0)
  (memory $b i64 1 2)
  (memory $c 2 65536)
  (table $t 0 funcref)
  (table $t64 i64 3 externref)
  (data (memory $c) (i32.const 0) "hello")
  (data "passive")
  (elem declare func $f)
  (elem $p funcref (ref.func $f))
  (func $f)
  (func (export "grow") (result i64) (memory.grow $b (i64.const 1)))
)"#;

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write probe input");
    p
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON document on stdout.
fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout(o)))
}

/// Asserts a clean failure: exit status 1 (not a signal, not a panic's 101),
/// an `error: ` line on stderr.
fn assert_clean_failure(o: &Output, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: status {:?}\nstderr: {}",
        o.status,
        stderr(o)
    );
    let e = stderr(o);
    assert!(e.starts_with("error: "), "{what}: stderr {e:?}");
    assert!(!e.contains("panicked"), "{what}: {e}");
}

/// Names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn json_escapes_hostile_names_and_text_does_not_forge_lines() {
    let d = tmp_dir("probe-names");
    let wat = write(&d, "names.wat", NAMES_WAT);
    let o = d.join("names.o");
    wasmc_compile(&wat, &o, &[]);

    let out = wasmc(&["inspect", "--json", p(&o)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["schema_version"], 4);
    let imports = doc["imports"].as_array().expect("imports");
    assert_eq!(imports.len(), 2);
    assert_eq!(imports[0]["module"], "m\"q\\x");
    assert_eq!(imports[0]["field"], "f\nerror: forged line\r\t\0\u{7f}");
    assert_eq!(imports[0]["kind"], "func");
    assert_eq!(imports[1]["module"], "é✓🎉");
    assert_eq!(imports[1]["field"], "\u{2028}sep");
    assert_eq!(imports[1]["kind"], "global");
    let exports: Vec<&str> = doc["exports"]
        .as_array()
        .expect("exports")
        .iter()
        .map(|e| e["name"].as_str().expect("name"))
        .collect();
    assert!(exports.contains(&"mem\n0"), "{exports:?}");
    assert!(exports.contains(&"\u{1b}[31mred"), "{exports:?}");
    // One imported global, then the seven defined ones of every type.
    let globals = doc["globals"].as_array().expect("globals");
    assert_eq!(globals.len(), 8);
    let types: Vec<&str> = globals
        .iter()
        .map(|g| g["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "i32",
            "i32",
            "i64",
            "f32",
            "f64",
            "v128",
            "funcref",
            "externref"
        ]
    );
    assert_eq!(globals[0]["imported"], true);
    assert_eq!(globals[2]["mutable"], true);
    assert_eq!(globals[1]["mutable"], false);
    let mems = doc["memories"].as_array().expect("memories");
    assert_eq!(mems.len(), 1);
    assert_eq!(mems[0]["min_pages"], 0);
    assert_eq!(mems[0]["max_pages"], serde_json::Value::Null);

    let text = wasmc(&["inspect", p(&o)]);
    assert!(text.status.success(), "{}", stderr(&text));
    let t = stdout(&text);
    for line in t.lines() {
        assert!(!line.starts_with("error: forged"), "forged line: {line:?}");
    }
    assert!(!t.contains('\r'), "raw CR in text output");
    assert!(!t.contains('\u{1b}'), "raw ESC in text output");
    assert!(!t.contains('\0'), "raw NUL in text output");
    assert!(t.contains("é✓🎉"), "non-ASCII names are shown as they are");
}

#[test]
fn multi_memory_table64_and_segments_are_all_reported() {
    let d = tmp_dir("probe-multi");
    let wat = write(&d, "multi.wat", MULTI_WAT);
    let o = d.join("multi.o");
    wasmc_compile(&wat, &o, &[]);
    let out = wasmc(&["inspect", "--json", p(&o)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    let mems = doc["memories"].as_array().expect("memories");
    assert_eq!(mems.len(), 3);
    let shape: Vec<(u64, Option<u64>, &str)> = mems
        .iter()
        .map(|m| {
            (
                m["min_pages"].as_u64().expect("min"),
                m["max_pages"].as_u64(),
                m["index_type"].as_str().expect("index_type"),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (0, None, "i32"),
            (1, Some(2), "i64"),
            (2, Some(65536), "i32")
        ]
    );
    let tables = doc["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[1]["index_type"], "i64");
    assert_eq!(tables[1]["elem_type"], "externref");
    assert_eq!(tables[1]["min"], 3);
    let kinds: Vec<&str> = doc["element_segments"]
        .as_array()
        .expect("element_segments")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["declared", "passive"]);
    assert_eq!(doc["data_segments"].as_array().expect("data").len(), 2);
    // Every documented top-level key is present, `schema_version` first
    // (serde_json's map sorts keys: look at the text).
    assert!(
        stdout(&out).starts_with("{\n  \"schema_version\": 4,"),
        "{}",
        stdout(&out)
    );
    for k in [
        "file",
        "header",
        "host",
        "sections",
        "module",
        "types",
        "imports",
        "exports",
        "functions",
        "trampolines",
        "tables",
        "memories",
        "globals",
        "traps",
        "stack_maps",
        "addrmap",
        "relocations",
        "data_segments",
        "memory_images",
        "element_segments",
        "totals",
    ] {
        assert!(doc.get(k).is_some(), "missing top-level key {k}");
    }

    // The text shows each of the three memories.
    let text = stdout(&wasmc(&["inspect", p(&o)]));
    assert!(text.contains("65536"), "{text}");
}

#[test]
fn compile_is_deterministic_across_jobs() {
    let d = tmp_dir("probe-det");
    let wat = write(&d, "multi.wat", MULTI_WAT);
    let mut many = String::from("(module (memory 1)\n");
    for i in 0..300 {
        many.push_str(&format!(
            "(func (export \"f{i}\") (param i32) (result i32) local.get 0 i32.const {i} i32.add i32.load)\n"
        ));
    }
    many.push(')');
    let many = write(&d, "many.wat", many);
    for input in [&wat, &many] {
        let a = d.join("j1.o");
        let b = d.join("j2.o");
        wasmc_compile(input, &a, &["-j", "1"]);
        wasmc_compile(input, &b, &["-j", "2"]);
        assert!(
            std::fs::read(&a).expect("j1") == std::fs::read(&b).expect("j2"),
            "{} differs between -j 1 and -j 2",
            input.display()
        );
        // A huge -j is capped at the cores: it used to try to spawn that many
        // threads, panic in rayon and hang.
        wasmc_compile(input, &b, &["-j", "100000"]);
        assert!(
            std::fs::read(&a).expect("j1") == std::fs::read(&b).expect("j100000"),
            "{} differs between -j 1 and -j 100000",
            input.display()
        );
    }
}

#[test]
fn failed_compiles_leave_nothing_and_keep_the_old_output() {
    let d = tmp_dir("probe-fail");
    let good = write(&d, "good.wat", "(module (func (export \"f\")))");
    let out = d.join("app.o");
    wasmc_compile(&good, &out, &[]);
    let before = std::fs::read(&out).expect("artifact");

    let bad_inputs: Vec<(&str, Vec<u8>)> = vec![
        ("notwat.wat", b"hello this is not wat\n".to_vec()),
        ("trunc.wasm", b"\0asm\x01\0\0\0\x01\x05".to_vec()),
        // `(module)` in binary, then bytes that are not a section.
        ("trailing.wasm", b"\0asm\x01\0\0\0\xff\xff\xff".to_vec()),
        ("invalid.wat", b"(module (func (result i32)))".to_vec()),
        ("empty.wasm", Vec::new()),
    ];
    for (name, bytes) in bad_inputs {
        let input = write(&d, name, bytes);
        let o = wasmc(&["compile", p(&input), "-o", p(&out)]);
        assert_clean_failure(&o, name);
        assert!(
            stderr(&o).contains(name),
            "{name}: the error names the input: {}",
            stderr(&o)
        );
        assert_eq!(std::fs::read(&out).expect("still there"), before, "{name}");
    }
    // Bad flag values: clap's usage errors are status 2, ours 1; none writes.
    for (flags, status) in [
        (&["-j", "0"][..], 1),
        (&["-j", "x"][..], 2),
        (&["--cpu", "no-such-feature"][..], 1),
        (&["-W", "no-such-feature"][..], 1),
        (&["-W", "gc=y"][..], 1),
        (&["--target", "nonsense-triple"][..], 1),
        (&["--opt-level", "fast"][..], 2),
        (&["--bounds-checks", "none"][..], 2),
        (&["--sign", "/nonexistent/key"][..], 1),
    ] {
        let fresh = d.join("fresh.o");
        let mut args = vec!["compile", p(&good), "-o", p(&fresh)];
        args.extend_from_slice(flags);
        let o = wasmc(&args);
        assert_eq!(o.status.code(), Some(status), "{flags:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{flags:?}");
        assert!(!fresh.exists(), "{flags:?} wrote an output");
    }
    // Nothing but the inputs and the one good artifact is in the directory.
    for f in listing(&d) {
        assert!(
            f == "app.o" || f.ends_with(".wat") || f.ends_with(".wasm"),
            "left behind: {f}"
        );
    }
}

#[test]
fn output_that_cannot_be_written_leaves_no_temporary_file() {
    let d = tmp_dir("probe-unwritable");
    let good = write(&d, "good.wat", "(module)");
    // -o into a directory that does not exist.
    let o = wasmc(&["compile", p(&good), "-o", p(&d.join("missing/app.o"))]);
    assert_clean_failure(&o, "missing dir");
    assert!(stderr(&o).contains("missing/app.o"), "{}", stderr(&o));
    // -o naming an existing directory: the rename fails after the temporary
    // file was written; it must not be left beside the directory.
    std::fs::create_dir_all(d.join("outdir")).expect("mkdir");
    let o = wasmc(&["compile", p(&good), "-o", p(&d.join("outdir"))]);
    assert_clean_failure(&o, "-o a directory");
    assert!(d.join("outdir").is_dir());
    assert_eq!(listing(&d), ["good.wat", "outdir"], "left behind");
    // A user's file that happens to be named like a temporary file is not
    // touched by a compile to `app.o`.
    let user = write(&d, "app.o.tmp", "mine");
    wasmc_compile(&good, &d.join("app.o"), &[]);
    assert_eq!(std::fs::read(&user).expect("user file"), b"mine");
}

#[test]
fn inspect_fails_cleanly_on_files_that_are_not_artifacts() {
    let d = tmp_dir("probe-notart");
    let wasm = write(&d, "m.wasm", b"\0asm\x01\0\0\0");
    let wat = write(&d, "m.wat", "(module)");
    let empty = write(&d, "empty.o", b"");
    let random = write(
        &d,
        "random.o",
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    );
    // An ELF header with nothing after it, and a real ELF that is not wasmc's.
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    let elf_hdr = write(&d, "hdr.o", elf);
    let dir = d.join("a-directory");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut cases: Vec<PathBuf> = vec![
        wasm,
        wat,
        empty,
        random,
        elf_hdr,
        dir,
        PathBuf::from("/dev/null"),
        d.join("does-not-exist.o"),
    ];
    let own_exe = PathBuf::from(env!("CARGO_BIN_EXE_wasmc"));
    cases.push(own_exe);
    for c in &cases {
        for flags in [
            &[][..],
            &["--check"][..],
            &["--json"][..],
            &["--json", "--check"][..],
        ] {
            let mut args = vec!["inspect"];
            args.extend_from_slice(flags);
            args.push(p(c));
            let o = wasmc(&args);
            let what = format!("{} {flags:?}", c.display());
            assert_clean_failure(&o, &what);
            if flags.contains(&"--json") {
                let doc = json(&o);
                let msg = doc["error"]["message"].as_str().expect("message");
                assert!(!msg.is_empty(), "{what}");
                assert_eq!(doc["schema_version"], 4, "{what}");
            }
        }
    }
}

#[test]
fn damaged_artifacts_never_crash_inspect() {
    let d = tmp_dir("probe-damage");
    let wat = write(&d, "multi.wat", MULTI_WAT);
    let good = d.join("multi.o");
    wasmc_compile(&wat, &good, &[]);
    let bytes = std::fs::read(&good).expect("artifact");
    let doc = json(&wasmc(&["inspect", "--json", p(&good)]));
    let damaged = d.join("damaged.o");
    let mut n = 0;
    // Truncations at spread-out offsets, including inside the ELF header.
    let len = bytes.len();
    let mut cuts: Vec<usize> = vec![1, 3, 4, 16, 63, 64, 65, len / 2, len - 1];
    cuts.extend((1..12).map(|k| len * k / 12));
    for cut in cuts {
        std::fs::write(&damaged, &bytes[..cut]).expect("write");
        for flags in [&["--json"][..], &["--check"][..]] {
            let mut args = vec!["inspect"];
            args.extend_from_slice(flags);
            args.push(p(&damaged));
            let o = wasmc(&args);
            assert_clean_failure(&o, &format!("cut at {cut} {flags:?}"));
            n += 1;
        }
    }
    // A flipped byte in the middle and at both ends of each `.wasmc.*`
    // section: a clean failure or a report (`--check` then says whether the
    // damage is noticed), never a crash.
    for s in doc["sections"].as_array().expect("sections") {
        let name = s["name"].as_str().expect("name");
        let (off, size) = (
            s["offset"].as_u64().expect("off") as usize,
            s["size"].as_u64().expect("size") as usize,
        );
        if !name.starts_with(".wasmc") || size == 0 {
            continue;
        }
        for at in [off, off + size / 2, off + size - 1] {
            let mut b = bytes.clone();
            b[at] ^= 0x5a;
            std::fs::write(&damaged, &b).expect("write");
            for flags in [&["--json"][..], &["--check"][..], &[][..]] {
                let mut args = vec!["inspect"];
                args.extend_from_slice(flags);
                args.push(p(&damaged));
                let o = wasmc(&args);
                let what = format!("{name} byte {at:#x} {flags:?}");
                match o.status.code() {
                    Some(0) => {}
                    Some(1) => assert!(!stderr(&o).contains("panicked"), "{what}"),
                    other => panic!("{what}: status {other:?}: {}", stderr(&o)),
                }
                if flags == ["--json"] {
                    let _ = json(&o);
                }
                if flags == ["--check"] && name != ".wasmc.sig" {
                    // Any flipped byte outside the signature slot breaks the
                    // content hash (or the parse): never "ok".
                    assert_eq!(o.status.code(), Some(1), "{what}: {}", stdout(&o));
                }
                n += 1;
            }
        }
    }
    assert!(n > 30, "only {n} probes ran");
}

#[test]
fn keygen_and_sign_refuse_bad_input_without_damage() {
    let d = tmp_dir("probe-sign");
    let wat = write(&d, "m.wat", "(module (func (export \"f\")))");
    let art = d.join("m.o");
    wasmc_compile(&wat, &art, &[]);
    let (k1, k2) = (d.join("k1"), d.join("k2"));
    for k in [&k1, &k2] {
        let o = wasmc(&["keygen", "-o", p(k)]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // keygen refuses to overwrite either file.
    let before = std::fs::read(&k1).expect("key");
    let o = wasmc(&["keygen", "-o", p(&k1)]);
    assert_clean_failure(&o, "keygen over a key");
    assert_eq!(std::fs::read(&k1).expect("key"), before);

    let unsigned = std::fs::read(&art).expect("artifact");
    // Garbled keys: wrong header, short hex, non-hex, a public key, empty.
    let garbled = [
        ("wrong-header", "not-a-key\n00\n".to_string()),
        ("short", "wasmc-ed25519-secret-key\n0011\n".to_string()),
        (
            "nonhex",
            format!("wasmc-ed25519-secret-key\n{}\n", "zz".repeat(32)),
        ),
        (
            "public",
            std::fs::read_to_string(d.join("k1.pub")).expect("pub"),
        ),
        ("empty", String::new()),
    ];
    for (name, text) in garbled {
        let key = write(&d, name, text);
        let o = wasmc(&["sign", "--key", p(&key), p(&art)]);
        assert_clean_failure(&o, name);
        assert!(stderr(&o).contains(name), "{name}: {}", stderr(&o));
        assert_eq!(std::fs::read(&art).expect("art"), unsigned, "{name}");
    }
    // A damaged artifact is refused and left as it was.
    let damaged = d.join("damaged.o");
    let mut b = unsigned.clone();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&damaged, &b).expect("write");
    let o = wasmc(&["sign", "--key", p(&k1), p(&damaged)]);
    assert_clean_failure(&o, "sign damaged");
    assert_eq!(std::fs::read(&damaged).expect("damaged"), b);
    // Signing twice replaces the signature; inspect --key tells the keys apart.
    for k in [&k1, &k2] {
        let o = wasmc(&["sign", "--key", p(k), p(&art)]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let signed = std::fs::read(&art).expect("signed");
    assert_eq!(signed.len(), unsigned.len(), "only the slot changes");
    let check = |pubkey: &str| {
        let o = wasmc(&["inspect", "--json", "--key", pubkey, p(&art)]);
        assert!(o.status.success(), "{}", stderr(&o));
        json(&o)["signature_check"]["verifies"].clone()
    };
    assert_eq!(check(&format!("{}.pub", p(&k2))), true);
    assert_eq!(check(&format!("{}.pub", p(&k1))), false);
    let o = wasmc(&[
        "inspect",
        "--check",
        "--key",
        &format!("{}.pub", p(&k1)),
        p(&art),
    ]);
    assert_clean_failure(&o, "check with the wrong key");
    // `inspect --key` with a secret key instead of a public one is an error.
    let o = wasmc(&["inspect", "--key", p(&k1), p(&art)]);
    assert_clean_failure(&o, "--key SECRET");
    // Nothing but what this test made is left in the directory.
    for f in listing(&d) {
        assert!(!f.contains("tmp"), "left behind: {f}");
    }
}

#[test]
fn text_output_keeps_a_literal_backslash_apart_from_an_escaped_newline() {
    let d = tmp_dir("probe-backslash");
    // Function 0 is named `a` newline `b`; function 1 `a` backslash `n` `b`.
    // Shown the same, a reader (or a script) could not tell them apart.
    let wat = write(
        &d,
        "bs.wat",
        "(module (func $\"a\\nb\" (export \"x\")) (func $\"a\\\\nb\" (export \"y\"))\
         (func (export \"\\e2\\80\\a8ls\")))",
    );
    let o = d.join("bs.o");
    wasmc_compile(&wat, &o, &[]);
    let out = wasmc(&["inspect", "--functions", p(&o)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t = stdout(&out);
    let row = |idx: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with(idx))
            .unwrap_or_else(|| panic!("no row {idx} in\n{t}"))
            .to_string()
    };
    let (r0, r1) = (row("0 "), row("1 "));
    assert!(r0.contains("a\\nb"), "{r0}");
    assert!(r1.contains("a\\\\nb"), "{r1}");
    assert!(!t.contains('\u{2028}'), "raw U+2028 in\n{t}");
    // JSON keeps the names exact.
    let doc = json(&wasmc(&["inspect", "--json", p(&o)]));
    let names: Vec<&str> = doc["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        names.contains(&"a\nb") && names.contains(&"a\\nb"),
        "{names:?}"
    );
}

/// The first key of the JSON document on stdout, read from the text
/// (serde_json's map sorts keys, so a parsed `Value` cannot tell).
fn first_key(o: &Output) -> String {
    let t = stdout(o);
    let rest = t.trim_start().strip_prefix('{').expect("an object");
    let rest = rest.trim_start().strip_prefix('"').expect("a key");
    rest[..rest.find('"').expect("key end")].to_string()
}

#[test]
fn every_json_document_starts_with_schema_version() {
    let d = tmp_dir("probe-order");
    let wat = write(&d, "m.wat", MULTI_WAT);
    let art = d.join("m.o");
    wasmc_compile(&wat, &art, &[]);
    let key = d.join("k");
    assert!(wasmc(&["keygen", "-o", p(&key)]).status.success());
    let pubkey = format!("{}.pub", p(&key));
    let (missing, nokey) = (d.join("missing.o"), d.join("nokey"));
    let cases: [&[&str]; 6] = [
        &["inspect", "--json", p(&art)],
        &["inspect", "--json", "--key", &pubkey, p(&art)],
        &["inspect", "--json", "--check", "--key", &pubkey, p(&art)],
        &["inspect", "--json", "--traps", "--key", &pubkey, p(&art)],
        // Error documents.
        &["inspect", "--json", p(&missing)],
        &["inspect", "--json", "--key", p(&nokey), p(&art)],
    ];
    for args in cases {
        let o = wasmc(args);
        assert_eq!(first_key(&o), "schema_version", "{args:?}:\n{}", stdout(&o));
        let doc = json(&o);
        if args.contains(&pubkey.as_str()) {
            assert_eq!(doc["signature_check"]["verifies"], false, "{args:?}");
            // Unsigned: the check fails, and the rest of the report is kept.
            if !args.contains(&"--check") {
                assert!(o.status.success(), "{args:?}");
            }
        }
    }
    // The full report with --key keeps the schema's order: `file` second,
    // `signature_check` after the documented keys.
    let o = wasmc(&["inspect", "--json", "--key", &pubkey, p(&art)]);
    let t = stdout(&o);
    let at = |k: &str| t.find(&format!("\n  \"{k}\":")).unwrap_or(usize::MAX);
    assert!(
        at("file") < at("header") && at("header") < at("totals"),
        "{t}"
    );
    assert!(at("totals") < at("signature_check") && at("signature_check") < usize::MAX);
    // `--check --key` with a signature that does not verify: exit 1, though
    // `host.loadable` (the host alone) is true; documented.
    let o = wasmc(&["inspect", "--json", "--check", "--key", &pubkey, p(&art)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["host"]["loadable"], true);
}

/// `sign` through a symbolic link signs the file it points to and leaves
/// the link a link (it used to replace the link with a signed copy, leaving
/// the real artifact unsigned); `compile -o` through a link likewise
/// replaces the target.
#[test]
fn sign_and_compile_through_a_symlink_write_its_target() {
    let d = tmp_dir("probe-symlink");
    let wat = write(&d, "m.wat", "(module (func (export \"f\")))");
    let real = d.join("real.o");
    wasmc_compile(&wat, &real, &[]);
    let link = d.join("link.o");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let key = d.join("k");
    let o = wasmc(&["keygen", "-o", p(&key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let unsigned = std::fs::read(&real).expect("artifact");
    let o = wasmc(&["sign", "--key", p(&key), p(&link)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let meta = std::fs::symlink_metadata(&link).expect("link");
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    let signed = std::fs::read(&real).expect("artifact");
    assert_ne!(signed, unsigned, "the target was not signed");
    let o = wasmc(&["inspect", "--json", "--key", p(&d.join("k.pub")), p(&real)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A recompile through the link replaces the target, unsigned again.
    wasmc_compile(&wat, &link, &[]);
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&real).expect("artifact"), unsigned);
}

/// A module whose import name carries a newline cannot forge a line of
/// `wasmc run`'s error output: the name is shown escaped.
#[test]
fn import_names_cannot_forge_lines_of_run_errors() {
    let d = tmp_dir("probe-run-names");
    let wat = write(
        &d,
        "names.wat",
        r#"(module (import "m" "f\nerror: forged line" (func)))"#,
    );
    let o = wasmc(&["run", p(&wat)]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        !err.lines().any(|l| l.starts_with("error: forged")),
        "a forged line: {err}"
    );
    assert!(err.contains("f\\nerror: forged line"), "{err}");
}
