//! The OS layer: virtual memory (`mmap`: reservations, protections,
//! copy-on-write file mappings) and sealed memfds (`memfd`). Everything here
//! is Unix (`mremap` and memfds on Linux).

pub(crate) mod memfd;
pub(crate) mod mmap;
