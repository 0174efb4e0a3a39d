/* Hello world for WASI preview 1, built with clang and wasi-libc:
 *   clang --target=wasm32-wasi -O2 examples/hello.c -o hello.wasm
 *   wasmc run hello.wasm reader
 */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello, %s!\n", argc > 1 ? argv[1] : "WASI");
    return 0;
}
