//! CPU features an artifact's code may rely on, by architecture.
//!
//! The header lists the features the code uses by their Rust target-feature
//! names (`sse4.1`, `lse`); the compiler maps Cranelift ISA flags to those
//! names, and the loader asks the host CPU for each. Both sides expand the
//! one list in [`foreach_cpu_feature!`](crate::foreach_cpu_feature), so a feature the compiler can
//! record is one the loader can detect.
//!
//! Entries without a Cranelift flag are features the loader can detect that
//! no Cranelift flag turns on (they are part of the architecture's baseline).

/// Calls `$mac!` with every known CPU feature, grouped by architecture:
///
/// ```text
/// $mac! {
///     x86_64 { "sse3" = Some("has_sse3"), ... }
///     aarch64 { "lse" = Some("has_lse"), ... }
/// }
/// ```
///
/// Each entry is `rust_name = cranelift_flag`, where the Rust name is a
/// string literal (a single token, so that `is_x86_feature_detected!` can
/// take it) and the Cranelift flag an `Option<&str>` expression.
#[macro_export]
macro_rules! foreach_cpu_feature {
    ($mac:ident) => {
        $mac! {
            x86_64 {
                "sse2" = None,
                "sse3" = Some("has_sse3"),
                "ssse3" = Some("has_ssse3"),
                "sse4.1" = Some("has_sse41"),
                "sse4.2" = Some("has_sse42"),
                "popcnt" = Some("has_popcnt"),
                "avx" = Some("has_avx"),
                "avx2" = Some("has_avx2"),
                "fma" = Some("has_fma"),
                "bmi1" = Some("has_bmi1"),
                "bmi2" = Some("has_bmi2"),
                "lzcnt" = Some("has_lzcnt"),
                "avx512bitalg" = Some("has_avx512bitalg"),
                "avx512dq" = Some("has_avx512dq"),
                "avx512f" = Some("has_avx512f"),
                "avx512vl" = Some("has_avx512vl"),
                "avx512vbmi" = Some("has_avx512vbmi"),
                "cmpxchg16b" = Some("has_cmpxchg16b"),
            }
            aarch64 {
                "neon" = None,
                "lse" = Some("has_lse"),
                "paca" = Some("has_pauth"),
                "fp16" = Some("has_fp16"),
            }
        }
    };
}

/// One CPU feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuFeature {
    /// Architecture as Rust names it (`std::env::consts::ARCH`).
    pub arch: &'static str,
    /// Rust target-feature name, as recorded in the header.
    pub name: &'static str,
    /// The Cranelift ISA flag that enables it, if any.
    pub cranelift_flag: Option<&'static str>,
}

macro_rules! feature_table {
    ($($arch:ident { $($name:tt = $flag:expr,)* })*) => {
        /// Every known CPU feature ([`foreach_cpu_feature!`](crate::foreach_cpu_feature) as data).
        pub const CPU_FEATURES: &[CpuFeature] = &[
            $($(CpuFeature { arch: stringify!($arch), name: $name, cranelift_flag: $flag },)*)*
        ];
    };
}
foreach_cpu_feature!(feature_table);

/// The Rust name of the feature Cranelift flag `flag` enables.
pub fn rust_name(flag: &str) -> Option<&'static str> {
    CPU_FEATURES
        .iter()
        .find(|f| f.cranelift_flag == Some(flag))
        .map(|f| f.name)
}

/// The Cranelift flag that enables the feature with Rust name `name`.
pub fn cranelift_flag(name: &str) -> Option<&'static str> {
    CPU_FEATURES
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.cranelift_flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        assert_eq!(rust_name("has_sse41"), Some("sse4.1"));
        assert_eq!(cranelift_flag("sse4.1"), Some("has_sse41"));
        assert_eq!(rust_name("has_pauth"), Some("paca"));
        assert_eq!(cranelift_flag("sse2"), None);
        assert_eq!(rust_name("has_nothing"), None);
        for f in CPU_FEATURES {
            if let Some(flag) = f.cranelift_flag {
                assert_eq!(rust_name(flag), Some(f.name));
            }
            assert!(f.arch == "x86_64" || f.arch == "aarch64");
        }
    }
}
