# Hand-written stand-in for compiled Wasm code, used by the loader's unit
# tests (no compiler needed). Follows the calling conventions of
# format/src/vmoffsets.rs for a module with 3 types, 1 imported function and
# 1 defined memory, so:
#   vmctx+8  runtime_limits     limits+0 stack_limit, +8 exit_fp, +16 exit_pc, +24 entry_fp
#   vmctx+64 imported_functions[0].wasm_call, vmctx+72 .vmctx
#   vmctx+80 defined memory 0 base
#   host ctx+8 array_call
# Regenerate mock_x86_64.rs with gen_mock.py after editing.
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
        mov rax, [rdi + 80]
        mov edx, edx
trap_load:
        mov eax, [rax + rdx]
        pop rbp
        ret
f_recurse:                      # () -> ()
        push rbp
        mov rbp, rsp
        mov rax, [rdi + 8]
        cmp rsp, [rax]
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
        mov rax, [rdi + 64]
        mov rdi, [rdi + 72]
        call rax
        pop rbp
        ret
end_funcs:
entry_t0:                       # (i32, i32) -> i32
        push rbp
        mov rbp, rsp
        push rbx
        sub rsp, 8
        mov rax, [rdi + 8]
        mov [rax + 24], rbp
        mov rbx, rcx
        mov r8, rdx
        mov edx, [rbx]
        mov ecx, [rbx + 16]
        call r8
        mov [rbx], eax
        add rsp, 8
        pop rbx
        pop rbp
        ret
entry_t1:                       # () -> ()
        push rbp
        mov rbp, rsp
        mov rax, [rdi + 8]
        mov [rax + 24], rbp
        call rdx
        pop rbp
        ret
entry_t2:                       # (i32) -> i32
        push rbp
        mov rbp, rsp
        push rbx
        sub rsp, 8
        mov rax, [rdi + 8]
        mov [rax + 24], rbp
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
        mov rax, [rsi + 8]
        mov r8, [rbp]
        mov [rax + 8], r8
        mov r8, [rbp + 8]
        mov [rax + 16], r8
        mov [rsp], edx
        mov rax, [rdi + 8]
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
