#!/usr/bin/env bash
# validate-workflows.sh: validate the GitHub Actions workflows (.github/workflows/*.yml) offline
# with action-validator from the npm registry (@action-validator/cli, installed outside the repo
# when missing), and check that the ClusterFuzzLite and OSS-Fuzz project files are in place.
# Usage: tools/validate-workflows.sh [FILE.yml...]   (default: every .github/workflows/*.yml)
# Env: CHURN_LINT_DIR (where the validator is installed; default ~/.cache/churnfuzz-lint).
# Exit: 0 valid, 1 a file is invalid or missing, 2 the validator cannot be installed.
set -euo pipefail
repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
lintdir="${CHURN_LINT_DIR:-${HOME:-/root}/.cache/churnfuzz-lint}"
validator="$lintdir/node_modules/.bin/action-validator"
VERSION=0.6.0

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 0
fi
if [ ! -x "$validator" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "validate-workflows: npm not found; install it with: apt-get install -y npm" >&2
    exit 2
  fi
  echo "validate-workflows: installing @action-validator/cli@$VERSION into $lintdir"
  mkdir -p "$lintdir"
  if ! npm install --prefix "$lintdir" --no-audit --no-fund --loglevel=error \
      "@action-validator/cli@$VERSION" "@action-validator/core@$VERSION" >/dev/null; then
    echo "validate-workflows: npm install @action-validator/cli@$VERSION failed" >&2
    exit 2
  fi
fi

files=("$@")
if [ "${#files[@]}" = 0 ]; then
  files=("$repo"/.github/workflows/*.yml)
fi
status=0
for f in "${files[@]}"; do
  if [ ! -f "$f" ]; then
    echo "validate-workflows: $f: no such file"
    status=1
    continue
  fi
  if out="$("$validator" "$f" 2>&1)"; then
    echo "valid: ${f#"$repo"/}"
  else
    echo "INVALID: ${f#"$repo"/}"
    echo "$out" | grep -E '"(detail|path|title)"' | sed 's/^ */    /' | head -n 20
    status=1
  fi
done
# The files the workflows and OSS-Fuzz read.
for f in .clusterfuzzlite/project.yaml .clusterfuzzlite/Dockerfile .clusterfuzzlite/build.sh \
         oss-fuzz/project.yaml oss-fuzz/Dockerfile oss-fuzz/build.sh; do
  if [ ! -s "$repo/$f" ]; then
    echo "validate-workflows: $f is missing or empty"
    status=1
  fi
done
for f in .clusterfuzzlite/build.sh oss-fuzz/build.sh; do
  if [ -f "$repo/$f" ] && ! bash -n "$repo/$f"; then
    echo "validate-workflows: $f: bash syntax error"
    status=1
  fi
done
exit "$status"
