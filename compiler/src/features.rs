//! Which WebAssembly features the compiler accepts, which ones a module uses,
//! and what to tell the user when a module needs one that is off.
//!
//! The feature names and bits are `wasmc_format::WasmFeatures` (shared with
//! the artifact header and `inspect`); this file maps them to wasmparser's
//! validator flags, detects use (module-level constructs while translating,
//! operators while each body is compiled, in parallel), and explains a
//! validation failure: when the module validates once a feature is added, the
//! error names that feature ("not supported by wasmc: threads", or "disabled
//! by the compile options") instead of wasmparser's "... support is not
//! enabled", which hints at a flag wasmc does not have.

use crate::CompileError;
use wasmc_format::WasmFeatures;
use wasmparser::{FunctionBody, Operator, Validator, WasmFeatures as Wp};

/// The features this build of wasmc compiles, all on by default
/// ([`crate::CompileOptions::default`]).
pub const SUPPORTED: WasmFeatures = WasmFeatures::WASM2
    .union(WasmFeatures::EXTENDED_CONST)
    .union(WasmFeatures::TAIL_CALL)
    .union(WasmFeatures::RELAXED_SIMD)
    .union(WasmFeatures::MULTI_MEMORY)
    .union(WasmFeatures::MEMORY64);

/// Validator flags that are always on: floats and the reference types of 2.0
/// (`GC_TYPES` gates `externref` in wasmparser; it is not the GC proposal).
const BASE: Wp = Wp::FLOATS.union(Wp::GC_TYPES);

/// wasmparser's flags for each of our features.
const MAPPING: &[(WasmFeatures, Wp)] = &[
    (WasmFeatures::MUTABLE_GLOBAL, Wp::MUTABLE_GLOBAL),
    (
        WasmFeatures::SATURATING_FLOAT_TO_INT,
        Wp::SATURATING_FLOAT_TO_INT,
    ),
    (WasmFeatures::SIGN_EXTENSION, Wp::SIGN_EXTENSION),
    (WasmFeatures::MULTI_VALUE, Wp::MULTI_VALUE),
    (WasmFeatures::BULK_MEMORY, Wp::BULK_MEMORY),
    (WasmFeatures::REFERENCE_TYPES, Wp::REFERENCE_TYPES),
    (WasmFeatures::SIMD, Wp::SIMD),
    (WasmFeatures::TAIL_CALL, Wp::TAIL_CALL),
    (WasmFeatures::EXTENDED_CONST, Wp::EXTENDED_CONST),
    (WasmFeatures::MULTI_MEMORY, Wp::MULTI_MEMORY),
    (WasmFeatures::MEMORY64, Wp::MEMORY64),
    (WasmFeatures::RELAXED_SIMD, Wp::RELAXED_SIMD),
];

/// Proposals wasmc does not implement at all, with the validator flags that
/// accept them (a proposal's prerequisites included).
const UNSUPPORTED_PROPOSALS: &[(&str, Wp)] = &[
    ("threads", Wp::THREADS),
    (
        "exception handling",
        Wp::EXCEPTIONS.union(Wp::LEGACY_EXCEPTIONS),
    ),
    ("function references", Wp::FUNCTION_REFERENCES),
    ("GC", Wp::GC.union(Wp::FUNCTION_REFERENCES)),
    (
        "shared-everything threads",
        Wp::SHARED_EVERYTHING_THREADS.union(Wp::THREADS),
    ),
    ("memory control", Wp::MEMORY_CONTROL),
    ("custom page sizes", Wp::CUSTOM_PAGE_SIZES),
    ("the component model", Wp::COMPONENT_MODEL),
];

/// Features that need another one to be useful to the validator.
fn with_prerequisites(f: WasmFeatures) -> WasmFeatures {
    let mut out = f;
    if f.contains(WasmFeatures::RELAXED_SIMD) {
        out = out.union(WasmFeatures::SIMD);
    }
    out
}

/// The validator flags for `features`.
pub fn validator_features(features: WasmFeatures) -> Wp {
    MAPPING
        .iter()
        .filter(|(f, _)| features.contains(*f))
        .fold(BASE, |acc, (_, wp)| acc.union(*wp))
}

/// What the compiler accepts for `requested` options: what was asked for and
/// is implemented.
pub fn effective(requested: WasmFeatures) -> WasmFeatures {
    WasmFeatures::from_bits_retain(requested.bits() & SUPPORTED.bits())
}

/// Explains a validation error `original`: if `wasm` fails to validate with
/// the features `requested` allows and validates once a feature is added,
/// the error names that feature. Otherwise (the module is invalid under every
/// feature set, or the error was not the validator's) `original` stands.
pub fn explain(wasm: &[u8], requested: WasmFeatures, original: CompileError) -> CompileError {
    let enabled = effective(requested);
    let Err(first) = Validator::new_with_features(validator_features(enabled)).validate_all(wasm)
    else {
        return original;
    };
    let offset = first.offset();
    let fixes = |extra: Wp| -> bool {
        let mut v = Validator::new_with_features(validator_features(enabled).union(extra));
        match v.validate_all(wasm) {
            Ok(_) => true,
            // Gets further: the feature explains the first error.
            Err(e) => e.offset() > first.offset(),
        }
    };
    // Without extended-const, wasmparser does not say that a feature is
    // off: `i32.add` in a constant expression is "constant expression
    // required", as in 2.0. A module that validates once the feature is
    // back needs it.
    if !enabled.contains(WasmFeatures::EXTENDED_CONST)
        && first.message().starts_with("constant expression required")
        && fixes(validator_features(WasmFeatures::EXTENDED_CONST))
    {
        return CompileError::Disabled {
            feature: "extended-const".into(),
            offset,
        };
    }
    // Only an error that says a feature is missing is explained: a module
    // that is invalid or malformed under the features wasmc implements may
    // well be valid under some other proposal (GC allows `global.get` of any
    // global in constant expressions, shared-everything threads gives
    // meaning to more global flags), and it stays an invalid module.
    if !is_feature_gate(first.message()) {
        return original;
    }
    // A module that is invalid under every proposal wasmparser knows is
    // invalid, whatever it also uses: its error is the one the spec names
    // ("type mismatch"), not the first feature gate on the way to it.
    let every_proposal = UNSUPPORTED_PROPOSALS
        .iter()
        .fold(validator_features(WasmFeatures::ALL), |acc, (_, f)| {
            acc.union(*f)
        });
    if let Err(e) = Validator::new_with_features(every_proposal).validate_all(wasm) {
        return CompileError::Invalid {
            offset: e.offset(),
            message: e.message().to_string(),
        };
    }
    // Features wasmc implements but the options turned off.
    let disabled: Vec<&(WasmFeatures, &str)> = WasmFeatures::NAMED
        .iter()
        .filter(|(f, _)| SUPPORTED.contains(*f) && !enabled.contains(*f))
        .collect();
    let turned_on = |set: WasmFeatures| validator_features(with_prerequisites(set));
    for (f, name) in &disabled {
        if fixes(turned_on(*f)) {
            return CompileError::Disabled {
                feature: (*name).to_string(),
                offset,
            };
        }
    }
    // Several of them needed at once (a reference-typed element expression
    // needs both bulk memory and reference types): name one without which
    // the rest do not suffice. The proposals below are tried with every
    // feature on, so without this they would be blamed for it.
    let all_disabled = disabled
        .iter()
        .fold(WasmFeatures::EMPTY, |acc, (f, _)| acc.union(*f));
    if !disabled.is_empty() && fixes(turned_on(all_disabled)) {
        let needed = disabled
            .iter()
            .find(|(f, _)| !fixes(turned_on(all_disabled.difference(*f))))
            .unwrap_or(&disabled[0]);
        return CompileError::Disabled {
            feature: needed.1.to_string(),
            offset,
        };
    }
    // Features the format names but this build does not implement yet, then
    // proposals wasmc does not implement at all; each with everything else
    // wasmc knows turned on, so that only the proposal itself is missing.
    let known = validator_features(WasmFeatures::ALL);
    for (f, name) in WasmFeatures::NAMED {
        if !SUPPORTED.contains(*f) && fixes(validator_features(SUPPORTED.union(*f))) {
            return CompileError::NotSupported {
                proposal: (*name).to_string(),
                offset,
            };
        }
    }
    for (name, flags) in UNSUPPORTED_PROPOSALS {
        if fixes(known.union(*flags)) {
            return CompileError::NotSupported {
                proposal: (*name).to_string(),
                offset,
            };
        }
    }
    original
}

/// Does a validator message say that a feature is off (rather than that the
/// module is invalid)? These are the phrasings of wasmparser 0.217.
fn is_feature_gate(message: &str) -> bool {
    [
        "support is not enabled",
        "proposal not enabled",
        "must be enabled",
        "to be enabled",
        "feature is not enabled",
        "multi-value is not enabled",
        "are disallowed but found",
        "multiple memories",
        "multiple tables",
        "not supported without the",
        "references required for",
        "require the function-references proposal",
        "proposal not supported",
    ]
    .iter()
    .any(|p| message.contains(p))
}

/// The feature an operator belongs to, from wasmparser's list of operators
/// and their proposals. `None` for MVP operators and for operators of
/// proposals wasmc does not implement (the validator refused those already).
fn operator_feature(op: &Operator<'_>) -> Option<WasmFeatures> {
    macro_rules! proposal_of {
        ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident)*) => {
            match op {
                $( Operator::$op { .. } => proposal_of!(@map $proposal), )*
            }
        };
        (@map sign_extension) => { Some(WasmFeatures::SIGN_EXTENSION) };
        (@map saturating_float_to_int) => { Some(WasmFeatures::SATURATING_FLOAT_TO_INT) };
        (@map bulk_memory) => { Some(WasmFeatures::BULK_MEMORY) };
        (@map reference_types) => { Some(WasmFeatures::REFERENCE_TYPES) };
        (@map simd) => { Some(WasmFeatures::SIMD) };
        (@map relaxed_simd) => { Some(WasmFeatures::RELAXED_SIMD) };
        (@map tail_call) => { Some(WasmFeatures::TAIL_CALL) };
        (@map $other:ident) => { None };
    }
    wasmparser::for_each_operator!(proposal_of)
}

/// Checks a function body's encodings that the validator lets through and
/// returns the features its operators use.
///
/// WebAssembly 2.0 encodes the memory index of `memory.size` and
/// `memory.grow` as a single reserved zero byte; wasmparser reads it as a
/// LEB128 index (as multi-memory does), so without multi-memory a long
/// encoding of zero is refused here.
pub fn scan_body(
    body: &FunctionBody<'_>,
    enabled: WasmFeatures,
) -> Result<WasmFeatures, CompileError> {
    let invalid = |e: wasmparser::BinaryReaderError| CompileError::Invalid {
        offset: e.offset(),
        message: e.message().to_string(),
    };
    let strict_memory_index = !enabled.contains(WasmFeatures::MULTI_MEMORY);
    let mut used = WasmFeatures::EMPTY;
    let mut locals = body.get_locals_reader().map_err(invalid)?;
    for _ in 0..locals.get_count() {
        let (_, ty) = locals.read().map_err(invalid)?;
        used = used.union(val_type_feature(ty));
    }
    let mut reader = body.get_operators_reader().map_err(invalid)?;
    let mut pending: Option<usize> = None;
    while !reader.eof() {
        let (op, offset) = reader.read_with_offset().map_err(invalid)?;
        if let Some(start) = pending.take() {
            if offset != start + 2 {
                return Err(CompileError::Invalid {
                    offset: start + 1,
                    message: "zero byte expected".into(),
                });
            }
        }
        match &op {
            Operator::MemorySize { .. } | Operator::MemoryGrow { .. } if strict_memory_index => {
                pending = Some(offset);
            }
            Operator::Block { blockty } | Operator::Loop { blockty } | Operator::If { blockty } => {
                match blockty {
                    wasmparser::BlockType::FuncType(_) => used.set(WasmFeatures::MULTI_VALUE, true),
                    wasmparser::BlockType::Type(t) => used = used.union(val_type_feature(*t)),
                    wasmparser::BlockType::Empty => {}
                }
            }
            Operator::TypedSelect { ty } => used = used.union(val_type_feature(*ty)),
            _ => {}
        }
        if let Some(f) = operator_feature(&op) {
            used = used.union(f);
        }
    }
    Ok(used)
}

/// The feature a value type needs (`v128`: SIMD; references: reference types).
pub fn val_type_feature(t: wasmparser::ValType) -> WasmFeatures {
    match t {
        wasmparser::ValType::V128 => WasmFeatures::SIMD,
        wasmparser::ValType::Ref(_) => WasmFeatures::REFERENCE_TYPES,
        _ => WasmFeatures::EMPTY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_err(wat: &str, features: WasmFeatures) -> String {
        let opts = crate::CompileOptions {
            features,
            ..Default::default()
        };
        crate::compile(wat.as_bytes(), &opts)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unsupported_proposals_are_named() {
        let e = compile_err(
            "(module (memory 1 1 shared) (func (drop (i32.atomic.load (i32.const 0)))))",
            WasmFeatures::ALL,
        );
        assert!(e.contains("not supported by wasmc: threads"), "{e}");
        assert!(!e.contains("not enabled"), "{e}");
        let e = compile_err("(module (tag $t) (func (throw $t)))", WasmFeatures::ALL);
        assert!(
            e.contains("not supported by wasmc: exception handling"),
            "{e}"
        );
        let e = compile_err(
            "(module (type $t (func)) (func (param (ref $t))))",
            WasmFeatures::ALL,
        );
        assert!(
            e.contains("not supported by wasmc: function references"),
            "{e}"
        );
        let e = compile_err("(module (type (struct (field i32))))", WasmFeatures::ALL);
        assert!(e.contains("not supported by wasmc: GC"), "{e}");
    }

    #[test]
    fn disabled_features_are_named() {
        let mut f = WasmFeatures::ALL;
        f.apply_toggles("simd=n").unwrap();
        let e = compile_err("(module (func (param v128)))", f);
        assert!(e.contains("feature `simd` is disabled"), "{e}");
        assert!(!e.contains("not enabled"), "{e}");
    }

    #[test]
    fn disabled_extended_const_is_named() {
        let mut f = WasmFeatures::ALL;
        f.apply_toggles("extended-const=n").unwrap();
        for wat in [
            "(module (global i32 (i32.add (i32.const 1) (i32.const 2))))",
            "(module (memory 1) (data (i32.mul (i32.const 1) (i32.const 2)) \"x\"))",
            "(module (import \"a\" \"g\" (global i64)) (table i64 1 funcref) \
               (elem (i64.sub (global.get 0) (i64.const 1))))",
        ] {
            let e = compile_err(wat, f);
            assert!(
                e.contains("feature `extended-const` is disabled"),
                "{wat}: {e}"
            );
        }
        // A non-constant operator stays an invalid module.
        let e = compile_err(
            "(module (global i32 (i32.div_s (i32.const 1) (i32.const 1))))",
            f,
        );
        assert!(e.starts_with("invalid WebAssembly"), "{e}");
    }

    #[test]
    fn two_disabled_features_needed_at_once_are_not_blamed_on_a_proposal() {
        // An element expression segment of externrefs needs both.
        let mut f = WasmFeatures::ALL;
        f.apply_toggles("bulk-memory=n,reference-types=n").unwrap();
        let e = compile_err(
            "(module (table 1 funcref) (elem funcref (ref.null func)))",
            f,
        );
        assert!(e.contains("is disabled by the compile options"), "{e}");
        assert!(!e.contains("not supported"), "{e}");
    }

    #[test]
    fn passive_data_needs_bulk_memory() {
        let mut f = WasmFeatures::ALL;
        f.apply_toggles("bulk-memory=n").unwrap();
        let e = compile_err("(module (memory 1) (data \"x\"))", f);
        assert!(e.contains("feature `bulk-memory` is disabled"), "{e}");
        // An active segment does not.
        let ok = crate::compile(
            b"(module (memory 1) (data (i32.const 0) \"x\"))",
            &crate::CompileOptions {
                features: f,
                ..Default::default()
            },
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn invalid_modules_valid_under_other_proposals_stay_invalid() {
        // `global.get` of a defined global in a constant expression is valid
        // only with GC.
        let e = compile_err(
            "(module (global i32 (i32.const 0)) (global i32 (global.get 0)))",
            WasmFeatures::ALL,
        );
        assert!(e.starts_with("invalid WebAssembly"), "{e}");
    }

    #[test]
    fn invalid_modules_using_unsupported_proposals_are_invalid() {
        // Uses function references (a non-nullable parameter), and its body
        // is invalid under every proposal: the module is invalid.
        let e = compile_err(
            "(module (type $t (func)) (func (param (ref $t)) (result i32) (i64.const 0)))",
            WasmFeatures::ALL,
        );
        assert!(e.starts_with("invalid WebAssembly"), "{e}");
        assert!(e.contains("type mismatch"), "{e}");
        // A `br_if` that leaves a nullable reference where a non-nullable
        // one is expected (the spec's br_if.wast).
        let e = compile_err(
            "(module (type $t (func)) (func (param $r (ref null $t)) (result (ref $t)) \
               (block (result (ref $t)) (br_if 0 (local.get $r) (i32.const 1)))))",
            WasmFeatures::ALL,
        );
        assert!(e.contains("type mismatch"), "{e}");
    }

    #[test]
    fn invalid_modules_stay_invalid() {
        let e = compile_err(
            "(module (func (result i32) (i64.const 0)))",
            WasmFeatures::ALL,
        );
        assert!(e.starts_with("invalid WebAssembly"), "{e}");
    }

    #[test]
    fn operators_map_to_features() {
        assert_eq!(
            operator_feature(&Operator::I32Extend8S),
            Some(WasmFeatures::SIGN_EXTENSION)
        );
        assert_eq!(
            operator_feature(&Operator::ReturnCall { function_index: 0 }),
            Some(WasmFeatures::TAIL_CALL)
        );
        assert_eq!(
            operator_feature(&Operator::F32x4RelaxedMadd),
            Some(WasmFeatures::RELAXED_SIMD)
        );
        assert_eq!(operator_feature(&Operator::I32Add), None);
    }
}
