//! The artifact header's feature set against the compile options, on every
//! module of the spec testsuite's core scripts and of the proposal folders
//! wasmc implements. For a module that compiles with every feature on and
//! whose header lists the set `used`:
//!
//! - compiled with exactly `used`, it still compiles (the header names every
//!   feature the module needs);
//! - compiled with one feature of `used` off, it is refused naming that
//!   feature, never as invalid or as needing a proposal (the header names
//!   no feature the module does not need, and the refusal says what to turn
//!   back on).

use std::path::PathBuf;
use wasmc_compiler::{compile, CompileError, CompileOptions, OptLevel, WasmFeatures};
use wasmc_format::header::ArtifactHeader;
use wast::parser::{self, ParseBuffer};
use wast::{Wast, WastDirective};

fn scripts() -> Vec<PathBuf> {
    let root = wasmc_tests::testsuite_dir()
        .expect("spec testsuite not found: set WASMC_TESTSUITE or put it at ../shared/testsuite");
    let mut dirs = vec![root.clone()];
    for p in [
        "tail-call",
        "extended-const",
        "multi-memory",
        "memory64",
        "relaxed-simd",
    ] {
        dirs.push(root.join("proposals").join(p));
    }
    let mut files = Vec::new();
    for d in dirs {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "wast") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn header_features(artifact: &[u8]) -> WasmFeatures {
    let parsed = wasmc_loader::artifact::ParsedArtifact::parse(artifact).expect("artifact");
    let h: &ArtifactHeader = parsed.header();
    h.wasm_features
}

#[test]
fn header_features_are_exactly_what_a_module_needs() {
    let opts = |features| CompileOptions {
        features,
        opt_level: OptLevel::None,
        threads: Some(1),
        ..Default::default()
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in scripts() {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lexer = wast::lexer::Lexer::new(&text);
        lexer.allow_confusing_unicode(true);
        let buf = ParseBuffer::new_with_lexer(lexer).unwrap();
        let Ok(wast) = parser::parse::<Wast>(&buf) else {
            continue; // scripts of proposals the text parser lacks
        };
        let name = path.strip_prefix(path.parent().unwrap().parent().unwrap());
        let name = name.unwrap().display().to_string();
        for d in wast.directives {
            let (line, _) = d.span().linecol_in(&text);
            let WastDirective::Module(mut m) = d else {
                continue;
            };
            let Ok(bytes) = m.encode() else { continue };
            let Ok(artifact) = compile(&bytes, &opts(WasmFeatures::ALL)) else {
                continue; // needs a proposal wasmc does not implement
            };
            checked += 1;
            let used = header_features(&artifact);
            let at = format!("{name}:{}", line + 1);
            if let Err(e) = compile(&bytes, &opts(used)) {
                failures.push(format!("{at}: with exactly {used}: {e}"));
            }
            for (f, fname) in WasmFeatures::NAMED {
                if !used.contains(*f) {
                    continue;
                }
                match compile(&bytes, &opts(WasmFeatures::ALL.difference(*f))) {
                    Err(CompileError::Disabled { feature, .. }) if feature == *fname => {}
                    Err(e) => failures.push(format!("{at}: {fname} off: {e}")),
                    Ok(_) => failures.push(format!("{at}: {fname} off: it compiled")),
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} modules");
    assert!(
        failures.is_empty(),
        "{} of {checked} modules:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
