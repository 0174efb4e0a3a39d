//! The OS layer: virtual memory (`mmap`, `mprotect`; Unix) and sealed
//! artifact images (`memfd`; Linux).

pub(crate) mod mmap;
#[cfg(target_os = "linux")]
pub(crate) mod sealed;
