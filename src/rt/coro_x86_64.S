/* x86-64 SysV context switch for tern coroutines (see coro.h).
 *
 * tern__coro_switch(void **save_sp, void *to_sp)    rdi = save_sp, rsi = to_sp
 *
 * Saves only what the SysV ABI makes callee-saved: rbx, rbp, r12-r15 and the
 * stack pointer; rip travels as the return address the call already pushed.
 * No xmm register is callee-saved on SysV, so none is saved.
 *
 * The resume address is popped and reached with an indirect jmp, not a ret:
 * a ret after a stack swap never goes where the return stack buffer predicts
 * (the call that pushed its entry was made on the other stack), so every
 * switch paid a full mispredict. The indirect jump is predicted from branch
 * history, and a scheduler resumes coroutines at a handful of park sites.
 * Measured with bench/micro_coro.c on the AMD EPYC (KVM) build host: 7.7 ns
 * per switch with ret, 2.2 ns with jmp. -DTERN_CORO_SWITCH_RET=1 restores
 * the ret (e.g. to compare on another CPU).
 *
 * The x87 control word and the MXCSR control bits are callee-saved too, but
 * tern never changes rounding or exception masks, so by default they are not
 * switched: saving them costs stmxcsr+fnstcw, restoring costs ldmxcsr+fldcw
 * (fldcw is microcoded): measured 2.2 -> 5.3 ns per switch on the build
 * host. Build with -DTERN_CORO_SAVE_FPU=1 if handlers ever change FP modes
 * per coroutine; coro.c builds the matching initial frame.
 *
 * Frame saved on the switched-out stack, lowest address first:
 *   [fpu: mxcsr(4) fcw(2) pad(2)]  r15 r14 r13 r12 rbx rbp  return-address
 *
 * CET: with -fcf-protection the entry points start with endbr64 (IBT). The
 * object advertises IBT only, never SHSTK: returning on a different stack
 * than the one the call was made on is exactly what a shadow stack forbids,
 * so linking this file correctly clears the SHSTK bit of the final binary. */

#if defined(__CET__) && (__CET__ & 1)
#define TERN_ENDBR endbr64
#else
#define TERN_ENDBR
#endif

#ifndef TERN_CORO_SAVE_FPU
#define TERN_CORO_SAVE_FPU 0
#endif
#ifndef TERN_CORO_SWITCH_RET
#define TERN_CORO_SWITCH_RET 0
#endif
/* The resume address is not an endbr64 landing pad; with IBT, notrack lets
 * the indirect jump reach it (the prefix is a no-op on CPUs without CET). */
#if defined(__CET__) && (__CET__ & 1)
#define TERN_NOTRACK notrack
#else
#define TERN_NOTRACK
#endif

    .text

    .p2align 4
    .globl tern__coro_switch
    .hidden tern__coro_switch
    .type tern__coro_switch, @function
tern__coro_switch:
    .cfi_startproc
    TERN_ENDBR
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    pushq %r12
    .cfi_adjust_cfa_offset 8
    pushq %r13
    .cfi_adjust_cfa_offset 8
    pushq %r14
    .cfi_adjust_cfa_offset 8
    pushq %r15
    .cfi_adjust_cfa_offset 8
#if TERN_CORO_SAVE_FPU
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
#endif
    movq %rsp, (%rdi)
    /* From here on we run on the target stack, whose frame has the same
     * shape, so the CFI offsets stay true while popping. */
    movq %rsi, %rsp
#if TERN_CORO_SAVE_FPU
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
#endif
    popq %r15
    .cfi_adjust_cfa_offset -8
    popq %r14
    .cfi_adjust_cfa_offset -8
    popq %r13
    .cfi_adjust_cfa_offset -8
    popq %r12
    .cfi_adjust_cfa_offset -8
    popq %rbx
    .cfi_adjust_cfa_offset -8
    popq %rbp
    .cfi_adjust_cfa_offset -8
#if TERN_CORO_SWITCH_RET
    ret
#else
    /* See the header comment: an indirect jump the branch predictor learns
     * instead of a ret the return stack buffer always gets wrong. */
    popq %rcx
    .cfi_adjust_cfa_offset -8
    TERN_NOTRACK jmp *%rcx
#endif
    .cfi_endproc
    .size tern__coro_switch, .-tern__coro_switch

/* First "return" of a new coroutine lands here (coro.c put this address in
 * the initial frame). rbx holds the tern_coro, rbp is 0 and rsp is 16-byte
 * aligned, so the call below gives the callee the ABI's rsp+8 alignment.
 * The undefined return address tells unwinders (gdb, libunwind) that the
 * coroutine's call chain ends here. */
    .p2align 4
    .globl tern__coro_entry
    .hidden tern__coro_entry
    .type tern__coro_entry, @function
tern__coro_entry:
    .cfi_startproc
    .cfi_undefined rip
    TERN_ENDBR
    movq %rbx, %rdi
    call tern__coro_start@PLT
    ud2                         /* tern__coro_start never returns */
    .cfi_endproc
    .size tern__coro_entry, .-tern__coro_entry

    .section .note.GNU-stack,"",@progbits

#if defined(__CET__) && (__CET__ & 1)
    /* NT_GNU_PROPERTY_TYPE_0: GNU_PROPERTY_X86_FEATURE_1_AND = IBT (not SHSTK). */
    .section .note.gnu.property,"a"
    .p2align 3
    .long 4                     /* name size: "GNU\0" */
    .long 16                    /* descriptor size */
    .long 5                     /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz "GNU"
    .long 0xc0000002            /* GNU_PROPERTY_X86_FEATURE_1_AND */
    .long 4                     /* property data size */
    .long 1                     /* GNU_PROPERTY_X86_FEATURE_1_IBT */
    .p2align 3
#endif
