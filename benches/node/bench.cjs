'use strict'

// Node's undici in the same closed loop as the Rust clients of
// benches/throughput: BENCH_IN_FLIGHT dispatch() calls always in flight on
// a Pool (an H2CClient for h2c), a warm-up, then a measured window. Prints
// one JSON line: {requests, secs, p50_us, p99_us, cpu_s}, or {missing}.
//
// Run by the throughput bench (clients/node.rs), which sets the variables
// below; undici comes from UNDICI_MODULE (scripts/bench.sh installs
// undici@7 into target/bench/node: undici 8 needs Node 22).

const fs = require('node:fs')

const env = process.env
const undici = require(env.UNDICI_MODULE)
const origin = env.BENCH_ORIGIN
const path = env.BENCH_PATH
const protocol = env.BENCH_PROTOCOL
const inFlight = Number(env.BENCH_IN_FLIGHT)
const bodyLen = Number(env.BENCH_BODY_LEN)
const warmupMs = Number(env.BENCH_WARMUP_MS)
const windowMs = Number(env.BENCH_WINDOW_MS)

function dispatcherFor () {
  if (protocol === 'h2c') {
    if (typeof undici.H2CClient !== 'function') {
      return { missing: 'this undici has no H2CClient (h2c)' }
    }
    return { dispatcher: new undici.H2CClient(origin, { maxConcurrentStreams: Math.max(inFlight, 100), pipelining: inFlight }) }
  }
  const options = { connections: inFlight }
  if (protocol === 'tls') {
    options.connect = { ca: fs.readFileSync(env.BENCH_CA_FILE) }
  }
  return { dispatcher: new undici.Pool(origin, options) }
}

// undici 7's own handler shape (onConnect, onHeaders, onData, onComplete,
// onError): its dispatchers call it without the wrapper the v8-style
// handlers go through, so this is Node's fastest dispatch() path.
function once (dispatcher) {
  return new Promise((resolve, reject) => {
    let len = 0
    dispatcher.dispatch({ origin, path, method: 'GET' }, {
      onConnect () {},
      onHeaders (statusCode) {
        if (statusCode !== 200) reject(new Error(`status ${statusCode}`))
        return true
      },
      onData (chunk) {
        len += chunk.length
        return true
      },
      onComplete () {
        if (len === bodyLen) resolve()
        else reject(new Error(`read ${len} body bytes, expected ${bodyLen}`))
      },
      onError: reject
    })
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const made = dispatcherFor()
  if (made.missing) {
    console.log(JSON.stringify({ missing: made.missing }))
    return
  }
  const dispatcher = made.dispatcher
  let phase = 'warmup'
  const latencies = []

  async function worker () {
    while (phase !== 'stop') {
      const sent = process.hrtime.bigint()
      await once(dispatcher)
      if (phase === 'measure') latencies.push(Number(process.hrtime.bigint() - sent))
    }
  }

  const workers = Array.from({ length: inFlight }, worker)
  await sleep(warmupMs)
  const cpuStart = process.cpuUsage()
  const start = process.hrtime.bigint()
  phase = 'measure'
  await sleep(windowMs)
  phase = 'stop'
  const secs = Number(process.hrtime.bigint() - start) / 1e9
  const cpu = process.cpuUsage(cpuStart)
  await Promise.all(workers)

  const sorted = Float64Array.from(latencies).sort()
  const quantileUs = (q) => {
    if (sorted.length === 0) return 0
    const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)))
    return sorted[rank - 1] / 1000
  }
  console.log(JSON.stringify({
    requests: sorted.length,
    secs,
    p50_us: quantileUs(0.5),
    p99_us: quantileUs(0.99),
    cpu_s: (cpu.user + cpu.system) / 1e6
  }))
  await dispatcher.destroy()
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err))
    process.exit(1)
  }
)
