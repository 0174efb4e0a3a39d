# Hand-written stand-in for compiled Wasm code, used by the loader's mock
# tests (tests/mock.rs; no compiler needed), for a module with 3 types, 1
# imported function and 1 defined memory.
#
# The VMContext offsets it uses are the symbols below. gen_mock.py exports
# them to mock_x86_64.rs, and the test `asm_offsets_are_vmoffsets` checks
# each against `wasmc_format::VMOffsets` for the mock module, so a layout
# change fails that test by name instead of crashing the others.
# Regenerate mock_x86_64.rs with gen_mock.py after editing.
        .set VMCTX_RUNTIME_LIMITS, 8
        .set LIMITS_STACK_LIMIT, 0
        .set LIMITS_LAST_WASM_EXIT_FP, 8
        .set LIMITS_LAST_WASM_EXIT_PC, 16
        .set LIMITS_LAST_WASM_ENTRY_FP, 24
        .set VMCTX_IMPORTED_FUNCTION0_WASM_CALL, 64
        .set VMCTX_IMPORTED_FUNCTION0_VMCTX, 72
        .set VMCTX_DEFINED_MEMORY0_BASE, 80
        .set VMHOSTFUNC_ARRAY_CALL, 8
        .set VALUE_SLOT_SIZE, 16
        .intel_syntax noprefix
        .text
f_add:                          # (i32, i32) -> i32
        push rbp
        mov rbp, rsp
        lea eax, [rdx + rcx]
        pop rbp
        ret
f_unreachable:                  # () -> ()
        push rbp
        mov rbp, rsp
trap_unreachable:
        ud2
f_call_unreachable:             # () -> ()
        push rbp
        mov rbp, rsp
        call f_unreachable
        pop rbp
        ret
f_div:                          # (i32, i32) -> i32
        push rbp
        mov rbp, rsp
        mov eax, edx
        cdq
trap_div:
        idiv ecx
        pop rbp
        ret
f_load:                         # (i32) -> i32
        push rbp
        mov rbp, rsp
        mov rax, [rdi + VMCTX_DEFINED_MEMORY0_BASE]
        mov edx, edx
trap_load:
        mov eax, [rax + rdx]
        pop rbp
        ret
f_recurse:                      # () -> ()
        push rbp
        mov rbp, rsp
        mov rax, [rdi + VMCTX_RUNTIME_LIMITS]
        cmp rsp, [rax + LIMITS_STACK_LIMIT]
        jb 1f
        call f_recurse
        pop rbp
        ret
1:
trap_stack:
        ud2
f_call_import:                  # (i32) -> i32
        push rbp
        mov rbp, rsp
        mov rsi, rdi
        mov rax, [rdi + VMCTX_IMPORTED_FUNCTION0_WASM_CALL]
        mov rdi, [rdi + VMCTX_IMPORTED_FUNCTION0_VMCTX]
        call rax
        pop rbp
        ret
f_load_wide:                    # (i32 lo, i32 hi) -> i32, unchecked
        push rbp                    # load at base + (hi << 32 | lo): a
        mov rbp, rsp                # missing bounds check's wild access
        mov rax, [rdi + VMCTX_DEFINED_MEMORY0_BASE]
        mov edx, edx
        shl rcx, 32
        or rdx, rcx
trap_load_wide:
        mov eax, [rax + rdx]
        pop rbp
        ret
end_funcs:
entry_t0:                       # (i32, i32) -> i32
        push rbp
        mov rbp, rsp
        push rbx
        sub rsp, 8
        mov rax, [rdi + VMCTX_RUNTIME_LIMITS]
        mov [rax + LIMITS_LAST_WASM_ENTRY_FP], rbp
        mov rbx, rcx
        mov r8, rdx
        mov edx, [rbx]
        mov ecx, [rbx + VALUE_SLOT_SIZE]
        call r8
        mov [rbx], eax
        add rsp, 8
        pop rbx
        pop rbp
        ret
entry_t1:                       # () -> ()
        push rbp
        mov rbp, rsp
        mov rax, [rdi + VMCTX_RUNTIME_LIMITS]
        mov [rax + LIMITS_LAST_WASM_ENTRY_FP], rbp
        call rdx
        pop rbp
        ret
entry_t2:                       # (i32) -> i32
        push rbp
        mov rbp, rsp
        push rbx
        sub rsp, 8
        mov rax, [rdi + VMCTX_RUNTIME_LIMITS]
        mov [rax + LIMITS_LAST_WASM_ENTRY_FP], rbp
        mov rbx, rcx
        mov r8, rdx
        mov edx, [rbx]
        call r8
        mov [rbx], eax
        add rsp, 8
        pop rbx
        pop rbp
        ret
host_t2:                        # Wasm ABI (i32) -> i32, calls array_call
        push rbp
        mov rbp, rsp
        sub rsp, 32
        mov rax, [rsi + VMCTX_RUNTIME_LIMITS]
        mov r8, [rbp]
        mov [rax + LIMITS_LAST_WASM_EXIT_FP], r8
        mov r8, [rbp + 8]
        mov [rax + LIMITS_LAST_WASM_EXIT_PC], r8
        mov [rsp], edx
        mov rax, [rdi + VMHOSTFUNC_ARRAY_CALL]
        mov rdx, rsp
        mov ecx, 1
        call rax
        mov eax, [rsp]
        add rsp, 32
        pop rbp
        ret
host_stub:                      # host trampolines of t0/t1 (unused)
        ud2
end_all:
