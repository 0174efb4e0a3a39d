//! The builtin (libcall) list: runtime functions that compiled code calls.
//!
//! The position of a builtin in [`foreach_builtin!`](crate::foreach_builtin) is its index in the
//! VMContext's builtin table. The compiler expands the list into Cranelift
//! signatures, the loader into its table of function pointers; a mismatch in
//! count or order cannot compile on either side.
//!
//! Every builtin takes the calling instance's `vmctx` first. Parameter kinds:
//! `i32`, `i64`, `ptr` (pointer-sized integer, a `funcref` pointer), `ref`
//! (an `externref` pointer, which the compiler keeps in stack maps). Builtins
//! that trap do not return: the runtime unwinds to the entry of the current
//! Wasm activation. Table, memory, data and element indices are in the
//! module's index spaces (imports included).

/// Calls `$mac!` with the builtin list:
/// `name(param kinds...) -> result kind;` (no `->` for no result).
#[macro_export]
macro_rules! foreach_builtin {
    ($mac:ident) => {
        $mac! {
            /// `memory.grow`: (memory, delta pages) -> old size in pages or -1.
            memory_grow(i32, i64) -> i64;
            /// `memory.fill`: (memory, dst, byte, len).
            memory_fill(i32, i64, i32, i64);
            /// `memory.copy`: (dst memory, dst, src memory, src, len).
            memory_copy(i32, i64, i32, i64, i64);
            /// `memory.init`: (memory, data segment, dst, src, len).
            memory_init(i32, i32, i64, i32, i32);
            /// `data.drop`: (data segment).
            data_drop(i32);
            /// `table.grow` of a funcref table: (table, delta, init) -> old size or -1.
            table_grow_func_ref(i32, i32, ptr) -> i32;
            /// `table.grow` of an externref table: (table, delta, init) -> old size or -1.
            table_grow_externref(i32, i32, ref) -> i32;
            /// `table.fill` of a funcref table: (table, dst, value, len).
            table_fill_func_ref(i32, i32, ptr, i32);
            /// `table.fill` of an externref table: (table, dst, value, len).
            table_fill_externref(i32, i32, ref, i32);
            /// `table.copy`: (dst table, src table, dst, src, len).
            table_copy(i32, i32, i32, i32, i32);
            /// `table.init`: (table, element segment, dst, src, len).
            table_init(i32, i32, i32, i32, i32);
            /// `elem.drop`: (element segment).
            elem_drop(i32);
            /// `table.set` of an externref table: (table, index, value), with
            /// precise reference counting.
            table_set_externref(i32, i32, ref);
            /// `global.set` of an externref global: (global, value).
            global_set_externref(i32, ref);
            /// Slow path of the inline activations-table insertion (the bump
            /// chunk is full): take a count on the reference, collect garbage,
            /// then insert it. `table.get` and `global.get` of externrefs are
            /// otherwise inline in compiled code.
            activations_table_insert_slow(ref);
            /// `f32` fused multiply-add `a * b + c`, rounded once, on bit
            /// patterns: (a, b, c) -> result. Relaxed SIMD's `relaxed_madd`
            /// is compiled as fused everywhere (deterministic); code for a
            /// CPU without FMA instructions calls this once per lane. Never
            /// traps or collects.
            fma_f32(i32, i32, i32) -> i32;
            /// `f64` fused multiply-add, as [`Builtin::fma_f32`].
            fma_f64(i64, i64, i64) -> i64;
            /// Cold path of an epoch check (function entry, loop header):
            /// the engine's epoch is at or past the store's deadline. Traps
            /// `Interrupted` if it still is; returns if the deadline moved.
            epoch_deadline_reached();
            /// Cold path of a fuel check: `fuel_consumed >= 0` (the code
            /// stored its count first). Traps `OutOfFuel` if it still is;
            /// returns if fuel was added. The code reloads the count after.
            out_of_fuel();
            /// `ref.func`: (function) -> the address of the calling
            /// instance's `VMFuncRef` of that function, which the runtime
            /// fills in on first use (instantiation does no per-function
            /// work). Never traps for a valid index or collects.
            ref_func(i32) -> ptr;
            /// Cold path of a funcref `table.get` or `call_indirect` that
            /// read an uninitialised element (`0`, see
            /// [`crate::vmoffsets::FUNCREF_INIT_BIT`]): (table, index) ->
            /// the element, untagged (a `VMFuncRef` address or null), after
            /// storing it tagged. The index was bounds-checked by the caller
            /// (a 64-bit table's fits 32 bits since it is below the size).
            /// Never traps for an in-bounds index or collects.
            table_get_lazy_funcref(i32, i32) -> ptr;
        }
    };
}

/// Kind of a builtin parameter or result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// Pointer-sized integer.
    Ptr,
    /// `externref` pointer (needs a stack map in the caller).
    Ref,
}

#[doc(hidden)]
#[macro_export]
macro_rules! __builtin_type {
    (i32) => {
        $crate::builtins::BuiltinType::I32
    };
    (i64) => {
        $crate::builtins::BuiltinType::I64
    };
    (ptr) => {
        $crate::builtins::BuiltinType::Ptr
    };
    (ref) => {
        $crate::builtins::BuiltinType::Ref
    };
}

macro_rules! define_builtin_enum {
    ($($(#[$doc:meta])* $name:ident($($param:ident),*) $(-> $result:ident)?;)*) => {
        /// A builtin; its discriminant is its index in the builtin table.
        #[allow(non_camel_case_types)] // the variants are the libcall names
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum Builtin {
            $($(#[$doc])* $name,)*
        }

        impl Builtin {
            /// Every builtin, in index order.
            pub const ALL: &'static [Builtin] = &[$(Builtin::$name,)*];
            /// Number of builtins.
            pub const COUNT: usize = Self::ALL.len();

            /// Name, as in the list.
            pub fn name(self) -> &'static str {
                match self {
                    $(Builtin::$name => stringify!($name),)*
                }
            }

            /// Parameters after `vmctx`.
            pub fn params(self) -> &'static [BuiltinType] {
                match self {
                    $(Builtin::$name => &[$($crate::__builtin_type!($param)),*],)*
                }
            }

            /// Result, if any.
            pub fn result(self) -> Option<BuiltinType> {
                match self {
                    $(Builtin::$name => None $(.or(Some($crate::__builtin_type!($result))))?,)*
                }
            }

            /// Index in the builtin table.
            pub fn index(self) -> u32 {
                self as u32
            }
        }
    };
}

foreach_builtin!(define_builtin_enum);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_list() {
        for (i, b) in Builtin::ALL.iter().enumerate() {
            assert_eq!(b.index() as usize, i);
        }
        assert_eq!(Builtin::memory_grow.result(), Some(BuiltinType::I64));
        assert_eq!(Builtin::data_drop.result(), None);
        assert_eq!(Builtin::table_fill_externref.params()[2], BuiltinType::Ref);
    }
}
