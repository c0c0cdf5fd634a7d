#!/usr/bin/env bash
# fuzz.sh [SECONDS] [HARNESS...] — build the libFuzzer harnesses of tests/fuzz/ with clang (ASan + UBSan) and
# run each for SECONDS (default 20). Corpora live in build-fuzz/corpus/<harness> (seeded from tests/data and
# the built-in sample); a crash leaves its input in build-fuzz/ and makes the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(fuzz_bpe fuzz_jsonl)
out=build-fuzz
mkdir -p "$out"
CC=${FUZZ_CC:-clang}
have() { printf '#include <%s>\nint main(void){return 0;}\n' "$1" | $CC -x c - -fsyntax-only -DPCRE2_CODE_UNIT_WIDTH=8 2>/dev/null && echo 1 || echo 0; }
flags=(-g -O1 -std=c11 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -DHAVE_PCRE2="$(have pcre2.h)" -DHAVE_JANSSON="$(have jansson.h)" -DHAVE_ZLIB="$(have zlib.h)")
sources=(src/core/status.c src/core/fsutil.c src/core/rng.c src/data/bpe.c src/data/embedded.c src/data/hash.c
         src/data/template.c src/data/tulu.c)
status=0
for h in "${harnesses[@]}"; do
  $CC "${flags[@]}" -o "$out/$h" "tests/fuzz/$h.c" "${sources[@]}" -ljansson -lpcre2-8 -lz -lpthread
  corpus="$out/corpus/$h"
  mkdir -p "$corpus"
  if [ -z "$(ls -A "$corpus")" ]; then
    if [ "$h" = fuzz_jsonl ]; then split -l 1 -a 4 data/sample/tulu_sample.jsonl "$corpus/sample-"
    else python3 -c 'import json,sys
for i,l in enumerate(open("tests/data/gpt2_tokenizer_vectors.jsonl")):
    open(f"{sys.argv[1]}/vec-{i:03d}","w").write(json.loads(l)["text"])' "$corpus"; fi
  fi
  echo "== $h: ${seconds}s"
  if ! (cd "$out" && "./$h" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
        "corpus/$h" 2>&1 | tail -n 12); then
    status=1
  fi
done
exit $status
