//! Data segments and memory images: `.wasmc.segments` (fixed-size records,
//! read in place) and the layout of `.wasmc.data`.
//!
//! ```text
//! .wasmc.segments (little-endian, 4-byte aligned)
//! +-------+------------------------------------------+
//! | n u32 | records [SegmentRecord; n], 24 B each     |
//! +-------+------------------------------------------+
//! SegmentRecord:
//! +-----------+----------+------------+------------+-----------------+---------+
//! | index u32 | kind u32 | memory u32 | offset u32 | data_offset u32 | len u32 |
//! +-----------+----------+------------+------------+-----------------+---------+
//!
//! .wasmc.data (page aligned)
//! +-------------------------------------+------------------------------+
//! | memory images, each whole OS pages   | bytes of the other segments  |
//! +-------------------------------------+------------------------------+
//! ```
//!
//! There is one record per data segment *except* the active segments that a
//! memory image applies (below): those have nothing left to say at run time
//! (their bytes are in the image and they are dropped once applied), and a
//! module such as `esbuild.wasm` has about 100,000 of them. Records are
//! sorted by `index` (the segment's index): first the passive segments of
//! the image prefix, then one for every segment after the prefix, so the
//! record of segment `i >= image_segments` is at position
//! `n - (count - i)` and the prefix's are found by binary search; a prefix
//! segment without a record is an image segment ([`Placement::Image`]).
//!
//! `kind` is one of [`KIND_PASSIVE`], [`KIND_CONST`] (active, `offset` is the
//! constant memory offset) and [`KIND_EXPR`] (active, `offset` indexes
//! [`crate::ModuleInfo::data_offset_exprs`]: the placement depends on
//! imported globals and is only known at instantiation, or it is a 64-bit
//! memory's offset of 4 GiB or more).
//!
//! **Memory images.** The compiler applies, in order, the longest prefix of
//! the data segments that are passive or active with a constant offset into a
//! defined memory and in bounds of that memory's initial size
//! ([`crate::ModuleInfo::image_segments`] of them). What they produce is laid
//! out per memory as runs of whole [`IMAGE_PAGE`]s ([`MemoryImage`]); all-zero
//! pages between runs are left out (fresh memory is zero). Applying a prefix
//! that is entirely in bounds cannot fail, so applying its images at the
//! point where the spec applies those segments is exactly the spec's result,
//! and a loader can map them copy-on-write instead of copying. The segments
//! after the prefix are applied one by one as before, in order, with the
//! spec's bounds check: an out-of-bounds segment still stops instantiation
//! with the segments before it applied.
//!
//! Loading must not cost time per segment: [`SegmentTable::parse`] checks
//! only the length against the count, and every read checks the record it
//! reads against the [`SegmentLimits`]. A corrupted record is an error when
//! it is read, never a panic. [`SegmentTable::validate`] checks every record
//! at once (for `wasmc inspect` and tests).

use crate::bytes::{push_u32, read_u32};
use crate::module_info::{ConstExpr, ConstOp, MemoryType};
use crate::{FormatError, WASM_PAGE_SIZE};
use serde::{Deserialize, Serialize};

/// A passive segment: its bytes are stored, `offset` is 0.
pub const KIND_PASSIVE: u32 = 0;
/// An active segment at a constant offset, applied by copying.
pub const KIND_CONST: u32 = 1;
/// An active segment whose offset is a constant expression reading globals.
pub const KIND_EXPR: u32 = 2;

/// Size of one record of `.wasmc.segments`.
pub const SEGMENT_RECORD_SIZE: usize = 24;

/// Granule of memory images: their memory offset, `.wasmc.data` offset and
/// length are multiples of it. Equal to [`crate::sections::PAGE_ALIGN`], the
/// alignment of `.wasmc.data`, so an image's file offset is page aligned.
pub const IMAGE_PAGE: u64 = crate::sections::PAGE_ALIGN;

/// All-zero pages between two runs of data up to this many are kept inside
/// one image (one mapping at instantiation instead of two); longer gaps split
/// the image (the artifact does not store them).
pub const IMAGE_MAX_ZERO_GAP_PAGES: u64 = 4;

const SEGMENTS: &str = crate::sections::section_what!(segments);
/// `` `.wasmc.data` `` in messages.
const DATA: &str = concat!("`", crate::sections::section_name!(data), "`");

fn invalid(detail: String) -> FormatError {
    FormatError::Invalid {
        what: SEGMENTS,
        detail,
    }
}

/// A run of a memory's initial contents, stored in `.wasmc.data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemoryImage {
    /// Memory index (a defined memory).
    pub memory: u32,
    /// Byte offset in the memory; a multiple of [`IMAGE_PAGE`].
    pub memory_offset: u64,
    /// Byte offset in `.wasmc.data`; a multiple of [`IMAGE_PAGE`].
    pub data_offset: u64,
    /// Length in bytes; a non-zero multiple of [`IMAGE_PAGE`].
    pub len: u64,
}

/// Where a segment goes, as a record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Passive (`memory.init` only).
    Passive,
    /// Active at this constant offset, copied at instantiation.
    Const(u32),
    /// Active at the value of `ModuleInfo::data_offset_exprs[.0]`.
    Expr(u32),
    /// Active and applied by a memory image: it has no record (its memory,
    /// offset and length are not stored; `memory`, `data_offset` and `len`
    /// of its [`SegmentRecord`] are 0).
    Image,
}

/// One data segment's record, checked against the [`SegmentLimits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRecord {
    /// Where it goes.
    pub placement: Placement,
    /// Memory index (0 for passive segments).
    pub memory: u32,
    /// Offset of its bytes in `.wasmc.data` (0 for image segments).
    pub data_offset: u32,
    /// Its length in bytes.
    pub len: u32,
}

impl SegmentRecord {
    /// True for active segments.
    pub fn is_active(&self) -> bool {
        !matches!(self.placement, Placement::Passive)
    }

    /// The range of its bytes in `.wasmc.data`; `None` for an image segment,
    /// whose bytes are only in the image.
    pub fn bytes_range(&self) -> Option<core::ops::Range<usize>> {
        match self.placement {
            Placement::Image => None,
            _ => {
                let start = self.data_offset as usize;
                Some(start..start + self.len as usize)
            }
        }
    }
}

/// What a [`SegmentTable`] checks its records against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentLimits {
    /// Data segments (`ModuleInfo::num_data_segments`).
    pub count: u32,
    /// Memories in the index space.
    pub num_memories: u32,
    /// Entries of `ModuleInfo::data_offset_exprs`.
    pub num_exprs: u32,
    /// Segments applied by images (`ModuleInfo::image_segments`).
    pub image_segments: u32,
    /// Length of `.wasmc.data`.
    pub data_len: u64,
}

/// A `.wasmc.segments` section, read in place.
#[derive(Clone, Copy, Debug)]
pub struct SegmentTable<'a> {
    data: &'a [u8],
    limits: SegmentLimits,
    /// Records in the section.
    records: u32,
}

impl<'a> SegmentTable<'a> {
    /// Checks the section's record count against its length and against
    /// `limits` (at least one record per segment after the image prefix, at
    /// most one per segment). O(1): records are checked when read. An empty
    /// section stands for no records.
    pub fn parse(data: &'a [u8], limits: SegmentLimits) -> Result<Self, FormatError> {
        let n = if data.is_empty() {
            0
        } else {
            read_u32(data, 0).ok_or_else(|| FormatError::Truncated {
                what: SEGMENTS,
                detail: "no count".into(),
            })?
        };
        if limits.image_segments > limits.count {
            return Err(invalid(format!(
                "{} image segments of {}",
                limits.image_segments, limits.count
            )));
        }
        let tail = limits.count - limits.image_segments;
        if n < tail || n > limits.count {
            return Err(invalid(format!(
                "{n} records for {} data segments of which {} are after the image prefix",
                limits.count, tail
            )));
        }
        let need = (n as usize)
            .checked_mul(SEGMENT_RECORD_SIZE)
            .and_then(|b| b.checked_add(4));
        if !data.is_empty() && need != Some(data.len()) {
            return Err(invalid(format!(
                "count {n} does not match section length {}",
                data.len()
            )));
        }
        Ok(SegmentTable {
            data,
            limits,
            records: n,
        })
    }

    /// Number of data segments.
    pub fn len(&self) -> u32 {
        self.limits.count
    }

    /// True when the module has no data segments.
    pub fn is_empty(&self) -> bool {
        self.limits.count == 0
    }

    /// Segments `[0, image_segments())` are applied by the memory images
    /// (the passive ones among them excepted).
    pub fn image_segments(&self) -> u32 {
        self.limits.image_segments
    }

    /// Records of the image prefix's passive segments: the first ones.
    fn prefix_records(&self) -> u32 {
        self.records - (self.limits.count - self.limits.image_segments)
    }

    /// Field `f` of the record at position `pos`.
    fn field(&self, pos: u32, f: usize) -> Result<u32, FormatError> {
        (pos as usize)
            .checked_mul(SEGMENT_RECORD_SIZE)
            .and_then(|n| n.checked_add(4 + f * 4))
            .and_then(|at| read_u32(self.data, at))
            .ok_or_else(|| FormatError::Truncated {
                what: SEGMENTS,
                detail: format!("record {pos}"),
            })
    }

    /// The record of segment `index`, checked: `Err` if `index` is out of
    /// range or its record is inconsistent (wrong index, unknown kind,
    /// memory or expression out of range, bytes outside `.wasmc.data`, an
    /// active segment recorded inside the image prefix).
    pub fn get(&self, index: u32) -> Result<SegmentRecord, FormatError> {
        let l = &self.limits;
        if index >= l.count {
            return Err(invalid(format!(
                "data segment {index} out of range ({} segments)",
                l.count
            )));
        }
        let bad = |detail: String| invalid(format!("data segment {index}: {detail}"));
        let pos = if index >= l.image_segments {
            self.records - (l.count - index)
        } else {
            // Binary search among the prefix's records (passive segments).
            let (mut lo, mut hi) = (0, self.prefix_records());
            let mut found = None;
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let at = self.field(mid, 0)?;
                match at.cmp(&index) {
                    core::cmp::Ordering::Less => lo = mid + 1,
                    core::cmp::Ordering::Greater => hi = mid,
                    core::cmp::Ordering::Equal => {
                        found = Some(mid);
                        break;
                    }
                }
            }
            match found {
                Some(p) => p,
                None => {
                    return Ok(SegmentRecord {
                        placement: Placement::Image,
                        memory: 0,
                        data_offset: 0,
                        len: 0,
                    })
                }
            }
        };
        let (at, kind, memory, offset, data_offset, len) = (
            self.field(pos, 0)?,
            self.field(pos, 1)?,
            self.field(pos, 2)?,
            self.field(pos, 3)?,
            self.field(pos, 4)?,
            self.field(pos, 5)?,
        );
        if at != index {
            return Err(bad(format!("record {pos} is for segment {at}")));
        }
        let placement = match kind {
            KIND_PASSIVE => Placement::Passive,
            KIND_CONST => Placement::Const(offset),
            KIND_EXPR => {
                if offset >= l.num_exprs {
                    return Err(bad(format!(
                        "offset expression {offset} of {}",
                        l.num_exprs
                    )));
                }
                Placement::Expr(offset)
            }
            k => return Err(bad(format!("unknown kind {k}"))),
        };
        if kind != KIND_PASSIVE && memory >= l.num_memories {
            return Err(bad(format!("memory {memory} of {}", l.num_memories)));
        }
        if u64::from(data_offset) + u64::from(len) > l.data_len {
            return Err(bad(format!(
                "bytes {data_offset}+{len} exceed {DATA} length {}",
                l.data_len
            )));
        }
        if index < l.image_segments && kind != KIND_PASSIVE {
            return Err(bad("active segment recorded inside the image prefix".into()));
        }
        Ok(SegmentRecord {
            placement,
            memory,
            data_offset,
            len,
        })
    }

    /// Every segment's record, checked.
    pub fn iter(&self) -> impl Iterator<Item = Result<SegmentRecord, FormatError>> + '_ {
        (0..self.limits.count).map(|i| self.get(i))
    }

    /// Checks every record at once: indices strictly increasing (so that
    /// the prefix's binary search finds every one) and each record
    /// consistent. The first error.
    pub fn validate(&self) -> Result<(), FormatError> {
        let mut last = None;
        for pos in 0..self.records {
            let at = self.field(pos, 0)?;
            if last.is_some_and(|l| at <= l) {
                return Err(invalid(format!(
                    "record {pos} (segment {at}) is not after the previous one"
                )));
            }
            last = Some(at);
            self.get(at)?;
        }
        self.iter().try_for_each(|r| r.map(drop))
    }
}

/// Checks a module's memory images: each page aligned, inside `.wasmc.data`,
/// for a defined memory and inside its initial size, and a memory's images
/// sorted and disjoint.
pub fn validate_images(
    images: &[MemoryImage],
    memories: &[MemoryType],
    num_imported_memories: u32,
    data_len: u64,
) -> Result<(), FormatError> {
    let bad = |i: usize, detail: String| FormatError::Invalid {
        what: concat!(crate::sections::section_what!(meta), ": memory images"),
        detail: format!("image {i}: {detail}"),
    };
    let mut last_end: Vec<u64> = vec![0; memories.len()];
    for (i, img) in images.iter().enumerate() {
        let m = img.memory as usize;
        if img.memory < num_imported_memories || m >= memories.len() {
            return Err(bad(
                i,
                format!("memory {} is not a defined memory", img.memory),
            ));
        }
        let aligned = |v: u64| v.is_multiple_of(IMAGE_PAGE);
        if !aligned(img.memory_offset) || !aligned(img.data_offset) || !aligned(img.len) {
            return Err(bad(i, "not page aligned".into()));
        }
        if img.len == 0 {
            return Err(bad(i, "empty".into()));
        }
        if img
            .data_offset
            .checked_add(img.len)
            .is_none_or(|e| e > data_len)
        {
            return Err(bad(
                i,
                format!(
                    "bytes {}+{} exceed {DATA} length {data_len}",
                    img.data_offset, img.len
                ),
            ));
        }
        let initial = memories[m].min.saturating_mul(WASM_PAGE_SIZE);
        let end = img.memory_offset.checked_add(img.len);
        if end.is_none_or(|e| e > initial) {
            return Err(bad(
                i,
                format!(
                    "{}+{} exceeds memory {m}'s initial size {initial}",
                    img.memory_offset, img.len
                ),
            ));
        }
        if img.memory_offset < last_end[m] {
            return Err(bad(i, "overlaps or precedes an earlier image".into()));
        }
        last_end[m] = img.memory_offset + img.len;
    }
    Ok(())
}

/// The value of a constant offset expression that reads no global, or
/// `None`: an `i32` expression (a 32-bit memory's offset) read as unsigned,
/// or an `i64` one (a 64-bit memory's offset), with the extended-const
/// arithmetic, which wraps.
pub fn const_offset(e: &ConstExpr) -> Option<u64> {
    #[derive(Clone, Copy)]
    enum V {
        I32(i32),
        I64(i64),
    }
    let mut stack: Vec<V> = Vec::with_capacity(2);
    for op in &e.0 {
        match *op {
            ConstOp::I32Const(v) => stack.push(V::I32(v)),
            ConstOp::I64Const(v) => stack.push(V::I64(v)),
            ConstOp::I32Add | ConstOp::I32Sub | ConstOp::I32Mul => {
                let (V::I32(b), V::I32(a)) = (stack.pop()?, stack.pop()?) else {
                    return None;
                };
                stack.push(V::I32(match op {
                    ConstOp::I32Add => a.wrapping_add(b),
                    ConstOp::I32Sub => a.wrapping_sub(b),
                    _ => a.wrapping_mul(b),
                }));
            }
            ConstOp::I64Add | ConstOp::I64Sub | ConstOp::I64Mul => {
                let (V::I64(b), V::I64(a)) = (stack.pop()?, stack.pop()?) else {
                    return None;
                };
                stack.push(V::I64(match op {
                    ConstOp::I64Add => a.wrapping_add(b),
                    ConstOp::I64Sub => a.wrapping_sub(b),
                    _ => a.wrapping_mul(b),
                }));
            }
            _ => return None,
        }
    }
    match stack.as_slice() {
        [V::I32(v)] => Some(u64::from(*v as u32)),
        [V::I64(v)] => Some(*v as u64),
        _ => None,
    }
}

/// The constant offset of an active segment as a record stores it: `None`
/// when it reads a global, or is a 64-bit memory's offset of 4 GiB or more
/// (kept as an expression and evaluated at instantiation, where it fails
/// the bounds check: no memory of this loader is that large).
fn record_offset(e: &ConstExpr) -> Option<u32> {
    const_offset(e).and_then(|v| u32::try_from(v).ok())
}

/// A data segment as the compiler reads it from the Wasm module.
#[derive(Clone, Debug)]
pub struct SegmentSource<'a> {
    /// `None` for a passive segment; else the memory and offset expression.
    pub active: Option<(u32, ConstExpr)>,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// What [`layout_data`] produces: the contents of `.wasmc.segments` and
/// `.wasmc.data`, and the [`crate::ModuleInfo`] fields that go with them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataLayout {
    /// `.wasmc.segments`.
    pub segments: Vec<u8>,
    /// `.wasmc.data`.
    pub data: Vec<u8>,
    /// `ModuleInfo::memory_images`.
    pub images: Vec<MemoryImage>,
    /// `ModuleInfo::image_segments`.
    pub image_segments: u32,
    /// `ModuleInfo::data_offset_exprs`.
    pub offset_exprs: Vec<ConstExpr>,
}

/// Lays out a module's data segments (see the module docs). `use_images`
/// false puts every segment's bytes in `.wasmc.data` and builds no image.
/// `Err` names the limit exceeded (more than 4 GiB of data).
pub fn layout_data(
    segs: &[SegmentSource<'_>],
    memories: &[MemoryType],
    num_imported_memories: u32,
    use_images: bool,
) -> Result<DataLayout, String> {
    // The image prefix.
    let fits = |s: &SegmentSource<'_>| match &s.active {
        None => true,
        Some((m, e)) => {
            let m = *m as usize;
            m >= num_imported_memories as usize
                && m < memories.len()
                && record_offset(e).is_some_and(|off| {
                    u64::from(off) + s.bytes.len() as u64
                        <= memories[m].min.saturating_mul(WASM_PAGE_SIZE)
                })
        }
    };
    let image_segments = if use_images {
        segs.iter().take_while(|s| fits(s)).count()
    } else {
        0
    };

    // Page contents of each memory after the prefix, sparse.
    let page = IMAGE_PAGE as usize;
    let mut pages: std::collections::BTreeMap<(u32, u64), Vec<u8>> = Default::default();
    for s in &segs[..image_segments] {
        let Some((m, e)) = &s.active else { continue };
        let mut off = u64::from(record_offset(e).expect("checked by `fits`"));
        let mut rest = s.bytes;
        while !rest.is_empty() {
            let p = off / IMAGE_PAGE;
            let within = (off % IMAGE_PAGE) as usize;
            let n = rest.len().min(page - within);
            let buf = pages.entry((*m, p)).or_insert_with(|| vec![0; page]);
            buf[within..within + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            off += n as u64;
        }
    }
    pages.retain(|_, b| b.iter().any(|x| *x != 0));

    let mut data = Vec::new();
    let mut images: Vec<MemoryImage> = Vec::new();
    for ((m, p), bytes) in pages {
        let at = p * IMAGE_PAGE;
        match images.last_mut() {
            Some(img)
                if img.memory == m
                    && at >= img.memory_offset + img.len
                    && at - (img.memory_offset + img.len)
                        <= IMAGE_MAX_ZERO_GAP_PAGES * IMAGE_PAGE =>
            {
                let gap = (at - (img.memory_offset + img.len)) as usize;
                data.resize(data.len() + gap, 0);
                data.extend_from_slice(&bytes);
                img.len = at + IMAGE_PAGE - img.memory_offset;
            }
            _ => {
                images.push(MemoryImage {
                    memory: m,
                    memory_offset: at,
                    data_offset: data.len() as u64,
                    len: IMAGE_PAGE,
                });
                data.extend_from_slice(&bytes);
            }
        }
    }

    let too_big = || "more than 4 GiB of data segments".to_string();
    let mut records = Vec::with_capacity(segs.len() * SEGMENT_RECORD_SIZE);
    let mut n = 0u32;
    let mut offset_exprs = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let len = u32::try_from(s.bytes.len()).map_err(|_| too_big())?;
        let index = u32::try_from(i).map_err(|_| too_big())?;
        let (kind, memory, offset) = match &s.active {
            None => (KIND_PASSIVE, 0, 0),
            // Applied by an image: no record.
            Some(_) if i < image_segments => continue,
            Some((m, e)) => match record_offset(e) {
                Some(off) => (KIND_CONST, *m, off),
                None => {
                    offset_exprs.push(e.clone());
                    (KIND_EXPR, *m, (offset_exprs.len() - 1) as u32)
                }
            },
        };
        let at = u32::try_from(data.len()).map_err(|_| too_big())?;
        at.checked_add(len).ok_or_else(too_big)?;
        data.extend_from_slice(s.bytes);
        for v in [index, kind, memory, offset, at, len] {
            push_u32(&mut records, v);
        }
        n += 1;
    }
    let mut segments = Vec::new();
    if n > 0 {
        segments.reserve(4 + records.len());
        push_u32(&mut segments, n);
        segments.extend_from_slice(&records);
    }
    Ok(DataLayout {
        segments,
        data,
        images,
        image_segments: image_segments as u32,
        offset_exprs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(min: u64) -> MemoryType {
        MemoryType {
            min,
            max: None,
            memory64: false,
            shared: false,
        }
    }

    fn at(m: u32, off: i32, bytes: &[u8]) -> SegmentSource<'_> {
        SegmentSource {
            active: Some((m, ConstExpr(vec![ConstOp::I32Const(off)]))),
            bytes,
        }
    }

    fn limits(l: &DataLayout, n: u32, mems: u32) -> SegmentLimits {
        SegmentLimits {
            count: n,
            num_memories: mems,
            num_exprs: l.offset_exprs.len() as u32,
            image_segments: l.image_segments,
            data_len: l.data.len() as u64,
        }
    }

    /// Applies the images to zeroed memories, as a loader would.
    fn apply(l: &DataLayout, mems: &[MemoryType]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = mems
            .iter()
            .map(|m| vec![0; (m.min * WASM_PAGE_SIZE) as usize])
            .collect();
        for img in &l.images {
            let (d, n, o) = (
                img.data_offset as usize,
                img.len as usize,
                img.memory_offset as usize,
            );
            out[img.memory as usize][o..o + n].copy_from_slice(&l.data[d..d + n]);
        }
        out
    }

    #[test]
    fn images_equal_applying_segments_in_order() {
        let big = vec![7u8; 3 * 4096 + 5];
        let segs = [
            at(0, 10, b"hello"),
            SegmentSource {
                active: None,
                bytes: b"passive",
            },
            at(0, 12, b"XY"),
            at(0, 70000, &big),
            at(0, 100_000, &[0, 0, 0]),
            at(1, 65530, b"abcdef"),
        ];
        let mems = [mem(2), mem(1)];
        let l = layout_data(&segs, &mems, 0, true).unwrap();
        assert_eq!(l.image_segments, 6);
        validate_images(&l.images, &mems, 0, l.data.len() as u64).unwrap();
        let got = apply(&l, &mems);
        let mut want: Vec<Vec<u8>> = vec![vec![0; 2 * 65536], vec![0; 65536]];
        want[0][10..15].copy_from_slice(b"hello");
        want[0][12..14].copy_from_slice(b"XY");
        want[0][70000..70000 + big.len()].copy_from_slice(&big);
        want[1][65530..].copy_from_slice(b"abcdef");
        assert_eq!(got, want);
        let t = SegmentTable::parse(&l.segments, limits(&l, 6, 2)).unwrap();
        t.validate().unwrap();
        assert_eq!(t.get(0).unwrap().placement, Placement::Image);
        // Only the passive segment has a record: the others are imaged.
        assert_eq!(l.segments.len(), 4 + SEGMENT_RECORD_SIZE);
        let p = t.get(1).unwrap();
        assert_eq!(p.placement, Placement::Passive);
        assert_eq!(&l.data[p.bytes_range().unwrap()], b"passive");
        // The all-zero segment adds no image page.
        assert!(l.images.iter().all(|i| i.memory_offset != 98304));
    }

    #[test]
    fn prefix_stops_at_global_offsets_and_out_of_bounds() {
        let g = SegmentSource {
            active: Some((0, ConstExpr(vec![ConstOp::GlobalGet(0)]))),
            bytes: b"g",
        };
        let segs = [at(0, 0, b"a"), g, at(0, 1, b"b")];
        let l = layout_data(&segs, &[mem(1)], 0, true).unwrap();
        assert_eq!(l.image_segments, 1);
        let t = SegmentTable::parse(&l.segments, limits(&l, 3, 1)).unwrap();
        assert_eq!(t.get(1).unwrap().placement, Placement::Expr(0));
        assert_eq!(t.get(2).unwrap().placement, Placement::Const(1));
        assert_eq!(&l.data[t.get(2).unwrap().bytes_range().unwrap()], b"b");

        let oob = [at(0, 0, b"a"), at(0, 65535, b"bc"), at(0, 5, b"c")];
        let l = layout_data(&oob, &[mem(1)], 0, true).unwrap();
        assert_eq!(l.image_segments, 1);
        // Imported memories never get images.
        let l = layout_data(&segs[..1], &[mem(1)], 1, true).unwrap();
        assert_eq!((l.image_segments, l.images.len()), (0, 0));
    }

    /// Passive segments between imaged ones keep their records, found by
    /// binary search; every other prefix segment reads as an image one; an
    /// unsorted prefix is caught by `validate`.
    #[test]
    fn prefix_records_are_found_by_index() {
        let p = |b: &'static [u8]| SegmentSource {
            active: None,
            bytes: b,
        };
        let segs = [
            p(b"p0"),
            at(0, 0, b"a"),
            at(0, 1, b"b"),
            p(b"p3"),
            at(0, 2, b"c"),
            p(b"p5"),
            p(b"p6"),
            at(0, 3, b"d"),
        ];
        let l = layout_data(&segs, &[mem(1)], 0, true).unwrap();
        assert_eq!(l.image_segments, 8);
        let t = SegmentTable::parse(&l.segments, limits(&l, 8, 1)).unwrap();
        t.validate().unwrap();
        for (i, want) in [(0, "p0"), (3, "p3"), (5, "p5"), (6, "p6")] {
            let r = t.get(i).unwrap();
            assert_eq!(r.placement, Placement::Passive, "{i}");
            assert_eq!(&l.data[r.bytes_range().unwrap()], want.as_bytes());
        }
        for i in [1, 2, 4, 7] {
            assert_eq!(t.get(i).unwrap().placement, Placement::Image, "{i}");
        }
        // Swap the indices of the first two records: unsorted.
        let mut b = l.segments.clone();
        let r = SEGMENT_RECORD_SIZE;
        b[4..8].copy_from_slice(&3u32.to_le_bytes());
        b[4 + r..8 + r].copy_from_slice(&0u32.to_le_bytes());
        let t = SegmentTable::parse(&b, limits(&l, 8, 1)).unwrap();
        assert!(t.validate().is_err());
        // Too few records for the segments after the prefix.
        let lim = SegmentLimits {
            image_segments: 2,
            ..limits(&l, 8, 1)
        };
        assert!(SegmentTable::parse(&l.segments, lim).is_err());
    }

    #[test]
    fn corrupt_records_are_errors() {
        let segs = [
            at(0, 0, b"a"),
            SegmentSource {
                active: None,
                bytes: b"p",
            },
        ];
        let l = layout_data(&segs, &[mem(1)], 0, false).unwrap();
        let lim = limits(&l, 2, 1);
        assert!(SegmentTable::parse(&l.segments, SegmentLimits { count: 3, ..lim }).is_err());
        assert!(SegmentTable::parse(&l.segments[..8], lim).is_err());
        for (field, v) in [(1, 9), (2, 5), (4, 1000), (1, 3), (1, KIND_EXPR), (0, 1)] {
            let mut b = l.segments.clone();
            b[4 + field * 4..8 + field * 4].copy_from_slice(&u32::to_le_bytes(v));
            let t = SegmentTable::parse(&b, lim).unwrap();
            assert!(t.get(0).is_err(), "field {field} = {v}");
            assert!(t.validate().is_err());
        }
        let img = MemoryImage {
            memory: 0,
            memory_offset: 4096,
            data_offset: 0,
            len: 4096,
        };
        let mems = [mem(1)];
        assert!(validate_images(&[img], &mems, 0, 4096).is_ok());
        for bad in [
            MemoryImage { memory: 1, ..img },
            MemoryImage { len: 100, ..img },
            MemoryImage {
                memory_offset: 65536,
                ..img
            },
            MemoryImage {
                data_offset: 4096,
                ..img
            },
        ] {
            assert!(validate_images(&[bad], &mems, 0, 4096).is_err(), "{bad:?}");
        }
        assert!(validate_images(&[img, img], &mems, 0, 4096).is_err());
        assert!(validate_images(&[img], &mems, 1, 4096).is_err());
    }
}
