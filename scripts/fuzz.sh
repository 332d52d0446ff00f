#!/usr/bin/env bash
# fuzz.sh: run every fuzz target of the repository (every `func FuzzX` in a
# _test.go file, found afresh each time) for FUZZTIME each, one after the
# other; `make fuzz` calls it. `scripts/fuzz.sh --list` prints the targets
# as "PACKAGE TARGET" lines without running them.
#
# Every target gets -fuzzminimizetime (default 100x): with Go's default of
# 60 s the engine spends its time minimizing each new input, which stalls
# FuzzRoundTrip and FuzzParse (0 execs/s for minutes). A target that needs
# other options can have them in FUZZ_OPTS_<Target>, e.g.
# FUZZ_OPTS_FuzzParse="-parallel 1".
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-60s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-100x}

targets() {
  grep -rl --include='*_test.go' --exclude-dir=.git --exclude-dir=.devcheck -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort | while read -r f; do
    pkg=./$(dirname "${f#./}")
    sed -n -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$f" | while read -r t; do echo "$pkg $t"; done
  done
}

if [ "${1:-}" = "--list" ]; then
  targets
  exit 0
fi

failed=()
while read -r pkg t; do
  echo "== $pkg $t (fuzztime $FUZZTIME)"
  opts_var="FUZZ_OPTS_$t"
  # shellcheck disable=SC2086
  if ! "$GO" test "$pkg" -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" ${!opts_var:-}; then
    failed+=("$pkg $t")
  fi
done < <(targets)
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failing targets (crashers are in the package's testdata/fuzz/):" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
