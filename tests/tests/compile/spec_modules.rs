//! Every module that the top-level spec testsuite defines compiles to an
//! artifact, and every `assert_invalid` / `assert_malformed` module is
//! rejected with an error (never a panic). The top-level scripts are the 2.0
//! core, so the first test compiles with the 2.0 feature set: some modules
//! they call invalid are valid with multi-memory (a second memory, a memory
//! index where 2.0 has a reserved zero byte).

use std::path::PathBuf;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastDirective};

fn testsuite() -> PathBuf {
    wasmc_tests::testsuite_dir()
        .expect("spec testsuite not found: set WASMC_TESTSUITE or put it at ../shared/testsuite")
}

#[test]
fn every_spec_module_compiles_and_every_bad_one_is_rejected() {
    let opts = wasmc_compiler::CompileOptions {
        features: wasmc_compiler::WasmFeatures::WASM2,
        ..Default::default()
    };
    let mut failures = Vec::new();
    let (mut compiled, mut rejected) = (0, 0);
    let mut files: Vec<_> = std::fs::read_dir(testsuite())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wast"))
        .collect();
    files.sort();
    assert!(
        files.len() > 50,
        "expected the whole core testsuite, found {} files",
        files.len()
    );
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lexer = wast::lexer::Lexer::new(&text);
        lexer.allow_confusing_unicode(true);
        let buf = ParseBuffer::new_with_lexer(lexer).unwrap();
        let wast: Wast = parser::parse(&buf).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for d in wast.directives {
            let (line, _) = d.span().linecol_in(&text);
            let line = line + 1;
            match d {
                WastDirective::Module(mut m) => {
                    let bytes = m.encode().unwrap();
                    match wasmc_compiler::compile(&bytes, &opts) {
                        Ok(_) => compiled += 1,
                        Err(e) => {
                            failures.push(format!("{name}:{line}: module failed to compile: {e}"))
                        }
                    }
                }
                WastDirective::AssertInvalid { mut module, .. }
                | WastDirective::AssertMalformed { mut module, .. } => {
                    let Ok(bytes) = module.encode() else {
                        rejected += 1; // the text itself is malformed
                        continue;
                    };
                    if let QuoteWat::QuoteComponent(..) = module {
                        continue;
                    }
                    match wasmc_compiler::compile(&bytes, &opts) {
                        Ok(_) => {
                            failures.push(format!("{name}:{line}: invalid module was accepted"))
                        }
                        Err(_) => rejected += 1,
                    }
                }
                _ => {}
            }
        }
    }
    println!("{compiled} modules compiled, {rejected} bad modules rejected");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compiled > 1000);
}

/// Every spec module also compiles for aarch64 (cross-compilation; this host
/// cannot run the code, but the artifact must be complete: every call
/// resolved, and the metadata readable by the loader's parser).
#[test]
fn every_spec_module_cross_compiles_to_aarch64() {
    let opts = wasmc_compiler::CompileOptions {
        target: Some("aarch64-unknown-linux-gnu".into()),
        ..Default::default()
    };
    let mut compiled = 0;
    let mut files: Vec<_> = std::fs::read_dir(testsuite())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wast"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lexer = wast::lexer::Lexer::new(&text);
        lexer.allow_confusing_unicode(true);
        let buf = ParseBuffer::new_with_lexer(lexer).unwrap();
        let wast: Wast = parser::parse(&buf).unwrap();
        for d in wast.directives {
            if let WastDirective::Module(mut m) = d {
                let bytes = m.encode().unwrap();
                let artifact = wasmc_compiler::compile(&bytes, &opts)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let parsed = wasmc_loader::artifact::ParsedArtifact::parse(&artifact)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(parsed.header().arch, "aarch64");
                assert!(
                    parsed.relocations().is_empty(),
                    "{}: relocations left",
                    path.display()
                );
                compiled += 1;
            }
        }
    }
    assert!(compiled > 1000, "only {compiled} modules");
}
