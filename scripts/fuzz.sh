#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz preset: clang, ASan + UBSan) and runs each one
# for a fixed time. Fails on any crash, leak, sanitizer report, timeout or broken
# invariant; the reproducer is kept in $FUZZ_OUT/artifacts.
#   scripts/fuzz.sh [seconds-per-target]        default 30
#   FUZZ_TARGETS="nmea_fuzz csv_fuzz" scripts/fuzz.sh 60    only these
# Seeds come from the repository's data (fuzz/make-seeds.py) plus fuzz/corpus/<target>.
# Prints one line per target (executions, exec/s, cov, ft, corpus) and "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
OUT=${FUZZ_OUT:-$(mktemp -d /tmp/edgeferry-fuzz.XXXXXX)}
JOBS=${FUZZ_BUILD_JOBS:-$(nproc)}
mkdir -p "$OUT/artifacts"

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$JOBS"
targets=${FUZZ_TARGETS:-$(sed -n 's/^edgeferry_fuzzer(\([a-z_]*\) .*/\1/p' fuzz/CMakeLists.txt)}
python3 fuzz/make-seeds.py "$OUT/seeds"

passed=0
failed=0
lines=()
for t in $targets; do
  mkdir -p "$OUT/corpus/$t" "$OUT/seeds/$t"
  dirs=("$OUT/corpus/$t" "$OUT/seeds/$t")
  [ -d "fuzz/corpus/$t" ] && dirs+=("$PWD/fuzz/corpus/$t")
  log="$OUT/$t.log"
  start=$SECONDS
  # New inputs go to the first (scratch) directory; the seeds and fuzz/corpus are read.
  # ASan's leak check is on by default; -error_exitcode makes every finding fail.
  if (cd "$OUT" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$OLDPWD/build/fuzz/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -error_exitcode=77 -timeout_exitcode=78 -artifact_prefix="$OUT/artifacts/$t-" \
      "${dirs[@]}") >"$log" 2>&1; then
    status=ok
    passed=$((passed + 1))
  else
    status=FAILED
    failed=$((failed + 1))
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  line=$(printf '%-20s %-6s %4ss  execs %-9s exec/s %-6s cov %-5s ft %-6s corpus %s' "$t" "$status" \
    "$((SECONDS - start))" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
  echo "$line"
  lines+=("$line")
  if [ "$status" != ok ]; then
    # The finding: the sanitizer or FUZZ_CHECK report and the reproducer.
    grep -E 'ERROR: |FUZZ_CHECK failed|SUMMARY: |Test unit written|runtime error' "$log" | head -20 | sed 's/^/    /'
    echo "    log: $log  (reproduce: build/fuzz/fuzz/$t <artifact>)"
  fi
done
echo
printf '%s\n' "${lines[@]}"
echo "fuzz: $passed passed, $failed failed (${SECONDS_PER_TARGET}s per target; output in $OUT)"
[ "$failed" -eq 0 ]
