//! Artifact trust (issue 11), through the library's default API
//! (`Module::from_file` -> instantiate -> call) and the trust policy:
//!
//! - `damage_campaign`: damaged artifacts of six modules (bit flips, byte
//!   overwrites, truncations, ELF section-header edits, edits in `.text` and
//!   in every `.wasmc.*` section), each loaded from a file, instantiated and
//!   called in a child process per batch, so that a crash or a hang is
//!   detected and reported with the case that caused it: every case must be
//!   a clean error or give the unchanged result. A second pass plays an
//!   attacker who recomputes the content hash, against a policy that
//!   requires a signature by a trusted key: every edited artifact must be
//!   refused before any code runs. `WASMC_TRUST_CAMPAIGN=N` runs N cases per
//!   pass instead of the bounded default (the full run in docs/trust.md).
//! - the memory strategy cannot be weakened by the header, signed or not;
//! - signatures: required, missing, by another key, broken by an edit;
//! - a loaded module survives its file being truncated and rewritten.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmc_compiler::{CompileOptions, Interruption};
use wasmc_format::header::{content_hash, decode_header, decode_module_info, encode_meta};
use wasmc_format::sections::SectionId;
use wasmc_format::MemoryStrategy;
use wasmc_loader::artifact::ParsedArtifact;
use wasmc_loader::{Config, Engine, Linker, LoadError, Module, Store, TrustPolicy, Val};
use wasmc_tests::fuzz::Rng;

const CHILD_ENV: &str = "WASMC_TRUST_TEST_CHILD";

/// Cases per pass in `make test` (about 10 s on the build machine).
const DEFAULT_CASES: usize = 2000;
/// Cases per child process.
const BATCH: usize = 250;
/// A batch that takes longer has hung.
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The campaign's modules, each with an export `run` and its arguments.
const MODULES: &[(&str, &str)] = &[
    (
        "fib",
        r#"(module
          (func $fib (export "run") (param i32) (result i32)
            (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
              (then (local.get 0))
              (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                             (call $fib (i32.sub (local.get 0) (i32.const 2))))))))"#,
    ),
    (
        "memory",
        r#"(module
          (memory 1 4)
          (data (i32.const 16) "hello, damaged artifacts")
          (func (export "run") (param i32) (result i32)
            (local $i i32) (local $s i32)
            (drop (memory.grow (i32.const 1)))
            (i32.store (i32.const 70000) (local.get 0))
            (block $done
              (loop $l
                (br_if $done (i32.ge_u (local.get $i) (i32.const 24)))
                (local.set $s (i32.add (local.get $s)
                  (i32.load8_u offset=16 (local.get $i))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $l)))
            (i32.add (local.get $s) (i32.load (i32.const 70000)))))"#,
    ),
    (
        "indirect",
        r#"(module
          (type $t (func (param i32) (result i32)))
          (table 3 funcref)
          (elem (i32.const 0) $double $square $neg)
          (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
          (func $square (type $t) (i32.mul (local.get 0) (local.get 0)))
          (func $neg (type $t) (i32.sub (i32.const 0) (local.get 0)))
          (func (export "run") (param i32) (result i32)
            (i32.add
              (call_indirect (type $t) (local.get 0) (i32.const 0))
              (i32.add
                (call_indirect (type $t) (local.get 0) (i32.const 1))
                (call_indirect (type $t) (local.get 0) (i32.const 2))))))"#,
    ),
    (
        "trap",
        r#"(module
          (func $inner (param i32) (result i32)
            (i32.div_u (i32.const 100) (local.get 0)))
          (func (export "run") (param i32) (result i32)
            (i32.add (i32.const 1) (call $inner (i32.sub (local.get 0) (i32.const 9))))))"#,
    ),
    (
        "globals",
        r#"(module
          (global $g (mut i64) (i64.const 7))
          (func (export "run") (param i32) (result i32)
            (global.set $g (i64.mul (global.get $g) (i64.extend_i32_u (local.get 0))))
            (i32.trunc_f64_s (f64.sqrt (f64.convert_i64_u (global.get $g))))))"#,
    ),
    (
        "externref",
        r#"(module
          (table $t 4 externref)
          (func $id (param externref) (result externref) (local.get 0))
          (func (export "run") (param i32) (result i32)
            (table.set $t (i32.const 1) (call $id (table.get $t (i32.const 0))))
            (drop (call $id (table.get $t (i32.const 1))))
            (i32.add (local.get 0) (ref.is_null (table.get $t (i32.const 1))))))"#,
    ),
    (
        "multi-memory",
        r#"(module
          (memory $a 1 2)
          (memory $b 2 3)
          (memory $c i64 1 2)
          (data (memory $b) (i32.const 65540) "\05\00\00\00")
          (func (export "run") (param i32) (result i32)
            (i32.store $a (i32.const 8) (local.get 0))
            (drop (memory.grow $b (i32.const 1)))
            (i64.store $c (i64.const 65528) (i64.extend_i32_u (local.get 0)))
            (memory.copy $b $a (i32.const 131072) (i32.const 8) (i32.const 4))
            (i32.add
              (i32.add (i32.load $b (i32.const 131072)) (i32.load $b (i32.const 65540)))
              (i32.add (i32.wrap_i64 (i64.load $c (i64.const 65528)))
                       (i32.add (memory.size $b) (i32.wrap_i64 (memory.size $c)))))))"#,
    ),
    (
        // Compiled with epoch and fuel checks ([`options`]); `outcome` gives
        // the store enough fuel and a far deadline.
        "interruption",
        r#"(module
          (func $sum (param i32) (result i32) (local $s i32)
            (block $done
              (loop $l
                (br_if $done (i32.eqz (local.get 0)))
                (local.set $s (i32.add (local.get $s) (local.get 0)))
                (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
                (br $l)))
            (local.get $s))
          (func (export "run") (param i32) (result i32)
            (return_call $sum (i32.mul (local.get 0) (i32.const 100)))))"#,
    ),
];

/// How the campaign's module `name` is compiled.
fn options(name: &str) -> CompileOptions {
    let mut o = CompileOptions::default();
    if name == "interruption" {
        o.interruption = Interruption {
            epochs: true,
            fuel: true,
        };
    }
    o
}

/// Compiles campaign module `i`.
fn compile_module(i: usize) -> Vec<u8> {
    let (name, wat) = MODULES[i];
    wasmc_compiler::compile(wat.as_bytes(), &options(name)).unwrap()
}

/// What loading, instantiating and calling `run(9)` gave.
fn outcome(m: &Module) -> String {
    let mut store = Store::new(m.engine(), ());
    // Code compiled with interruption checks runs with ample fuel and a
    // deadline that never comes (the header flags are covered by the hash).
    let interruption = m.header().settings.interruption;
    if interruption.fuel && store.set_fuel(10_000_000).is_err() {
        return "fuel refused".into();
    }
    if interruption.epochs && store.set_epoch_deadline(u64::MAX / 2).is_err() {
        return "deadline refused".into();
    }
    let instance = match Linker::new(m.engine()).instantiate(&mut store, m) {
        Ok(i) => i,
        Err(e) => return format!("instantiation error: {e}"),
    };
    let Some(f) = instance.get_func(&mut store, "run") else {
        return "no export `run`".into();
    };
    let mut results = [Val::I32(0)];
    match f.call(&mut store, &[Val::I32(9)], &mut results) {
        Ok(()) => format!(
            "{:?}",
            match results[0] {
                Val::I32(x) => x,
                _ => -1,
            }
        ),
        Err(e) => match e.as_trap() {
            Some(t) => format!("trap {:?}", t.code),
            None => format!("call error: {e}"),
        },
    }
}

/// An engine whose safe loads check `policy`.
fn engine_with(policy: &TrustPolicy) -> Engine {
    let mut config = Config::new();
    config.trust(policy.clone());
    Engine::new(&config).unwrap()
}

/// An engine with the default trust policy (content hash checked).
fn engine() -> Engine {
    Engine::default()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wasmc-trust-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ----- damage -----

/// Section byte ranges and the ELF section header table of an artifact.
struct Layout {
    sections: Vec<(SectionId, std::ops::Range<usize>)>,
    shdrs: std::ops::Range<usize>,
}

fn layout(bytes: &[u8]) -> Layout {
    let a = ParsedArtifact::parse(bytes).unwrap();
    let sections = SectionId::ALL
        .iter()
        .map(|&id| (id, a.ranges().get(id).clone()))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    let shnum = u16::from_le_bytes(bytes[0x3c..0x3e].try_into().unwrap()) as usize;
    Layout {
        sections,
        shdrs: shoff..shoff + shnum * 64,
    }
}

/// Damaged copy number `case` of `bytes`, and what was done.
fn damage(bytes: &[u8], lay: &Layout, case: u64) -> (Vec<u8>, String) {
    // A case is reproduced from its number alone.
    let mut rng = Rng::new(case.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let mut b = bytes.to_vec();
    let kind = rng.index(6);
    let desc = match kind {
        0 => {
            let at = rng.index(b.len());
            let bit = rng.index(8);
            b[at] ^= 1 << bit;
            format!("bit flip at {at:#x}")
        }
        1 => {
            let at = rng.index(b.len());
            let n = 1 + rng.index(8);
            for i in at..(at + n).min(b.len()) {
                b[i] = rng.next_u64() as u8;
            }
            format!("overwrite {n} bytes at {at:#x}")
        }
        2 => {
            let n = rng.index(b.len());
            b.truncate(n);
            format!("truncate to {n}")
        }
        3 => {
            // A section header field: name, type, flags, offset, size,
            // link, alignment...
            let at = lay.shdrs.start + rng.index(lay.shdrs.len());
            let v = rng.next_u64() as u8;
            let how = rng.index(3);
            match how {
                0 => b[at] ^= 1 << rng.index(8),
                1 => b[at] = v,
                _ => b[at] = b[at].wrapping_add(if v & 1 == 0 { 1 } else { 0xff }),
            }
            format!("section header byte {at:#x}")
        }
        _ => {
            // Inside one of the sections, each equally likely (so small
            // tables are edited as often as `.text`).
            let (id, r) = lay.sections[rng.index(lay.sections.len())].clone();
            let at = r.start + rng.index(r.len());
            let n = 1 + rng.index(4);
            let end = (at + n).min(r.end);
            for byte in &mut b[at..end] {
                if kind == 4 {
                    *byte ^= 1 << rng.index(8);
                } else {
                    *byte = rng.next_u64() as u8;
                }
            }
            format!("{} bytes in {} at {at:#x}", n, id.name())
        }
    };
    (b, desc)
}

/// Recomputes the content hash of `bytes` as an attacker can (no key
/// needed); `None` if the artifact no longer parses far enough.
fn rehash(bytes: &[u8]) -> Option<Vec<u8>> {
    rehash_as(bytes, bytes)
}

/// [`rehash`] of `bytes`, an edited copy of `original`, with the section
/// layout of `original`: also an edit that the loader's table checks refuse
/// gets a matching hash.
fn rehash_as(original: &[u8], bytes: &[u8]) -> Option<Vec<u8>> {
    let a = ParsedArtifact::parse(original).ok()?;
    let ranges = a.ranges();
    let meta = ranges.meta.clone();
    let (mut header, info_bytes) = decode_header(bytes.get(meta.clone())?).ok()?;
    let info = decode_module_info(info_bytes).ok()?;
    if SectionId::ALL
        .iter()
        .any(|&id| ranges.get(id).end > bytes.len())
    {
        return None;
    }
    header.content_hash = content_hash(&header, |id| &bytes[ranges.get(id).clone()], info_bytes);
    let new_meta = encode_meta(&header, &info);
    if new_meta.len() != meta.len() {
        return None;
    }
    let mut out = bytes.to_vec();
    out[meta].copy_from_slice(&new_meta);
    Some(out)
}

/// A test signing key pair in `dir`: (secret key path, public key text).
fn test_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let k = dir.join(name);
    let _ = std::fs::remove_file(&k);
    let _ = std::fs::remove_file(wasmc_cli::sign::public_key_path(&k));
    wasmc_cli::sign::keygen(&k).unwrap();
    let public = std::fs::read_to_string(wasmc_cli::sign::public_key_path(&k)).unwrap();
    (k, public)
}

fn signed(bytes: &[u8], key: &Path) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let sk = wasmc_cli::sign::read_secret_key(key).unwrap();
    wasmc_cli::sign::sign_artifact(&mut b, &sk).unwrap();
    b
}

// ----- the campaign -----

/// The two passes of the campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Default policy; damage only.
    Damage,
    /// The attacker recomputes the content hash; the policy requires a
    /// signature by the trusted key (the originals are signed by it).
    Forged,
}

/// Per-module inputs of a campaign pass, shared by parent and children:
/// the artifact (signed for `Forged`) and the expected outcome.
struct Subject {
    name: &'static str,
    bytes: Vec<u8>,
    layout: Layout,
    expected: String,
}

fn subjects(pass: Pass, key: Option<&Path>) -> Vec<Subject> {
    MODULES
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let plain = compile_module(i);
            let bytes = match (pass, key) {
                (Pass::Forged, Some(k)) => signed(&plain, k),
                _ => plain,
            };
            let expected = outcome(&Module::from_bytes(&engine(), &bytes).unwrap());
            Subject {
                name,
                layout: layout(&bytes),
                bytes,
                expected,
            }
        })
        .collect()
}

/// Child: runs cases `[from, to)` of `pass`, printing `begin N` before and
/// one result line after each. A crash leaves a `begin` without a result.
fn child(pass: Pass, from: u64, to: u64, dir: &Path, key: Option<&Path>, public: Option<&str>) {
    let subjects = subjects(pass, key);
    let mut policy = TrustPolicy::new();
    if let Some(p) = public {
        policy.trust_key_file(p).unwrap();
        policy.require_signature(true);
    }
    let path = dir.join(format!("case-{from}.o"));
    for case in from..to {
        let s = &subjects[(case % subjects.len() as u64) as usize];
        let (mut bytes, desc) = damage(&s.bytes, &s.layout, case);
        if pass == Pass::Forged {
            if let Some(b) = rehash_as(&s.bytes, &bytes) {
                bytes = b;
            }
        }
        if bytes == s.bytes {
            println!("begin {case}\nresult {case} same");
            continue;
        }
        println!("begin {case}");
        std::fs::write(&path, &bytes).unwrap();
        let r = std::panic::catch_unwind(|| match pass {
            Pass::Damage => Module::from_file(&engine(), &path).map(|m| outcome(&m)),
            Pass::Forged => Module::from_file(&engine_with(&policy), &path).map(|m| outcome(&m)),
        });
        let line = match r {
            Err(_) => format!("PANIC ({desc})"),
            Ok(Err(e)) => {
                let msg = e.to_string().replace('\n', " ");
                // Debug dumps are not messages.
                if msg.contains("{ ") || msg.contains("Some(") || msg.is_empty() {
                    format!("BADMESSAGE {msg} ({desc})")
                } else {
                    format!("refused {msg}")
                }
            }
            Ok(Ok(o)) if pass == Pass::Forged => format!("LOADED-FORGED {o} ({desc})"),
            Ok(Ok(o)) if o == s.expected => "unchanged".to_string(),
            Ok(Ok(o)) => format!("CHANGED {o} expected {} ({desc}, {})", s.expected, s.name),
        };
        println!("result {case} {line}");
    }
    let _ = std::fs::remove_file(&path);
}

#[derive(Default, Debug)]
struct Counts {
    cases: usize,
    refused: usize,
    unchanged: usize,
    same_bytes: usize,
    failures: Vec<String>,
    crashes: usize,
    hangs: usize,
}

/// Parent: runs the pass in child batches and tallies the results.
fn campaign(pass: Pass, cases: usize) -> Counts {
    let dir = temp_dir(&format!("{pass:?}"));
    let (key, _public) = test_key(&dir, "key");
    let mut counts = Counts::default();
    let mut next = 0u64;
    while (next as usize) < cases {
        let to = (next + BATCH as u64).min(cases as u64);
        let mut c = Command::new(std::env::current_exe().unwrap());
        c.args([
            "--exact",
            "damage_campaign",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{pass:?} {next} {to} {}", dir.display()))
        .env("WASMC_TRUST_KEY", &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > BATCH_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let lines = reader.join().unwrap();
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        let mut last_begin = None;
        let mut done = next;
        for l in &lines {
            if let Some(n) = l.strip_prefix("begin ") {
                last_begin = n.parse::<u64>().ok();
            } else if let Some(rest) = l.strip_prefix("result ") {
                let (n, what) = rest.split_once(' ').unwrap();
                let n: u64 = n.parse().unwrap();
                done = n + 1;
                last_begin = None;
                counts.cases += 1;
                if what == "same" {
                    counts.same_bytes += 1;
                } else if what == "unchanged" {
                    counts.unchanged += 1;
                } else if what.starts_with("refused ") {
                    counts.refused += 1;
                } else {
                    counts.failures.push(format!("case {n}: {what}"));
                }
            }
        }
        match (status, last_begin) {
            (Some(s), None) if s.success() => {}
            (None, b) => {
                counts.hangs += 1;
                counts.cases += 1;
                counts
                    .failures
                    .push(format!("HANG in case {b:?} (batch from {next})"));
                done = b.map_or(to, |b| b + 1);
            }
            (Some(s), b) => {
                counts.crashes += 1;
                counts.cases += 1;
                let tail: String = err.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                counts
                    .failures
                    .push(format!("CRASH in case {b:?}: {s} ({tail})"));
                done = b.map_or(to, |b| b + 1);
            }
        }
        next = done.max(next + 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
    counts
}

#[test]
fn damage_campaign() {
    if let Ok(job) = std::env::var(CHILD_ENV) {
        let mut w = job.splitn(4, ' ');
        let pass = match w.next().unwrap() {
            "Damage" => Pass::Damage,
            _ => Pass::Forged,
        };
        let from = w.next().unwrap().parse().unwrap();
        let to = w.next().unwrap().parse().unwrap();
        let dir = PathBuf::from(w.next().unwrap());
        let key = PathBuf::from(std::env::var("WASMC_TRUST_KEY").unwrap());
        let public = std::fs::read_to_string(wasmc_cli::sign::public_key_path(&key)).unwrap();
        let public = (pass == Pass::Forged).then_some(public.as_str());
        child(pass, from, to, &dir, Some(&key), public);
        return;
    }
    let cases = std::env::var("WASMC_TRUST_CAMPAIGN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    for pass in [Pass::Damage, Pass::Forged] {
        let t = Instant::now();
        let c = campaign(pass, cases);
        eprintln!(
            "{pass:?}: {} cases over {} modules in {:.1} s: {} refused, {} unchanged, \
             {} identical after the edit, {} crashes, {} hangs, {} other failures",
            c.cases,
            MODULES.len(),
            t.elapsed().as_secs_f64(),
            c.refused,
            c.unchanged,
            c.same_bytes,
            c.crashes,
            c.hangs,
            c.failures.len() - c.crashes - c.hangs
        );
        assert!(
            c.failures.is_empty(),
            "{pass:?}: {} failures:\n{}",
            c.failures.len(),
            c.failures.join("\n")
        );
        assert_eq!(c.cases, cases, "{c:?}");
        assert!(c.refused > cases / 2, "{c:?}");
        if pass == Pass::Forged {
            assert_eq!(c.unchanged, 0);
        }
    }
}

// ----- the sandbox -----

/// Offset in `bytes` of the header's memory layout (tag u32, reservation
/// u64, guard u64, fixed-width little-endian).
fn layout_offset(bytes: &[u8]) -> usize {
    let meta = ParsedArtifact::parse(bytes).unwrap().ranges().meta.clone();
    let mut pat = MemoryStrategy::Guard.tag().to_le_bytes().to_vec();
    pat.extend_from_slice(&wasmc_format::memory::GUARD_RESERVATION.to_le_bytes());
    pat.extend_from_slice(&wasmc_format::memory::GUARD_SIZE.to_le_bytes());
    meta.start
        + bytes[meta]
            .windows(pat.len())
            .position(|w| w == pat)
            .expect("memory layout in the header")
}

/// Stores to address 65536 + 8 of a one-page memory: out of bounds.
const OOB: &str = r#"(module
  (memory 1 1)
  (func (export "run") (param i32) (result i32)
    (i32.store offset=65536 (local.get 0) (i32.const 0x41414141))
    (i32.const 1)))"#;

#[test]
fn header_cannot_weaken_the_sandbox_signed_or_not() {
    let dir = temp_dir("sandbox");
    let (key, public) = test_key(&dir, "k");
    let bytes = wasmc_compiler::compile(OOB.as_bytes(), &Default::default()).unwrap();
    let at = layout_offset(&bytes);
    let mut policy = TrustPolicy::new();
    policy.trust_key_file(&public).unwrap();
    policy.require_signature(true);

    // Guard 0, an unknown strategy tag, a smaller reservation: refused with
    // the hash recomputed, and even when properly signed after the edit.
    let edits: [(usize, Vec<u8>, &str); 3] = [
        (at + 12, 0u64.to_le_bytes().to_vec(), "guard size mismatch"),
        (at, 7u32.to_le_bytes().to_vec(), "unknown memory strategy"),
        (
            at + 4,
            (1u64 << 16).to_le_bytes().to_vec(),
            "reservation size mismatch",
        ),
    ];
    for (off, val, msg) in edits {
        let mut b = bytes.clone();
        b[off..off + val.len()].copy_from_slice(&val);
        let b = rehash(&b).unwrap();
        let e = Module::from_bytes(&engine(), &b).unwrap_err();
        assert!(matches!(e, LoadError::Sandbox(_)), "{e:?}");
        assert!(e.to_string().contains(msg), "{e}");
        let s = signed(&b, &key);
        let e = Module::from_bytes(&engine_with(&policy), &s).unwrap_err();
        assert!(e.to_string().contains(msg), "signed: {e}");
        // `inspect --check` runs the same check.
        let host = wasmc_cli::inspect::check(&s).unwrap();
        assert!(!host.loadable);
        assert!(host.problems().iter().any(|p| p.contains(msg)), "{host:?}");
    }

    // Guard-mode code whose header is forged to say `Explicit`: a known
    // strategy, so unsigned it loads, but the memory still gets the full
    // guard layout and the unchecked store traps instead of reaching host
    // memory. A signature catches the forgery itself.
    let mut b = bytes.clone();
    b[at..at + 4].copy_from_slice(&MemoryStrategy::Explicit.tag().to_le_bytes());
    let b = rehash(&b).unwrap();
    let m = Module::from_bytes(&engine(), &b).expect("explicit is a known strategy");
    assert_eq!(outcome(&m), "trap MemoryOutOfBounds");
    let original = signed(&bytes, &key);
    let mut forged = original.clone();
    forged[at..at + 4].copy_from_slice(&MemoryStrategy::Explicit.tag().to_le_bytes());
    let forged = rehash(&forged).unwrap();
    let e = Module::from_bytes(&engine_with(&policy), &forged).unwrap_err();
    assert!(matches!(e, LoadError::BadSignature { .. }), "{e:?}");
    assert_eq!(
        outcome(&Module::from_bytes(&engine_with(&policy), &original).unwrap()),
        "trap MemoryOutOfBounds"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- signatures -----

#[test]
fn signatures_are_checked_before_loading() {
    let dir = temp_dir("sig");
    let (key, public) = test_key(&dir, "a");
    let (other, other_public) = test_key(&dir, "b");
    let wat = MODULES[0].1;
    let plain = wasmc_compiler::compile(wat.as_bytes(), &Default::default()).unwrap();
    let good = signed(&plain, &key);

    // Signing changes only the signature slot, deterministically.
    assert_eq!(good, signed(&plain, &key));
    assert_eq!(good.len(), plain.len());
    let sig = ParsedArtifact::parse(&good).unwrap().ranges().sig.clone();
    assert_eq!(sig.len(), wasmc_format::signature::SIG_SECTION_LEN);
    for (i, (a, b)) in plain.iter().zip(&good).enumerate() {
        assert!(
            a == b || sig.contains(&i),
            "byte {i} changed outside the slot"
        );
    }
    // Re-signing replaces the signature.
    let resigned = signed(&good, &other);
    assert_eq!(resigned[..sig.start], good[..sig.start]);
    assert_ne!(resigned[sig.clone()], good[sig.clone()]);

    let mut policy = TrustPolicy::new();
    policy.trust_key_file(&public).unwrap();
    policy.require_signature(true);
    let m = Module::from_bytes(&engine_with(&policy), &good).unwrap();
    assert_eq!(outcome(&m), "34");

    let e = Module::from_bytes(&engine_with(&policy), &plain).unwrap_err();
    assert!(matches!(e, LoadError::Unsigned), "{e:?}");
    assert!(e.to_string().contains("not signed"), "{e}");

    let e = Module::from_bytes(&engine_with(&policy), &resigned).unwrap_err();
    let other_id = wasmc_format::signature::key_id(
        &wasmc_loader::trust::parse_public_key(&other_public).unwrap(),
    );
    assert!(
        matches!(&e, LoadError::UntrustedSigner { key_id } if *key_id == other_id),
        "{e:?}"
    );
    assert!(e.to_string().contains("not a trusted key"), "{e}");

    // An edit anywhere outside the slot breaks the signature, even with the
    // content hash recomputed, and even in bytes no section covers.
    for at in [0x20usize, sig.start - 1, good.len() - 1] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        let b = rehash(&b).unwrap_or(b);
        match Module::from_bytes(&engine_with(&policy), &b) {
            Err(LoadError::BadSignature { .. }) => {}
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(_) => panic!("edit at {at:#x} of a signed artifact loaded"),
        }
    }

    // Without a requirement, an artifact signed by an unknown key loads on
    // its content hash; a trusted key's bad signature never does.
    assert!(Module::from_bytes(&engine(), &resigned).is_ok());
    let mut b = good.clone();
    b[sig.start + 50] ^= 1;
    let mut lenient = TrustPolicy::new();
    lenient.trust_key_file(&public).unwrap();
    assert!(matches!(
        Module::from_bytes(&engine_with(&lenient), &b),
        Err(LoadError::BadSignature { .. })
    ));
    // A policy that requires signatures must trust a key.
    let mut empty = TrustPolicy::new();
    empty.require_signature(true);
    assert!(Module::from_bytes(&engine_with(&empty), &good).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- function types -----

/// Two functions of different types; `run` calls `$f` indirectly, checking
/// its type at the call.
const TWO_TYPES: &str = r#"(module
  (type $unary (func (param i32) (result i32)))
  (type $binary (func (param i32 i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $f)
  (func $f (type $unary) (i32.add (local.get 0) (i32.const 1)))
  (func $g (type $binary) (i32.add (local.get 0) (local.get 1)))
  (func (export "run") (param i32) (result i32)
    (call_indirect (type $unary) (local.get 0) (i32.const 0))))"#;

/// A function record's type index changed to another valid type (type
/// confusion if it loaded): refused by the content hash, and with the hash
/// recomputed, by a required signature. (Without a signature an attacker
/// who can recompute the hash can change code just as well: only
/// authenticity catches values that are in range but wrong.)
#[test]
fn changed_function_type_index_is_refused() {
    let dir = temp_dir("types");
    let (key, public) = test_key(&dir, "k");
    let bytes = signed(
        &wasmc_compiler::compile(TWO_TYPES.as_bytes(), &Default::default()).unwrap(),
        &key,
    );
    let a = ParsedArtifact::parse(&bytes).unwrap();
    let funcs = a.ranges().funcs.clone();
    let m = Module::from_bytes(&engine(), &bytes).unwrap();
    assert_eq!(outcome(&m), "10");
    assert_eq!(m.funcs().type_index(0).unwrap(), 0);
    // Record 0: type index, code offset, code length, Wasm offset (u32 each)
    // after the u32 count.
    let at = funcs.start + 4;
    assert_eq!(bytes[at..at + 4], 0u32.to_le_bytes());
    let mut b = bytes.clone();
    b[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
    let e = Module::from_bytes(&engine(), &b).unwrap_err();
    assert!(matches!(e, LoadError::HashMismatch), "{e:?}");
    assert_eq!(
        e.to_string(),
        "artifact is damaged: content hash mismatch (the artifact was modified after compilation)"
    );
    let b = rehash(&b).unwrap();
    let mut policy = TrustPolicy::new();
    policy.trust_key_file(&public).unwrap();
    policy.require_signature(true);
    let e = Module::from_bytes(&engine_with(&policy), &b).unwrap_err();
    assert!(matches!(e, LoadError::BadSignature { .. }), "{e:?}");
    // An index out of range is refused by the record check, hash or not.
    let mut b = bytes.clone();
    b[at..at + 4].copy_from_slice(&7u32.to_le_bytes());
    let b = rehash_as(&bytes, &b).unwrap();
    let e = Module::from_bytes(&engine(), &b).unwrap_err();
    assert!(
        e.to_string().contains("function 0: type index 7 of 2"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- stack maps and traps -----

/// Stack-map and trap-table entries forged with the content hash recomputed
/// (the default policy accepts the hash): every one is refused at load,
/// naming the section and entry, before the collector or the trap handler
/// could trust it.
#[test]
fn forged_stack_maps_and_traps_are_refused_at_load() {
    let i = MODULES.iter().position(|m| m.0 == "externref").unwrap();
    let bytes = compile_module(i);
    let a = ParsedArtifact::parse(&bytes).unwrap();
    let sm = a.ranges().stackmaps.clone();
    let traps = a.ranges().traps.clone();
    let text_len = a.ranges().text.len() as u32;
    let maps = a.stack_maps().unwrap();
    assert!(maps.len() >= 2, "the module has safepoints");
    let (key0, map0) = maps.iter().next().unwrap().unwrap();
    let slot0 = map0.slots().next().expect("a live slot");
    let n = maps.len();
    let load = |b: &[u8]| {
        Module::from_bytes(&engine(), &rehash_as(&bytes, b).unwrap())
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let u32_at =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());

    // Key 0 moved off its call (one byte on, or to the previous byte).
    for moved in [key0 + 1, key0 - 1] {
        let mut b = bytes.clone();
        u32_at(&mut b, sm.start + 4, moved);
        let e = load(&b);
        assert!(
            e.starts_with("section `.wasmc.stackmaps`: entry 0: return address"),
            "{e}"
        );
    }
    // A slot offset at the frame's end, and a misaligned one.
    let records = sm.start + 4 + 8 * n;
    let rec0 = records
        + u32::from_le_bytes(bytes[sm.start + 4 + 4 * n..][..4].try_into().unwrap()) as usize;
    let slots_at = rec0 + 8;
    let pos = (0..map0.len())
        .position(|k| {
            u32::from_le_bytes(bytes[slots_at + 4 * k..][..4].try_into().unwrap()) == slot0
        })
        .unwrap();
    for (slot, want) in [
        (map0.frame_span, "is outside the frame"),
        (slot0 + 1, "is not aligned"),
    ] {
        let mut b = bytes.clone();
        u32_at(&mut b, slots_at + 4 * pos, slot);
        let e = load(&b);
        assert!(e.contains("section `.wasmc.stackmaps`: entry"), "{e}");
        assert!(e.contains(want), "{e}");
    }
    // The trap table's index: block 0's first offset outside `.text`.
    let t = a.trap_table().unwrap();
    assert!(t.len() >= 2);
    let mut b = bytes.clone();
    u32_at(&mut b, traps.start + 8, text_len + 16);
    let e = load(&b);
    assert!(
        e.starts_with("section `.wasmc.traps`: block 0: first offset")
            && e.contains("points outside `.text`"),
        "{e}"
    );
    // Entry 1 (a one-byte delta after the index) pushed past `.text` by a
    // big delta that swallows the following entry bytes, and entry 0 given
    // an unknown code: refused by the safe load's check of every entry.
    assert!(t.len() <= wasmc_format::blocks::BLOCK_LEN, "one block");
    let body = traps.start + 16;
    assert_eq!(t.iter().count(), t.len());
    let mut b = bytes.clone();
    b[body + 1..body + 5].copy_from_slice(&[0xfe, 0xff, 0xff, 0x7f]);
    let e = load(&b);
    assert!(e.starts_with("section `.wasmc.traps`: "), "{e}");
    let mut b = bytes.clone();
    b[body] = 0x01; // "a code byte follows": the next entry's byte, not a code
    b[body + 1] = 0xee;
    let e = load(&b);
    assert!(
        e.starts_with("section `.wasmc.traps`: entry 0: unknown trap code 238"),
        "{e}"
    );
}

// ----- the file changes after loading -----

#[test]
fn loaded_module_survives_its_file_being_truncated_and_rewritten() {
    let dir = temp_dir("rewrite");
    let path = dir.join("m.o");
    let (name, wat) = MODULES[1];
    let bytes = wasmc_compiler::compile(wat.as_bytes(), &Default::default()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let m = Module::from_file(&engine(), &path).unwrap();
    let expected = outcome(&m);
    // Truncate in place (same inode: a mapping of it would now SIGBUS),
    // then rewrite it with other bytes.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(0).unwrap();
    drop(f);
    assert_eq!(outcome(&m), expected, "{name} after truncation");
    std::fs::write(&path, vec![0xcc; bytes.len()]).unwrap();
    assert_eq!(outcome(&m), expected, "{name} after rewrite");
    // A second instance and the names still read the loaded image.
    assert_eq!(outcome(&m.clone()), expected);
    assert!(Module::from_file(&engine(), &path).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
