# The commands the README names. `make demo` runs the main job on the bundled
# example; `make test` runs every test, including the spec testsuite.

CARGO ?= cargo
WASMC := target/release/wasmc

.PHONY: build demo test spec lint check-deps bench clean

build:
	$(CARGO) build --release --workspace

demo: build
	$(WASMC) compile examples/fib.wat -o target/fib.o
	$(WASMC) inspect target/fib.o
	$(WASMC) run target/fib.o --invoke fib 20
	$(WASMC) run target/fib.o --invoke fib_iter 90
	$(WASMC) run target/fib.o

test: check-deps
	$(CARGO) test --workspace

spec:
	$(CARGO) test -p wasmc-tests --test spec -- --nocapture

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The layers stay apart in both directions: a production binary carries no
# compiler (the loader has no Cranelift and no wasmc-compiler), and a build
# step that links the compiler carries no runtime (no wasmc-loader).
check-deps:
	@if $(CARGO) tree -p wasmc-loader -e normal | grep -i -E 'cranelift|wasmc-compiler'; then \
		echo "error: wasmc-loader depends on the compiler" >&2; exit 1; \
	else echo "check-deps: wasmc-loader has no compiler dependency"; fi
	@if $(CARGO) tree -p wasmc-compiler -e normal | grep -i -E 'wasmc-loader|wasmc-cli'; then \
		echo "error: wasmc-compiler depends on the runtime" >&2; exit 1; \
	else echo "check-deps: wasmc-compiler has no runtime dependency"; fi

# Cold start (load, instantiate) and call costs against Wasmtime; a separate
# workspace, so `make test` does not build Wasmtime. Results: bench/RESULTS.md.
bench:
	cd bench && $(CARGO) run --release
	cd bench && $(CARGO) run --release --features wasmtime-gc --bin gc
	cd bench && $(CARGO) run --release --bin calls

clean:
	$(CARGO) clean
