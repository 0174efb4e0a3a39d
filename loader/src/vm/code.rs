//! Code memory and the code registry.
//!
//! - [`Image`]: the artifact's bytes in memory: a private copy whose
//!   `.wasmc.data` is a sealed memfd (the safe loading path, `sys::sealed`),
//!   an anonymous copy (off Linux), or a private mapping of the file itself
//!   (the `unsafe` trusted path). Memory images are mapped copy-on-write
//!   from the sealed memfd or, on the trusted path, from the file
//!   ([`RuntimeModule::memory_image_source`]); an anonymous copy cannot be
//!   mapped again, so its images are copied.
//! - [`RuntimeModule`]: what the runtime keeps of a loaded module: the image
//!   with `.text` made read+execute, the decoded metadata, the section
//!   ranges, `VMOffsets`, canonical type ids. The public `Module` is an
//!   `Arc` of it.
//! - The process-wide registry of `.text` ranges, `[start, end) -> module`,
//!   which trap handling, backtraces and the collector use to map a PC back
//!   to its module's trap table, address map, names and stack maps. A module
//!   is registered when loaded and unregistered when its last `Arc` drops.
//!
//! `RuntimeModule::new` checks what the runtime relies on without trusting
//! its caller: every section range lies inside the image, `.text` is page
//! aligned, every trampoline lies inside `.text`. The rest of the metadata
//! is read through format's checked readers or looked up with checks.

use crate::vm::backtrace::WalkError;
use crate::vm::sys::mmap::{page_size, MappableBytes, Mmap};
use crate::vm::table::{lazy_runs, ElemRun};
use crate::vm::types::intern;
use crate::vm::vmcontext::VMExternData;
use std::collections::BTreeMap;
use std::io;
use std::ops::Range;
use std::os::fd::AsFd;
use std::sync::{Arc, RwLock};
use wasmc_format::addrmap::AddrMap;
use wasmc_format::funcs::{FuncTable, FuncTableLimits, NameTable};
use wasmc_format::segments::{MemoryImage, SegmentLimits, SegmentTable};
use wasmc_format::stack_map::{StackMap, StackMapSection};
use wasmc_format::trap::TrapTable;
use wasmc_format::{ArtifactHeader, FormatError, FuncType, ModuleInfo, TrapCode, VMOffsets};

/// One Wasm frame of a trap's backtrace, innermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Function index in the module's function index space.
    pub func_index: u32,
    /// Name from the name section, if any.
    pub func_name: Option<String>,
    /// Module name from the name section, if any.
    pub module_name: Option<String>,
    /// Byte offset of the Wasm instruction in the module, if known.
    pub wasm_offset: Option<u32>,
}

/// An artifact's bytes in memory.
pub(crate) enum Image {
    /// A private mapping of the artifact file itself: `.text` pages stay
    /// shared with the page cache. Only for the `unsafe` trusted path: the
    /// file can change under it. The file is kept so that memory images are
    /// mapped from it too.
    File(memmap2::Mmap, std::fs::File),
    /// A private copy, `.wasmc.data` in a sealed memfd: verified once,
    /// unchangeable afterwards.
    #[cfg(target_os = "linux")]
    Sealed(crate::vm::sys::sealed::SealedImage),
    /// A copy of the bytes given to `from_bytes`, and their length: the
    /// mapping is rounded up to whole pages, and the zeros after the input
    /// must not be parsed as part of it (a truncated artifact would load).
    Anon(Mmap, usize),
}

impl Image {
    /// Maps `file` privately and read-only.
    ///
    /// The mapping is private, so our later `mprotect` of `.text` affects no
    /// one else.
    ///
    /// # Safety
    /// The file must not be modified or truncated while the image (and any
    /// module made from it) lives: the mapping shows such changes, and a
    /// truncation turns reads and calls into `SIGBUS`.
    pub(crate) unsafe fn map_file(file: &std::fs::File) -> io::Result<Image> {
        // SAFETY: a private, read-only mapping of a whole open file;
        // memmap2's remaining requirement (no concurrent modification of the
        // file) is this function's caller contract.
        let map = unsafe { memmap2::MmapOptions::new().map_copy_read_only(file) }?;
        Ok(Image::File(map, file.try_clone()?))
    }

    /// A private copy of the rest of `file` that no one can change, its
    /// `.wasmc.data` in a sealed memfd (`sys::sealed`); off Linux, an
    /// anonymous copy.
    pub(crate) fn copy_of_file(file: &std::fs::File) -> io::Result<Image> {
        #[cfg(target_os = "linux")]
        if let Ok(img) =
            crate::vm::sys::sealed::SealedImage::from_file(file, data_section_of_file(file))
        {
            return Ok(Image::Sealed(img));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut { file }, &mut bytes)?;
        Self::anon_copy_of(&bytes)
    }

    /// A private copy of `bytes` that no one can change (see
    /// [`Self::copy_of_file`]).
    pub(crate) fn copy_of(bytes: &[u8]) -> io::Result<Image> {
        #[cfg(target_os = "linux")]
        if let Ok(img) = crate::vm::sys::sealed::SealedImage::from_bytes(bytes, data_section(bytes))
        {
            return Ok(Image::Sealed(img));
        }
        Self::anon_copy_of(bytes)
    }

    /// Copies `bytes` into a fresh read-only anonymous mapping.
    pub(crate) fn anon_copy_of(bytes: &[u8]) -> io::Result<Image> {
        let mut map = Mmap::read_write(bytes.len())?;
        // SAFETY: the fresh mapping is read-write and at least `bytes.len()`
        // long, and being new it cannot overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_ptr(), bytes.len()) };
        let len = map.len();
        map.make_read_only(0, len)?;
        Ok(Image::Anon(map, bytes.len()))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Image::File(m, _) => m,
            #[cfg(target_os = "linux")]
            Image::Sealed(s) => s.bytes(),
            // SAFETY: the whole anonymous mapping stays readable (read-only,
            // or read+execute for `.text`) and owned by this image as long
            // as `&self`; `len <= m.len()` (set by `copy_of`).
            Image::Anon(m, len) => unsafe { std::slice::from_raw_parts(m.as_ptr(), *len) },
        }
    }

    /// Makes `range` (page aligned, inside the image) read+execute.
    fn make_executable(&mut self, range: Range<usize>) -> io::Result<()> {
        match self {
            Image::File(m, _) => {
                if range.end > m.len() || !range.start.is_multiple_of(page_size()) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "`.text` is outside the image or not page aligned",
                    ));
                }
                // SAFETY: `range` lies inside the mapping and starts on a page
                // boundary (both checked above); the mapping is private, so
                // changing its protection affects no other mapping.
                let r = unsafe {
                    libc::mprotect(
                        m.as_ptr().add(range.start) as *mut libc::c_void,
                        range.len(),
                        libc::PROT_READ | libc::PROT_EXEC,
                    )
                };
                if r != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            }
            #[cfg(target_os = "linux")]
            Image::Sealed(s) => s.make_executable(range),
            Image::Anon(m, _) => m.make_executable(range.start, range.len()),
        }
    }

    /// The sealed file behind the image bytes `range` and their offset in
    /// it, if the sealed part of the image holds them all: they can be
    /// mapped again from it (copy-on-write memory images).
    pub(crate) fn sealed_fd(
        &self,
        range: &Range<usize>,
    ) -> Option<(std::os::fd::BorrowedFd<'_>, u64)> {
        match self {
            #[cfg(target_os = "linux")]
            Image::Sealed(s) => s.fd(range),
            _ => None,
        }
    }
}

/// Where `.wasmc.data` lies in the artifact file `file`, from its ELF
/// header, section headers and section names alone (three small reads,
/// none of the section contents): which range of the file the verified
/// copy takes into a sealed memfd straight from the file. Only a hint, as
/// for [`data_section`]; the file may even change after it is read.
#[cfg(target_os = "linux")]
fn data_section_of_file(file: &std::fs::File) -> Option<Range<usize>> {
    use object::elf::{FileHeader64, SectionHeader64};
    use object::read::elf::{FileHeader as _, SectionHeader as _};
    use object::Endianness;
    use std::os::unix::fs::FileExt;
    let read = |offset: u64, len: usize| -> Option<Vec<u8>> {
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    };
    let head = read(0, std::mem::size_of::<FileHeader64<Endianness>>())?;
    let header = FileHeader64::<Endianness>::parse(&*head).ok()?;
    let e = header.endian().ok()?;
    let count = usize::from(header.e_shnum(e));
    let size = std::mem::size_of::<SectionHeader64<Endianness>>();
    // Extended numbering (0) or more sections than an artifact has: no hint.
    if count == 0 || count > 256 || usize::from(header.e_shentsize(e)) != size {
        return None;
    }
    let table = read(header.e_shoff(e), count * size)?;
    let (sections, _) =
        object::pod::slice_from_bytes::<SectionHeader64<Endianness>>(&table, count).ok()?;
    let (names_at, names_len) = sections
        .get(usize::from(header.e_shstrndx(e)))?
        .file_range(e)?;
    let names = read(
        names_at,
        usize::try_from(names_len).ok().filter(|&n| n <= 1 << 16)?,
    )?;
    let wanted = wasmc_format::sections::ELF_WASMC_DATA.as_bytes();
    let data = sections.iter().find(|s| {
        let at = s.sh_name(e) as usize;
        names.get(at..at + wanted.len()) == Some(wanted) && names.get(at + wanted.len()) == Some(&0)
    })?;
    let (start, len) = data.file_range(e)?;
    let start = usize::try_from(start).ok()?;
    Some(start..start.checked_add(usize::try_from(len).ok()?)?)
}

/// Where `.wasmc.data` lies in an artifact's bytes, if they parse that far:
/// the part of a verified copy to back by a sealed memfd. Only a hint (the
/// copy is parsed and checked in full afterwards): a wrong answer seals
/// other bytes, and its images are then copied instead of mapped.
#[cfg(target_os = "linux")]
fn data_section(bytes: &[u8]) -> Option<Range<usize>> {
    use object::{Object, ObjectSection};
    let elf = object::read::elf::ElfFile64::<object::Endianness>::parse(bytes).ok()?;
    let (start, len) = elf
        .section_by_name(wasmc_format::sections::ELF_WASMC_DATA)?
        .file_range()?;
    let start = usize::try_from(start).ok()?;
    Some(start..start.checked_add(usize::try_from(len).ok()?)?)
}

/// The byte ranges of the sections the runtime reads, inside the image.
#[derive(Clone, Debug, Default)]
pub(crate) struct CodeRanges {
    pub text: Range<usize>,
    pub funcs: Range<usize>,
    pub names: Range<usize>,
    pub traps: Range<usize>,
    pub stackmaps: Range<usize>,
    pub addrmap: Range<usize>,
    pub segments: Range<usize>,
    pub data: Range<usize>,
}

/// Where instantiation takes a memory image's bytes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ImageSource<'a> {
    /// The image's bytes (in `.wasmc.data`), to copy.
    pub bytes: &'a [u8],
    /// The same bytes in a file, to map copy-on-write instead where the
    /// memory's layout allows it; `None` to copy.
    pub map: Option<MappableBytes<'a>>,
}

/// A loaded module as the runtime sees it (see the module docs). `Sync`:
/// nothing in it changes after construction.
pub(crate) struct RuntimeModule {
    image: Image,
    header: ArtifactHeader,
    info: ModuleInfo,
    ranges: CodeRanges,
    func_limits: FuncTableLimits,
    segment_limits: SegmentLimits,
    offsets: VMOffsets,
    type_ids: Vec<u32>,
    /// The types, shared with the store's functions of each type.
    func_types: Vec<Arc<FuncType>>,
    /// Per table, the element runs of a lazy funcref table
    /// (`vm::table::lazy_runs`), `None` for an eager one.
    lazy_tables: Vec<Option<Box<[ElemRun]>>>,
    /// Unique within the process (pool slots remember whose memory they
    /// held by it; an address could be reused by a later module).
    id: u64,
    registered: bool,
}

/// The next [`RuntimeModule`] id.
static NEXT_MODULE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl RuntimeModule {
    /// Makes `.text` of `image` executable and registers it. `info`,
    /// `ranges` and `func_limits` are the image's parse; the facts the
    /// runtime relies on are checked again here (see the module docs).
    pub(crate) fn new(
        mut image: Image,
        header: ArtifactHeader,
        info: ModuleInfo,
        ranges: CodeRanges,
        func_limits: FuncTableLimits,
        segment_limits: SegmentLimits,
    ) -> io::Result<Arc<RuntimeModule>> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let len = image.bytes().len();
        for r in [
            &ranges.text,
            &ranges.funcs,
            &ranges.names,
            &ranges.traps,
            &ranges.stackmaps,
            &ranges.addrmap,
            &ranges.segments,
            &ranges.data,
        ] {
            if r.start > r.end || r.end > len {
                return Err(bad(format!("section range {r:?} outside the image")));
            }
        }
        let text_len = ranges.text.len() as u64;
        if info.trampolines.len() != info.types.len() {
            return Err(bad("one trampoline pair per type expected".into()));
        }
        for t in &info.trampolines {
            if t.entry.end() > text_len || t.host.end() > text_len {
                return Err(bad("a trampoline lies outside `.text`".into()));
            }
        }
        // Function records are checked against these limits as they are
        // read: they must not allow code past `.text` or unknown types.
        if func_limits.text_len > text_len || func_limits.num_types as usize > info.types.len() {
            return Err(bad("function-table limits exceed the module".into()));
        }
        // Segment records are checked against these as they are read, and
        // instantiation maps the images: both must stay inside `.wasmc.data`.
        if segment_limits.data_len > ranges.data.len() as u64
            || segment_limits.num_memories as usize > info.memories.len()
            || segment_limits.num_exprs as usize > info.data_offset_exprs.len()
        {
            return Err(bad("data-segment limits exceed the module".into()));
        }
        wasmc_format::segments::validate_images(
            &info.memory_images,
            &info.memories,
            info.num_imported_memories,
            ranges.data.len() as u64,
        )
        .map_err(|e| bad(e.to_string()))?;
        let offsets = VMOffsets::for_module(std::mem::size_of::<usize>() as u8, &info);
        let type_ids = info.types.iter().map(intern).collect();
        let func_types = info.types.iter().cloned().map(Arc::new).collect();
        let lazy_tables = lazy_runs(&info);
        let text = ranges.text.clone();
        if !text.is_empty() {
            image.make_executable(text.clone())?;
        }
        let mut m = Arc::new(RuntimeModule {
            image,
            header,
            info,
            ranges,
            func_limits,
            segment_limits,
            offsets,
            type_ids,
            func_types,
            lazy_tables,
            id: NEXT_MODULE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            registered: false,
        });
        if !text.is_empty() {
            register(&m);
            Arc::get_mut(&mut m)
                .expect("module not yet shared")
                .registered = true;
        }
        Ok(m)
    }

    pub(crate) fn image_bytes(&self) -> &[u8] {
        self.image.bytes()
    }

    /// (descriptor, file offset) of the verified image's bytes at `range`
    /// (an image range such as `.wasmc.data`), for mapping them again; `None`
    /// for the trusted path's file mappings and anonymous copies, or a range
    /// outside the image.
    pub(crate) fn image_fd(
        &self,
        range: &Range<usize>,
    ) -> Option<(std::os::fd::BorrowedFd<'_>, u64)> {
        if range.start > range.end || range.end > self.image.bytes().len() {
            return None;
        }
        self.image.sealed_fd(range)
    }

    pub(crate) fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The element runs of table `table` if it is a lazy funcref table
    /// (see `vm::table`), `None` if its segments are applied eagerly.
    pub(crate) fn lazy_runs(&self, table: u32) -> Option<&[ElemRun]> {
        self.lazy_tables.get(table as usize)?.as_deref()
    }

    /// The module's process-unique id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn header(&self) -> &ArtifactHeader {
        &self.header
    }

    pub(crate) fn offsets(&self) -> &VMOffsets {
        &self.offsets
    }

    /// Canonical type id of type index `t` (`None` if out of range).
    pub(crate) fn type_id(&self, t: u32) -> Option<u32> {
        self.type_ids.get(t as usize).copied()
    }

    /// Type index `t`, shared (`None` if out of range).
    pub(crate) fn func_type(&self, t: u32) -> Option<&Arc<FuncType>> {
        self.func_types.get(t as usize)
    }

    pub(crate) fn type_ids(&self) -> &[u32] {
        &self.type_ids
    }

    pub(crate) fn text_range(&self) -> Range<usize> {
        let base = self.image.bytes().as_ptr() as usize;
        base + self.ranges.text.start..base + self.ranges.text.end
    }

    /// Address of `.text` offset `off`, `None` past its end.
    pub(crate) fn text_addr(&self, off: u32) -> Option<*const u8> {
        let r = self.text_range();
        let a = r.start.checked_add(off as usize)?;
        (a < r.end).then_some(a as *const u8)
    }

    /// Entry trampoline of type `t` (inside `.text`, checked by `new`).
    pub(crate) fn entry_trampoline(&self, t: u32) -> Option<*const u8> {
        self.text_addr(self.info.trampolines.get(t as usize)?.entry.offset)
    }

    /// Wasm-to-host trampoline of type `t` (inside `.text`, checked by `new`).
    pub(crate) fn host_trampoline(&self, t: u32) -> Option<*const u8> {
        self.text_addr(self.info.trampolines.get(t as usize)?.host.offset)
    }

    fn section(&self, r: &Range<usize>) -> &[u8] {
        // `new` checked every range against the image.
        &self.image.bytes()[r.clone()]
    }

    /// `.wasmc.data`.
    pub(crate) fn data_section(&self) -> &[u8] {
        self.section(&self.ranges.data)
    }

    /// The data-segment records, read in place; each record is checked when
    /// read.
    pub(crate) fn segments(&self) -> Result<SegmentTable<'_>, FormatError> {
        SegmentTable::parse(self.section(&self.ranges.segments), self.segment_limits)
    }

    /// Where to take memory image `img`'s bytes from: mapped from the
    /// verified sealed copy of the artifact (the safe paths), or from the
    /// artifact file on the trusted path, when the image's offsets and
    /// length are whole pages of this host; else (an anonymous copy, where
    /// memfds are unavailable) a copy of the bytes. `None` if the image lies
    /// outside `.wasmc.data` (`new` checked the module's own images).
    ///
    /// This is the one place that decides between mapping and copying, and
    /// what is mapped.
    pub(crate) fn memory_image_source(&self, img: &MemoryImage) -> Option<ImageSource<'_>> {
        let start = usize::try_from(img.data_offset).ok()?;
        let len = usize::try_from(img.len).ok()?;
        let end = start.checked_add(len)?;
        let bytes = self.data_section().get(start..end)?;
        let page = page_size();
        let aligned = |v: u64| v.is_multiple_of(page as u64);
        if !aligned(len as u64) || !aligned(img.memory_offset) {
            return Some(ImageSource { bytes, map: None });
        }
        // The image's range in the artifact (inside `.wasmc.data`: checked
        // above, and `new` checked `.wasmc.data` lies inside the image).
        let range = self.ranges.data.start.checked_add(start)?..self.ranges.data.start + end;
        let mapped = if let Some((fd, at)) = self.image_fd(&range) {
            // SAFETY: the image is a sealed memfd (sealed against writes,
            // shrinking and growing, `sys::sealed`), and `[at, at + len)` is
            // `range` in it, which `image_fd` checked lies inside the image.
            aligned(at).then(|| unsafe { MappableBytes::new(fd, at, len) })
        } else if let Image::File(_, f) = &self.image {
            let at = range.start as u64;
            // SAFETY: `[at, at + len)` is `range` of the mapped file, which
            // is the whole file (the mapping starts at offset 0 and `range`
            // lies inside it), and the file does not change while anything
            // made from it lives: the contract of `Image::map_file`, the
            // only maker of an `Image::File`.
            aligned(at).then(|| unsafe { MappableBytes::new(f.as_fd(), at, len) })
        } else {
            None
        };
        Some(ImageSource { bytes, map: mapped })
    }

    /// The function records, read in place; each record is checked when
    /// read.
    pub(crate) fn funcs(&self) -> FuncTable<'_> {
        // It parsed when the module was loaded; if the mapped file was
        // changed since (DESIGN forbids it), every read fails instead.
        FuncTable::parse(self.section(&self.ranges.funcs), self.func_limits)
            .unwrap_or_else(|_| FuncTable::empty(self.func_limits))
    }

    pub(crate) fn func_name(&self, index: u32) -> Option<&str> {
        NameTable::parse(self.section(&self.ranges.names), self.info.num_funcs)
            .ok()?
            .get(index)
            .ok()
            .flatten()
    }

    fn trap_code(&self, off: u32) -> Option<TrapCode> {
        let t = TrapTable::parse(self.section(&self.ranges.traps)).ok()?;
        t.lookup(off)
    }

    fn frame_info(&self, off: u32) -> Option<FrameInfo> {
        let func_index = self.funcs().func_at(off)?;
        let wasm_offset = AddrMap::parse(self.section(&self.ranges.addrmap))
            .ok()
            .and_then(|m| m.lookup(off));
        Some(FrameInfo {
            func_index,
            func_name: self.func_name(func_index).map(str::to_string),
            module_name: self.info.name.clone(),
            wasm_offset,
        })
    }

    /// The stack map keyed by exactly `ret_off`: `Ok(None)` if that safepoint
    /// holds no references, `Err` if the section is malformed.
    fn stack_map(&self, ret_off: u32) -> Result<Option<StackMap<'_>>, ()> {
        let s = StackMapSection::parse(self.section(&self.ranges.stackmaps)).map_err(|_| ())?;
        s.lookup(ret_off).map_err(|_| ())
    }
}

impl Drop for RuntimeModule {
    fn drop(&mut self) {
        if self.registered {
            unregister(self.text_range().start);
        }
        // Reservations that kept this module's memories' initial contents
        // would pin its image pages: reset them.
        crate::vm::sys::mmap::forget_module(self.id);
        // The same for the pooling allocators' free slots.
        crate::vm::pool::forget_module(self.id);
    }
}

// ----- the global code registry -----

/// A registered `.text`: its end and its module. The module pointer is only
/// dereferenced under the registry lock, and a module unregisters itself
/// (taking the write lock) before it is freed, so every pointer reachable
/// under the lock is live.
struct Entry {
    end: usize,
    module: *const RuntimeModule,
}

// SAFETY: an `Entry` is a range and a pointer to a `RuntimeModule`, which is
// `Sync` (immutable after construction apart from its own drop); moving the
// entry to another thread moves only those two words.
unsafe impl Send for Entry {}
// SAFETY: shared access to an `Entry` only reads its two words and hands out
// `&RuntimeModule`, which is `Sync`.
unsafe impl Sync for Entry {}

static REGISTRY: RwLock<BTreeMap<usize, Entry>> = RwLock::new(BTreeMap::new());

fn register(m: &Arc<RuntimeModule>) {
    let r = m.text_range();
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    reg.insert(
        r.start,
        Entry {
            end: r.end,
            module: Arc::as_ptr(m),
        },
    );
}

fn unregister(start: usize) {
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    reg.remove(&start);
}

/// Runs `f` on the registered module whose `.text` contains `pc`, with the
/// `.text` offset of `pc`. The registry lock is held during `f` and released
/// before this returns.
fn with_module_at<R>(pc: usize, f: impl FnOnce(&RuntimeModule, u32) -> Option<R>) -> Option<R> {
    let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let (start, e) = reg.range(..=pc).next_back()?;
    if pc >= e.end {
        return None;
    }
    let off = u32::try_from(pc - start).ok()?;
    // SAFETY: the entry is registered and we hold the registry's read lock,
    // so its module has not started dropping (see `Entry`).
    f(unsafe { &*e.module }, off)
}

/// The trap code of the instruction at `pc`, if `pc` is in registered Wasm
/// code and the module's trap table lists exactly that offset. Called from
/// the signal handler: allocates nothing.
pub(crate) fn lookup_trap(pc: usize) -> Option<TrapCode> {
    with_module_at(pc, |m, off| m.trap_code(off))
}

/// The Wasm frame at `pc` (a trap PC or, with `is_return_address`, a
/// return address, which is looked up at `pc - 1`).
pub(crate) fn frame_info(pc: usize, is_return_address: bool) -> Option<FrameInfo> {
    let pc = if is_return_address {
        pc.checked_sub(1)?
    } else {
        pc
    };
    with_module_at(pc, |m, off| m.frame_info(off))
}

/// The backtrace of a trap: frame infos of the PCs, innermost first; the
/// first is the faulting instruction when `first_is_trap_pc`, every other
/// PC is a return address.
pub(crate) fn backtrace(pcs: &[usize], first_is_trap_pc: bool) -> Vec<FrameInfo> {
    pcs.iter()
        .enumerate()
        .filter_map(|(i, pc)| frame_info(*pc, !(i == 0 && first_is_trap_pc)))
        .collect()
}

/// Finds the references held by Wasm frames, for one collection. It holds the
/// registry's read lock for its lifetime (one lock per collection instead of
/// one per frame) and remembers the last module it found, since consecutive
/// frames are almost always in the same module. Drop it before releasing
/// references: a host value's destructor may drop a `Module`, which takes the
/// registry's write lock.
pub(crate) struct RootScanner {
    reg: std::sync::RwLockReadGuard<'static, BTreeMap<usize, Entry>>,
    /// (text start, text end, module) of the last frame's module.
    last: Option<(usize, usize, *const RuntimeModule)>,
}

impl RootScanner {
    pub(crate) fn new() -> RootScanner {
        RootScanner {
            reg: REGISTRY.read().unwrap_or_else(|e| e.into_inner()),
            last: None,
        }
    }

    fn module_at(&mut self, pc: usize) -> Option<(&RuntimeModule, u32)> {
        let (start, end, module) = match self.last {
            Some((start, end, m)) if pc >= start && pc < end => (start, end, m),
            _ => {
                let (start, e) = self.reg.range(..=pc).next_back()?;
                let found = (*start, e.end, e.module);
                self.last = Some(found);
                found
            }
        };
        if pc >= end {
            return None;
        }
        let off = u32::try_from(pc - start).ok()?;
        // SAFETY: `module` came from a registry entry, and the read lock this
        // scanner holds keeps every entry registered, so the module is live.
        Some((unsafe { &*module }, off))
    }

    /// Appends the references live in the Wasm frame whose frame pointer is
    /// `fp`, suspended at return address `ret_pc`, as listed by its module's
    /// stack map for exactly that return address.
    ///
    /// `callee_fp` is the frame pointer of the Wasm frame that frame called
    /// (the previous one of the walk), if it is one: the callee's frame
    /// starts right below the caller's SP at the call (return address and
    /// saved frame pointer, two words), so a map whose frame would reach
    /// into the callee's is refused with [`WalkError::BadStackMap`] (the
    /// collection is then abandoned and frees nothing) rather than read.
    ///
    /// # Safety
    /// `fp` must be the frame pointer of that live Wasm frame, and
    /// `callee_fp`, when given, that of the live Wasm frame it called.
    pub(crate) unsafe fn frame_roots(
        &mut self,
        ret_pc: usize,
        fp: usize,
        callee_fp: Option<usize>,
        out: &mut Vec<*mut VMExternData>,
    ) -> Result<(), WalkError> {
        // The return address may be one past the function's last byte (a call
        // that never returns ends it), so find the module at `ret_pc - 1` and
        // look the stack map up by the exact return address.
        let (m, off) = self
            .module_at(ret_pc.wrapping_sub(1))
            .ok_or(WalkError::NotWasm)?;
        let map = m.stack_map(off + 1).map_err(|()| WalkError::BadStackMap)?;
        if let Some(map) = map {
            let sp = fp.wrapping_sub(map.frame_span as usize);
            const WORD: usize = std::mem::size_of::<usize>();
            if callee_fp.is_some_and(|c| sp < c.saturating_add(2 * WORD)) || sp > fp {
                return Err(WalkError::BadStackMap);
            }
            for slot in map.slots() {
                let addr = sp.wrapping_add(slot as usize);
                // SAFETY: the frame is live (caller contract), and the stack
                // map of its exact return address lists SP-relative slots
                // inside the frame that hold externref pointers.
                out.push(unsafe { *(addr as *const *mut VMExternData) });
            }
        }
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn artifact() -> Vec<u8> {
        wasmc_compiler::compile(
            br#"(module (memory 2) (data (i32.const 100) "some bytes of data")
                 (func (export "f") (result i32) (i32.const 1)))"#,
            &Default::default(),
        )
        .unwrap()
    }

    fn temp(tag: &str, bytes: &[u8]) -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("wasmc-code-{tag}-{}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        (path, f)
    }

    /// The three small reads find what a parse of the whole file finds.
    #[test]
    fn the_file_probe_finds_the_data_section() {
        let a = artifact();
        let whole = data_section(&a).expect("a .wasmc.data section");
        assert!(!whole.is_empty());
        let (path, f) = temp("probe", &a);
        assert_eq!(data_section_of_file(&f), Some(whole));
        std::fs::remove_file(path).unwrap();
    }

    /// On damaged files the probe gives some hint or none, and never fails
    /// otherwise (a hint is checked before use and only placement depends
    /// on it).
    #[test]
    fn the_file_probe_survives_damage() {
        let a = artifact();
        let mut r = 0x2545_f491_4f6c_dd1du64;
        for i in 0..300 {
            let mut b = a.clone();
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            match i % 3 {
                0 => b.truncate((r as usize) % a.len()),
                1 => b[(r as usize) % 64] ^= 1 << (r % 8),
                _ => {
                    // Somewhere in the section headers, at the end.
                    let at = a.len() - 1 - (r as usize) % 1024.min(a.len());
                    b[at] = (r >> 8) as u8;
                }
            }
            let (path, f) = temp("damaged", &b);
            if let Some(h) = data_section_of_file(&f) {
                assert!(h.start <= h.end, "{h:?}");
            }
            std::fs::remove_file(path).unwrap();
        }
    }
}
