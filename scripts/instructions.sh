#!/usr/bin/env bash
# Instructions per request of in-process clients, counted by callgrind
# (issue 6): the steady figure where req/s and CPU time move with the
# host. Each client runs the scenario twice, with N1 and N2 requests
# (`BENCH_REQUESTS`); the difference of the two counts over N2 - N1
# cancels start-up and the connections' set-up. The server is a child
# process that callgrind leaves out.
#
# Usage: scripts/instructions.sh <scenario> <client> [client ...]
#   scripts/instructions.sh h1-12b-n16 undici-request hyper-raw
#   TOP=30 scripts/instructions.sh h1-12b-n16 undici-request hyper-raw
#     also prints the TOP functions (self cost per request) where the
#     first client differs most from the second
#   N1=10000 N2=30000                 the two counted runs (the defaults)
#   I1=32768                          also simulates a 32 KiB, 8-way L1
#                                     instruction cache and counts its misses
#   INSTRUCTIONS_SKIP_BUILD=1         use the bench binary built last
#
# Needs valgrind (Debian's package `valgrind`; installed with apt-get
# when running as root). Takes about a minute per client. The counts and
# callgrind's files go to target/bench/callgrind/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/bench/callgrind"
n1="${N1:-10000}"
n2="${N2:-30000}"
top="${TOP:-0}"
i1="${I1:-}"
sim=()
[ -n "$i1" ] && sim=(--cache-sim=yes "--I1=$i1,8,64")

note() { echo "instructions.sh: $*" >&2; }

if [ "$#" -lt 2 ]; then
  sed -n '9,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
if [ "$n2" -le "$n1" ]; then
  note "N2 ($n2) must be above N1 ($n1)"
  exit 2
fi
scenario="$1"
shift

if ! command -v valgrind >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "installing valgrind"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; } >&2
  else
    note "valgrind is not installed (Debian's package valgrind)"
    exit 1
  fi
fi

# Line tables name the functions (and their source files) in the
# per-function table; they do not change the code.
if [ -z "${INSTRUCTIONS_SKIP_BUILD:-}" ]; then
  note "building the bench with line tables"
  CARGO_PROFILE_BENCH_DEBUG=line-tables-only \
    cargo bench -p undici-bench --bench throughput --no-run --message-format=json-render-diagnostics \
    | jq -r 'select(.reason == "compiler-artifact" and .target.name == "throughput") | .executable // empty' \
    > "$target/bench-executable.txt"
fi
bin="$(tail -n 1 "$target/bench-executable.txt" 2>/dev/null || true)"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  note "no bench binary: run without INSTRUCTIONS_SKIP_BUILD"
  exit 1
fi
mkdir -p "$out"

# Total instructions (and, with I1, L1i misses) of one counted run of $1
# with $2 requests: "Ir I1mr".
count() {
  local client="$1" requests="$2"
  local file="$out/$scenario.$client.$requests.out"
  if ! BENCH_REQUESTS="$requests" BENCH_RUNS=1 BENCH_FILTER="=$scenario" BENCH_CLIENTS="$client" \
    valgrind --tool=callgrind --trace-children=no "${sim[@]}" --callgrind-out-file="$file" "$bin" \
    >"$file.log" 2>&1; then
    note "the run of $client failed: see $file.log"
    return 1
  fi
  awk '/^events:/ { for (i = 2; i <= NF; i++) column[$i] = i }
       /^(summary|totals):/ { print $(column["Ir"]), ("I1mr" in column ? $(column["I1mr"]) : 0); exit }' "$file"
}

# Self cost per request of each function of client $1, "cost<TAB>name".
per_function() {
  local client="$1" a b
  a="$out/$scenario.$client.$n1.out"
  b="$out/$scenario.$client.$n2.out"
  for file in "$b" "$a"; do
    callgrind_annotate --show=Ir --tree=none --auto=no --threshold=100 "$file" \
      | awk -v sign="$([ "$file" = "$b" ] && echo 1 || echo -1)" '
          /PROGRAM TOTALS|file:function/ { next }
          match($0, /^ *[0-9,]+ +\([^)]*\) +/) {
            cost = substr($0, 1, RLENGTH); sub(/ *\(.*/, "", cost); gsub(/[ ,]/, "", cost)
            name = substr($0, RLENGTH + 1); sub(/ \[[^]]*\]$/, "", name)
            sub(/^[^:]*index\.crates\.io-[0-9a-f]+\//, "", name)
            sub(/^\/rustc\/[0-9a-f]+\/library\//, "", name)
            printf "%d\t%s\n", sign * cost, name
          }'
  done | awk -F'\t' -v n="$((n2 - n1))" '
      { sum[$2] += $1 }
      END { for (k in sum) printf "%.1f\t%s\n", sum[k] / n, k }'
}

declare -a clients=() costs=() misses=()
for client in "$@"; do
  note "counting $client ($n1 and $n2 requests)"
  read -r a a_miss <<<"$(count "$client" "$n1")"
  read -r b b_miss <<<"$(count "$client" "$n2")"
  if [ "$b" -le "$a" ]; then
    # wrk, h2load and Node run as processes of their own, which
    # callgrind does not follow.
    note "no requests counted for $client: not a client of $scenario, or not an in-process one"
    exit 1
  fi
  clients+=("$client")
  costs+=("$(((b - a) / (n2 - n1)))")
  misses+=("$(((b_miss - a_miss) / (n2 - n1)))")
done

echo "Instructions per request, $scenario (callgrind, ($n2 - $n1) requests):"
echo
if [ -n "$i1" ]; then
  echo "| client | instructions per request | vs ${clients[0]} | L1i misses per request ($i1 B, 8-way) |"
  echo "|---|---:|---:|---:|"
else
  echo "| client | instructions per request | vs ${clients[0]} |"
  echo "|---|---:|---:|"
fi
for i in "${!clients[@]}"; do
  ratio="$(awk -v a="${costs[$i]}" -v b="${costs[0]}" 'BEGIN { printf "%.2fx", a / b }')"
  if [ -n "$i1" ]; then
    echo "| ${clients[$i]} | ${costs[$i]} | $ratio | ${misses[$i]} |"
  else
    echo "| ${clients[$i]} | ${costs[$i]} | $ratio |"
  fi
done

if [ "$top" -gt 0 ] && [ "${#clients[@]}" -ge 2 ]; then
  first="${clients[0]}" second="${clients[1]}"
  echo
  echo "Functions where $first differs most from $second (self instructions per request):"
  echo
  echo "| $first | $second | difference | function |"
  echo "|---:|---:|---:|---|"
  LC_ALL=C join -t $'\t' -a 1 -a 2 -e 0 -o 0,1.1,2.1 -1 2 -2 2 \
    <(per_function "$first" | LC_ALL=C sort -t $'\t' -k 2,2) \
    <(per_function "$second" | LC_ALL=C sort -t $'\t' -k 2,2) \
    | awk -F'\t' '{ d = $2 - $3; printf "%.0f\t%.0f\t%+.0f\t%s\t%f\n", $2, $3, d, $1, (d < 0 ? -d : d) }' \
    | sort -t $'\t' -k 5,5 -g -r | head -n "$top" \
    | awk -F'\t' '{ name = $4; gsub(/\|/, "\\|", name); printf "| %s | %s | %s | `%s` |\n", $1, $2, $3, name }'
fi
