// The bridge's side of LOGUX_SYNC['FANOUT'] = 'bridge': what finding the nodes of one fanned-out change
// costs the bridge (fanOutTargets over N list watches of one match key among 10 keys, plus 10 row
// subscribers), against what FANOUT 'nodes' makes it do for the same change in the same sitting:
// parse Django's request naming the N nodes (JSON.parse of the body). `users ms`: the same fan-out of a
// change whose readers are a Q, with Django listing the 1,000 users of the N nodes but one (each node's
// user is checked against the list).
//
//   node --expose-gc bench/bridge_fanout_bench.mjs            # N = 1,000, 10,000, 100,000
//   node --expose-gc bench/bridge_fanout_bench.mjs 100000     # one N
//
// Printed per N: the median of 21 runs of each, in ms, and their ratio; and what the N watches hold of
// the heap (with --expose-gc, measured after a collection; else "?"). The delivery to the nodes
// (@logux/server sending to each client) is the same in both modes and is not counted.
import { performance } from 'node:perf_hooks'

import { fanOutTargets, Watches } from '../logux_sync/bridge/bridge.mjs'

const RUNS = 21
const sizes = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [1_000, 10_000, 100_000]

function median(values) {
  let sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function timed(work) {
  let times = []
  let result
  for (let i = 0; i < RUNS; i++) {
    let start = performance.now()
    result = work()
    times.push(performance.now() - start)
  }
  return { ms: median(times), result }
}

function heap() {
  if (!globalThis.gc) return NaN
  globalThis.gc()
  return process.memoryUsage().heapUsed
}

console.log('N watches      fan-out ms   users ms   nodes-mode parse ms   ratio   nodes   watches MB')
for (let n of sizes) {
  let before = heap()
  let watches = new Watches()
  for (let i = 0; i < n; i++) {
    // Nine lists in ten match the change; the others watch one of 9 other keys.
    let key = i % 10 === 0 ? `other-${i % 9}` : 'board-1'
    watches.add(`${i % 1000}:c${i}:1`, `cards\n{"board":${i % 10}}`, { key, list: true, plural: 'cards', ttl: 3600 })
  }
  let held = (heap() - before) / 1024 / 1024
  let rows = {}
  for (let i = 0; i < 10; i++) rows[`${i}:row${i}:1`] = { filters: { '{}': true } }
  let info = { channel: 'cards/c1', created: false, keys: ['board-1', 'shape-2', 'shape-3'], plural: 'cards' }
  let fan = timed(() => fanOutTargets(watches, rows, info, ['0:c0']))
  let nodes = fan.result.nodes
  let users = []
  for (let i = 1; i < 1000; i++) users.push(String(i))
  let listed = timed(() => fanOutTargets(watches, rows, { ...info, users }, ['0:c0']))
  let body = JSON.stringify({
    commands: [{ action: { fields: { title: 't' }, id: 'c1', type: 'cards/changed' }, command: 'action', meta: { id: '1 s:1:1 0', nodes, time: 1 } }],
    secret: 'secret',
    version: 4
  })
  let parse = timed(() => JSON.parse(body))
  let row = [
    String(n).padStart(9),
    fan.ms.toFixed(2).padStart(12),
    listed.ms.toFixed(2).padStart(10),
    parse.ms.toFixed(2).padStart(21),
    (fan.ms / parse.ms).toFixed(2).padStart(7),
    String(nodes.length).padStart(7),
    (Number.isNaN(held) ? '?' : held.toFixed(1)).padStart(12)
  ]
  console.log(row.join(' '))
}
