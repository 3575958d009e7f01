// Load generator for bench/bridge_bench.py: many real Logux clients, each sending actions one after
// another with client.sync() (resolves on `logux/processed`), all clients at once.
//
// Usage: node load.mjs '<config JSON>'
// config: {url, modules (node_modules with @logux/client, @logux/core, ws), subprotocol, users,
//          clients, actions, warmup, kind: 'noop' | 'rows'}
// Prints {count, seconds, perSecond, p50, p99, errors} (latencies in ms).
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const config = JSON.parse(process.argv[2])
const load = path => import(pathToFileURL(join(config.modules, path)).href)
const { changeSyncMapById, Client, createSyncMap, syncMapTemplate } = await load('@logux/client/index.js')
const { Reconnect, WsConnection } = await load('@logux/core/index.js')
const { default: WebSocket } = await load('ws/wrapper.mjs')

function waitFor(check, what, ms = 15000) {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) resolve()
      else if (Date.now() - started > ms) reject(new Error(`timed out: ${what}`))
      else setTimeout(tick, 10)
    }
    tick()
  })
}

async function connect(index) {
  const names = Object.keys(config.users)
  const name = names[index % names.length]
  const user = config.users[name]
  const client = new Client({
    server: new Reconnect(new WsConnection(config.url, WebSocket)),
    subprotocol: config.subprotocol,
    token: user.token,
    userId: user.id
  })
  client.start()
  await waitFor(() => client.state === 'synchronized', `client ${index} connects`)
  const worker = { client, index, userId: Number(user.id) }
  if (config.kind === 'rows') {
    worker.Task = syncMapTemplate('tasks')
    worker.card = `bench-${Date.now().toString(36)}-${index}-${Math.random().toString(36).slice(2, 8)}`
    await createSyncMap(client, worker.Task, {
      column: 'todo',
      id: worker.card,
      owner: worker.userId,
      private: false,
      title: 'bench'
    })
  }
  return worker
}

function send(worker, n) {
  if (config.kind === 'rows') {
    return changeSyncMapById(worker.client, worker.Task, worker.card, { title: `t ${worker.index} ${n}` })
  }
  return worker.client.sync({ seconds: 0, type: 'test/slow' })
}

async function run(worker, count, latencies, errors) {
  for (let n = 0; n < count; n++) {
    const start = performance.now()
    try {
      await send(worker, n)
      latencies.push(performance.now() - start)
    } catch (error) {
      errors.push(String(error.message || error))
    }
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

const workers = await Promise.all(Array.from({ length: config.clients }, (_, i) => connect(i)))
await Promise.all(workers.map(w => run(w, config.warmup, [], [])))
const latencies = []
const errors = []
const started = performance.now()
await Promise.all(workers.map(w => run(w, config.actions, latencies, errors)))
const seconds = (performance.now() - started) / 1000
latencies.sort((a, b) => a - b)
process.stdout.write(
  JSON.stringify({
    count: latencies.length,
    errors: errors.slice(0, 5),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    perSecond: latencies.length / seconds,
    seconds
  }) + '\n'
)
for (const w of workers) w.client.destroy()
setTimeout(() => process.exit(0), 50)
