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
import WebSocket from 'ws'

import {
  attempt,
  finish,
  listFields,
  log,
  newClient,
  python,
  shutdown,
  sleep,
  start,
  taskFields,
  waitFor
} from './common.mjs'

const config = JSON.parse(process.argv[2])
const WAIT_MS = 15000
const clients = []
const unbinds = []

function connect(name) {
  const client = newClient(
    { Client, Reconnect, WsConnection, WebSocket },
    { name, subprotocol: '1.0.0', url: config.url, user: config.users[name] }
  )
  return start(client, clients, WAIT_MS)
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
      s.probes[id] = await attempt(
        () => store.loading,
        () => {
          s.rowStores[id] = store
          return { loaded: true }
        }
      )
    }
  }
  // The clients' own edits: a change of one of their rows and a new private row.
  for (const name of names) {
    const s = state[name]
    const own = config.ownEdits[name]
    await changeSyncMapById(s.client, s.ListTask, own.change.id, own.change.fields)
    await createSyncMap(s.client, s.ListTask, own.create)
  }
  const { stdout, stderr } = await python(config, ['-c', config.liveScript])
  if (stderr.trim()) log('live script:', stderr.trim())
  log('live script:', stdout.trim())
  for (const name of names) {
    const barrierShown = () => config.barrier in listFields(state[name].lists.all)
    await waitFor(`${name}'s list shows the barrier`, barrierShown, WAIT_MS)
  }
  await sleep(500)
  const result = {}
  for (const name of names) {
    const s = state[name]
    const lists = {}
    for (const [label, list] of Object.entries(s.lists)) lists[label] = listFields(list)
    const rowStores = {}
    for (const [id, store] of Object.entries(s.rowStores)) rowStores[id] = taskFields(store.get())
    result[name] = { lists, probes: s.probes, rowStores, wire: s.client.wire }
  }
  return result
}

// A file, not stdout: process.exit() cuts a large write to a pipe short.
finish(main, { close: () => shutdown(clients, unbinds, {}), out: config.out })
