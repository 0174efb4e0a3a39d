/*
 * setjmp/longjmp helpers for the wasmc loader's trap handling.
 *
 * Rust cannot call sigsetjmp directly (a function that returns twice), so the
 * catch point lives here: `wasmc_setjmp_call` stores a jump buffer in
 * `*jmpbuf_slot`, calls `body(data)`, and returns 1 when `body` returned
 * normally or 0 when some code below it called `wasmc_longjmp` with that
 * buffer. The previous value of the slot is restored either way, so catch
 * points nest.
 *
 * `sigsetjmp(buf, 0)` does not save the signal mask: the trap handler is
 * installed with SA_NODEFER, so the mask does not change on the way in.
 */
#include <setjmp.h>

int wasmc_setjmp_call(void **jmpbuf_slot, void (*body)(void *), void *data) {
  sigjmp_buf buf;
  void *volatile prev = *jmpbuf_slot;
  if (sigsetjmp(buf, 0) == 0) {
    *jmpbuf_slot = (void *)&buf;
    body(data);
    *jmpbuf_slot = prev;
    return 1;
  }
  *jmpbuf_slot = prev;
  return 0;
}

void wasmc_longjmp(void *jmpbuf) {
  siglongjmp(*(sigjmp_buf *)jmpbuf, 1);
}
