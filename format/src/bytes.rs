//! Bounds-checked little-endian reads from untrusted byte slices.
//!
//! Every per-PC table in an artifact is read in place through these helpers, so
//! a truncated or corrupted section yields `None` (turned into a [`FormatError`]
//! by the caller) and never a panic.
//!
//! [`FormatError`]: crate::FormatError

/// Reads the little-endian `u32` at `offset`, or `None` if it does not fit.
#[inline]
pub fn read_u32(data: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let b = data.get(offset..end)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads the `u32` at index `index` of a `u32` array starting at `base`.
#[inline]
pub fn read_u32_at(data: &[u8], base: usize, index: usize) -> Option<u32> {
    read_u32(data, base.checked_add(index.checked_mul(4)?)?)
}

/// Appends a little-endian `u32`.
#[inline]
pub fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Binary search over a sorted `u32` array of `count` entries at `base`:
/// the index of the entry equal to `key`, or `Err(insertion point)`.
/// `None` if the array does not fit in `data`.
pub fn search_u32(
    data: &[u8],
    base: usize,
    count: usize,
    key: u32,
) -> Option<Result<usize, usize>> {
    let end = base.checked_add(count.checked_mul(4)?)?;
    if end > data.len() {
        return None;
    }
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let v = read_u32_at(data, base, mid)?;
        match v.cmp(&key) {
            core::cmp::Ordering::Equal => return Some(Ok(mid)),
            core::cmp::Ordering::Less => lo = mid + 1,
            core::cmp::Ordering::Greater => hi = mid,
        }
    }
    Some(Err(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let d = [1u8, 0, 0, 0, 2, 0, 0];
        assert_eq!(read_u32(&d, 0), Some(1));
        assert_eq!(read_u32(&d, 4), None);
        assert_eq!(read_u32(&d, usize::MAX), None);
        assert_eq!(read_u32_at(&d, 0, usize::MAX), None);
    }

    #[test]
    fn search() {
        let mut d = Vec::new();
        for v in [2u32, 5, 9] {
            push_u32(&mut d, v);
        }
        assert_eq!(search_u32(&d, 0, 3, 5), Some(Ok(1)));
        assert_eq!(search_u32(&d, 0, 3, 6), Some(Err(2)));
        assert_eq!(search_u32(&d, 0, 3, 1), Some(Err(0)));
        assert_eq!(search_u32(&d, 0, 4, 1), None);
    }
}
