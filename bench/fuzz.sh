#!/usr/bin/env bash
# A longer fuzzing run than the test suite's 10 s a target: SECONDS per target (default 600),
# all targets or those named. The corpus in fuzz/corpus/ grows from run to run.
# Usage: bench/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
# With AddressSanitizer here (unsafe Rust's memory errors), unless FUZZ_SANITIZER says otherwise.
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address} exec "$(dirname "$0")/../fuzz/run" "${1:-600}" "${@:2}"
