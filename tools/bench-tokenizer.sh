#!/usr/bin/env bash
# bench-tokenizer.sh [FILE] — GPT-2 tokenizer throughput of attnbench and of js-tiktoken on the same text, one
# JSON line each, then the ratio. Without FILE, builds a ~3 MB mixed corpus (the built-in sample's messages,
# this repository's C sources and docs, the licence texts in /usr/share/common-licenses) under build/.
# Environment: AB_BIN (default ./attnbench), THREADS (default 1), REPEATS (default 3).
# js-tiktoken is installed on first use with `npm install --prefix tools/anchors js-tiktoken` (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${AB_BIN:-./attnbench}
case $bin in */*) ;; *) bin=./$bin ;; esac
threads=${THREADS:-1}
repeats=${REPEATS:-3}
file=${1:-}
if [ -z "$file" ]; then
  mkdir -p build
  file=build/tokenizer-bench.txt
  {
    python3 -c 'import json,sys
for line in open("data/sample/tulu_sample.jsonl", encoding="utf-8"):
    for m in json.loads(line)["messages"]: print(m["content"])'
    cat src/*/*.c src/*/*.h docs/*.md
    cat /usr/share/common-licenses/* 2>/dev/null || true
  } > "$file"
fi
if [ ! -d tools/anchors/node_modules/js-tiktoken ]; then
  npm install --silent --prefix tools/anchors js-tiktoken >&2
fi
ours=$("$bin" tokenize --bench "$file" --threads "$threads" --repeats "$repeats")
theirs=$(node tools/anchors/bench-js-tiktoken.mjs "$file" "$repeats")
echo "$ours"
echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if a["tokens"] != b["tokens"]:
    print(f"WARNING: token counts differ: attnbench {a['tokens']}, js-tiktoken {b['tokens']}")
print(f"attnbench / js-tiktoken: {a['mb_per_s'] / b['mb_per_s']:.1f}x MB/s ({a['threads']} thread(s) vs 1)")
PY
