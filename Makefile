# The commands the README names. `make demo` runs the main job on the bundled
# example; `make test` runs every test, including the spec testsuite.

CARGO ?= cargo
WASMC := target/release/wasmc

.PHONY: build demo test spec lint check-deps bench bench-wasi clean

build:
	$(CARGO) build --release --workspace

demo: build
	$(WASMC) compile examples/fib.wat -o target/fib.o
	$(WASMC) inspect target/fib.o
	$(WASMC) run --invoke fib target/fib.o 20
	$(WASMC) run --invoke fib_iter target/fib.o 90
	$(WASMC) run target/fib.o
	$(WASMC) run examples/hello.wat

test: check-deps
	$(CARGO) test --workspace

spec:
	$(CARGO) test -p wasmc-tests --test spec -- --nocapture

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# A production binary carries no compiler: the loader must not depend on Cranelift.
check-deps:
	@if $(CARGO) tree -p wasmc-loader -e normal | grep -i -E 'cranelift|wasmc-compiler'; then \
		echo "error: wasmc-loader depends on the compiler" >&2; exit 1; \
	else echo "check-deps: wasmc-loader has no compiler dependency"; fi

# Cold start (load, instantiate) and call costs against Wasmtime; a separate
# workspace, so `make test` does not build Wasmtime. Results: bench/RESULTS.md.
bench:
	cd bench && $(CARGO) run --release
	cd bench && $(CARGO) run --release --features wasmtime-gc --bin gc

# 1,000,000 printf lines to a file under `wasmc run` vs the native build.
bench-wasi: build
	bash bench/wasi-printf.sh

clean:
	$(CARGO) clean
