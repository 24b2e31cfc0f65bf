#!/usr/bin/env bash
# docker-check.sh: build the Docker image and use it as a user would, with podman (Debian's
# package, as root, runtime runc) in place of a Docker engine:
#   1. a debian:bookworm base image, made with debootstrap when podman has none (cached as a
#      tarball in $CHURN_DOCKER_CACHE);
#   2. `build -t churnfuzz .` from this checkout;
#   3. `run --rm churnfuzz test --quick`: the test suite in the image's own copy must pass;
#   4. `run --rm -v COPY:/churnfuzz churnfuzz fuzz ...` with a copy of this checkout bind-mounted:
#      the self-test's bug must be found, and its crash, minimized repro and work corpus must be
#      on the host afterwards, in COPY/out/docker/; then a short fuzz of a system copy with no
#      toggles must grow its corpus there.
# Usage: tools/docker-check.sh [--keep]   (--keep: leave the copy and the image for a look)
# Env: CHURN_DOCKER_CACHE (default /var/cache/churnfuzz), CHURN_DOCKER_TAG (default churnfuzz-check).
# Exit: 0 every step passed, 1 a step failed, 2 podman/debootstrap missing or not root.
set -euo pipefail
repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cache="${CHURN_DOCKER_CACHE:-/var/cache/churnfuzz}"
tag="${CHURN_DOCKER_TAG:-churnfuzz-check}"
keep=0
case "${1:-}" in
  --help|-h) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  --keep) keep=1 ;;
  "") ;;
  *) echo "docker-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "docker-check: podman with runc needs root here; run it as root" >&2
  exit 2
fi
for t in podman runc debootstrap; do
  if ! command -v "$t" >/dev/null 2>&1; then
    echo "docker-check: $t not found; install it with: apt-get install -y podman runc debootstrap" >&2
    exit 2
  fi
done

P=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
t_all=$(date +%s)
step_t=$t_all
step() {
  local now; now=$(date +%s)
  echo "docker-check: $* (+$((now - step_t))s)"
  step_t=$now
}
fail() { echo "docker-check: FAIL: $*" >&2; exit 1; }

# 1. The base image.
if ! "${P[@]}" image exists debian:bookworm; then
  tarball="$cache/debian-bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    step "making debian:bookworm with debootstrap --variant=minbase (cached in $tarball)"
    mkdir -p "$cache"
    root="$(mktemp -d "$cache/rootfs.XXXXXX")"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 \
      || { tail -n 20 "$cache/debootstrap.log" >&2; rm -rf "$root"; fail "debootstrap failed (log $cache/debootstrap.log)"; }
    tar -C "$root" -c . > "$tarball.tmp" && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  "${P[@]}" import "$tarball" debian:bookworm >/dev/null
  step "imported debian:bookworm from $tarball"
fi

# 2. The image, from this checkout.
log_dir="$(mktemp -d /var/tmp/churnfuzz-docker-check.XXXXXX)"
copy="$log_dir/checkout"
cleanup() {
  if [ "$keep" = 0 ]; then rm -rf "$log_dir"; else echo "docker-check: kept $log_dir"; fi
}
trap cleanup EXIT
step "building image $tag (log $log_dir/build.log)"
if ! "${P[@]}" build --network=host "${LIMITS[@]}" -t "$tag" "$repo" >"$log_dir/build.log" 2>&1; then
  tail -n 30 "$log_dir/build.log" >&2
  fail "image build failed"
fi
step "image built"

# 3. The tests in the image's own copy.
if ! "${P[@]}" run --rm "${LIMITS[@]}" "$tag" test --quick >"$log_dir/test.log" 2>&1; then
  tail -n 30 "$log_dir/test.log" >&2
  fail "run $tag test --quick failed (log above)"
fi
summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log_dir/test.log" | tail -n 1)"
case "$summary" in
  *" passed, 0 failed") step "run $tag test --quick: $summary" ;;
  *) tail -n 30 "$log_dir/test.log" >&2; fail "run $tag test --quick: no clean summary ('$summary')" ;;
esac

# 4. Fuzzing with a bind-mounted checkout: a copy of this one (working tree, no out/ or .git).
mkdir -p "$copy"
tar -C "$repo" --exclude=./out --exclude=./.git -c . | tar -C "$copy" -x
set +e
"${P[@]}" run --rm "${LIMITS[@]}" -v "$copy:/churnfuzz" "$tag" \
  fuzz fuzz_sim_selftest --bugs toy-lost-update --time 60 --minimize-time 20 >"$log_dir/fuzz-selftest.log" 2>&1
rc=$?
set -e
crashes=("$copy"/out/docker/crashes/fuzz_sim_selftest/crash-*)
minimized=("$copy"/out/docker/minimized/fuzz_sim_selftest/*-min)
if [ "$rc" != 1 ] || [ ! -e "${crashes[0]}" ] || [ ! -e "${minimized[0]}" ]; then
  tail -n 30 "$log_dir/fuzz-selftest.log" >&2
  fail "bind-mounted fuzz of fuzz_sim_selftest: exit $rc (want 1), crash ${crashes[0]##*/}, minimized ${minimized[0]##*/}"
fi
if ! grep -q "lost-update@" "$log_dir/fuzz-selftest.log"; then
  fail "bind-mounted fuzz of fuzz_sim_selftest: the crash's signature is not lost-update@"
fi
step "bind-mounted fuzz fuzz_sim_selftest --bugs toy-lost-update: on the host: ${#crashes[@]} crash file(s), ${minimized[0]#"$copy"/}"

before=$(find "$copy/corpus/fuzz_tls_intern" -type f | wc -l)
if ! "${P[@]}" run --rm "${LIMITS[@]}" -v "$copy:/churnfuzz" "$tag" \
    fuzz fuzz_tls_intern --time 20 >"$log_dir/fuzz-tls.log" 2>&1; then
  tail -n 30 "$log_dir/fuzz-tls.log" >&2
  fail "bind-mounted fuzz of fuzz_tls_intern with no toggles failed"
fi
after=$(find "$copy/out/docker/work/fuzz_tls_intern/corpus" -type f 2>/dev/null | wc -l)
if [ "$after" -le "$before" ]; then
  fail "bind-mounted fuzz of fuzz_tls_intern: host work corpus has $after files, the seeds $before"
fi
step "bind-mounted fuzz fuzz_tls_intern (no toggles, 20 s): host work corpus out/docker/work/fuzz_tls_intern/corpus has $after files (from $before seeds)"
[ "$keep" = 1 ] || "${P[@]}" rmi "$tag" >/dev/null 2>&1 || true
echo "docker-check: all steps passed in $(( $(date +%s) - t_all ))s"
