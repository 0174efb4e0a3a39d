//! WebAssembly features (standardised proposals): their names and bits,
//! defined once for the compiler's options, the artifact header and `inspect`.
//!
//! A [`WasmFeatures`] is a set of features as a `u32` bit set. The compiler
//! takes the set it may accept (its options; by default every feature wasmc
//! implements, as Wasmtime enables its implemented proposals by default) and
//! records in the artifact header the set the module actually *uses*: the
//! proposals whose instructions, types or module constructs it contains. The
//! loader refuses an artifact that uses a bit this build does not know (an
//! artifact from a newer compiler), naming it.
//!
//! | bit | name                      | since      |
//! |-----|---------------------------|------------|
//! | 0   | `mutable-global`          | Wasm 2.0   |
//! | 1   | `saturating-float-to-int` | Wasm 2.0   |
//! | 2   | `sign-extension`          | Wasm 2.0   |
//! | 3   | `multi-value`             | Wasm 2.0   |
//! | 4   | `bulk-memory`             | Wasm 2.0   |
//! | 5   | `reference-types`         | Wasm 2.0   |
//! | 6   | `simd`                    | Wasm 2.0   |
//! | 7   | `tail-call`               | Wasm 3.0   |
//! | 8   | `extended-const`          | Wasm 3.0   |
//! | 9   | `multi-memory`            | Wasm 3.0   |
//! | 10  | `memory64`                | Wasm 3.0   |
//! | 11  | `relaxed-simd`            | Wasm 3.0   |
//!
//! Bits are never reused: a feature that is dropped keeps its bit reserved.
//! The names are the ones `wasmc compile -W NAME=n` takes (Wasmtime's `-W`
//! spelling).

use serde::{Deserialize, Serialize};

/// A set of WebAssembly features.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WasmFeatures(u32);

macro_rules! features {
    ($($(#[$doc:meta])* $konst:ident = $bit:literal, $name:literal;)*) => {
        impl WasmFeatures {
            $(
                $(#[$doc])*
                pub const $konst: WasmFeatures = WasmFeatures(1 << $bit);
            )*

            /// Every feature this build knows, with its name, in bit order.
            pub const NAMED: &'static [(WasmFeatures, &'static str)] = &[
                $((WasmFeatures::$konst, $name),)*
            ];
        }
    };
}

features! {
    /// Import and export of mutable globals (Wasm 2.0).
    MUTABLE_GLOBAL = 0, "mutable-global";
    /// Non-trapping float-to-int conversions (Wasm 2.0).
    SATURATING_FLOAT_TO_INT = 1, "saturating-float-to-int";
    /// Sign-extension operators (Wasm 2.0).
    SIGN_EXTENSION = 2, "sign-extension";
    /// Multiple results and block parameters (Wasm 2.0).
    MULTI_VALUE = 3, "multi-value";
    /// Bulk memory and table operations, passive segments (Wasm 2.0).
    BULK_MEMORY = 4, "bulk-memory";
    /// `funcref`/`externref` values, several tables (Wasm 2.0).
    REFERENCE_TYPES = 5, "reference-types";
    /// 128-bit SIMD (Wasm 2.0).
    SIMD = 6, "simd";
    /// `return_call` and `return_call_indirect` (Wasm 3.0).
    TAIL_CALL = 7, "tail-call";
    /// `add`/`sub`/`mul` and `global.get` in constant expressions (Wasm 3.0).
    EXTENDED_CONST = 8, "extended-const";
    /// Several memories per module (Wasm 3.0).
    MULTI_MEMORY = 9, "multi-memory";
    /// Memories with 64-bit addresses (Wasm 3.0).
    MEMORY64 = 10, "memory64";
    /// Relaxed SIMD instructions (Wasm 3.0), compiled deterministically.
    RELAXED_SIMD = 11, "relaxed-simd";
}

impl WasmFeatures {
    /// The empty set.
    pub const EMPTY: WasmFeatures = WasmFeatures(0);

    /// The WebAssembly 2.0 feature set.
    pub const WASM2: WasmFeatures = WasmFeatures(
        Self::MUTABLE_GLOBAL.0
            | Self::SATURATING_FLOAT_TO_INT.0
            | Self::SIGN_EXTENSION.0
            | Self::MULTI_VALUE.0
            | Self::BULK_MEMORY.0
            | Self::REFERENCE_TYPES.0
            | Self::SIMD.0,
    );

    /// Every feature this build knows.
    pub const ALL: WasmFeatures = {
        let mut bits = 0;
        let mut i = 0;
        while i < Self::NAMED.len() {
            bits |= Self::NAMED[i].0 .0;
            i += 1;
        }
        WasmFeatures(bits)
    };

    /// The set with exactly these bits, known or not (for reading headers).
    pub const fn from_bits_retain(bits: u32) -> WasmFeatures {
        WasmFeatures(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True if every feature of `other` is in `self`.
    pub const fn contains(self, other: WasmFeatures) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self` ∪ `other`.
    #[must_use]
    pub const fn union(self, other: WasmFeatures) -> WasmFeatures {
        WasmFeatures(self.0 | other.0)
    }

    /// `self` without the features of `other`.
    #[must_use]
    pub const fn difference(self, other: WasmFeatures) -> WasmFeatures {
        WasmFeatures(self.0 & !other.0)
    }

    /// Adds or removes `other`.
    pub fn set(&mut self, other: WasmFeatures, on: bool) {
        if on {
            self.0 |= other.0;
        } else {
            self.0 &= !other.0;
        }
    }

    /// Bits that name no feature this build knows.
    pub const fn unknown(self) -> u32 {
        self.0 & !Self::ALL.0
    }

    /// The feature called `name` (as in the table above).
    pub fn from_name(name: &str) -> Option<WasmFeatures> {
        Self::NAMED
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
    }

    /// Names of the features in the set, in bit order; unknown bits as
    /// `unknown-bit-N`.
    pub fn names(self) -> Vec<String> {
        let mut out: Vec<String> = Self::NAMED
            .iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, n)| n.to_string())
            .collect();
        let unknown = self.unknown();
        for bit in 0..32 {
            if unknown & (1 << bit) != 0 {
                out.push(format!("unknown-bit-{bit}"));
            }
        }
        out
    }

    /// Proposals wasmc does not implement, by their Wasmtime `-W` names,
    /// with the name the compiler's refusal gives them (`not supported by
    /// wasmc: <proposal>`). Turning one off is accepted and changes
    /// nothing (Wasmtime users pass `-W threads=n`); turning one on is that
    /// refusal.
    pub const UNIMPLEMENTED: &'static [(&'static str, &'static str)] = &[
        ("threads", "threads"),
        ("exceptions", "exception handling"),
        ("function-references", "function references"),
        ("gc", "GC"),
        ("shared-everything-threads", "shared-everything threads"),
        ("custom-page-sizes", "custom page sizes"),
        ("component-model", "the component model"),
    ];

    /// Applies a Wasmtime-style toggle list to `self`:
    /// `NAME`, `NAME=y|yes|true|on`, `NAME=n|no|false|off`, several separated
    /// by commas (`tail-call=n,simd`). An unknown name is an error that lists
    /// the known ones; a proposal of [`Self::UNIMPLEMENTED`] may only be
    /// turned off. A list that names no feature is an error (a shell variable
    /// that expanded to nothing), not a no-op. Nothing is applied unless the
    /// whole list is good.
    pub fn apply_toggles(&mut self, spec: &str) -> Result<(), String> {
        let mut next = *self;
        let mut named = false;
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), v.trim()),
                None => (item, "y"),
            };
            if name.is_empty() {
                return Err(format!("`{item}`: no feature name before `=`"));
            }
            named = true;
            let on = match value {
                "y" | "yes" | "true" | "on" => true,
                "n" | "no" | "false" | "off" => false,
                other => {
                    return Err(format!(
                        "feature `{name}`: value `{other}` is not one of y, yes, true, on, n, no, false, off"
                    ))
                }
            };
            if let Some((_, proposal)) = Self::UNIMPLEMENTED.iter().find(|(n, _)| *n == name) {
                if on {
                    return Err(format!("not supported by wasmc: {proposal}"));
                }
                continue;
            }
            let f = Self::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Self::NAMED.iter().map(|(_, n)| *n).collect();
                format!(
                    "unknown WebAssembly feature `{name}`; known features: {}",
                    known.join(", ")
                )
            })?;
            next.set(f, on);
        }
        if !named {
            return Err("no feature given; expected FEATURE[=y|n][,...]".to_string());
        }
        *self = next;
        Ok(())
    }
}

impl core::fmt::Debug for WasmFeatures {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "WasmFeatures({})", self.names().join("|"))
    }
}

impl core::fmt::Display for WasmFeatures {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.names().join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_distinct_and_names_round_trip() {
        let mut seen = 0u32;
        for (f, name) in WasmFeatures::NAMED {
            assert_eq!(f.bits().count_ones(), 1, "{name}");
            assert_eq!(seen & f.bits(), 0, "{name} reuses a bit");
            seen |= f.bits();
            assert_eq!(WasmFeatures::from_name(name), Some(*f));
        }
        assert_eq!(seen, WasmFeatures::ALL.bits());
        assert!(WasmFeatures::ALL.contains(WasmFeatures::WASM2));
    }

    #[test]
    fn toggles() {
        let mut f = WasmFeatures::ALL;
        f.apply_toggles("tail-call=n, memory64=no").unwrap();
        assert!(!f.contains(WasmFeatures::TAIL_CALL));
        assert!(!f.contains(WasmFeatures::MEMORY64));
        assert!(f.contains(WasmFeatures::SIMD));
        f.apply_toggles("tail-call").unwrap();
        assert!(f.contains(WasmFeatures::TAIL_CALL));
        let e = f.apply_toggles("tail-calls=n").unwrap_err();
        assert!(
            e.contains("unknown WebAssembly feature `tail-calls`"),
            "{e}"
        );
        assert!(e.contains("tail-call"), "{e}");
        // Proposals wasmc does not implement: off is accepted (a no-op),
        // on is refused by name.
        let before = f;
        f.apply_toggles("threads=n,gc=no,exceptions=off").unwrap();
        assert_eq!(f, before);
        let e = f.apply_toggles("threads").unwrap_err();
        assert_eq!(e, "not supported by wasmc: threads");
        let e = f.apply_toggles("function-references=y").unwrap_err();
        assert_eq!(e, "not supported by wasmc: function references");
        let e = f.apply_toggles("simd=maybe").unwrap_err();
        assert!(e.contains("`maybe`"), "{e}");
        // Nothing, or a value without a name, is a mistake, never a no-op.
        let before = f;
        for spec in ["", " ", ",", "=n", "simd=n,=y"] {
            let e = f.apply_toggles(spec).unwrap_err();
            assert!(e.contains("no feature"), "{spec:?}: {e}");
        }
        assert_eq!(f, before, "a refused list changes nothing");
    }

    #[test]
    fn unknown_bits_are_named() {
        let f = WasmFeatures::from_bits_retain(WasmFeatures::SIMD.bits() | 1 << 31);
        assert_eq!(f.unknown(), 1 << 31);
        assert_eq!(f.names(), vec!["simd", "unknown-bit-31"]);
        assert_eq!(WasmFeatures::EMPTY.to_string(), "none");
    }
}
