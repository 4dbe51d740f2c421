# vsysfs: GNU Makefile. `make help` lists the targets.
#
# Switches: SANITIZE=address,undefined | SANITIZE=thread (own build dir), OPT=-O1,
#           NDEBUG=1 (drop debug checks), WERROR=1, V=1.

CXX      ?= g++
CXXSTD   ?= c++20
PREFIX   ?= /usr/local
DESTDIR  ?=
SANITIZE ?=

ifeq ($(SANITIZE),)
  BUILD ?= build
else
  BUILD ?= build-$(subst $(comma),-,$(SANITIZE))
endif
comma := ,

PKGS     := fuse3 fmt tomlplusplus
CPPFLAGS += -I. -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# OPT: optimisation and debug info (OPT="-O2 -g" to debug; CI builds its
# sanitizer pass with -O0, which compiles four times faster than -O1).
OPT      ?= -O2
CXXFLAGS += $(OPT) -std=$(CXXSTD) -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -pthread
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lboost_filesystem -pthread
ifneq ($(NDEBUG),)
  CPPFLAGS += -DNDEBUG
else
  CPPFLAGS += -DVSYSFS_DEBUG_CHECKS=1
endif
ifneq ($(WERROR),)
  CXXFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
  CXXFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
  LDFLAGS  += -fsanitize=$(SANITIZE)
endif

CORE_SRC    := $(wildcard core/*.cpp)
DEVICES_SRC := $(wildcard devices/*/*.cpp)
FS_SRC      := $(filter-out fs/main.cpp,$(wildcard fs/*.cpp))
TESTDEV_SRC := $(wildcard tests/testdev/*.cpp)
TEST_SRC    := $(wildcard tests/*.cpp tests/support/*.cpp tests/core/*.cpp tests/devices/*/*.cpp tests/fs/*.cpp tests/random/*.cpp) $(TESTDEV_SRC)
HELPER_SRC  := $(wildcard tests/helpers/*.cpp)

obj = $(patsubst %.cpp,$(BUILD)/%.o,$(1))
GEN_SRC  := $(BUILD)/gen/default_machine.cpp
LIB_OBJ  := $(call obj,$(CORE_SRC) $(DEVICES_SRC) $(FS_SRC)) $(BUILD)/gen/default_machine.o
MAIN_OBJ := $(call obj,fs/main.cpp)
TEST_OBJ := $(call obj,$(TEST_SRC))
HELPERS  := $(patsubst tests/helpers/%.cpp,$(BUILD)/tests/helpers/%,$(HELPER_SRC))

TESTDEV_OBJ := $(call obj,$(TESTDEV_SRC))

DAEMON := $(BUILD)/vsysfs
# The daemon plus the test-only device (tests/testdev), for the bats suites.
TEST_DAEMON := $(BUILD)/vsysfs-test
UNIT   := $(BUILD)/unit-tests

ifeq ($(V),)
  Q := @
endif

.PHONY: all run test unit integration test-random deps check-layers clean install help
.DEFAULT_GOAL := all

all: $(DAEMON) $(TEST_DAEMON) $(UNIT) $(HELPERS)  ## build the daemon, the unit tests and test helpers

$(TEST_DAEMON): $(LIB_OBJ) $(MAIN_OBJ) $(TESTDEV_OBJ)
	@echo "  LD      $@"
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(DAEMON): $(LIB_OBJ) $(MAIN_OBJ)
	@echo "  LD      $@"
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT): $(LIB_OBJ) $(TEST_OBJ)
	@echo "  LD      $@"
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/helpers/%: tests/helpers/%.cpp $(BUILD)/core/result.o
	@mkdir -p $(dir $@)
	@echo "  CXX     $@"
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/core/result.o $(LDLIBS)

# The built-in default machine is machines/default.toml, compiled in, so the
# shipped example and `vsysfs MOUNTPOINT` can never disagree.
$(GEN_SRC): machines/default.toml
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	$(Q){ echo '#include "devices/machine/machine.hpp"'; \
	  echo 'std::string_view vsysfs::devices::default_machine_toml() { return R"vsysfs_toml('; \
	  cat $<; echo ')vsysfs_toml"; }'; } > $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.cpp
	@echo "  CXX     $<"
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	@echo "  CXX     $<"
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(PCH_FLAGS) -c -o $@ $<

# Precompiled headers (PCH=0 turns them off): core/pch.hpp (the standard
# headers nearly every file uses, and fmt) for the library objects, and
# tests/support/pch.hpp (plus doctest) for the unit-test objects. GCC takes
# $(PCH_DIR)/X.hpp.gch for `-include $(PCH_DIR)/X.hpp` when it was built
# with the same flags (same build directory: same SANITIZE and OPT) and
# says so otherwise (-Winvalid-pch). Builds are about a third faster.
PCH ?= 1
PCH_DIR := $(BUILD)/pch
ifeq ($(PCH),1)
# (The test device links into the daemon, which has no doctest: library PCH.)
PCH_LIB_OBJ  := $(call obj,$(CORE_SRC) $(DEVICES_SRC) $(FS_SRC) fs/main.cpp $(TESTDEV_SRC))
PCH_TEST_OBJ := $(call obj,$(filter-out tests/main.cpp $(TESTDEV_SRC),$(TEST_SRC)))
$(PCH_LIB_OBJ): PCH_FLAGS = -Winvalid-pch -include $(PCH_DIR)/lib.hpp
$(PCH_LIB_OBJ): $(PCH_DIR)/lib.hpp.gch
$(PCH_TEST_OBJ): PCH_FLAGS = -Winvalid-pch -include $(PCH_DIR)/test.hpp
$(PCH_TEST_OBJ): $(PCH_DIR)/test.hpp.gch
endif
$(PCH_DIR)/lib.hpp: core/pch.hpp
	@mkdir -p $(dir $@)
	$(Q)cp $< $@
$(PCH_DIR)/test.hpp: tests/support/pch.hpp
	@mkdir -p $(dir $@)
	$(Q)cp $< $@
$(PCH_DIR)/%.hpp.gch: $(PCH_DIR)/%.hpp
	@echo "  PCH     $<"
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -x c++-header -c -o $@ $<

MNTDIR ?= mnt
# make run builds the daemon alone (no unit tests, no test helpers) and
# installs only the packages that takes (install-deps --run).
# (The daemon is built by a sub-make so that with -j the packages are in
# place before the first compile.)
run: deps-run  ## install what the daemon needs, build it, mount the default machine at ./mnt (foreground)
	@$(MAKE) --no-print-directory $(DAEMON)
	@mkdir -p $(MNTDIR)
	@if mountpoint -q $(MNTDIR); then echo "vsysfs: $(MNTDIR) is already a mount point; run mount-scripts/vsysfs-umount $(MNTDIR)" >&2; exit 1; fi
	@echo "vsysfs: mounting the default machine at $(MNTDIR) (foreground; VSYSFS_OPTS='-o ...' adds options)."
	@echo "  From another terminal:  ls -la $(MNTDIR)/devices $(MNTDIR)/kernel/debug/vsysfs"
	@echo "  Stop it with Ctrl-C here, or:  mount-scripts/vsysfs-umount $(MNTDIR)"
	@$(DAEMON) -f $(VSYSFS_OPTS) $(MNTDIR)

# The bats files run two at a time (JOBS=1 for one at a time): each mounts in
# its own temporary directory, and most of their time is waiting on mounts.
JOBS ?= 2
test: deps all  ## run every suite (unit + integration); ends with "N passed, N failed, N skipped"
	@BUILD=$(BUILD) JOBS=$(JOBS) tests/run-all

unit: $(UNIT)  ## the unit tests only
	$(UNIT)

# The seeded random-sequence tests (tests/random, docs/random-tests.md), longer:
# every doctest case whose name matches *random* (the Xen, NUMA, dcdbas and
# net families and the lock-service sequences, each with one seed).
# (SEED is expanded once, so the echoed seed is the one that ran.)
ifeq ($(origin SEED),undefined)
  SEED := $(shell date +%s)
endif
STEPS ?= 3000
test-random: $(UNIT)  ## random operation sequences: make test-random SEED=N STEPS=N
	@echo "test-random: VSYSFS_RANDOM_SEED=$(SEED) VSYSFS_RANDOM_STEPS=$(STEPS)"
	VSYSFS_RANDOM_SEED=$(SEED) VSYSFS_RANDOM_STEPS=$(STEPS) VSYSFS_RANDOM_VERBOSE=1 \
	  $(UNIT) -tc='*random*' -tce='stress: many files*,threads: random locks*'

integration: all  ## the bats suites only
	@BUILD=$(BUILD) JOBS=$(JOBS) tests/run-all --integration-only

.PHONY: test-conformance
test-conformance: $(DAEMON)  ## record this machine's /sys, mount it, compare with /sys and real tools; round-trip every example machine (as root)
	@BUILD=$(BUILD) tests/conformance/run

deps:  ## install the Debian packages the build and tests need (as root)
	@mount-scripts/install-deps

.PHONY: deps-run
deps-run:  ## install the Debian packages building and mounting the daemon needs (as root)
	@mount-scripts/install-deps --run

check-layers:  ## fail when an include crosses the layers (fs -> devices -> core)
	@tests/check-layers .

.PHONY: check-docs
check-docs:  ## fail when a comment cites an issue, a seed or ../shared, or a docs section that does not exist
	@tests/check-docs .

# --- install (docs/install.md) ------------------------------------------------
# Everything a user runs, under $(DESTDIR)$(PREFIX). Each list names its
# files, so a new script is one word here (and its page in man/):
#   INSTALL_SCRIPTS       mount-scripts/ commands for users -> bin (man 1)
#   INSTALL_SBIN_SCRIPTS  mount(8) helpers -> sbin (man 8)
#   INSTALL_LIBS          lib/ files users source (the bats library) -> share/vsysfs/lib
# mount-scripts/install-deps is a build helper and is not installed.
# `make uninstall` (same PREFIX and DESTDIR) removes exactly these files and
# the directories that are vsysfs's own.
BINDIR   = $(PREFIX)/bin
SBINDIR  = $(PREFIX)/sbin
DATADIR  = $(PREFIX)/share/vsysfs
MANDIR   = $(PREFIX)/share/man
INSTALL_SCRIPTS      := dell-smi dell-token dell-host-control xen-balloon-set xen-mem-set \
                        vsysfs-mount vsysfs-umount vsysfs-record vsysfs-ctl
INSTALL_SBIN_SCRIPTS := mount.fuse.vsysfs
INSTALL_LIBS         := vsysfs-bats.bash
INSTALL_MACHINES     := $(notdir $(wildcard machines/*.toml))
INSTALL_MAN          := $(notdir $(wildcard man/*.[1-8]))
INSTALL_FILES := $(BINDIR)/vsysfs \
                 $(addprefix $(BINDIR)/,$(INSTALL_SCRIPTS)) \
                 $(addprefix $(SBINDIR)/,$(INSTALL_SBIN_SCRIPTS)) \
                 $(addprefix $(DATADIR)/lib/,$(INSTALL_LIBS)) \
                 $(addprefix $(DATADIR)/machines/,$(INSTALL_MACHINES)) \
                 $(foreach m,$(INSTALL_MAN),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(m))

.PHONY: uninstall install-list
install: $(DAEMON)  ## install the daemon, scripts, machines and man pages under $(DESTDIR)$(PREFIX)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DATADIR)/machines
	install -m 0755 $(DAEMON) $(DESTDIR)$(BINDIR)/vsysfs
	install -m 0755 $(addprefix mount-scripts/,$(INSTALL_SCRIPTS)) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(addprefix mount-scripts/,$(INSTALL_SBIN_SCRIPTS)) $(DESTDIR)$(SBINDIR)/
	$(if $(INSTALL_LIBS),install -d $(DESTDIR)$(DATADIR)/lib)
	$(if $(INSTALL_LIBS),install -m 0644 $(addprefix lib/,$(INSTALL_LIBS)) $(DESTDIR)$(DATADIR)/lib/)
	install -m 0644 $(addprefix machines/,$(INSTALL_MACHINES)) $(DESTDIR)$(DATADIR)/machines/
	$(foreach m,$(INSTALL_MAN),install -D -m 0644 man/$(m) $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(m) &&) true

uninstall:  ## remove what make install put under $(DESTDIR)$(PREFIX) (same PREFIX and DESTDIR)
	rm -f $(addprefix $(DESTDIR),$(INSTALL_FILES))
	-rmdir $(DESTDIR)$(DATADIR)/machines $(if $(INSTALL_LIBS),$(DESTDIR)$(DATADIR)/lib) $(DESTDIR)$(DATADIR) 2>/dev/null

install-list:  ## print the files make install puts (relative to DESTDIR)
	@printf '%s\n' $(INSTALL_FILES)

# make bench (docs/performance.md): the benchmark client and the baseline FUSE file
# system (tests/bench/), then tests/bench/run-bench. Needs root; < 5 min.
BENCH_BIN := $(BUILD)/tests/bench/bench-client $(BUILD)/tests/bench/fuse-baseline
.PHONY: bench
bench: $(DAEMON) $(TEST_DAEMON) $(BENCH_BIN)  ## mount a FUSE baseline and vsysfs, print the performance table
	@BUILD=$(BUILD) tests/bench/run-bench

$(BUILD)/tests/bench/bench-client: tests/bench/bench_client.cpp
	@mkdir -p $(dir $@)
	@echo "  CXX     $@"
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) -o $@ $< -pthread

$(BUILD)/tests/bench/fuse-baseline: tests/bench/fuse_baseline.cpp
	@mkdir -p $(dir $@)
	@echo "  CXX     $@"
	$(Q)$(CXX) $(CXXFLAGS) $(shell pkg-config --cflags fuse3) $(LDFLAGS) -o $@ $< $(shell pkg-config --libs fuse3) -pthread


# --- static checks -------------------------------------------------------------
.PHONY: analyze shellcheck format-check checks
# make analyze: clang's thread-safety analysis (GUARDED_BY, REQUIRES, ...;
# core/thread_annotations.hpp) over every source of core/, devices/ and fs/,
# syntax only (no code generated: about a minute of one core). Any warning
# fails (-Werror). Incremental: a file is checked again when it or a header
# it includes changes ($(BUILD)/analyze/*.ok stamps).
ANALYZE_CXX   ?= clang++
ANALYZE_FLAGS := -std=$(CXXSTD) -fsyntax-only -Wthread-safety -Wthread-safety-beta -Werror
ANALYZE_SRC   := $(CORE_SRC) $(DEVICES_SRC) $(FS_SRC) fs/main.cpp
ANALYZE_OK    := $(patsubst %.cpp,$(BUILD)/analyze/%.ok,$(ANALYZE_SRC))
analyze: $(ANALYZE_OK)  ## clang -Wthread-safety over core/, devices/, fs/ (warnings are errors)
	@echo "analyze: $(words $(ANALYZE_SRC)) files, no thread-safety warnings"
$(BUILD)/analyze/%.ok: %.cpp
	@mkdir -p $(dir $@)
	@echo "  ANALYZE $<"
	$(Q)$(ANALYZE_CXX) $(filter-out -MMD -MP,$(CPPFLAGS)) -MMD -MP -MF $(@:.ok=.d) -MT $@ \
	  $(ANALYZE_FLAGS) $< && touch $@
-include $(ANALYZE_OK:.ok=.d)

# make shellcheck: every shell script and bats file, at shellcheck's default
# severity (style notes included). A finding is disabled only on its line,
# with the reason. For .bats only, SC2030/SC2031 are off: shellcheck models
# each @test as a subshell and reports every variable one test sets and
# another reads (koalaman/shellcheck#2431, #2873, open in 0.9); bats runs a
# test's setup, body and teardown in one process.
# (mount-scripts/vsysfs-ctl and vsysfs-record are Python.)
SHELL_SCRIPTS := .ci/run $(filter-out mount-scripts/vsysfs-ctl mount-scripts/vsysfs-record,$(wildcard mount-scripts/*)) \
                 tests/run-all tests/check-layers tests/conformance/run \
                 tests/format-check tests/package/smoke tests/bench/run-bench tests/bench/gen-machine tests/fuzz/run \
                 $(wildcard tests/*/*.bash) $(wildcard lib/*.bash)
BATS_FILES    := $(wildcard tests/integration/*.bats)
shellcheck:  ## shellcheck over the scripts, helpers and bats suites
	@shellcheck $(SHELL_SCRIPTS)
	@shellcheck --shell=bats --exclude=SC2030,SC2031 $(BATS_FILES)
	@echo "shellcheck: $(words $(SHELL_SCRIPTS) $(BATS_FILES)) files clean"

# make format-check: the C++ lines a change touched must be as clang-format
# (.clang-format) would write them; untouched lines are never checked (the
# tree predates .clang-format). The change: the commits since FORMAT_BASE
# (default HEAD~1, the first parent: for a merge commit, everything the
# merged branch brought; on a branch, `make format-check FORMAT_BASE=main`)
# plus uncommitted edits. Prints the fix as a diff; `git clang-format -f
# FORMAT_BASE` applies it.
FORMAT_BASE ?= HEAD~1
format-check:  ## clang-format check of the C++ lines changed since FORMAT_BASE (default HEAD~1)
	@tests/format-check $(FORMAT_BASE)

checks: analyze shellcheck format-check check-layers  ## all static checks (no build needed)

clean:  ## remove every build directory
	rm -rf build build-*

help:  ## this list
	@grep -hE '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | sed -E 's/:.*## /\t/' | expand -t 16

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(wildcard $(PCH_DIR)/*.d)

# --- trust suites (docs/testing.md) ------------------------------------------
.PHONY: test-hostile test-hostile-full fuzz test-load
HOSTILE_FLAGS ?= --quick
test-hostile: $(DAEMON) $(TEST_DAEMON)  ## hostile-input sweep over every machine (as root; HOSTILE_FLAGS= for the full corpus)
	@python3 tests/hostile/sweep.py --daemon $(DAEMON) --test-daemon $(TEST_DAEMON) $(HOSTILE_FLAGS)
test-hostile-full: HOSTILE_FLAGS :=
test-hostile-full: test-hostile  ## the hostile sweep with the whole corpus

# libFuzzer targets (tests/fuzz/fuzz_*.cpp), built with clang in their own
# directory. `make fuzz FUZZ_SECONDS=N` runs each target N seconds on its
# seed corpus (tests/fuzz/corpus/TARGET, read-only; new inputs go to
# $(FUZZ_BUILD)/corpus/TARGET) after replaying tests/fuzz/regress/TARGET.
# FUZZ_OPT: -O1 (default) for long runs. CI's short run builds faster with
# `make fuzz FUZZ_OPT=-O0 FUZZ_BUILD=build-fuzz-O0 FUZZ_SECONDS=20` (own
# directory: objects do not track flags; about a third less compile time,
# fewer executions per second). Line tables are all sanitizer reports need.
FUZZ_CXX     ?= clang++
FUZZ_OPT     ?= -O1
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 20
FUZZ_FLAGS   := -std=$(CXXSTD) $(FUZZ_OPT) -gline-tables-only -fno-omit-frame-pointer -pthread \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined
# clang's default warnings only (no -Wall: the GCC build has those); WERROR=1
# makes them errors here too.
ifneq ($(WERROR),)
  FUZZ_FLAGS += -Werror
endif
FUZZ_LIB_SRC := $(CORE_SRC) $(DEVICES_SRC) $(FS_SRC) $(TESTDEV_SRC) tests/support/test_env.cpp
FUZZ_SRC_OBJ := $(patsubst %.cpp,$(FUZZ_BUILD)/%.o,$(FUZZ_LIB_SRC))
FUZZ_LIB_OBJ := $(FUZZ_SRC_OBJ) $(FUZZ_BUILD)/gen/default_machine.o
FUZZ_TARGETS := $(patsubst tests/fuzz/%.cpp,%,$(wildcard tests/fuzz/fuzz_*.cpp))
FUZZ_BINS    := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

$(FUZZ_SRC_OBJ) $(FUZZ_BUILD)/gen/default_machine.o: | deps-fuzz
$(FUZZ_SRC_OBJ): $(FUZZ_BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	@echo "  FUZZCXX $<"
	$(Q)$(FUZZ_CXX) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_BUILD)/gen/default_machine.o: $(GEN_SRC)
	@mkdir -p $(dir $@)
	@echo "  FUZZCXX $<"
	$(Q)$(FUZZ_CXX) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_BINS): $(FUZZ_BUILD)/%: tests/fuzz/%.cpp $(FUZZ_LIB_OBJ)
	@echo "  FUZZLD  $@"
	$(Q)$(FUZZ_CXX) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(LDLIBS)

deps-fuzz:
	@mount-scripts/install-deps --fuzz
fuzz-build: deps-fuzz $(FUZZ_BINS)  ## build the libFuzzer targets (clang)
fuzz: deps-fuzz $(FUZZ_BINS)  ## run each fuzz target FUZZ_SECONDS (default 20) after replaying its regressions
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run $(FUZZ_TARGETS)
.PHONY: fuzz-build deps-fuzz
-include $(FUZZ_LIB_OBJ:.o=.d)

LOAD_FLAGS ?= --clients 64 --seconds 20
test-load: $(TEST_DAEMON)  ## 64 clients for 20 s, flock kills, busy unmount (as root; LOAD_FLAGS= to change)
	@python3 tests/load/load.py --build $(BUILD) $(LOAD_FLAGS)

SOAK_SECONDS ?= 180
.PHONY: test-soak
test-soak: $(DAEMON)  ## hotplug, refused stores, a flock flood and line-rate traffic at once; bounds RSS, fds, threads, event log (as root; SOAK_SECONDS=, default 180)
	@SOAK_SECONDS=$(SOAK_SECONDS) tests/soak/soak --build $(BUILD)
