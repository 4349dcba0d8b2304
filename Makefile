# tern: `make run` builds and starts the demo, `make test` builds and passes
# every test (ASan+UBSan build with clang, ctest as the runner).
BUILD      ?= build
TEST_BUILD ?= build-test
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)
ARGS       ?=
# the demo refuses to serve as root unless told to (--user, --allow-root):
# the development targets tell it to
export TERN_ALLOW_ROOT ?= 1

.PHONY: all run test bench soak install clean deps format format-check leakcheck test-aarch64 tsan cluster-test

all:
	@scripts/deps.sh build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DTERN_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: all
	./$(BUILD)/tern-demo $(ARGS)

# The runtime's unit tests under ThreadSanitizer run first (about a
# minute), so that the last ctest summary is the main suite's.
test: tsan
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DTERN_SANITIZE=ON -DTERN_WERROR=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j 2

bench: all
	@scripts/deps.sh bench
	bench/run.sh

# 10 minutes of mixed load on the release build; figures go to bench/RESULTS.md
# three instances behind nginx and HAProxy, rolling restarts and a fourth
# added under wrk load, zero failed requests (docs/DEPLOY.md); about 30 s
cluster-test: all
	@scripts/deps.sh cluster
	python3 tests/cluster/cluster_test.py --binary $(BUILD)/tern-demo

soak: all
	@scripts/deps.sh bench
	python3 bench/soak.py --binary $(BUILD)/tern-demo --minutes $${SOAK_MINUTES:-10}

# The integration suite with LeakSanitizer made strict: any leak or error
# report fails (make test runs it too; this runs it alone, serially).
leakcheck:
	@scripts/deps.sh test
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DTERN_SANITIZE=ON -DTERN_WERROR=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
	    LSAN_OPTIONS=report_objects=1 ctest --output-on-failure -L integration

# The runtime's unit tests (tests/unit/rt: scheduler, tasks, sync objects,
# pool, offload, on 1 to 4 threads) under ThreadSanitizer, in their own
# build directory; elapsed-time upper bounds are off (TSan is ~5-10x
# slower), correctness checks stay. test_coro is left out: it drives raw stack switches
# without the scheduler's TSan fiber annotations (and has no threads).
tsan:
	@scripts/deps.sh test
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DTERN_TSAN=ON >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS) --target tern_rt_unit_tests
	cd $(TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" TERN_TEST_EMULATED=1 \
	    ctest --output-on-failure -j 2 --timeout 120 -R '^unit_rt_' -E '^unit_rt_test_coro$$'

# the runtime's unit tests cross-compiled for aarch64, run under qemu-user
test-aarch64:
	scripts/test-aarch64.sh

install: all
	cmake --install $(BUILD)

# every C source and header of the tree (fuzz corpora are data, not C)
FORMAT_FILES = $(shell find include src examples tests -name '*.[ch]' -not -path 'tests/fuzz/corpus/*' | sort) \
               $(wildcard bench/*.c)

format:
	clang-format -i $(FORMAT_FILES)

# fails, naming each file and line, when a file differs from .clang-format
format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(TSAN_BUILD)
