// The baseline of bench/latency_bench.py: a plain @logux/server 0.14 with addSyncMap for the same
// `tasks` SyncMap the example project syncs, rows kept in memory (per field: value and change time).
// No Django, no bridge: what Logux alone costs from one client's change to another client's store.
//
// Usage: node native_server.mjs <port>   (packages from logux_sync/bridge/node_modules)
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const modules = join(fileURLToPath(import.meta.url), '..', '..', '..', 'logux_sync', 'bridge', 'node_modules')
const { addSyncMap, ChangedAt, Server } = await import(pathToFileURL(join(modules, '@logux/server/index.js')).href)

const port = Number(process.argv[2])
const server = new Server({
  host: '127.0.0.1',
  logger: 'json',
  minSubprotocol: 1,
  port,
  subprotocol: 1
})
server.auth(() => true)

const rows = new Map()
const FIELDS = ['title', 'column', 'private', 'owner']

addSyncMap(server, 'tasks', {
  access: () => true,
  change(ctx, id, fields, time) {
    const row = rows.get(id)
    for (const key of Object.keys(fields)) {
      if (!row[key] || row[key].time < time) row[key] = { time, value: fields[key] }
    }
  },
  create(ctx, id, fields, time) {
    const row = {}
    for (const key of FIELDS) row[key] = { time, value: fields[key] }
    rows.set(id, row)
  },
  load(ctx, id) {
    const row = rows.get(id)
    if (!row) return false
    const data = { id }
    for (const key of FIELDS) data[key] = ChangedAt(row[key].value, row[key].time)
    return data
  }
})

process.on('SIGTERM', async () => {
  await server.destroy()
  process.exit(0)
})
await server.listen()
