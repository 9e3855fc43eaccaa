#!/usr/bin/env bash
# Runs the throughput bench (benches/, issue 6) side by side with every
# peer, after installing the optional ones it can:
#
#   - wrk and h2load, Debian's packages `wrk` and `nghttp2-client`
#     (apt-get, when running as root and they are missing);
#   - Node's undici from npm, into target/bench/node (undici@7: the line
#     that runs on Node 20; set BENCH_NODE_UNDICI_SPEC to pick another).
#
# An install that fails is not an error: that peer is reported as missing
# in the table and in target/bench/throughput.json.
#
# Usage: scripts/bench.sh [scenario-filter ...]
#   BENCH_SECS=5 BENCH_WARMUP=1 BENCH_RUNS=3    window, warm-up, runs (the defaults)
#   BENCH_FILTER=h1-12b,memory                  scenarios whose name contains one of these
#   BENCH_CLIENTS=undici-request,hyper-raw      only these clients
#   BENCH_MEMORY_CONNECTIONS=1000               idle connections in the memory comparison
#   BENCH_NO_PIN=1                              do not pin server and clients to cores
#   BENCH_SKIP_INSTALL=1                        install nothing
# A smoke run: BENCH_SECS=1 BENCH_WARMUP=0.5 BENCH_RUNS=1 scripts/bench.sh
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1
target="${CARGO_TARGET_DIR:-$root/target}"

note() { echo "bench.sh: $*" >&2; }

install_debian_tools() {
  local packages=()
  command -v wrk >/dev/null 2>&1 || packages+=(wrk)
  command -v h2load >/dev/null 2>&1 || packages+=(nghttp2-client)
  [ "${#packages[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    note "not root or no apt-get: ${packages[*]} stay missing"
    return 0
  fi
  note "installing ${packages[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"; } >&2; then
    note "apt-get install ${packages[*]} failed: reported as missing"
  fi
}

install_node_undici() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    note "node or npm not installed: node-undici reported as missing"
    return 0
  fi
  local dir="$target/bench/node"
  local spec="${BENCH_NODE_UNDICI_SPEC:-undici@7}"
  if [ -f "$dir/node_modules/undici/package.json" ] && [ -z "${BENCH_NODE_UNDICI_SPEC:-}" ]; then
    return 0
  fi
  mkdir -p "$dir"
  note "installing $spec into $dir"
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$spec" >&2; then
    note "npm install $spec failed: node-undici reported as missing"
  fi
}

if [ -z "${BENCH_SKIP_INSTALL:-}" ]; then
  install_debian_tools
  install_node_undici
fi

cargo bench -p undici-bench --bench throughput -- "$@"
