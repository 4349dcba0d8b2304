/* AArch64 (AAPCS64) context switch for tern coroutines (see coro.h).
 *
 * tern__coro_switch(void **save_sp, void *to_sp)    x0 = save_sp, x1 = to_sp
 *
 * Saves what AAPCS64 makes callee-saved: x19-x28, the frame pointer x29, the
 * link register x30 (our resume address) and the low 64 bits of v8-v15
 * (d8-d15); then the stack pointer. FPCR is not switched: tern never changes
 * rounding modes per coroutine (same choice as the x86-64 MXCSR).
 *
 * Frame saved on the switched-out stack (160 bytes, keeps sp 16-aligned):
 *   sp+0   x19 x20 x21 x22 x23 x24 x25 x26 x27 x28
 *   sp+80  x29 x30
 *   sp+96  d8 d9 d10 d11 d12 d13 d14 d15
 * coro.c builds a new coroutine's first frame with this shape.
 *
 * BTI/PAC: with -mbranch-protection the entry points start with "bti c" and
 * the object carries the matching GNU property. Return addresses are not
 * signed here: x30 is saved and reloaded as data, and signing it with
 * paciasp would bind it to the old sp, which is exactly what a switch changes. */

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define TERN_BTI_C bti c
#define TERN_GNU_PROPERTY_BTI 1
#else
#define TERN_BTI_C
#define TERN_GNU_PROPERTY_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT
#define TERN_GNU_PROPERTY_PAC 2
#else
#define TERN_GNU_PROPERTY_PAC 0
#endif

    .text

    .p2align 4
    .globl tern__coro_switch
    .hidden tern__coro_switch
    .type tern__coro_switch, %function
tern__coro_switch:
    .cfi_startproc
    TERN_BTI_C
    sub sp, sp, #160
    .cfi_adjust_cfa_offset 160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    .cfi_adjust_cfa_offset -160
    ret
    .cfi_endproc
    .size tern__coro_switch, .-tern__coro_switch

/* First "return" of a new coroutine lands here: x19 holds the tern_coro,
 * x29 is 0 (ends frame-pointer chains), sp is 16-aligned. The undefined
 * return address ends DWARF unwinding here too. */
    .p2align 4
    .globl tern__coro_entry
    .hidden tern__coro_entry
    .type tern__coro_entry, %function
tern__coro_entry:
    .cfi_startproc
    .cfi_undefined x30
    TERN_BTI_C
    mov x0, x19
    bl tern__coro_start
    brk #0x3e8                  /* tern__coro_start never returns */
    .cfi_endproc
    .size tern__coro_entry, .-tern__coro_entry

    .section .note.GNU-stack,"",%progbits

#if TERN_GNU_PROPERTY_BTI || TERN_GNU_PROPERTY_PAC
    /* NT_GNU_PROPERTY_TYPE_0: GNU_PROPERTY_AARCH64_FEATURE_1_AND. */
    .section .note.gnu.property,"a"
    .p2align 3
    .long 4                     /* name size: "GNU\0" */
    .long 16                    /* descriptor size */
    .long 5                     /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz "GNU"
    .long 0xc0000000            /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .long 4
    .long (TERN_GNU_PROPERTY_BTI | TERN_GNU_PROPERTY_PAC)
    .p2align 3
#endif
