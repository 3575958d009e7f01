// Two real @logux/client clients for bench/latency_bench.py: alice changes a card's title with
// changeSyncMap, bob holds the card's SyncMap store; one round is the time from alice's call to bob's
// store showing the new title. Rounds run one after another (the next starts once alice's change is
// processed and bob saw it), so nothing queues behind an earlier round.
//
// Usage: node clients.mjs '<config JSON>'
// config: {url, modules (node_modules with @logux/client, @logux/core, ws), subprotocol, users
//          {alice: {id, token}, bob: {id, token}}, rounds, warmup, pause (ms between rounds)}
// Prints {count, latencies (ms, in order), p50, p99}.
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

import { newClient, sleep, start, waitFor } from '../../tests/e2e/js/common.mjs'

const config = JSON.parse(process.argv[2])
const load = path => import(pathToFileURL(join(config.modules, path)).href)
const { changeSyncMap, Client, createSyncMap, syncMapTemplate } = await load('@logux/client/index.js')
const { Reconnect, WsConnection } = await load('@logux/core/index.js')
const { default: WebSocket } = await load('ws/wrapper.mjs')

const clients = []
const connect = name => {
  const user = config.users[name]
  const client = newClient({ Client, Reconnect, WebSocket, WsConnection }, { ...config, name, user, wire: false })
  return start(client, clients, 15000, 5)
}

const alice = await connect('alice')
const bob = await connect('bob')
// Each client its own template: syncMapTemplate caches stores by id, not per client.
const AliceTask = syncMapTemplate('tasks')
const BobTask = syncMapTemplate('tasks')
const id = `lat-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
const fields = { column: 'todo', owner: Number(config.users.alice.id), private: false, title: 'start' }
await createSyncMap(alice, AliceTask, { id, ...fields })
const aliceStore = AliceTask(id, alice)
const unbindAlice = aliceStore.listen(() => {})
await waitFor('alice loads the card', () => !aliceStore.get().isLoading, 15000, 5)

const bobStore = BobTask(id, bob)
let seen = null // [title, performance.now()] of bob's latest store update
const unbindBob = bobStore.listen(value => {
  seen = [value.title, performance.now()]
})
await waitFor('bob loads the card', () => !bobStore.get().isLoading && bobStore.get().title === 'start', 15000, 5)

async function round(n) {
  const title = `round ${n}`
  const started = performance.now()
  const processed = changeSyncMap(aliceStore, { title })
  await waitFor(`bob sees ${title}`, () => seen && seen[0] === title, 15000, 5)
  const latency = seen[1] - started
  await processed
  return latency
}

for (let n = 0; n < config.warmup; n++) await round(-n - 1)
const latencies = []
for (let n = 0; n < config.rounds; n++) {
  latencies.push(await round(n))
  if (config.pause) await sleep(config.pause)
}
const sorted = [...latencies].sort((a, b) => a - b)
const at = p => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
process.stdout.write(JSON.stringify({ count: latencies.length, latencies, p50: at(50), p99: at(99) }) + '\n')
unbindAlice()
unbindBob()
for (const client of clients) client.destroy()
setTimeout(() => process.exit(0), 50)
