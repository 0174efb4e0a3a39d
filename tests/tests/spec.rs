//! Runs every top-level `*.wast` of the WebAssembly spec testsuite (the 2.0
//! core) and every script of the Wasm 3.0 proposal folders wasmc targets
//! (`proposals/{tail-call,extended-const,multi-memory,memory64,relaxed-simd}`)
//! through compile -> artifact -> load -> run, in two configurations
//! (guard-page memories with `--opt-level speed`, and explicit bounds checks
//! with `--opt-level none`), prints a per-file table, a per-folder summary and
//! the summary line, and fails if any command fails in a file that is not on
//! `tests/spec-expected-failures.txt` (entries name proposal scripts as
//! `folder/file.wast`), or if a listed file passes.
//!
//! Every script runs with all features on (the default), except the core
//! scripts in [`FEATURE_OVERRIDES`], whose 2.0 expectations a 3.0 feature
//! changes; each entry says which and why.
//!
//! The testsuite path is `$WASMC_TESTSUITE`, else `../shared/testsuite`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use wasmc_cli::wast::{run_file, Report, WastOptions};
use wasmc_compiler::{CompileOptions, MemoryStrategy, OptLevel, WasmFeatures};

/// The scripts loaded through artifact files (`Module::from_file`: memory
/// images are mapped from the file); every other script loads artifacts from
/// bytes (images are copied).
const FROM_FILE: &[&str] = &[
    "memory.wast",
    "data.wast",
    "linking.wast",
    "memory_init.wast",
    "bulk.wast",
    "multi-memory/data0.wast",
    "multi-memory/data1.wast",
    "multi-memory/memory_init0.wast",
    "memory64/data.wast",
    "memory64/memory_init.wast",
];

/// The proposal folders run beside the core scripts.
const PROPOSALS: &[&str] = &[
    "tail-call",
    "extended-const",
    "multi-memory",
    "memory64",
    "relaxed-simd",
];

/// Core (2.0) scripts run with features turned off, because the 3.0 feature
/// makes what 2.0 rejects valid: (script, `-W` toggles, reason).
const FEATURE_OVERRIDES: &[(&str, &str, &str)] = &[
    (
        "memory.wast",
        "multi-memory=n",
        "2.0 rejects a second memory (`multiple memories`)",
    ),
    (
        "imports.wast",
        "multi-memory=n",
        "2.0 rejects a second memory (`multiple memories`)",
    ),
    (
        "binary.wast",
        "multi-memory=n",
        "2.0 requires a single zero byte as memory.size/grow's memory index; \
         multi-memory reads it as a LEB128 index",
    ),
];

/// The features a script runs with.
fn features_for(name: &str) -> WasmFeatures {
    let mut f = WasmFeatures::ALL;
    for (file, toggles, _) in FEATURE_OVERRIDES {
        if *file == name {
            f.apply_toggles(toggles).expect("valid toggles");
        }
    }
    f
}

/// A script and the name it has in the table and the expected-failure list:
/// `file.wast` for core scripts, `folder/file.wast` for proposals.
fn scripts(dir: &Path) -> Vec<(String, PathBuf)> {
    let wast_files = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wast"))
            .collect();
        v.sort();
        v
    };
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().to_string();
    let mut out: Vec<(String, PathBuf)> =
        wast_files(dir).into_iter().map(|p| (name(&p), p)).collect();
    for folder in PROPOSALS {
        for p in wast_files(&dir.join("proposals").join(folder)) {
            out.push((format!("{folder}/{}", name(&p)), p));
        }
    }
    out
}

/// Commands passed and failed in one folder under one configuration:
/// ((folder, config), (passed, failed)).
type FolderTotal<'a> = ((String, &'a str), (usize, usize));

/// The folder of a script name: `core` or the proposal.
fn folder_of(name: &str) -> &str {
    name.split_once('/').map_or("core", |(f, _)| f)
}

fn expected_failures() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec-expected-failures.txt");
    let text = std::fs::read_to_string(&path).expect("tests/spec-expected-failures.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (file, reason) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("`{l}`: expected `file.wast: reason`"));
            assert!(
                !reason.trim().is_empty(),
                "`{l}`: every entry needs a reason"
            );
            (file.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

fn main() -> ExitCode {
    let Some(dir) = wasmc_tests::testsuite_dir() else {
        eprintln!(
            "\n*** spec testsuite NOT FOUND ***\n\
             Set WASMC_TESTSUITE or place the WebAssembly testsuite at ../shared/testsuite\n\
             (see README.md). Failing rather than skipping.\n"
        );
        return ExitCode::FAILURE;
    };
    let files = scripts(&dir);
    let artifact_dir = std::env::temp_dir().join(format!("wasmc-spec-{}", std::process::id()));

    let configs = [
        ("guard/speed", CompileOptions::default()),
        (
            "explicit/none",
            CompileOptions {
                memory: MemoryStrategy::Explicit,
                opt_level: OptLevel::None,
                ..CompileOptions::default()
            },
        ),
    ];
    let jobs: Vec<(usize, String, PathBuf)> = (0..configs.len())
        .flat_map(|c| files.iter().map(move |(n, f)| (c, n.clone(), f.clone())))
        .collect();

    // Scripts run on worker threads with a roomy native stack; each has its
    // own store, so they are independent.
    let queue = Mutex::new(jobs);
    let reports = Mutex::new(Vec::<(usize, String, Result<Report, String>)>::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn_scoped(s, || loop {
                    let Some((config, name, file)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let mut opts = WastOptions {
                        compile: CompileOptions {
                            features: features_for(&name),
                            ..configs[config].1.clone()
                        },
                        artifact_dir: None,
                    };
                    if FROM_FILE.contains(&name.as_str()) {
                        // One directory per script: scripts run in parallel
                        // and must not overwrite each other's mapped files.
                        let dir = artifact_dir
                            .join(configs[config].0.replace('/', "-"))
                            .join(name.replace('/', "-"));
                        std::fs::create_dir_all(&dir).unwrap();
                        opts.artifact_dir = Some(dir);
                    }
                    let r = run_file(&file, &opts);
                    reports.lock().unwrap().push((config, name, r));
                })
                .unwrap();
        }
    });
    let _ = std::fs::remove_dir_all(&artifact_dir);

    let mut reports = reports.into_inner().unwrap();
    // Core scripts first, then each proposal folder, in file order.
    let order = |n: &str| {
        let folder = folder_of(n);
        let rank = PROPOSALS
            .iter()
            .position(|p| *p == folder)
            .map_or(0, |i| i + 1);
        (rank, n.to_string())
    };
    reports.sort_by(|a, b| order(&a.1).cmp(&order(&b.1)).then(a.0.cmp(&b.0)));
    let expected = expected_failures();
    let (mut passed, mut failed) = (0, 0);
    let mut per_folder: Vec<FolderTotal> = Vec::new();
    let mut bad = Vec::new();
    println!(
        "{:<44} {:>14} {:>8} {:>8}",
        "file", "config", "passed", "failed"
    );
    for (config, name, r) in &reports {
        let config = configs[*config].0;
        match r {
            Ok(r) => {
                println!(
                    "{:<44} {:>14} {:>8} {:>8}",
                    name,
                    config,
                    r.passed,
                    r.failed()
                );
                passed += r.passed;
                failed += r.failed();
                let key = (folder_of(name).to_string(), config);
                match per_folder.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, (p, f))) => {
                        *p += r.passed;
                        *f += r.failed();
                    }
                    None => per_folder.push((key, (r.passed, r.failed()))),
                }
                let allowed = expected.iter().find(|(f, _)| f == name);
                match (r.failed(), allowed) {
                    (0, Some((f, _))) => bad.push(format!(
                        "{f} passes now ({config}): remove it from spec-expected-failures.txt"
                    )),
                    (0, None) => {}
                    (_, Some((_, reason))) => println!("    (expected failure: {reason})"),
                    (_, None) => bad.push(format!("[{config}]\n{}", r.failure_lines())),
                }
            }
            Err(e) => bad.push(format!("cannot run {name} ({config}): {e}")),
        }
    }
    for (f, _) in &expected {
        if !files.iter().any(|(n, _)| n == f) {
            bad.push(format!(
                "{f} is on the expected-failure list but not in the testsuite"
            ));
        }
    }
    println!();
    println!(
        "{:<44} {:>14} {:>8} {:>8}",
        "folder", "config", "passed", "failed"
    );
    for ((folder, config), (p, f)) in &per_folder {
        println!("{folder:<44} {config:>14} {p:>8} {f:>8}");
    }
    println!();
    for b in &bad {
        print!("{b}");
        if !b.ends_with('\n') {
            println!();
        }
    }
    println!("spec: {passed} passed, {failed} failed");
    if bad.is_empty() && files.len() * configs.len() == reports.len() && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
