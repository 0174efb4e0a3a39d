# The commands the README names. `make demo` runs the main job on the bundled
# example; `make test` runs every test, including the spec testsuite.

CARGO ?= cargo
WASMC := target/release/wasmc

.PHONY: build demo test spec lint check-deps bench bench-wasi fuzz clean

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

# The externref GC model fuzzer and the differential fuzzer (against wasmi),
# each for FUZZ_CASES cases or FUZZ_SECONDS seconds, from FUZZ_SEED (default:
# the clock), in FUZZ_JOBS worker processes. Each failure is printed with its
# seed, minimized, and written to target/fuzz-failures/ as a reproducer.
# `make test` runs a bounded seeded part of both (tests/tests/gc_model.rs,
# tests/tests/differential.rs). Example: make fuzz FUZZ_SECONDS=3600
FUZZ_KIND ?= all
FUZZ_JOBS ?= 2
fuzz:
	$(CARGO) build -p wasmc-tests --bin wasmc-fuzz
	WASMC_FUZZ_CASES=$(FUZZ_CASES) WASMC_FUZZ_SECONDS=$(FUZZ_SECONDS) \
	WASMC_FUZZ_SEED=$(FUZZ_SEED) WASMC_FUZZ_JOBS=$(FUZZ_JOBS) \
	target/debug/wasmc-fuzz $(FUZZ_KIND)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet

# The layers stay apart in both directions: a production binary carries no
# compiler (the loader has no Cranelift and no wasmc-compiler), and a build
# step that links the compiler carries no runtime (no wasmc-loader).
check-deps:
	@if $(CARGO) tree -p wasmc-loader -e normal | grep -i -E 'cranelift|wasmc-compiler'; then \
		echo "error: wasmc-loader depends on the compiler" >&2; exit 1; \
	else echo "check-deps: wasmc-loader has no compiler dependency"; fi
	@if $(CARGO) tree -p wasmc-compiler -e normal | grep -i -E 'wasmc-loader|wasmc-cli|wasmc-wasi'; then \
		echo "error: wasmc-compiler depends on the runtime" >&2; exit 1; \
	else echo "check-deps: wasmc-compiler has no runtime dependency"; fi

# Cold start (load, instantiate, large modules), call, GC and CPU-bound run
# time (with epoch/fuel cost) against Wasmtime and native; a separate
# workspace, so `make test` does not build Wasmtime. Results: bench/RESULTS.md.
# `fetch-esbuild.sh` fetches esbuild.wasm from the npm registry (needs npm).
bench:
	bash bench/fetch-esbuild.sh
	cd bench && $(CARGO) run --release
	cd bench && $(CARGO) run --release --features wasmtime-gc --bin gc
	cd bench && $(CARGO) run --release --bin calls
	cd bench && $(CARGO) run --release --bin cpu

# 1,000,000 printf lines to a file under `wasmc run` vs the native build.
bench-wasi: build
	bash bench/wasi-printf.sh

clean:
	$(CARGO) clean
