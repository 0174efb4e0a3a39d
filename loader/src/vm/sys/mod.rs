//! The OS layer: virtual memory. Everything here is Unix (`mmap`, `mprotect`,
//! `mremap` on Linux).

pub(crate) mod mmap;
