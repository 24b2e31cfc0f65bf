#!/bin/bash -eu
# build.sh: builds every fuzzer for every engine, the replay runners, the unit tests, the
# benchmark and the real-threads stress test.
#
# Under OSS-Fuzz / ClusterFuzzLite ($LIB_FUZZING_ENGINE set) it follows their contract: compile
# with $CC $CFLAGS, link each fuzzer with $CXX $CXXFLAGS $LIB_FUZZING_ENGINE into $OUT, and pack
# corpus/<fuzzer>/ and repros/<fuzzer>/ as $OUT/<fuzzer>_seed_corpus.zip, and copy
# fuzzers/<fuzzer>.options with the dictionary it names.
#
# Standalone (the default on a Debian machine) it builds into ${OUT:-out}/:
#   libfuzzer/<fuzzer>   clang, -fsanitize=fuzzer,address,undefined (the core without UBSan)
#   afl/<fuzzer>         afl-clang-fast + libAFLDriver, ASan+UBSan, the core without UBSan
#                        (only when AFL++ is installed)
#   replay/<fuzzer>      standalone main (harness/entry/replay_main.c), as the engine builds
#   tests/churn-tests    unit tests and self-tests, ASan+UBSan
#   bench/bench-runtime  runtime micro-benchmarks, -O2, no sanitizers
#   stress/toy-stress    the toy models on real threads (pthreads backend), ASan
#   stress/tls-stress    the TLS intern cache copy on real threads, Bun's test shape, ASan
#   stress/kernel-real-check  self-check of kernel.h on real syscalls (harness/real/kernel_real.c)
#   stress/httpz-serve   the http.zig copy as a real server on 127.0.0.1 (`churn serve httpz`)
#   stress/httpz-stress  the http.zig copy under connection churn on real threads and sockets
#   stress/btc-serve     the Bitcoin Core HTTPServer copy as a real server (`churn serve btc`)
#   stress/btc-stress    the Bitcoin Core HTTPServer copy under pipelined bursts on real threads
#   stress/bun-serve     Bun's server copy as a real server (`churn serve bun`)
#   tsan/tests/churn-tests  the unit tests under ThreadSanitizer
# Usage: ./build.sh [all|libfuzzer|afl|replay|tests|tsan|bench|stress]...   (default: all)
# Environment: CC, CFLAGS, OUT, SANITIZER (address|undefined|thread|none; default address+UB),
# JOBS (parallel compiles, default: number of cores), FORCE=1 (rebuild even if up to date).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

# Every folder under harness/ other than these holds a system copy (or the toys): the program
# under test, compiled into every fuzzer, test and replay binary.
NOT_COPIES="runtime kernel real entry bench"
COPY_DIRS=()
for d in harness/*/; do
  d="${d%/}"
  case " $NOT_COPIES " in *" ${d#harness/} "*) continue ;; esac
  COPY_DIRS+=("$d")
done
INCLUDES=(-Iharness/runtime -Iharness/kernel -Ifuzzers)
for d in "${COPY_DIRS[@]}"; do INCLUDES+=("-I$d"); done
WARN=(-Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration)
# Libraries every binary that holds the copies links: the HTTP/1.1 request parser of the shared
# HTTP layer (harness/http/), nodejs' http-parser, statically so that fuzzers run anywhere.
LIBS=(-l:libhttp_parser.a)
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
# The fuzz targets, from their registry.
FUZZERS=()
for f in $(sed -n 's/^CF_TARGET(\([A-Za-z0-9_]*\)).*/\1/p' fuzzers/targets.def); do FUZZERS+=("$f"); done

# The runtime and the simulated kernel ("core") play the role of the OS; the copies and toys
# are the program under test. They differ only in TSan builds (see sanitizer_flags).
core_sources() { ls harness/runtime/*.c harness/kernel/*.c 2>/dev/null; }
copy_sources() { for d in "${COPY_DIRS[@]}"; do ls "$d"/*.c 2>/dev/null; done; }

# up_to_date OUTPUT: true when OUTPUT exists and is newer than every source and header.
up_to_date() {
  [ "${FORCE:-0}" != 1 ] || return 1
  [ -e "$1" ] || return 1
  [ -z "$(find harness fuzzers tests build.sh -newer "$1" -type f 2>/dev/null | head -n 1)" ]
}

# compile_objects DIR CC FLAGS... -- SOURCES...: compile in parallel into DIR; the objects are
# left in the array OBJS. Any failed compile stops the build.
compile_objects() {
  local dir="$1" cc="$2"; shift 2
  local flags=()
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done
  shift
  mkdir -p "$dir"
  OBJS=()
  local pids=() s o p failed=0
  for s in "$@"; do
    o="$dir/$(echo "$s" | tr '/' '_' | sed 's/\.c$/.o/')"
    OBJS+=("$o")
    "$cc" "${flags[@]}" -c "$s" -o "$o" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$JOBS" ]; then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  if [ "$failed" != 0 ]; then
    echo "build.sh: compilation failed (see the errors above)" >&2
    exit 1
  fi
}

sanitizer_flags() {
  case "${SANITIZER:-address}" in
    address) echo "-fsanitize=address,undefined -fno-sanitize-recover=undefined" ;;
    undefined) echo "-fsanitize=undefined -fno-sanitize-recover=undefined" ;;
    thread) echo "-fsanitize=thread" ;;
    none) echo "" ;;
    *) echo "build.sh: unknown SANITIZER '${SANITIZER}'" >&2; exit 2 ;;
  esac
}

# Fibers switch with __tsan_switch_to_fiber_no_sync, so under TSan the core must not be
# instrumented (its bookkeeping is shared by all fibers by design); it announces the program's
# real synchronisation instead (harness/runtime/internal.h).
#
# In the engine and replay builds (CORE_UBSAN=0) the core keeps ASan but not UBSan: UBSan's
# checks in the scheduler and the simulated kernel cost about a quarter of a run's time and
# guard our own infrastructure, which the unit tests run under ASan+UBSan and TSan. The copies,
# where the bugs under test live, keep both.
core_sanitizer_flags() {
  local san="${SANITIZER:-address}"
  if [ "$san" = thread ]; then echo "-DCF_TSAN=1"; return; fi
  if [ "${CORE_UBSAN:-1}" = 0 ]; then
    if [ "$san" = address ]; then echo "-fsanitize=address"; fi
    return
  fi
  sanitizer_flags
}

# archive_lib DIR: LIB_OBJS packed as DIR/libchurn.a, left in LIB_ARCHIVE. A fuzzer linked
# against the archive pulls in only the objects it references (its own copy, not the others),
# so libFuzzer's per-run scan of the coverage counters is smaller and every run is cheaper.
archive_lib() {
  LIB_ARCHIVE="$1/libchurn.a"
  rm -f "$LIB_ARCHIVE"
  ar rcs "$LIB_ARCHIVE" "${LIB_OBJS[@]}"
}

# compile_lib DIR FLAGS...: the core and the copies into DIR, objects left in LIB_OBJS.
compile_lib() {
  local dir="$1"; shift
  local core_san=()
  read -r -a core_san <<< "$(core_sanitizer_flags)"
  compile_objects "$dir" "$CC_LIB" "${BASE[@]}" "${core_san[@]}" "$@" -- $(core_sources)
  LIB_OBJS=("${OBJS[@]}")
  compile_objects "$dir" "$CC_LIB" "${BASE[@]}" "${SAN[@]}" "$@" -- $(copy_sources)
  LIB_OBJS+=("${OBJS[@]}")
}

# ---- OSS-Fuzz contract ------------------------------------------------------------------------
if [ -n "${LIB_FUZZING_ENGINE:-}" ]; then
  : "${OUT:?OUT must be set with LIB_FUZZING_ENGINE}" "${CC:=clang}" "${CXX:=clang++}"
  read -r -a cflags <<< "${CFLAGS:-}"
  read -r -a cxxflags <<< "${CXXFLAGS:-}"
  read -r -a engine <<< "$LIB_FUZZING_ENGINE"
  compile_objects "${WORK:-$OUT}/churnfuzz-obj" "$CC" "${cflags[@]}" "${INCLUDES[@]}" -- $(core_sources) $(copy_sources)
  objs=("${OBJS[@]}")
  for fz in "${FUZZERS[@]}"; do
    "$CC" "${cflags[@]}" "${INCLUDES[@]}" -c "fuzzers/$fz.c" -o "${WORK:-$OUT}/churnfuzz-obj/$fz.o"
    "$CXX" "${cxxflags[@]}" "${WORK:-$OUT}/churnfuzz-obj/$fz.o" "${objs[@]}" "${engine[@]}" "${LIBS[@]}" -o "$OUT/$fz"
    # The seed corpus zip holds the committed seeds and the repros: with no toggles (CHURN_BUGS
    # is never set there) every repro must pass, so they are regression inputs for fixed code.
    python3 - "$OUT/${fz}_seed_corpus.zip" "corpus/$fz" "repros/$fz" <<'PY'
import os, sys, zipfile
out, srcs = sys.argv[1], sys.argv[2:]
with zipfile.ZipFile(out, "w") as z:
    for src in srcs:
        if not os.path.isdir(src):
            continue
        for name in sorted(os.listdir(src)):
            path = os.path.join(src, name)
            if os.path.isfile(path) and not name.startswith(".") and name != "index.json":
                z.write(path, name)
PY
    # The .options file (libFuzzer flags, the dictionary it names) and that dictionary.
    if [ -f "fuzzers/$fz.options" ]; then
      cp "fuzzers/$fz.options" "$OUT/"
      dict="$(sed -n 's/^dict *= *//p' "fuzzers/$fz.options")"
      if [ -n "$dict" ]; then cp "fuzzers/$dict" "$OUT/"; fi
    fi
  done
  exit 0
fi

# ---- standalone ------------------------------------------------------------------------------
OUT="${OUT:-$ROOT/out}"
CC="${CC:-clang}"
EXTRA=()
read -r -a EXTRA <<< "${CFLAGS:-}"
SAN=()
read -r -a SAN <<< "$(sanitizer_flags)"
BASE=(-g -O1 -fno-omit-frame-pointer "${WARN[@]}" "${INCLUDES[@]}" "${EXTRA[@]}")

if ! command -v "$CC" >/dev/null 2>&1; then
  echo "build.sh: compiler '$CC' not found; install it with: apt-get install -y clang" >&2
  exit 2
fi
if ! echo '#include <http_parser.h>' | "$CC" -E -x c - >/dev/null 2>&1; then
  echo "build.sh: http_parser.h not found (the shared HTTP layer's parser); install it with:" \
    "apt-get install -y libhttp-parser-dev" >&2
  exit 2
fi

step() { printf 'build.sh: %s\n' "$*" >&2; }

# Oracle code that engines should not count as coverage (each list says why).
COV_IGNORE=()
for f in harness/*/coverage-ignore.txt; do
  [ -e "$f" ] && COV_IGNORE+=("-fsanitize-coverage-ignorelist=$f")
done

build_libfuzzer() {
  local first="$OUT/libfuzzer/${FUZZERS[0]}"
  if up_to_date "$first"; then step "libfuzzer: up to date"; return; fi
  step "libfuzzer: ${FUZZERS[*]}"
  # Edge coverage but no comparison tracing, for the core and the copies alike. The input is
  # a schedule and a workload read through small modular choices: no comparison in a run is
  # against an input byte, so libFuzzer's CMP tables never yield a useful mutation, and
  # feeding them costs a fifth of the run time (the scheduler alone compares fiber states and
  # counters thousands of times per run).
  CORE_UBSAN=0 CC_LIB="$CC" compile_lib "$OUT/obj/libfuzzer" -fsanitize=fuzzer-no-link \
    -fno-sanitize-coverage=trace-cmp "${COV_IGNORE[@]}"
  local objs=("${LIB_OBJS[@]}")
  archive_lib "$OUT/obj/libfuzzer"
  for fz in "${FUZZERS[@]}"; do
    "$CC" "${BASE[@]}" "${SAN[@]}" -fsanitize=fuzzer "fuzzers/$fz.c" "$LIB_ARCHIVE" "${LIBS[@]}" -o "$OUT/libfuzzer/$fz"
  done
  # The minimal two-fiber run, for measuring libFuzzer's exec/s on the runtime alone.
  "$CC" "${BASE[@]}" "${SAN[@]}" -fsanitize=fuzzer -Iharness/bench harness/bench/minimal.c \
    "${objs[@]}" "${LIBS[@]}" -o "$OUT/bench/fuzz-bench-minimal"
}

build_afl() {
  if ! command -v afl-clang-fast >/dev/null 2>&1; then
    step "afl: skipped (afl-clang-fast not found; apt-get install -y afl++)"
    return
  fi
  local first="$OUT/afl/${FUZZERS[0]}"
  if up_to_date "$first"; then step "afl: up to date"; return; fi
  step "afl: ${FUZZERS[*]}"
  export AFL_QUIET=1
  CORE_UBSAN=0 CC_LIB=afl-clang-fast compile_lib "$OUT/obj/afl" "${COV_IGNORE[@]}"
  archive_lib "$OUT/obj/afl"
  for fz in "${FUZZERS[@]}"; do
    afl-clang-fast "${BASE[@]}" "${SAN[@]}" -fsanitize=fuzzer "fuzzers/$fz.c" "$LIB_ARCHIVE" "${LIBS[@]}" -o "$OUT/afl/$fz"
  done
}

build_replay() {
  local first="$OUT/replay/${FUZZERS[0]}"
  if up_to_date "$first"; then step "replay: up to date"; return; fi
  step "replay: ${FUZZERS[*]}"
  CORE_UBSAN=0 CC_LIB="$CC" compile_lib "$OUT/obj/replay"
  compile_objects "$OUT/obj/replay" "$CC" "${BASE[@]}" "${SAN[@]}" -- harness/entry/replay_main.c harness/entry/simulate.c
  local main_obj=("${OBJS[@]}")
  archive_lib "$OUT/obj/replay"
  for fz in "${FUZZERS[@]}"; do
    "$CC" "${BASE[@]}" "${SAN[@]}" "fuzzers/$fz.c" "${main_obj[@]}" "$LIB_ARCHIVE" "${LIBS[@]}" -o "$OUT/replay/$fz"
  done
}

build_tests() {
  if up_to_date "$OUT/tests/churn-tests"; then step "tests: up to date"; return; fi
  step "tests: churn-tests"
  CC_LIB="$CC" compile_lib "$OUT/obj/tests" -DCF_NO_FUZZ_ENTRY
  compile_objects "$OUT/obj/tests" "$CC" "${BASE[@]}" "${SAN[@]}" -Itests -DCF_NO_FUZZ_ENTRY -- \
    tests/*.c $(printf 'fuzzers/%s.c ' "${FUZZERS[@]}")
  "$CC" "${BASE[@]}" "${SAN[@]}" "${LIB_OBJS[@]}" "${OBJS[@]}" "${LIBS[@]}" -o "$OUT/tests/churn-tests"
}

build_bench() {
  if up_to_date "$OUT/bench/bench-runtime"; then step "bench: up to date"; return; fi
  step "bench: bench-runtime (-O2, no sanitizers)"
  mkdir -p "$OUT/bench"
  "$CC" -O2 -g "${WARN[@]}" "${INCLUDES[@]}" -Iharness/bench -DCF_NO_FUZZ_ENTRY $(core_sources) $(copy_sources) \
    harness/bench/bench_runtime.c harness/bench/minimal.c fuzzers/fuzz_sim_selftest.c \
    "${LIBS[@]}" -o "$OUT/bench/bench-runtime"
}

# The unit tests again under ThreadSanitizer (out/tsan/tests/churn-tests): keeps the fiber
# annotations honest (tests/test_tsan.c) and the whole suite race-free as TSan sees it.
build_tsan() {
  if [ "${SANITIZER:-address}" = thread ]; then return; fi
  if up_to_date "$OUT/tsan/tests/churn-tests"; then step "tsan: up to date"; return; fi
  step "tsan: churn-tests under ThreadSanitizer"
  SANITIZER=thread OUT="$OUT/tsan" "$ROOT/build.sh" tests
}

build_stress() {
  # The last binary built below: when it is up to date, so are the others.
  if up_to_date "$OUT/stress/bun-serve"; then step "stress: up to date"; return; fi
  step "stress: toy-stress, tls-stress, kernel-real-check, httpz-serve, btc-serve, bun-serve (pthreads backend, ASan)"
  mkdir -p "$OUT/stress"
  local real=(harness/real/platform_real.c harness/runtime/bugs.c harness/runtime/pool.c
              harness/runtime/report.c)
  local san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -pthread)
  "$CC" "${BASE[@]}" "${san[@]}" \
    "${real[@]}" harness/real/toy_stress.c harness/toys/toys.c -o "$OUT/stress/toy-stress"
  "$CC" "${BASE[@]}" "${san[@]}" \
    "${real[@]}" harness/real/stress.c harness/real/tls_stress.c harness/tls_intern/*.c -o "$OUT/stress/tls-stress"
  # The copies on the real kernel: kernel.h on Linux syscalls instead of the simulation.
  real+=(harness/real/kernel_real.c)
  "$CC" "${BASE[@]}" "${san[@]}" \
    "${real[@]}" harness/real/kernel_real_check.c -o "$OUT/stress/kernel-real-check"
  "$CC" "${BASE[@]}" "${san[@]}" \
    "${real[@]}" harness/real/serve.c harness/real/httpz_serve.c harness/http/*.c harness/httpz/*.c \
    "${LIBS[@]}" -o "$OUT/stress/httpz-serve"
  "$CC" "${BASE[@]}" "${san[@]}" \
    "${real[@]}" harness/real/stress.c harness/real/httpz_stress.c harness/http/*.c harness/httpz/*.c "${LIBS[@]}" \
    -o "$OUT/stress/httpz-stress"
  "$CC" "${BASE[@]}" "${san[@]}" \
    "${real[@]}" harness/real/serve.c harness/real/btc_serve.c harness/http/*.c harness/btc_http/*.c \
    "${LIBS[@]}" -o "$OUT/stress/btc-serve"
  "$CC" "${BASE[@]}" "${san[@]}" \
    "${real[@]}" harness/real/stress.c harness/real/btc_stress.c harness/http/*.c harness/btc_http/*.c \
    "${LIBS[@]}" -o "$OUT/stress/btc-stress"
  "$CC" "${BASE[@]}" "${san[@]}" \
    "${real[@]}" harness/real/serve.c harness/real/bun_serve.c harness/http/*.c harness/bun_server/*.c \
    "${LIBS[@]}" -o "$OUT/stress/bun-serve"
}

mkdir -p "$OUT"/{libfuzzer,afl,replay,tests,bench,stress}
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(all)
for t in "${targets[@]}"; do
  case "$t" in
    all) build_libfuzzer; build_afl; build_replay; build_tests; build_tsan; build_bench; build_stress ;;
    libfuzzer) build_libfuzzer ;;
    afl) build_afl ;;
    replay) build_replay ;;
    tests) build_tests ;;
    bench) build_bench ;;
    stress) build_stress ;;
    tsan) build_tsan ;;
    *) echo "build.sh: unknown target '$t' (see ./build.sh --help)" >&2; exit 2 ;;
  esac
done
step "done: $OUT"
