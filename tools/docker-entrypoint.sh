#!/usr/bin/env bash
# docker-entrypoint.sh: the churnfuzz image's entry point (installed as
# /usr/local/bin/churnfuzz-entrypoint). Runs ./churn with OUT=/churnfuzz/out/docker, so that the
# corpus, crashes and minimized repros of a run land in out/docker/ of a bind-mounted checkout
# (docker run -v "$PWD:/churnfuzz" ...) and a host build in out/ is never used in the container.
# The image's own build (made at `docker build` time in $CHURN_IMAGE_OUT) is copied there when
# the checkout's build inputs are the ones the image was built from; otherwise build.sh rebuilds
# from the checkout once. A source hash in $OUT/.source-hash records which inputs $OUT matches.
# Usage: churnfuzz-entrypoint [CHURN ARGS...] | churnfuzz-entrypoint --source-hash
set -euo pipefail
cd /churnfuzz

source_hash() {
  find harness fuzzers tests build.sh -type f ! -name '.*' -print0 | LC_ALL=C sort -z \
    | xargs -0 sha1sum | sha1sum | cut -d' ' -f1
}
if [ "${1:-}" = "--source-hash" ]; then
  source_hash
  exit 0
fi

export OUT="${OUT:-/churnfuzz/out/docker}"
image_out="${CHURN_IMAGE_OUT:-/opt/churnfuzz/out}"
want="$(source_hash)"
if [ "$(cat "$OUT/.source-hash" 2>/dev/null)" != "$want" ]; then
  mkdir -p "$OUT"
  if [ "$(cat "$image_out/.source-hash" 2>/dev/null)" = "$want" ]; then
    # The same inputs: the image's binaries, touched so that they are newer than the checkout.
    for part in libfuzzer afl replay tests tsan bench stress toolchain.txt; do
      if [ -e "$image_out/$part" ]; then
        rm -rf "${OUT:?}/$part"
        cp -a "$image_out/$part" "$OUT/"
        find "$OUT/$part" -exec touch {} +
      fi
    done
    echo "churnfuzz-entrypoint: $OUT: the image's build (sources $want)" >&2
  else
    echo "churnfuzz-entrypoint: the checkout's sources differ from the image's;" \
      "building into $OUT" >&2
    FORCE=1 ./build.sh >&2
  fi
  echo "$want" > "$OUT/.source-hash"
fi
exec ./churn "$@"
