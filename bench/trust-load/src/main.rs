//! Load time of the safe verified paths against the `unsafe` trusted path.
//!
//! ```text
//! wasmc-trust-load gen DIR          writes DIR/{f10,f1000,f10000,data16m}.wat
//! wasmc-trust-load measure KEY.pub ARTIFACT...
//! ```
//!
//! `run.sh` beside this crate compiles and signs the generated modules with
//! the `wasmc` binary and runs `measure`, which prints one Markdown table row
//! per artifact (the medians of repeated loads of the same file, warm page
//! cache):
//!
//! - `trusted`: `unsafe Module::from_file_unchecked` (maps the file; tables,
//!   sandbox and host checked; no copy, no hash);
//! - `hash only`: BLAKE3 content hash of the loaded image
//!   (`Module::verify_content_hash`, which also re-parses the header);
//! - `safe`: `Module::from_file` with the default policy (sealed memfd copy,
//!   then the content hash);
//! - `safe + signature`: `Module::from_file` with an engine that requires a
//!   signature by the key (sealed copy, then BLAKE3 of the whole file and an
//!   Ed25519 verification).

use std::path::{Path, PathBuf};
use std::time::Instant;
use wasmc_loader::{Config, Engine, Module, TrustPolicy};

/// A module of `n` small functions; every tenth is exported and each calls
/// its successor.
fn many_functions(n: usize) -> String {
    let mut s = String::from("(module\n");
    for i in 0..n {
        let export = if i % 10 == 0 {
            format!(" (export \"f{i}\")")
        } else {
            String::new()
        };
        let next = if i + 1 < n {
            format!("(call {} (i32.sub (local.get 0) (i32.const 1)))", i + 1)
        } else {
            "(local.get 0)".to_string()
        };
        s.push_str(&format!(
            "  (func{export} (param i32) (result i32)\n    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const {i})) (else (i32.add {next} (i32.const {i})))))\n"
        ));
    }
    s.push_str(")\n");
    s
}

/// A module with one 16 MiB active data segment.
fn data_16m() -> String {
    format!(
        "(module (memory 256) (data (i32.const 0) \"{}\") (func (export \"f\") (result i32) (i32.const 1)))\n",
        "\\2a".repeat(16 << 20)
    )
}

fn gen(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the output directory");
    for (name, wat) in [
        ("f10", many_functions(10)),
        ("f1000", many_functions(1000)),
        ("f10000", many_functions(10_000)),
        ("data16m", data_16m()),
    ] {
        let p = dir.join(format!("{name}.wat"));
        std::fs::write(&p, wat).expect("write a module");
        println!("{}", p.display());
    }
}

/// Median of `runs` timings of `f`, in microseconds.
fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn measure(public_key: &Path, artifacts: &[PathBuf]) {
    let text = std::fs::read_to_string(public_key).expect("read the public key");
    let mut policy = TrustPolicy::new();
    policy
        .trust_key_file(&text)
        .expect("a wasmc public key file");
    policy.require_signature(true);
    let mut config = Config::new();
    config.trust(policy);
    let signed = Engine::new(&config).expect("engine");
    let plain = Engine::default();
    println!("| artifact | size | trusted (`unsafe`, mmap) | hash only | safe (memfd copy + hash) | safe + signature required |");
    println!("|---|---|---|---|---|---|");
    for path in artifacts {
        let size = std::fs::metadata(path).expect("artifact").len();
        let runs = if size > 4 << 20 { 21 } else { 101 };
        // Warm the page cache and check that every path loads.
        Module::from_file(&signed, path).expect("a signed artifact");
        let trusted = median_us(runs, || {
            // SAFETY: this program owns the file and nothing changes it
            // while the module is alive (it is dropped at once).
            let m = unsafe { Module::from_file_unchecked(&plain, path) }.expect("load");
            drop(m);
        });
        // SAFETY: as above.
        let m = unsafe { Module::from_file_unchecked(&plain, path) }.expect("load");
        let hash = median_us(runs, || m.verify_content_hash().expect("hash"));
        drop(m);
        let safe = median_us(runs, || {
            drop(Module::from_file(&plain, path).expect("load"))
        });
        let sig = median_us(runs, || {
            drop(Module::from_file(&signed, path).expect("load"))
        });
        println!(
            "| {} | {:.2} MiB | {trusted:.0} us | {hash:.0} us | {safe:.0} us | {sig:.0} us |",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("?"),
            size as f64 / (1 << 20) as f64
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") if args.len() == 2 => gen(Path::new(&args[1])),
        Some("measure") if args.len() >= 3 => {
            let artifacts: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
            measure(Path::new(&args[1]), &artifacts)
        }
        _ => {
            eprintln!("usage: wasmc-trust-load gen DIR | measure KEY.pub ARTIFACT...");
            std::process::exit(2);
        }
    }
}
