#!/usr/bin/env bash
# lint-dockerfile.sh: lint the Dockerfile with two linters from the npm registry (dockerfilelint
# and dockerfile-utils), installing them outside the repo when missing, and check that every
# package an `apt-get install` line names exists in this machine's apt lists (Debian bookworm).
# Usage: tools/lint-dockerfile.sh [DOCKERFILE]   (default: the repo's Dockerfile)
# Env: CHURN_LINT_DIR (where the linters are installed; default ~/.cache/churnfuzz-lint).
# Exit: 0 clean, 1 issues found, 2 tools missing.
set -euo pipefail
repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
dockerfile="${1:-$repo/Dockerfile}"
lintdir="${CHURN_LINT_DIR:-${HOME:-/root}/.cache/churnfuzz-lint}"
bin="$lintdir/node_modules/.bin"

if [ ! -f "$dockerfile" ]; then
  echo "lint-dockerfile: $dockerfile: no such file" >&2
  exit 2
fi
if [ ! -x "$bin/dockerfilelint" ] || [ ! -x "$bin/dockerfile-utils" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "lint-dockerfile: npm not found; install it with: apt-get install -y npm" >&2
    exit 2
  fi
  echo "lint-dockerfile: installing dockerfilelint and dockerfile-utils into $lintdir"
  mkdir -p "$lintdir"
  npm install --prefix "$lintdir" --no-audit --no-fund --loglevel=error \
    dockerfilelint@1.8.0 dockerfile-utils@0.16.3 >/dev/null
fi

status=0
echo "== dockerfilelint $dockerfile"
"$bin/dockerfilelint" "$dockerfile" || status=1

echo "== dockerfile-utils lint $dockerfile"
# dockerfile-utils exits 0 even with warnings: any output is an issue.
out="$("$bin/dockerfile-utils" lint "$dockerfile" 2>&1)" || status=1
if [ -n "$out" ]; then
  echo "$out"
  status=1
else
  echo "no issues"
fi

echo "== apt packages named in $dockerfile"
pkgs="$(python3 - "$dockerfile" <<'PY'
import re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
pkgs = []
for line in text.splitlines():
    if not re.match(r"\s*RUN\b", line):
        continue
    for cmd in re.split(r"&&|;|\|\|", line):
        words = cmd.split()
        if "apt-get" in words and "install" in words:
            for w in words[words.index("install") + 1:]:
                if not w.startswith("-"):
                    pkgs.append(w)
print(" ".join(pkgs))
PY
)"
if ! command -v apt-cache >/dev/null 2>&1; then
  echo "lint-dockerfile: apt-cache not found; cannot check packages" >&2
  exit 2
fi
for p in $pkgs; do
  cand="$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: *//p')"
  if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
    echo "package $p: not found in the apt lists (run apt-get update first?)"
    status=1
  else
    echo "package $p: $cand"
  fi
done

if [ "$status" = 0 ]; then echo "lint-dockerfile: clean"; else echo "lint-dockerfile: issues found"; fi
exit "$status"
