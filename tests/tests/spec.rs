//! Runs every top-level `*.wast` of the WebAssembly spec testsuite (the 2.0
//! core) through compile -> artifact -> load -> run, in two configurations
//! (guard-page memories with `--opt-level speed`, and explicit bounds checks
//! with `--opt-level none`), prints a per-file table and the summary line, and
//! fails if any command fails in a file that is not on
//! `tests/spec-expected-failures.txt`.
//!
//! The testsuite path is `$WASMC_TESTSUITE`, else `../shared/testsuite`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use wasmc_cli::wast::{run_file, Report, WastOptions};
use wasmc_compiler::{CompileOptions, MemoryStrategy, OptLevel};

/// The scripts loaded through artifact files (`Module::from_file`: memory
/// images are mapped from the file); every other script loads artifacts from
/// bytes (images are copied).
const FROM_FILE: &[&str] = &[
    "memory.wast",
    "data.wast",
    "linking.wast",
    "memory_init.wast",
    "bulk.wast",
];

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
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wast"))
        .collect();
    files.sort();
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
    let jobs: Vec<(usize, PathBuf)> = (0..configs.len())
        .flat_map(|c| files.iter().map(move |f| (c, f.clone())))
        .collect();

    // Scripts run on worker threads with a roomy native stack; each has its
    // own store, so they are independent.
    let queue = Mutex::new(jobs);
    let reports = Mutex::new(Vec::<(usize, Result<Report, String>)>::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn_scoped(s, || loop {
                    let Some((config, file)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let mut opts = WastOptions {
                        compile: configs[config].1.clone(),
                        artifact_dir: None,
                    };
                    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if FROM_FILE.contains(&name) {
                        // One directory per script: scripts run in parallel
                        // and must not overwrite each other's mapped files.
                        let dir = artifact_dir
                            .join(configs[config].0.replace('/', "-"))
                            .join(name);
                        std::fs::create_dir_all(&dir).unwrap();
                        opts.artifact_dir = Some(dir);
                    }
                    let r = run_file(&file, &opts);
                    reports.lock().unwrap().push((config, r));
                })
                .unwrap();
        }
    });
    let _ = std::fs::remove_dir_all(&artifact_dir);

    let mut reports = reports.into_inner().unwrap();
    reports.sort_by(|a, b| match (&a.1, &b.1) {
        (Ok(x), Ok(y)) => x.file.cmp(&y.file).then(a.0.cmp(&b.0)),
        _ => a.0.cmp(&b.0),
    });
    let expected = expected_failures();
    let (mut passed, mut failed) = (0, 0);
    let mut bad = Vec::new();
    println!(
        "{:<40} {:>14} {:>8} {:>8}",
        "file", "config", "passed", "failed"
    );
    for (config, r) in &reports {
        let config = configs[*config].0;
        match r {
            Ok(r) => {
                let name = r.file.file_name().unwrap().to_string_lossy().to_string();
                println!(
                    "{:<40} {:>14} {:>8} {:>8}",
                    name,
                    config,
                    r.passed,
                    r.failed()
                );
                passed += r.passed;
                failed += r.failed();
                let allowed = expected.iter().find(|(f, _)| *f == name);
                match (r.failed(), allowed) {
                    (0, Some((f, _))) => bad.push(format!(
                        "{f} passes now ({config}): remove it from spec-expected-failures.txt"
                    )),
                    (0, None) => {}
                    (_, Some((_, reason))) => println!("    (expected failure: {reason})"),
                    (_, None) => bad.push(format!("[{config}]\n{}", r.failure_lines())),
                }
            }
            Err(e) => bad.push(format!("cannot run ({config}): {e}")),
        }
    }
    for (f, _) in &expected {
        if !files
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == *f))
        {
            bad.push(format!(
                "{f} is on the expected-failure list but not in the testsuite"
            ));
        }
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
