//! The OS layer: virtual memory (`mmap`: reservations, protections,
//! copy-on-write file mappings) and sealed artifact images (`sealed`; Linux).

pub(crate) mod mmap;
#[cfg(target_os = "linux")]
pub(crate) mod sealed;
