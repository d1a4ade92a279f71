#!/usr/bin/env bash
# The cold release build, measured: a fresh target directory (the crate registry may be warm),
# `cargo build --release --timings --bin cloudfilm`, then wall and CPU time and the units that
# took longest. Run it on a quiet machine: other work on the two cores stretches the wall time
# (the CPU time moves much less). Usage: bench/build_time.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d /tmp/cloudfilm-build-time.XXXXXX)}
mkdir -p "$out"
start=$(date +%s.%N)
/usr/bin/time -f "%e %U %S" -o "$out/time" \
  env CARGO_TARGET_DIR="$out/target" cargo build --release --timings --bin cloudfilm >"$out/cargo.log" 2>&1
read -r wall user sys <"$out/time"
echo "commit $(git rev-parse --short HEAD): wall ${wall}s, CPU $(python3 -c "print(round($user + $sys))")s (user ${user}s, sys ${sys}s)"
python3 - "$out/target/cargo-timings/cargo-timing.html" <<'PY'
import json, re, sys
page = open(sys.argv[1]).read()
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);", page, re.S).group(1))
units.sort(key=lambda u: -u["duration"])
print(f"{len(units)} units, {sum(u['duration'] for u in units):.0f} s of unit time; the longest:")
for u in units[:15]:
    print(f"  {u['duration']:6.1f} s  from {u['start']:6.1f} s  {u['name']} {u.get('target', '').strip()}")
PY
rm -rf "$out/target/release"
echo "timing report: $out/target/cargo-timings/cargo-timing.html"
