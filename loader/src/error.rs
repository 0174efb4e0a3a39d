//! The loader's error types.
//!
//! - [`LoadError`]: an artifact could not be read, parsed or mapped, or does
//!   not fit this host.
//! - [`LinkError`]: imports do not match what a module needs.
//! - [`InstantiationError`]: instantiation failed after linking (a segment out
//!   of bounds, a resource limit).
//! - [`Trap`](crate::Trap): Wasm code trapped (defined in `trap.rs`).
//! - [`Error`]: what the public API returns; wraps all of the above plus host
//!   function errors and type mismatches.
//!
//! Messages name the thing that is wrong and where: the section, the import's
//! module and field, both types of a mismatch.

use crate::trap::Trap;
use std::fmt;
use std::path::PathBuf;
use wasmc_format::header::Mismatch;
use wasmc_format::FormatError;

/// An artifact could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read. The OS error is part of the
    /// message and not also a `source()`, so that a printer of the whole
    /// chain (`anyhow`'s `{:#}`) shows it once.
    #[error("cannot read `{}`: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The bytes are not an ELF file this loader understands.
    #[error("not a wasmc artifact: {0}")]
    Elf(String),
    /// A required section is absent.
    #[error("not a wasmc artifact: missing section `{0}`")]
    MissingSection(&'static str),
    /// A section is malformed (duplicated, out of the file, misaligned).
    #[error("section `{section}`: {detail}")]
    Section {
        /// Section name.
        section: String,
        /// What is wrong.
        detail: String,
    },
    /// A metadata table is malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The artifact carries a relocation the loader does not apply.
    #[error(
        "unsupported relocation in section `{section}` at offset {offset:#x}: {kind} against `{symbol}`"
    )]
    Relocation {
        /// Section the relocation applies to.
        section: String,
        /// Offset in that section.
        offset: u64,
        /// Relocation type.
        kind: String,
        /// Target symbol (or section) name.
        symbol: String,
    },
    /// The artifact does not fit this host.
    #[error("artifact is incompatible with this host: {}", join(.0))]
    Incompatible(Vec<Mismatch>),
    /// The content hash in the header does not match the artifact.
    #[error(
        "artifact is damaged: content hash mismatch (the artifact was modified after compilation)"
    )]
    HashMismatch,
    /// The header names a memory strategy or sizes this loader does not
    /// provide.
    #[error("{0}")]
    Sandbox(String),
    /// The trust policy requires a signature and the artifact has none.
    #[error("artifact is not signed, and the trust policy requires a signature by a trusted key")]
    Unsigned,
    /// Signed, but by a key the trust policy does not accept.
    #[error("artifact is signed by key {key_id}, which is not a trusted key")]
    UntrustedSigner {
        /// The signer's key id.
        key_id: String,
    },
    /// Signed by a trusted key, but the signature does not verify: the
    /// artifact was changed after signing (or the signature forged).
    #[error("artifact signature by trusted key {key_id} does not verify: the artifact was modified after signing")]
    BadSignature {
        /// The claimed signer's key id.
        key_id: String,
    },
    /// A key or trust policy is unusable.
    #[error("trust policy: {0}")]
    Trust(String),
    /// Memory for the code could not be mapped or protected (the OS error
    /// is in the message, not also a `source()`, as for `Io`).
    #[error("cannot map artifact code: {0}")]
    Mmap(std::io::Error),
}

fn join(m: &[Mismatch]) -> String {
    m.iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A name from an artifact (an import, export or function name) as error
/// messages show it: characters that could forge a line or reorder the
/// text on a terminal (controls, line and paragraph separators, bidi
/// controls) are escaped (`\n`, `\u{202e}`), so that a hostile module
/// cannot make an error look like another message. Plain names are shown
/// as they are.
pub(crate) fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    fn hostile(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }
    if !name.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if hostile(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The imports given to an instantiation do not match the module.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    /// No definition for an import.
    #[error(
        "unknown import: `{}::{}` has not been defined ({kind} import)",
        shown(module),
        shown(field)
    )]
    MissingImport {
        /// Import module name.
        module: String,
        /// Import field name.
        field: String,
        /// Kind of the import.
        kind: String,
    },
    /// A definition exists but has the wrong type.
    #[error(
        "incompatible import type for `{}::{}`: expected {expected}, found {found}",
        shown(module),
        shown(field)
    )]
    IncompatibleImport {
        /// Import module name.
        module: String,
        /// Import field name.
        field: String,
        /// What the module expects.
        expected: String,
        /// What was provided.
        found: String,
    },
    /// `Instance::new` got the wrong number of imports.
    #[error("module needs {expected} imports, {found} were given")]
    ImportCount {
        /// Imports the module declares.
        expected: usize,
        /// Imports given.
        found: usize,
    },
    /// A value belongs to another store.
    #[error("{0} belongs to a different store")]
    ForeignStore(&'static str),
    /// The linker already has a definition under this name.
    #[error("`{}::{}` is already defined", shown(module), shown(field))]
    Duplicate {
        /// Module name.
        module: String,
        /// Field name.
        field: String,
    },
}

/// Instantiation failed after the imports were linked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InstantiationError {
    /// An active data segment does not fit its memory.
    #[error("out of bounds memory access: data segment {segment} does not fit memory {memory}")]
    DataSegmentOutOfBounds {
        /// Segment index.
        segment: u32,
        /// Memory index.
        memory: u32,
    },
    /// An active element segment does not fit its table.
    #[error("out of bounds table access: element segment {segment} does not fit table {table}")]
    ElementSegmentOutOfBounds {
        /// Segment index.
        segment: u32,
        /// Table index.
        table: u32,
    },
    /// A memory, table or VMContext could not be allocated.
    #[error("resource limit: {0}")]
    Resource(String),
    /// The module uses something this loader does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The module's epoch checks or fuel counting do not fit the store's
    /// settings (see `Store::set_fuel` and `Store::set_epoch_deadline`).
    #[error("interruption: {0}")]
    Interruption(String),
    /// A constant expression could not be evaluated.
    #[error("constant expression: {0}")]
    ConstExpr(String),
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        Error::from_host(e)
    }
}

/// The error type of the public API.
#[derive(Debug)]
pub enum Error {
    /// Loading an artifact failed.
    Load(LoadError),
    /// Linking failed.
    Link(LinkError),
    /// Instantiation failed.
    Instantiation(InstantiationError),
    /// Wasm code trapped.
    Trap(Trap),
    /// A value or function had another type than expected.
    TypeMismatch {
        /// What was being checked.
        what: String,
        /// Expected type.
        expected: String,
        /// Actual type.
        found: String,
    },
    /// A host function returned an error: the error itself, which
    /// `source()` returns and [`Error::downcast_ref`] reaches.
    Host(anyhow::Error),
    /// A request for an epoch deadline or fuel the store's code cannot
    /// honour, or for fuel on a store that does not meter it.
    Interruption(String),
    /// Any other error, as a message.
    Msg(String),
}

// Written out rather than derived: `source()` of a host error must be the
// host's error itself (so that it downcasts to the host's type), not the
// `Box` holding it.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Load(e) => fmt::Display::fmt(e, f),
            Error::Link(e) => fmt::Display::fmt(e, f),
            Error::Instantiation(e) => fmt::Display::fmt(e, f),
            Error::Trap(e) => fmt::Display::fmt(e, f),
            Error::TypeMismatch {
                what,
                expected,
                found,
            } => write!(
                f,
                "type mismatch: {what}: expected {expected}, found {found}"
            ),
            Error::Host(e) => fmt::Display::fmt(e, f),
            Error::Interruption(m) => f.write_str(m),
            Error::Msg(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Transparent, as before: the wrapped error's own source.
            Error::Load(e) => e.source(),
            Error::Link(e) => e.source(),
            Error::Instantiation(e) => e.source(),
            Error::Trap(e) => e.source(),
            // The host's own error (anyhow gives the value it was made
            // from), so it downcasts to the host's type.
            Error::Host(e) => Some(AsRef::<dyn std::error::Error + Send + Sync>::as_ref(e)),
            Error::TypeMismatch { .. } | Error::Interruption(_) | Error::Msg(_) => None,
        }
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Error {
        Error::Load(e)
    }
}

impl From<LinkError> for Error {
    fn from(e: LinkError) -> Error {
        Error::Link(e)
    }
}

impl From<InstantiationError> for Error {
    fn from(e: InstantiationError) -> Error {
        Error::Instantiation(e)
    }
}

impl From<Trap> for Error {
    fn from(e: Trap) -> Error {
        Error::Trap(e)
    }
}

impl Error {
    /// An error with a message, for host functions.
    pub fn msg(m: impl std::fmt::Display) -> Error {
        Error::Msg(m.to_string())
    }

    /// Wraps any error, for host functions.
    pub fn host(e: impl Into<anyhow::Error>) -> Error {
        Error::from_host(e.into())
    }

    /// A host function's error as the API returns it: an [`Error`] of this
    /// crate (e.g. a trap of a nested call, returned with `?`) as it is, a
    /// [`Trap`] the host made as [`Error::Trap`] (so that
    /// [`Error::as_trap`] finds it, as Wasmtime reports a host's trap),
    /// anything else as [`Error::Host`].
    pub(crate) fn from_host(e: anyhow::Error) -> Error {
        match e.downcast::<Error>() {
            Ok(e) => e,
            Err(e) => match e.downcast::<Trap>() {
                Ok(t) => Error::Trap(t),
                Err(e) => Error::Host(e),
            },
        }
    }

    /// The error of type `E` behind this error, if it is one: a host
    /// function's error (see [`Error::Host`]), or this crate's own [`Trap`],
    /// [`LoadError`], [`LinkError`] or [`InstantiationError`] (so that
    /// `e.downcast_ref::<Trap>()` works as it does on a Wasmtime error).
    pub fn downcast_ref<E: fmt::Display + fmt::Debug + Send + Sync + 'static>(&self) -> Option<&E> {
        let own: &dyn std::any::Any = match self {
            Error::Host(h) => return h.downcast_ref::<E>(),
            Error::Trap(t) => t,
            Error::Load(e) => e,
            Error::Link(e) => e,
            Error::Instantiation(e) => e,
            Error::TypeMismatch { .. } | Error::Interruption(_) | Error::Msg(_) => return None,
        };
        own.downcast_ref::<E>()
    }

    /// The trap, if this error is one.
    pub fn as_trap(&self) -> Option<&Trap> {
        match self {
            Error::Trap(t) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn mismatch(
        what: impl Into<String>,
        expected: impl std::fmt::Display,
        found: impl std::fmt::Display,
    ) -> Error {
        Error::TypeMismatch {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names from an artifact cannot forge a line or reorder an error
    /// message: controls, separators and bidi controls are escaped; plain
    /// and other non-ASCII names are shown as they are.
    #[test]
    fn artifact_names_are_shown_escaped_in_messages() {
        assert!(matches!(shown("env"), std::borrow::Cow::Borrowed("env")));
        assert_eq!(shown("données✓"), "données✓");
        assert_eq!(shown("f\nerror: forged"), "f\\nerror: forged");
        assert_eq!(
            shown("a\u{202e}b\u{2028}c\u{7}"),
            "a\\u{202e}b\\u{2028}c\\u{7}"
        );
        let e = LinkError::MissingImport {
            module: "m\r\n".into(),
            field: "f\nerror: forged line".into(),
            kind: "function".into(),
        };
        let text = e.to_string();
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        assert!(text.contains("m\\r\\n::f\\nerror: forged line"), "{text}");
        let e = LinkError::Duplicate {
            module: "x".into(),
            field: "\u{2066}y".into(),
        };
        assert_eq!(e.to_string(), "`x::\\u{2066}y` is already defined");
    }
}
