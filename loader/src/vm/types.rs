//! The process-wide registry of canonical function type ids, and the import
//! matching rules for limits.
//!
//! `call_indirect` compares a funcref's `type_id` with the caller's
//! `type_ids[expected]`, so equal signatures must get equal ids across modules
//! and stores. [`intern`] hands out one `u32` per distinct [`FuncType`] for the
//! life of the process (the set of signatures a process sees is small).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use wasmc_format::{FuncType, GlobalType, MemoryType, TableType};

/// Type ids start here so that a zeroed `type_id` never matches a real type.
const FIRST_ID: u32 = 1;

fn registry() -> &'static Mutex<HashMap<FuncType, u32>> {
    static REG: OnceLock<Mutex<HashMap<FuncType, u32>>> = OnceLock::new();
    REG.get_or_init(Default::default)
}

/// The canonical id of `ty`.
pub(crate) fn intern(ty: &FuncType) -> u32 {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(id) = reg.get(ty) {
        return *id;
    }
    let id = FIRST_ID + reg.len() as u32;
    reg.insert(ty.clone(), id);
    id
}

/// Spec import matching for limits: `actual` fits `expected` if it is at least
/// as large and its maximum (if `expected` has one) is no larger.
pub(crate) fn limits_match(
    actual_min: u64,
    actual_max: Option<u64>,
    exp_min: u64,
    exp_max: Option<u64>,
) -> bool {
    actual_min >= exp_min
        && match exp_max {
            None => true,
            Some(em) => actual_max.is_some_and(|am| am <= em),
        }
}

pub(crate) fn describe_table(t: &TableType) -> String {
    let idx = if t.table64 { "i64 " } else { "" };
    format!("table {idx}{} {}..{}", t.elem, t.min, opt(t.max))
}

pub(crate) fn describe_memory(m: &MemoryType) -> String {
    let idx = if m.memory64 { "i64 " } else { "" };
    format!("memory {idx}{}..{}", m.min, opt(m.max))
}

pub(crate) fn describe_global(g: &GlobalType) -> String {
    if g.mutable {
        format!("global (mut {})", g.ty)
    } else {
        format!("global {}", g.ty)
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmc_format::ValType;

    #[test]
    fn equal_signatures_share_an_id() {
        let a = FuncType {
            params: vec![ValType::I32, ValType::ExternRef],
            results: vec![ValType::F64],
        };
        let b = FuncType {
            params: vec![ValType::I32],
            results: vec![ValType::F64],
        };
        let ia = intern(&a);
        assert_eq!(intern(&a.clone()), ia);
        assert_ne!(intern(&b), ia);
        assert!(ia >= FIRST_ID);
        let ids: Vec<u32> = std::thread::scope(|s| {
            (0..4)
                .map(|_| s.spawn(|| intern(&a)))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect()
        });
        assert!(ids.iter().all(|i| *i == ia));
    }

    #[test]
    fn limits() {
        assert!(limits_match(2, Some(3), 1, Some(4)));
        assert!(!limits_match(2, None, 1, Some(4)));
        assert!(limits_match(2, None, 1, None));
        assert!(!limits_match(0, None, 1, None));
    }
}
