/* Many small writes: 1,000,000 printf lines to stdout (redirected to a file
 * by bench/wasi-printf.sh). Built natively and for wasm32-wasi. */
#include <stdio.h>

int main(void) {
    for (int i = 0; i < 1000000; i++)
        printf("line %d: the quick brown fox jumps over the lazy dog\n", i);
    return 0;
}
