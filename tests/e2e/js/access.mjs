// Access matrix with real @logux/client 0.21.1 clients: every user subscribes to several filtered lists
// and probes row channels; then the database changes (an ORM script from the config, and the clients'
// own edits); every message each client receives on the wire is recorded.
//
// Usage: node access.mjs '<config JSON>'
// config: {url, users: {name: {id, token}}, python, exampleDir, filters: {label: filter},
//          probes: {name: [row ids]}, rowSubs: {name: [row ids]}, ownEdits: {name: {change: {id, fields},
//          create: {...fields with id}}}, liveScript, barrier, out}
// Writes to config.out {name: {wire, lists: {label: {id: fields}}, probes: {id: result}, rowStores: {id: value}}}.
import { changeSyncMapById, Client, createFilter, createSyncMap, syncMapTemplate } from '@logux/client'
import { Reconnect, WsConnection } from '@logux/core'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { promisify } from 'node:util'
import WebSocket from 'ws'

const config = JSON.parse(process.argv[2])
const WAIT_MS = 15000
const clients = []
const unbinds = []

function log(...args) {
  process.stderr.write(`[${new Date().toISOString()}] ${args.join(' ')}\n`)
}

async function waitFor(what, check, ms = WAIT_MS) {
  const started = Date.now()
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`timed out after ${ms} ms waiting for: ${what}`)
}

async function connect(name) {
  const user = config.users[name]
  const connection = new Reconnect(new WsConnection(config.url, WebSocket))
  const client = new Client({ server: connection, subprotocol: '1.0.0', token: user.token, userId: user.id })
  client.userName = name
  client.wire = []
  // A copy: the client goes on to change the meta objects of what it received (reasons, time fix).
  connection.on('message', message => client.wire.push(JSON.parse(JSON.stringify(message))))
  client.node.on('error', error => log(name, 'node error', error.stack || error))
  clients.push(client)
  client.start()
  await waitFor(`${name} connects`, () => client.state === 'synchronized')
  return client
}

function listValues(filterStore) {
  const result = {}
  for (const value of filterStore.get().list) {
    const { id, title, column, owner } = value
    result[id] = { column, owner, private: value.private, title }
  }
  return result
}

async function syncing(client) {
  let count = 0
  await client.log.each((action, meta) => {
    if (meta.reasons.includes('syncing')) count += 1
  })
  return count
}

async function main() {
  const names = Object.keys(config.users)
  const state = {}
  for (const name of names) {
    const client = await connect(name)
    // One template per client for its lists, another for its row probes, so a probe really subscribes.
    state[name] = { client, lists: {}, ListTask: syncMapTemplate('tasks'), RowTask: syncMapTemplate('tasks') }
  }
  for (const name of names) {
    const s = state[name]
    for (const [label, filter] of Object.entries(config.filters[name])) {
      const list = createFilter(s.client, s.ListTask, filter)
      unbinds.push(list.listen(() => {}))
      s.lists[label] = list
    }
    await Promise.all(Object.values(s.lists).map(list => list.loading))
  }
  // Row channels: others' private rows (must be denied) and rows the user may read.
  for (const name of names) {
    const s = state[name]
    s.probes = {}
    s.rowStores = {}
    for (const id of [...config.probes[name], ...config.rowSubs[name]]) {
      const store = s.RowTask(id, s.client)
      unbinds.push(store.listen(() => {}))
      try {
        await store.loading
        s.probes[id] = { loaded: true }
        s.rowStores[id] = store
      } catch (error) {
        s.probes[id] = { error: error.name, reason: error.action && error.action.reason }
      }
    }
  }
  // The clients' own edits: a change of one of their rows and a new private row.
  for (const name of names) {
    const s = state[name]
    const own = config.ownEdits[name]
    await changeSyncMapById(s.client, s.ListTask, own.change.id, own.change.fields)
    await createSyncMap(s.client, s.ListTask, own.create)
  }
  const { stdout, stderr } = await promisify(execFile)(config.python, ['-c', config.liveScript], {
    cwd: config.exampleDir
  })
  if (stderr.trim()) log('live script:', stderr.trim())
  log('live script:', stdout.trim())
  for (const name of names) {
    await waitFor(`${name}'s list shows the barrier`, () => config.barrier in listValues(state[name].lists.all))
  }
  await new Promise(resolve => setTimeout(resolve, 500))
  const result = {}
  for (const name of names) {
    const s = state[name]
    const lists = {}
    for (const [label, list] of Object.entries(s.lists)) lists[label] = listValues(list)
    const rowStores = {}
    for (const [id, store] of Object.entries(s.rowStores)) {
      const { title, column, owner } = store.get()
      rowStores[id] = { column, owner, private: store.get().private, title }
    }
    result[name] = { lists, probes: s.probes, rowStores, wire: s.client.wire }
  }
  return result
}

async function shutdown() {
  const quiet = async () => {
    for (const client of clients) {
      if (client.connected && (await syncing(client)) > 0) return false
    }
    return true
  }
  try {
    await waitFor('clients to finish syncing', quiet, 3000)
  } catch (error) {
    log(error.message)
  }
  for (const unbind of unbinds) unbind()
  for (const client of clients) client.destroy()
  await new Promise(resolve => setTimeout(resolve, 50))
}

main()
  .then(async result => {
    await shutdown()
    // A file, not stdout: process.exit() cuts a large write to a pipe short.
    writeFileSync(config.out, JSON.stringify(result))
    process.exit(0)
  })
  .catch(async error => {
    process.stderr.write(`FAILED: ${error.stack || error}\n`)
    await shutdown()
    process.exit(1)
  })
