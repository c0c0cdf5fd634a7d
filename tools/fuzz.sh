#!/usr/bin/env bash
# fuzz.sh [SECONDS] [HARNESS...] — build the libFuzzer harnesses of tests/fuzz/ with clang (ASan + UBSan) and
# run each for SECONDS (default 20), one after the other. Corpora live in build-fuzz/corpus/<harness>, seeded
# when empty: fuzz_bpe from the tokenizer vectors, fuzz_jsonl from the built-in sample, the others by
# tests/fuzz/seeds.c (files written by the project's own writers, and tests/data/recorded_run). A crash, leak,
# UBSan report or invariant failure leaves its input in build-fuzz/ and makes the script exit non-zero.
# FUZZ_SEED=N fixes libFuzzer's random seed (CI: the same inputs on every run, a prefix of them on a slower
# machine), so that a gate does not pass or fail by chance; unset, every run explores afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(fuzz_bpe fuzz_jsonl fuzz_safetensors fuzz_shard fuzz_results fuzz_token_ids fuzz_checkpoint fuzz_state)
out=build-fuzz
mkdir -p "$out"
CC=${FUZZ_CC:-clang}
have() { printf '#include <%s>\nint main(void){return 0;}\n' "$1" | $CC -x c - -fsyntax-only -DPCRE2_CODE_UNIT_WIDTH=8 2>/dev/null && echo 1 || echo 0; }
flags=(-g -O1 -std=c11 -D_GNU_SOURCE -Isrc -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -DHAVE_PCRE2="$(have pcre2.h)" -DHAVE_JANSSON="$(have jansson.h)" -DHAVE_ZLIB="$(have zlib.h)"
       -DHAVE_OPENMP=0 -DHAVE_OPENBLAS=0 -DHAVE_CURL=0 -DHAVE_CUDA=0 -DHAVE_CUBLASLT=0 # CPU only, plain loops
       -DAB_VERSION='"fuzz"' -DAB_GIT_COMMIT='"fuzz"')
libs=(-ljansson -lpcre2-8 -lz -lm -ldl -lpthread)

# The sources each harness links (globs are expanded when used).
core="src/core/status.c src/core/fsutil.c"
tokenizer="$core src/core/rng.c src/data/bpe.c src/data/embedded.c src/data/hash.c src/data/template.c src/data/tulu.c"
declare -A sources=(
  [fuzz_bpe]="$tokenizer"
  [fuzz_jsonl]="$tokenizer"
  [fuzz_safetensors]="$core src/core/safetensors.c"
  [fuzz_shard]="$core src/data/shard.c src/data/hash.c"
  [fuzz_token_ids]="$core src/data/token_ids.c"
  # report.c and its tables reach the variant registry, hence the attention code and the CPU backend
  [fuzz_results]="src/report/*.c src/core/*.c src/prof/*.c src/attn/*.c src/backend/*.c src/backend/cpu/*.c"
  # the loader builds models: the model, every variant (the registry reaches the profiler) and the CPU backend
  [fuzz_checkpoint]="src/model/checkpoint.c src/model/gpt2.c src/core/*.c src/prof/*.c src/attn/*.c src/backend/*.c src/backend/cpu/*.c"
  # the training-state loader of run --resume: the same sources (the fixed models are built and allocated for training)
  [fuzz_state]="src/model/checkpoint.c src/model/gpt2.c src/core/*.c src/prof/*.c src/attn/*.c src/backend/*.c src/backend/cpu/*.c"
)
# Inputs larger than the default: the published-GPT-2 seed of fuzz_checkpoint (n_embd 64, 1 layer) is ~200 KB.
declare -A max_len=([fuzz_checkpoint]=262144)
# seeds.c writes checkpoints through ab_checkpoint_save, hence the model sources; built once per script run.
seed_sources=(src/data/shard.c src/data/hash.c src/model/checkpoint.c src/model/gpt2.c src/core/*.c src/prof/*.c src/attn/*.c
              src/backend/*.c src/backend/cpu/*.c)
seeds_built=0

seed_corpus() { # HARNESS DIR
  case "$1" in
    fuzz_jsonl) split -l 1 -a 4 data/sample/tulu_sample.jsonl "$2/sample-" ;;
    fuzz_bpe) python3 -c 'import json,sys
for i,l in enumerate(open("tests/data/gpt2_tokenizer_vectors.jsonl")):
    open(f"{sys.argv[1]}/vec-{i:03d}","w").write(json.loads(l)["text"])' "$2" ;;
    *) [ $seeds_built = 1 ] || $CC "${flags[@]}" -o "$out/seeds" tests/fuzz/seeds.c "${seed_sources[@]}" "${libs[@]}"
       seeds_built=1
       "$out/seeds" "$1" "$2" ;;
  esac
}

status=0
for h in "${harnesses[@]}"; do
  [ -n "${sources[$h]:-}" ] || { echo "fuzz.sh: unknown harness $h (known: ${!sources[*]})" >&2; exit 2; }
  # shellcheck disable=SC2086  # the table's entries are word lists and globs
  $CC "${flags[@]}" -fsanitize=fuzzer -o "$out/$h" "tests/fuzz/$h.c" ${sources[$h]} "${libs[@]}"
  corpus="$out/corpus/$h"
  mkdir -p "$corpus"
  [ -n "$(ls -A "$corpus")" ] || seed_corpus "$h" "$corpus"
  echo "== $h: ${seconds}s"
  if ! (cd "$out" && "./$h" -max_total_time="$seconds" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} -max_len="${max_len[$h]:-65536}" -rss_limit_mb=2048 -print_final_stats=1 \
        "corpus/$h" 2>&1 | tail -n 12); then
    status=1
  fi
done
exit $status
