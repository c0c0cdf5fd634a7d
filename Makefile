# attnbench — one build. CPU always; the CUDA backend when nvcc is found (CUDA=auto|0|1).
# `make help` lists the targets; `make print-config` shows which features were found.

CUDA        ?= auto
BUILD       ?= build
CC          ?= cc
NVCC        ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_HOME   ?= $(patsubst %/bin/nvcc,%,$(NVCC))
WERROR      ?= $(if $(CI),1,0)
SANITIZE    ?= 0
PREFIX      ?= /usr/local
BIN         ?= attnbench

.DEFAULT_GOAL := all
SHELL := /bin/bash

# ---------------------------------------------------------------- feature probes
HASH := \#
comma := ,
has_header = $(shell printf '$(HASH)include <$(1)>\nint main(void){return 0;}\n' | $(CC) -x c - -fsyntax-only $(2) >/dev/null 2>&1 && echo 1 || echo 0)
HAVE_OPENMP   := $(shell printf 'int main(void){return 0;}\n' | $(CC) -x c - -fopenmp -o /dev/null >/dev/null 2>&1 && echo 1 || echo 0)
# OpenBLAS: the OpenMP build when installed (its threads share OpenMP's pool instead of spinning against it),
# else whichever libopenblas the system provides.
MULTIARCH     := $(shell $(CC) -print-multiarch 2>/dev/null)
OPENBLAS_FLAVOUR := $(if $(wildcard /usr/lib/$(MULTIARCH)/openblas-openmp/libopenblas.so),openblas-openmp,openblas-pthread)
OPENBLAS_INC  := /usr/include/$(MULTIARCH)/$(OPENBLAS_FLAVOUR)
OPENBLAS_LIB  := /usr/lib/$(MULTIARCH)/$(OPENBLAS_FLAVOUR)
HAVE_OPENBLAS := $(call has_header,cblas.h,-I$(OPENBLAS_INC))
HAVE_JANSSON  := $(call has_header,jansson.h)
HAVE_PCRE2    := $(shell printf '$(HASH)define PCRE2_CODE_UNIT_WIDTH 8\n$(HASH)include <pcre2.h>\nint main(void){return 0;}\n' | $(CC) -x c - -fsyntax-only >/dev/null 2>&1 && echo 1 || echo 0)
HAVE_ZLIB     := $(call has_header,zlib.h)
HAVE_CURL     := $(call has_header,curl/curl.h)
HAVE_GNUPLOT  := $(shell command -v gnuplot >/dev/null 2>&1 && echo 1 || echo 0)
ifeq ($(CUDA),auto)
  HAVE_CUDA := $(if $(NVCC),1,0)
else
  HAVE_CUDA := $(CUDA)
endif
HAVE_CUBLASLT := $(if $(wildcard $(CUDA_HOME)/lib64/libcublasLt.so*),$(HAVE_CUDA),0)

# ---------------------------------------------------------------- flags
VERSION := 0.1.0
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
WARN   := -Wall -Wextra -Wshadow -Wundef -Wno-unused-parameter -Wno-missing-field-initializers
ifeq ($(WERROR),1)
  WARN += -Werror
endif
CFLAGS ?= -O2 -g -march=x86-64-v2
CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN) -Isrc -MMD -MP \
          -DAB_VERSION='"$(VERSION)"' -DAB_GIT_COMMIT='"$(GIT_COMMIT)"' \
          -DHAVE_OPENMP=$(HAVE_OPENMP) -DHAVE_OPENBLAS=$(HAVE_OPENBLAS) -DHAVE_JANSSON=$(HAVE_JANSSON) \
          -DHAVE_PCRE2=$(HAVE_PCRE2) -DHAVE_ZLIB=$(HAVE_ZLIB) -DHAVE_CURL=$(HAVE_CURL) \
          -DHAVE_CUDA=$(HAVE_CUDA) -DHAVE_CUBLASLT=$(HAVE_CUBLASLT)
LDLIBS := -lm -ldl -lpthread
# jansson and PCRE2 are linked statically: the GPU machine has neither (DESIGN.md).
STATIC_LIBS :=
ifeq ($(HAVE_OPENMP),1)
  CFLAGS += -fopenmp
  LDFLAGS += -fopenmp
endif
ifeq ($(HAVE_OPENBLAS),1)
  CFLAGS += -I$(OPENBLAS_INC)
  LDLIBS += $(if $(wildcard $(OPENBLAS_LIB)),-L$(OPENBLAS_LIB) -Wl$(comma)-rpath$(comma)$(OPENBLAS_LIB)) -lopenblas
endif
ifeq ($(HAVE_JANSSON),1)
  STATIC_LIBS += -ljansson
endif
ifeq ($(HAVE_PCRE2),1)
  STATIC_LIBS += -lpcre2-8
endif
ifeq ($(HAVE_ZLIB),1)
  LDLIBS += -lz
endif
ifeq ($(SANITIZE),1)
  CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
  BUILD := $(BUILD)-asan
endif
ifneq ($(STATIC_LIBS),)
  LDLIBS := -Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic $(LDLIBS)
endif

# Hopper only: sm_90a (wgmma-capable) and sm_90. sm_80 is left out: it added a third device pass per .cu
# file on the 2-core build machine and no Ampere card is used. CUDA_GENCODE may be overridden.
CUDA_GENCODE ?= -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_90,code=sm_90
NVCCFLAGS ?= -O3 -lineinfo
NVCCFLAGS += -std=c++17 -Isrc --expt-relaxed-constexpr -Xcompiler -Wall,-Wno-unused-parameter \
             $(CUDA_GENCODE) -DHAVE_CUDA=1 -DHAVE_CUBLASLT=$(HAVE_CUBLASLT)
ifeq ($(WERROR),1)
  NVCCFLAGS += -Werror all-warnings
endif

# ---------------------------------------------------------------- sources
SRC      := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c src/*/*/*.c))
CU_SRC   := $(if $(filter 1,$(HAVE_CUDA)),$(wildcard src/backend/cuda/*.cu),)
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
CU_OBJ   := $(CU_SRC:%.cu=$(BUILD)/%.o)
LIB      := $(BUILD)/libattnbench.objs
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
GPU_TEST_SRC := $(wildcard tests/gpu/test_*.c)
GPU_TEST_BIN := $(GPU_TEST_SRC:tests/gpu/%.c=$(BUILD)/tests/gpu/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
ifeq ($(HAVE_CUDA),1)
  LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart_static -lcublasLt -lcublas -lrt -lstdc++
endif

# tests find the binary through AB_BIN
.PHONY: all tests-build attnbench-asan help print-config deps test test-asan test-gpu study bench bench-tokenizer fuzz clean install format

all: $(BIN)

$(BIN): $(BUILD)/src/main.o $(LIB)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $(BUILD)/src/main.o $(OBJ) $(CU_OBJ) $(LDLIBS)

# Objects are linked directly (not through an archive) so that weak references in the variant and
# backend tables (CUDA ops that may not be built) resolve when the object exists.
$(LIB): $(OBJ) $(CU_OBJ)
	@printf '%s\n' $^ > $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

# The files that report the commit rebuild when HEAD moves: the stamp is rewritten only when the commit differs.
COMMIT_STAMP := $(BUILD)/git-commit
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(COMMIT_STAMP) 2>/dev/null)" = "$(GIT_COMMIT)" ] || echo "$(GIT_COMMIT)" > $(COMMIT_STAMP); })
$(addprefix $(BUILD)/src/,main.o cli/info.o report/env.o): $(COMMIT_STAMP)

# src/data/embedded.c pulls these files in with .incbin, which -MMD does not see.
$(BUILD)/src/data/embedded.o: data/gpt2/encoder.json data/gpt2/vocab.bpe data/sample/tulu_sample.jsonl

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	@echo "  NVCC  $<"
	@$(NVCC) $(NVCCFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c tests/test_util.h $(LIB)
	@mkdir -p $(dir $@)
	@echo "  CCLD  $@"
	@$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(OBJ) $(CU_OBJ) $(LDLIBS)

help:
	@echo "attnbench $(VERSION) — targets:"
	@echo "  make               build ./attnbench (CPU; CUDA when nvcc is found; CUDA=0|1 forces)"
	@echo "  make deps          install missing build dependencies with apt-get (Debian 12 / Ubuntu 24.04)"
	@echo "  make study         install, build, run the default study on the built-in sample, write the report"
	@echo "  make test          install, build and run the unit tests (CPU)"
	@echo "  make test-asan     the tests under AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "  make test-gpu      the CUDA tests (on a machine with a GPU)"
	@echo "  make bench         the benchmarks (attnbench bench)"
	@echo "  make bench-tokenizer  tokenizer throughput against js-tiktoken"
	@echo "  make fuzz          short fuzzing runs of the parsers (clang libFuzzer)"
	@echo "  make print-config  which optional features were found"
	@echo "  make clean"

print-config:
	@echo "attnbench $(VERSION) ($(GIT_COMMIT))"
	@echo "  cc        $(CC)"
	@echo "  OpenMP    $(HAVE_OPENMP)"
	@echo "  OpenBLAS  $(HAVE_OPENBLAS) ($(OPENBLAS_FLAVOUR))"
	@echo "  jansson   $(HAVE_JANSSON) (static)"
	@echo "  PCRE2     $(HAVE_PCRE2) (static)"
	@echo "  zlib      $(HAVE_ZLIB)"
	@echo "  libcurl   $(HAVE_CURL) (loaded at run time)"
	@echo "  gnuplot   $(HAVE_GNUPLOT)"
	@echo "  CUDA      $(HAVE_CUDA) $(NVCC)"
	@echo "  cuBLASLt  $(HAVE_CUBLASLT)"

deps:
	@bash tools/install-deps.sh

test: deps
	@$(MAKE) --no-print-directory $(BIN) tests-build
	@AB_BIN=$(abspath $(BIN)) bash tools/run-tests.sh $(BUILD)/tests

tests-build: $(TEST_BIN)

test-asan: deps
	@$(MAKE) --no-print-directory SANITIZE=1 CUDA=0 attnbench-asan

attnbench-asan: $(BUILD)/src/main.o $(LIB) $(TEST_BIN)
	$(CC) $(LDFLAGS) -o $(BUILD)/attnbench $(BUILD)/src/main.o $(OBJ) $(CU_OBJ) $(LDLIBS)
	@ASAN_OPTIONS=detect_leaks=1 AB_BIN=$(abspath $(BUILD)/attnbench) bash tools/run-tests.sh $(BUILD)/tests

$(BUILD)/tests/gpu/%: tests/gpu/%.c tests/test_util.h $(LIB)
	@mkdir -p $(dir $@)
	@echo "  CCLD  $@"
	@$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(OBJ) $(CU_OBJ) $(LDLIBS)

test-gpu: $(BIN) $(GPU_TEST_BIN)
	@AB_BIN=$(abspath $(BIN)) bash tools/run-tests.sh $(BUILD)/tests/gpu

STUDY_DIR ?= results/study-$(shell date -u +%Y%m%dT%H%M%SZ)
study: deps
	@$(MAKE) --no-print-directory $(BIN)
	@# a variant that fails (e.g. not yet implemented on the GPU) is recorded in run.json and shown in the report
	./$(BIN) run --preset tiny --variants all --out $(STUDY_DIR) || echo "study: some variants failed; the report says which and why"
	./$(BIN) report $(STUDY_DIR)
	@echo "study: $(STUDY_DIR)/report.html"

bench: $(BIN)
	./$(BIN) bench

bench-tokenizer: $(BIN)
	AB_BIN=$(BIN) bash tools/bench-tokenizer.sh

fuzz:
	bash tools/fuzz.sh $(or $(FUZZ_SECONDS),20)

clean:
	rm -rf build build-asan $(BIN)

-include $(OBJ:.o=.d) $(CU_OBJ:.o=.d) $(BUILD)/src/main.d
