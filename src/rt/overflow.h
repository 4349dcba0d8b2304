/* Stack overflow reports: a fault in the guard page under the running
 * coroutine's stack (or with the stack pointer below its stack) prints
 *
 *   tern: stack overflow in the handler of GET /users/:id (stack 256 KiB):
 *   raise tern_config.stack_size or move large buffers to the heap
 *
 * with write(2) only, then the process dies of the same SIGSEGV as before
 * (the way Rust reports a thread's overflow). Any other fault goes to the
 * handler that was installed before, or to the default action, unchanged.
 *
 * The handler runs on an alternate signal stack, since the faulting stack
 * is unusable: every thread that runs coroutines calls
 * tern__overflow_thread_start once before it does (the server's workers do),
 * and tern__overflow_thread_stop before it exits. Under AddressSanitizer
 * nothing is installed: ASan reports the overflow itself. */
#ifndef TERN_RT_OVERFLOW_H
#define TERN_RT_OVERFLOW_H

/* Installs the SIGSEGV/SIGBUS handler (once per process) and gives the
 * calling thread an alternate signal stack unless it has one. 0 or -errno
 * (the thread then runs without reports; nothing else changes). */
int tern__overflow_thread_start(void);
/* Removes and frees the calling thread's alternate stack, if ours. */
void tern__overflow_thread_stop(void);

#endif
