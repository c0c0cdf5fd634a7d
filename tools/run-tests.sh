#!/usr/bin/env bash
# run-tests.sh DIR — run every test binary in DIR, each printing "ok <case>" / "FAIL <case>: why" lines and
# "# passed N failed M" as its last line; prints the total as "N passed, N failed" and exits non-zero on
# any failure, crash or missing summary.
set -uo pipefail
dir=${1:?usage: run-tests.sh DIR}
export AB_BIN=${AB_BIN:-./attnbench}
pass=0; fail=0
for t in "$dir"/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  out=$("$t" 2>&1); rc=$?
  summary=$(printf '%s\n' "$out" | grep -E '^# passed [0-9]+ failed [0-9]+$' | tail -n 1)
  if [ -z "$summary" ]; then
    printf '%s\n' "$out" | tail -n 20
    echo "FAIL $name: exited $rc without a summary line"
    fail=$((fail + 1)); continue
  fi
  p=$(echo "$summary" | awk '{print $3}'); f=$(echo "$summary" | awk '{print $5}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  printf '%s\n' "$out" | grep -E '^(FAIL|SKIP)' || true
  printf '%-28s %4d passed %4d failed\n' "$name" "$p" "$f"
  pass=$((pass + p)); fail=$((fail + f))
done
echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
