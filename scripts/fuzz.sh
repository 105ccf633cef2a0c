#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, through libfuzzer-sys) of tapio's readers of untrusted input,
# on the stable toolchain: the instrumentation cargo-fuzz would ask for, without its nightly-only
# sanitizer (a panic, a hang past -timeout, or memory past -rss_limit_mb is what is caught; the
# targets are safe Rust).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   run each target SECONDS (default 20) on its corpus
#   scripts/fuzz.sh --runs N [TARGET...]    run each target for N executions instead
#   scripts/fuzz.sh --seed                  (re)seed fuzz/corpus from fixtures/ and ../shared/data
#   scripts/fuzz.sh --pack [TARGET...]      minimise each corpus with what runs found (-merge=1)
#                                           into fuzz/corpus/TARGET.tar.gz, the committed corpus
#
# The committed corpus is fuzz/corpus/TARGET.tar.gz; it is unpacked into fuzz/corpus/TARGET/ (not
# committed) before a run. What a run finds goes to fuzz/corpus/TARGET/.work.
# A crash is written to fuzz/artifacts/TARGET/ and the script exits 1; it becomes a regression test
# (see fuzz/README.md). Figures (executions, coverage) are printed per target.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS_ALL=(import_structured import_text import_detected capture otlp_http otlp_grpc)
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tapio/target}/fuzz"

seed() {
  local c=fuzz/corpus
  mkdir -p "$c"/{import_structured,import_text,import_detected,capture,otlp_http,otlp_grpc}
  # The importers: every input of the incident fixtures, and the real dumps beside the repository.
  # The first byte of an import seed chooses the format (see src/lib/fuzz.rs); 0 detects.
  local i=0
  add() { # corpus selector file
    local out="fuzz/corpus/$1/seed-$(sha1sum "$3" | cut -c1-16)-$2"
    { printf "\\x$(printf %02x "$2")"; head -c 16384 "$3"; } >"$out"
  }
  while IFS= read -r f; do
    case "$f" in
      *.gz) continue ;;
      *.json | *.jsonl | *.yaml | *.yml) for s in 0 1 2 3 4 5 6; do add import_structured "$s" "$f"; done ;;
      *) for s in 0 1 2 3 4 5; do add import_text "$s" "$f"; done ;;
    esac
    add import_detected 0 "$f"
    i=$((i + 1))
  done < <(find fixtures/incidents -type f -not -name '*.tapio' -not -name 'expected.json' \
             -not -name 'import.args' -not -name README.md -size -200k; \
           { [ -d ../shared/data ] && find ../shared/data -type f -size -64k -not -name '*.md'; } || true)
  for f in fixtures/captures/*.tapio fixtures/incidents/*/capture.tapio; do
    if [ "$(stat -c %s "$f")" -le 262144 ]; then
      cp "$f" "$c/capture/seed-$(echo "$f" | tr / -)"
    fi
  done
  # OTLP requests: JSON bodies from the fixtures (selector 4: JSON traces), and the SDK's own
  # protobuf requests committed by the OTLP tests (tests/otlp/*.bin) when present.
  while IFS= read -r f; do
    { printf '\x04'; head -c 65536 "$f"; } >"$c/otlp_http/seed-$(basename "$f")"
  done < <(grep -l resourceSpans -r fixtures/incidents --include='*.json' | head -20)
  echo "seeded: $(find "$c" -type f | wc -l) files from $i inputs"
}

build() {
  # What cargo-fuzz passes for libFuzzer's coverage: stable rustc flags. --target keeps the
  # instrumentation off build scripts and proc macros.
  RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
    cargo build --manifest-path fuzz/Cargo.toml --release --target "$TRIPLE" --bins
}

# Unpacks the committed corpus of a target when its directory is missing or older.
unpack() {
  local t="$1" dir="fuzz/corpus/$1" tgz="fuzz/corpus/$1.tar.gz"
  if [ -f "$tgz" ] && { [ ! -d "$dir" ] || [ "$tgz" -nt "$dir/.unpacked" ]; }; then
    mkdir -p "$dir"
    tar -xzf "$tgz" -C "$dir"
    touch "$dir/.unpacked"
  fi
  mkdir -p "$dir"
}

# Minimises a target's corpus and what runs found into its archive.
pack() {
  local t="$1" min
  min="$(mktemp -d)"
  "$CARGO_TARGET_DIR/$TRIPLE/release/$t" -merge=1 -max_len=16384 -rss_limit_mb=2048 -timeout=10 \
    "$min" "fuzz/corpus/$t" "fuzz/corpus/$t/.work" >/dev/null 2>&1
  tar -C "$min" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . \
    | gzip -9n >"fuzz/corpus/$t.tar.gz"
  printf '%-18s %6d inputs, %s\n' "$t" "$(find "$min" -type f | wc -l)" \
    "$(du -h "fuzz/corpus/$t.tar.gz" | cut -f1)"
  rm -rf "$min"
}

secs=20
runs=""
mode=run
case "${1:-}" in
  --seed) seed; exit 0 ;;
  --build) build; exit 0 ;;
  --pack) mode=pack; shift ;;
  --runs) runs="$2"; shift 2 ;;
  [0-9]*) secs="$1"; shift ;;
esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${TARGETS_ALL[@]}")

build
if [ "$mode" = pack ]; then
  for t in "${targets[@]}"; do unpack "$t"; pack "$t"; done
  exit 0
fi
status=0
for t in "${targets[@]}"; do
  unpack "$t"
  corpus="fuzz/corpus/$t"
  work="$corpus/.work"   # what a run finds, kept out of the committed corpus
  mkdir -p "$work" "fuzz/artifacts/$t"
  limit=(-max_total_time="$secs")
  [ -n "$runs" ] && limit=(-runs="$runs")
  log="$(mktemp)"
  if "$CARGO_TARGET_DIR/$TRIPLE/release/$t" "$work" "$corpus" "${limit[@]}" \
      -rss_limit_mb=2048 -timeout=10 -max_len="${FUZZ_MAX_LEN:-16384}" -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
    printf '%-18s ok   %10s executions  %s\n' "$t" "$execs" "$cov"
  else
    status=1
    printf '%-18s FAIL (see below; the input is in fuzz/artifacts/%s/)\n' "$t" "$t"
    grep -v '^#' "$log" | tail -40
  fi
  rm -f "$log"
done
exit $status
