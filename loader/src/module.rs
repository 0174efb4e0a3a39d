//! [`Module`]: a loaded artifact with its code mapped executable.
//!
//! `from_file` maps the file privately and read-only, `from_bytes` copies
//! into an anonymous mapping; both copy the memory images (initial memory
//! contents) once into a sealed memfd, from which instantiation maps them
//! copy-on-write, so that no change to the file can reach a memory. The
//! `unsafe` [`Module::from_file_unchecked`] maps them from the file itself.
//! All parse and validate the artifact
//! ([`crate::artifact::ParsedArtifact`]), refuse relocations the loader does
//! not apply and artifacts that do not fit this host, then hand the image to
//! the runtime (`vm::code::RuntimeModule`), which makes `.text` read+execute
//! (nothing in it is patched, so its pages stay clean) and registers it for
//! trap handling until the last clone of the `Module` drops.

use crate::artifact::{check_host, func_table_limits, segment_limits, ParsedArtifact};
use crate::engine::Engine;
use crate::error::LoadError;
use crate::types::{ExportType, ExternType, ImportType};
use crate::vm::code::{CodeRanges, Image, RuntimeModule};
use std::path::Path;
use std::sync::Arc;
use wasmc_format::funcs::FuncTable;
use wasmc_format::{ArtifactHeader, ExternKind, FuncType, ImportType as WireImport, ModuleInfo};

/// A compiled module, loaded and ready to instantiate. Cheap to clone
/// (reference counted) and shareable between threads and stores of its
/// engine.
///
/// ```
/// use wasmc_loader::{Engine, Instance, Module, Store};
/// # let artifact = wasmc_compiler::compile(br#"(module (func (export "answer") (result i32) i32.const 42))"#, &Default::default()).unwrap();
/// let engine = Engine::default();
/// let module = Module::from_bytes(&engine, &artifact)?;
/// let mut store = Store::new(&engine, ());
/// let instance = Instance::new(&mut store, &module, &[])?;
/// let answer = instance.get_typed_func::<(), i32>(&mut store, "answer")?;
/// assert_eq!(answer.call(&mut store, ())?, 42);
/// # Ok::<(), wasmc_loader::Error>(())
/// ```
#[derive(Clone)]
pub struct Module {
    inner: Arc<RuntimeModule>,
    engine: Engine,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.inner.info().name)
            .field("text", &self.inner.text_range())
            .finish()
    }
}

impl Module {
    /// Loads the artifact at `path`: parses and validates it, checks it
    /// against this host, and maps its code executable.
    pub fn from_file(engine: &Engine, path: impl AsRef<Path>) -> Result<Module, LoadError> {
        let path = path.as_ref();
        let io = |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            return Err(LoadError::Elf("empty file".into()));
        }
        Self::from_image(engine, Image::map_file(&file).map_err(io)?)
    }

    /// Loads the artifact at `path` like [`Self::from_file`], but maps the
    /// memory images (the module's initial memory contents) copy-on-write
    /// straight from the file at instantiation instead of from a sealed
    /// copy made at load: loading then costs nothing per byte of data.
    ///
    /// # Safety
    /// The file must not be modified, truncated or replaced in place while
    /// the module or anything made from it (instances, memories) is alive:
    /// a change is seen by the running code and the memories, and a
    /// truncation makes their reads fault with `SIGBUS`. Replacing it by
    /// renaming a new file over it is fine.
    pub unsafe fn from_file_unchecked(
        engine: &Engine,
        path: impl AsRef<Path>,
    ) -> Result<Module, LoadError> {
        let path = path.as_ref();
        let io = |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() == 0 {
            return Err(LoadError::Elf("empty file".into()));
        }
        // SAFETY: the file does not change while anything made from it
        // lives: this function's own contract, passed on to its caller.
        let image = unsafe { Image::map_file_unchecked(&file) }.map_err(io)?;
        Self::from_image(engine, image)
    }

    /// Loads an artifact from bytes (copied into a fresh mapping).
    pub fn from_bytes(engine: &Engine, bytes: &[u8]) -> Result<Module, LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Elf("empty input".into()));
        }
        Self::from_image(engine, Image::copy_of(bytes).map_err(LoadError::Mmap)?)
    }

    fn from_image(engine: &Engine, image: Image) -> Result<Module, LoadError> {
        let parsed = ParsedArtifact::parse(image.bytes())?;
        parsed.check_relocations()?;
        let mismatches = check_host(parsed.header());
        if !mismatches.is_empty() {
            return Err(LoadError::Incompatible(mismatches));
        }
        let (header, info, r) = parsed.into_parts();
        let func_limits = func_table_limits(&info, &r);
        let seg_limits = segment_limits(&info, &r);
        let ranges = CodeRanges {
            text: r.text,
            funcs: r.funcs,
            names: r.names,
            traps: r.traps,
            stackmaps: r.stackmaps,
            addrmap: r.addrmap,
            segments: r.segments,
            data: r.data,
        };
        let inner = RuntimeModule::new(image, header, info, ranges, func_limits, seg_limits)
            .map_err(LoadError::Mmap)?;
        Ok(Module {
            inner,
            engine: engine.clone(),
        })
    }

    pub(crate) fn runtime(&self) -> &Arc<RuntimeModule> {
        &self.inner
    }

    pub(crate) fn from_runtime(engine: Engine, inner: Arc<RuntimeModule>) -> Module {
        Module { inner, engine }
    }

    /// The engine the module was loaded with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The type of function `index` (imports first), `None` if the
    /// artifact's metadata does not give one.
    fn func_type(&self, index: u32) -> Option<FuncType> {
        let t = self.funcs().type_index(index).ok()?;
        self.info().types.get(t as usize).cloned()
    }

    /// The module's imports, in order, with their types. An import whose
    /// function type index is out of range (a malformed artifact; loading
    /// checks them) is left out.
    pub fn imports(&self) -> Vec<ImportType> {
        let info = self.info();
        info.imports
            .iter()
            .filter_map(|i| {
                let ty = match &i.ty {
                    WireImport::Func(t) => ExternType::Func(info.types.get(*t as usize)?.clone()),
                    WireImport::Table(t) => ExternType::Table(*t),
                    WireImport::Memory(m) => ExternType::Memory(*m),
                    WireImport::Global(g) => ExternType::Global(*g),
                };
                Some(ImportType {
                    module: i.module.clone(),
                    name: i.field.clone(),
                    ty,
                })
            })
            .collect()
    }

    /// The module's exports, in order, with their types. An export whose
    /// index is out of range (a malformed artifact) is left out.
    pub fn exports(&self) -> Vec<ExportType> {
        let info = self.info();
        info.exports
            .iter()
            .filter_map(|e| {
                let i = e.index as usize;
                let ty = match e.kind {
                    ExternKind::Func => ExternType::Func(self.func_type(e.index)?),
                    ExternKind::Table => ExternType::Table(*info.tables.get(i)?),
                    ExternKind::Memory => ExternType::Memory(*info.memories.get(i)?),
                    ExternKind::Global => ExternType::Global(info.globals.get(i)?.ty),
                };
                Some(ExportType {
                    name: e.name.clone(),
                    ty,
                })
            })
            .collect()
    }

    /// The module's metadata.
    pub fn info(&self) -> &ModuleInfo {
        self.inner.info()
    }

    /// The artifact header.
    pub fn header(&self) -> &ArtifactHeader {
        self.inner.header()
    }

    /// The module's name from the name section.
    pub fn name(&self) -> Option<&str> {
        self.inner.info().name.as_deref()
    }

    /// Recomputes the artifact's content hash and compares it with the header.
    pub fn verify_content_hash(&self) -> Result<(), LoadError> {
        ParsedArtifact::parse(self.inner.image_bytes())?.verify_content_hash()
    }

    /// The function records (`.wasmc.funcs`), read in place; each record
    /// is checked when read.
    pub fn funcs(&self) -> FuncTable<'_> {
        self.inner.funcs()
    }

    /// The name of function `index` from the name section, if it has one
    /// (`None` also for a malformed name entry).
    pub fn func_name(&self, index: u32) -> Option<&str> {
        self.inner.func_name(index)
    }
}
