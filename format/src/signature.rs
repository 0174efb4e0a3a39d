//! `.wasmc.sig`: the artifact's Ed25519 signature slot.
//!
//! ```text
//! .wasmc.sig (SIG_SECTION_LEN = 104 bytes, 8-aligned)
//! +-----------+-------------+------------------+-------------------+
//! | "wsig"    | version u32 | public key [32]  | signature [64]    |
//! |           | LE (= 1)    | Ed25519          | Ed25519           |
//! +-----------+-------------+------------------+-------------------+
//! all zero: unsigned
//! ```
//!
//! The compiler always writes the section, zeroed, so that signing an
//! artifact later overwrites these bytes in place: no other byte of the file
//! changes, and since Ed25519 signatures are deterministic, so is the signed
//! file.
//!
//! **What is signed.** [`signed_message`] of the [`file_digest`]: BLAKE3
//! over the whole file with the bytes of this section read as zero. It covers
//! every byte but the signature slot (code, metadata, the header's content
//! hash, ELF headers and padding), so any edit to a signed artifact, even one
//! that recomputes the content hash, fails verification. The signature
//! cryptography lives in the loader and the CLI; this module owns the layout.

use crate::FormatError;

/// Length of `.wasmc.sig`.
pub const SIG_SECTION_LEN: usize = 104;
/// First bytes of a filled signature slot.
pub const SIG_MAGIC: [u8; 4] = *b"wsig";
/// Version of the signature slot layout.
pub const SIG_VERSION: u32 = 1;
/// Domain separation for what the key signs, so that a wasmc signature can
/// never be replayed as a signature of something else.
pub const SIG_CONTEXT: &[u8] = b"wasmc artifact signature v1\0";

const WHAT: &str = "section `.wasmc.sig`";

/// A filled signature slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureSlot {
    /// The signer's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The Ed25519 signature of [`signed_message`].
    pub signature: [u8; 64],
}

impl SignatureSlot {
    /// Reads a `.wasmc.sig` section: `Ok(None)` if it is absent (empty) or
    /// all zero (unsigned).
    pub fn parse(bytes: &[u8]) -> Result<Option<SignatureSlot>, FormatError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        if bytes.len() != SIG_SECTION_LEN {
            return Err(FormatError::Invalid {
                what: WHAT,
                detail: format!("{} bytes, expected {SIG_SECTION_LEN}", bytes.len()),
            });
        }
        if bytes.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        if bytes[..4] != SIG_MAGIC {
            return Err(FormatError::Invalid {
                what: WHAT,
                detail: "bad magic: neither unsigned (all zero) nor a signature".into(),
            });
        }
        let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        if version != SIG_VERSION {
            return Err(FormatError::Invalid {
                what: WHAT,
                detail: format!("signature version {version}, this loader reads {SIG_VERSION}"),
            });
        }
        Ok(Some(SignatureSlot {
            public_key: bytes[8..40].try_into().expect("32 bytes"),
            signature: bytes[40..104].try_into().expect("64 bytes"),
        }))
    }

    /// The section bytes for this slot.
    pub fn encode(&self) -> [u8; SIG_SECTION_LEN] {
        let mut out = [0; SIG_SECTION_LEN];
        out[..4].copy_from_slice(&SIG_MAGIC);
        out[4..8].copy_from_slice(&SIG_VERSION.to_le_bytes());
        out[8..40].copy_from_slice(&self.public_key);
        out[40..].copy_from_slice(&self.signature);
        out
    }

    /// [`key_id`] of the signer.
    pub fn key_id(&self) -> String {
        key_id(&self.public_key)
    }
}

/// A short, stable name for a public key: the first 8 bytes of its BLAKE3
/// hash, in hex.
pub fn key_id(public_key: &[u8; 32]) -> String {
    blake3::hash(public_key).as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// BLAKE3 over `file` with the bytes in `sig` (the `.wasmc.sig` section;
/// empty if absent) read as zero.
pub fn file_digest(file: &[u8], sig: core::ops::Range<usize>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    let start = sig.start.min(file.len());
    let end = sig.end.clamp(start, file.len());
    h.update(&file[..start]);
    h.update(&vec![0u8; end - start]);
    h.update(&file[end..]);
    h.finalize().into()
}

/// What the signer's key signs: [`SIG_CONTEXT`] then the file digest.
pub fn signed_message(file_digest: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIG_CONTEXT.len() + 32);
    m.extend_from_slice(SIG_CONTEXT);
    m.extend_from_slice(file_digest);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_round_trip_and_unsigned() {
        assert_eq!(SignatureSlot::parse(&[]).unwrap(), None);
        assert_eq!(SignatureSlot::parse(&[0; SIG_SECTION_LEN]).unwrap(), None);
        let s = SignatureSlot {
            public_key: [3; 32],
            signature: [4; 64],
        };
        assert_eq!(SignatureSlot::parse(&s.encode()).unwrap(), Some(s));
        let mut bad = s.encode();
        bad[0] = b'x';
        assert!(SignatureSlot::parse(&bad).is_err());
        assert!(SignatureSlot::parse(&[0; 7]).is_err());
        assert_eq!(s.key_id().len(), 16);
    }

    #[test]
    fn digest_ignores_only_the_slot() {
        let file = vec![7u8; 100];
        let base = file_digest(&file, 10..20);
        let mut f2 = file.clone();
        f2[15] = 0;
        assert_eq!(file_digest(&f2, 10..20), base);
        f2[25] = 0;
        assert_ne!(file_digest(&f2, 10..20), base);
        // Out-of-range and reversed slots do not panic; a slot past the
        // end hides nothing.
        let whole = file_digest(&file, 100..100);
        assert_eq!(file_digest(&file, 300..400), whole);
        let reversed = std::ops::Range {
            start: 300,
            end: 200,
        };
        assert_eq!(file_digest(&file, reversed), whole);
        assert_ne!(file_digest(&file, 90..200), whole);
    }
}
