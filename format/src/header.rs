//! The artifact header: the fixed-layout prefix of `.wasmc.meta`.
//!
//! ```text
//! .wasmc.meta
//! +------------+------------------+----------------+-------------------------+-----------------+
//! | magic [8]  | format_version   | header_len u32 | ArtifactHeader (bincode)| ModuleInfo      |
//! | "\0wasmc\r\n" | u32 LE        | LE             | header_len bytes        | (bincode), rest |
//! +------------+------------------+----------------+-------------------------+-----------------+
//! ```
//!
//! The magic and the version are read by hand before anything is decoded, so
//! an artifact of another format version is refused with "format version 4,
//! this loader supports version 5", never with a decoding error. The header
//! says what the code depends on (architecture, CPU features, the memory
//! strategy the code was compiled for); [`ArtifactHeader::check_host`] compares
//! that with a host and names every field that differs.

use crate::bytes::read_u32;
pub use crate::memory::{MemoryLayout, MemoryStrategy};
use crate::sections::{Hashed, SectionId, SECTIONS};
use crate::{FormatError, ModuleInfo, WasmFeatures};
use serde::{Deserialize, Serialize};

/// First bytes of `.wasmc.meta`.
pub const MAGIC: [u8; 8] = *b"\0wasmc\r\n";

/// Version of the artifact format. Bump on any change to a section's
/// encoding, to `ModuleInfo`, to the VMContext layout or to the builtin list.
///
/// 8: `TableType::max` is a `u64` (a 64-bit table's declared maximum, for
/// import matching), on top of 7.
///
/// 7: funcref table elements are tagged with `FUNCREF_INIT_BIT` and may be
/// uninitialised (`0`), initialised through the new `table_get_lazy_funcref`
/// builtin (lazy tables, issue 15), on top of 6.
///
/// 6: the trap table and the address map in the blocked delta encoding
/// (`blocks.rs`), on top of 5 (`.wasmc.segments` and memory images, issue
/// 15) and 4 (the signature slot `.wasmc.sig`, issue 11).
pub const FORMAT_VERSION: u32 = 8;

/// Cranelift optimization level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OptLevel {
    /// No optimization.
    None,
    /// Optimize for speed.
    Speed,
    /// Optimize for speed and size.
    SpeedAndSize,
}

impl core::fmt::Display for OptLevel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
            OptLevel::SpeedAndSize => "speed_and_size",
        })
    }
}

/// Settings that changed code generation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodegenSettings {
    /// Optimization level.
    pub opt_level: OptLevel,
    /// The memory strategy the code was compiled for, as a tag plus the
    /// sizes it assumed; the loader checks them against its own constants
    /// ([`MemoryLayout::check`]) and never allocates from them.
    pub memory: MemoryLayout,
    /// What interruption checks the code carries (the loader refuses a
    /// deadline or fuel on code without them).
    pub interruption: Interruption,
    /// Every Cranelift shared flag as `name=value`, for reproduction and
    /// `inspect`; informational.
    pub cranelift_flags: Vec<String>,
}

/// The interruption instrumentation compiled into the code
/// (`wasmc compile --epoch-interruption`, `--fuel`).
///
/// Both checks run at every function entry and every loop header, so a
/// guest cannot run for long without passing one:
/// - `epochs`: the engine's epoch counter (read through
///   `VMRuntimeLimits::epoch_ptr`) is compared with the store's
///   `epoch_deadline`; at or past it the code calls the builtin
///   `epoch_deadline_reached`, which traps with
///   [`TrapCode::Interrupted`](crate::TrapCode::Interrupted).
/// - `fuel`: `VMRuntimeLimits::fuel_consumed` (an `i64`, minus the fuel
///   left) grows by the number of operators each basic block executes; at a
///   check, a value `>= 0` calls the builtin `out_of_fuel`, which traps with
///   [`TrapCode::OutOfFuel`](crate::TrapCode::OutOfFuel). Every operator
///   costs 1 except `nop`, `drop`, `block`, `loop`, `else`, `end`,
///   `unreachable` and `return` (cost 0), so a program consumes the same fuel
///   on every run and every machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interruption {
    /// Epoch deadline checks.
    pub epochs: bool,
    /// Fuel counting.
    pub fuel: bool,
}

impl core::fmt::Display for Interruption {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match (self.epochs, self.fuel) {
            (false, false) => "none",
            (true, false) => "epochs",
            (false, true) => "fuel",
            (true, true) => "epochs+fuel",
        })
    }
}

/// What the code was compiled for and with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArtifactHeader {
    /// `wasmc` version that wrote the artifact.
    pub compiler_version: String,
    /// Target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub triple: String,
    /// Architecture as Rust names it (`std::env::consts::ARCH`).
    pub arch: String,
    /// Operating system as Rust names it (`std::env::consts::OS`).
    pub os: String,
    /// Pointer width in bytes.
    pub pointer_bytes: u8,
    /// The CPU model the code was tuned for (`baseline`, `native`, or a list).
    pub cpu: String,
    /// Rust target-feature names of the CPU features the code uses.
    pub cpu_features: Vec<String>,
    /// Code generation settings.
    pub settings: CodegenSettings,
    /// The Wasm features (proposals) the module uses; a loader refuses
    /// bits it does not know.
    pub wasm_features: WasmFeatures,
    /// BLAKE3 over this header encoded with a zero `content_hash`, then
    /// `.text` and every `.wasmc.*` section but `.wasmc.meta` in
    /// [`SECTIONS`] order, then the encoded `ModuleInfo` ([`content_hash`]);
    /// each part prefixed with its length as u64 LE. The header
    /// is covered because its CPU features and memory strategy decide what
    /// the code may assume (a smaller guard region or a dropped feature would
    /// pass the host check and make the code unsound).
    pub content_hash: [u8; 32],
}

/// What a host offers, for [`ArtifactHeader::check_host`].
pub struct HostInfo<'a> {
    /// `std::env::consts::ARCH`.
    pub arch: &'a str,
    /// `std::env::consts::OS`.
    pub os: &'a str,
    /// Pointer width in bytes.
    pub pointer_bytes: u8,
    /// Whether the host CPU has a feature (Rust name); `None` if the loader
    /// does not know the name.
    pub has_feature: &'a dyn Fn(&str) -> Option<bool>,
}

/// One way in which an artifact does not fit a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The header field.
    pub field: &'static str,
    /// The artifact's value.
    pub artifact: String,
    /// The host's value.
    pub host: String,
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}: artifact needs {}, host has {}",
            self.field, self.artifact, self.host
        )
    }
}

impl ArtifactHeader {
    /// Every field in which the artifact does not fit `host`; empty if it fits.
    pub fn check_host(&self, host: &HostInfo<'_>) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let mut cmp = |field, a: String, h: String| {
            if a != h {
                out.push(Mismatch {
                    field,
                    artifact: a,
                    host: h,
                });
            }
        };
        cmp("architecture", self.arch.clone(), host.arch.to_string());
        cmp("operating system", self.os.clone(), host.os.to_string());
        cmp(
            "pointer width",
            self.pointer_bytes.to_string(),
            host.pointer_bytes.to_string(),
        );
        for feat in &self.cpu_features {
            match (host.has_feature)(feat) {
                Some(true) => {}
                Some(false) => out.push(Mismatch {
                    field: "cpu feature",
                    artifact: feat.clone(),
                    host: format!("no {feat}"),
                }),
                None => out.push(Mismatch {
                    field: "cpu feature",
                    artifact: feat.clone(),
                    host: "a loader that does not know this feature".into(),
                }),
            }
        }
        for name in WasmFeatures::from_bits_retain(self.wasm_features.unknown()).names() {
            out.push(Mismatch {
                field: "wasm feature",
                artifact: name,
                host: "a loader that does not know this feature".into(),
            });
        }
        out
    }
}

const WHAT: &str = crate::sections::section_what!(meta);

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<{ 1 << 30 }>()
}

/// Encodes `.wasmc.meta`.
pub fn encode_meta(header: &ArtifactHeader, info: &ModuleInfo) -> Vec<u8> {
    let h = bincode::serde::encode_to_vec(header, bincode_config()).expect("header encodes");
    let m = encode_module_info(info);
    let mut out = Vec::with_capacity(16 + h.len() + m.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&m);
    out
}

/// Encodes a `ModuleInfo` alone (also the input of the content hash).
pub fn encode_module_info(info: &ModuleInfo) -> Vec<u8> {
    bincode::serde::encode_to_vec(info, bincode_config()).expect("module info encodes")
}

/// Checks the magic and version and decodes the header. Returns the header and
/// the bytes of the encoded `ModuleInfo` that follow it.
pub fn decode_header(meta: &[u8]) -> Result<(ArtifactHeader, &[u8]), FormatError> {
    if meta.len() < 16 {
        return Err(FormatError::Truncated {
            what: WHAT,
            detail: format!("{} bytes, the fixed header needs 16", meta.len()),
        });
    }
    if meta[..8] != MAGIC {
        return Err(FormatError::Invalid {
            what: WHAT,
            detail: "bad magic: not a wasmc artifact".into(),
        });
    }
    let version = read_u32(meta, 8).unwrap_or(0);
    if version != FORMAT_VERSION {
        return Err(FormatError::Version {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let hlen = read_u32(meta, 12).unwrap_or(0) as usize;
    let hbytes =
        meta.get(16..16usize.saturating_add(hlen))
            .ok_or_else(|| FormatError::Truncated {
                what: WHAT,
                detail: format!("header length {hlen} exceeds section length {}", meta.len()),
            })?;
    let (header, used): (ArtifactHeader, usize) =
        bincode::serde::decode_from_slice(hbytes, bincode_config()).map_err(|e| {
            FormatError::Decode {
                what: "artifact header",
                detail: decode_detail(&e),
            }
        })?;
    if used != hlen {
        return Err(FormatError::Invalid {
            what: WHAT,
            detail: format!("header length {hlen} but header encodes in {used} bytes"),
        });
    }
    Ok((header, &meta[16 + hlen..]))
}

/// A decoding error as a sentence (bincode's own `Display` is a debug dump).
fn decode_detail(e: &bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError as E;
    match e {
        E::UnexpectedEnd { additional } => {
            format!("truncated: {additional} more bytes needed")
        }
        E::LimitExceeded => "a length exceeds the 1 GiB decoding limit".into(),
        E::UnexpectedVariant {
            type_name, found, ..
        } => format!("invalid variant {found} of {type_name}"),
        E::Utf8 { inner } => format!("a string is not valid UTF-8 ({inner})"),
        E::InvalidCharEncoding(_) => "a character is not valid UTF-8".into(),
        E::InvalidBooleanValue(v) => format!("invalid boolean value {v}"),
        E::OutsideUsizeRange(v) => format!("length {v} does not fit in memory"),
        E::OtherString(m) => m.clone(),
        E::Other(m) => (*m).to_string(),
        _ => "malformed encoding".into(),
    }
}

/// Decodes the `ModuleInfo` bytes returned by [`decode_header`]. The result
/// still needs [`ModuleInfo::validate`].
pub fn decode_module_info(bytes: &[u8]) -> Result<ModuleInfo, FormatError> {
    let (info, used): (ModuleInfo, usize) =
        bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(|e| {
            FormatError::Decode {
                what: "module info",
                detail: decode_detail(&e),
            }
        })?;
    if used != bytes.len() {
        return Err(FormatError::Invalid {
            what: WHAT,
            detail: format!("{} trailing bytes after module info", bytes.len() - used),
        });
    }
    Ok(info)
}

/// Computes [`ArtifactHeader::content_hash`]: BLAKE3 over the header
/// encoded with a zero `content_hash`, then the bytes of every section that
/// [`SECTIONS`] marks [`Hashed::Bytes`], in table order, then the encoded
/// `ModuleInfo`; each part prefixed with its length as u64 LE. `section`
/// gives a section's bytes (empty for an absent optional one); it is not
/// asked for `.wasmc.meta`.
pub fn content_hash<'a>(
    header: &ArtifactHeader,
    section: impl Fn(SectionId) -> &'a [u8],
    module_info: &[u8],
) -> [u8; 32] {
    let unhashed = ArtifactHeader {
        content_hash: [0; 32],
        ..header.clone()
    };
    let header_bytes =
        bincode::serde::encode_to_vec(&unhashed, bincode_config()).expect("header encodes");
    // BLAKE3 rather than SHA-256: about 3x faster per MiB on the build
    // machine (docs/trust.md), and this pass is most of a verified load.
    let mut h = blake3::Hasher::new();
    let mut part = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(&header_bytes);
    for s in SECTIONS.iter().filter(|s| s.hashed == Hashed::Bytes) {
        part(section(s.id));
    }
    part(module_info);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ArtifactHeader {
        ArtifactHeader {
            compiler_version: "0.1.0".into(),
            triple: "x86_64-unknown-linux-gnu".into(),
            arch: "x86_64".into(),
            os: "linux".into(),
            pointer_bytes: 8,
            cpu: "baseline".into(),
            cpu_features: vec!["sse4.1".into(), "avx512f".into()],
            settings: CodegenSettings {
                opt_level: OptLevel::Speed,
                memory: MemoryLayout::of(MemoryStrategy::Guard),
                interruption: Interruption::default(),
                cranelift_flags: vec!["opt_level=speed".into()],
            },
            wasm_features: WasmFeatures::SIMD,
            content_hash: [7; 32],
        }
    }

    #[test]
    fn round_trip() {
        let info = ModuleInfo {
            name: Some("m".into()),
            ..Default::default()
        };
        let bytes = encode_meta(&header(), &info);
        let (h, rest) = decode_header(&bytes).unwrap();
        assert_eq!(h, header());
        assert_eq!(decode_module_info(rest).unwrap(), info);
    }

    #[test]
    fn version_and_magic_are_checked_first() {
        let mut bytes = encode_meta(&header(), &ModuleInfo::default());
        bytes[8] = 9;
        let e = decode_header(&bytes).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("artifact format version 9, this loader supports version {FORMAT_VERSION}")
        );
        bytes[0] = b'X';
        assert!(decode_header(&bytes)
            .unwrap_err()
            .to_string()
            .contains("bad magic"));
    }

    #[test]
    fn truncated_and_flipped_never_panic() {
        let bytes = encode_meta(&header(), &ModuleInfo::default());
        for n in 0..bytes.len() {
            if let Ok((_, rest)) = decode_header(&bytes[..n]) {
                let _ = decode_module_info(rest);
            }
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x80;
            if let Ok((_, rest)) = decode_header(&b) {
                let _ = decode_module_info(rest);
            }
        }
    }

    #[test]
    fn host_mismatches_are_named() {
        let h = header();
        let has = |f: &str| match f {
            "sse4.1" => Some(true),
            "avx512f" => Some(false),
            _ => None,
        };
        let host = HostInfo {
            arch: "aarch64",
            os: "linux",
            pointer_bytes: 8,
            has_feature: &has,
        };
        let m = h.check_host(&host);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0].to_string(),
            "architecture: artifact needs x86_64, host has aarch64"
        );
        assert_eq!(m[1].field, "cpu feature");
        assert_eq!(m[1].artifact, "avx512f");
    }

    #[test]
    fn content_hash_covers_every_section_but_meta() {
        let h = header();
        let bytes: Vec<Vec<u8>> = SectionId::ALL.iter().map(|&id| vec![id as u8; 3]).collect();
        let base = content_hash(&h, |id| &bytes[id as usize], b"info");
        for s in &SECTIONS {
            let mut changed = bytes.clone();
            changed[s.id as usize].push(0);
            let hash = content_hash(&h, |id| &changed[id as usize], b"info");
            assert_eq!(hash == base, s.hashed != Hashed::Bytes, "{}", s.name);
        }
        assert_ne!(base, content_hash(&h, |id| &bytes[id as usize], b"infO"));
        // The header's own hash field is not covered; its other fields are.
        let mut h2 = h.clone();
        h2.content_hash = [1; 32];
        assert_eq!(base, content_hash(&h2, |id| &bytes[id as usize], b"info"));
        h2.settings.memory = MemoryLayout::of(MemoryStrategy::Explicit);
        assert_ne!(base, content_hash(&h2, |id| &bytes[id as usize], b"info"));
        // The interruption flags decide what the loader lets a store do.
        let mut h3 = h.clone();
        h3.settings.interruption.fuel = true;
        assert_ne!(base, content_hash(&h3, |id| &bytes[id as usize], b"info"));
    }

    #[test]
    fn unknown_wasm_features_are_refused() {
        let mut h = header();
        h.wasm_features = WasmFeatures::from_bits_retain(WasmFeatures::TAIL_CALL.bits() | 1 << 30);
        let has = |_: &str| Some(true);
        let host = HostInfo {
            arch: "x86_64",
            os: "linux",
            pointer_bytes: 8,
            has_feature: &has,
        };
        let m = h.check_host(&host);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].field, "wasm feature");
        assert_eq!(m[0].artifact, "unknown-bit-30");
    }
}
