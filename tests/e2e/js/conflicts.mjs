// Conflicting edits from several real @logux/client 0.21.1 clients: each client changes the title and
// column of the same few rows with changeSyncMap, many edits in flight, at random moments. Records the
// meta of every edit it sent (and its time fix, so the Python side can order them as the server does),
// then waits until the edits are processed and every client's rows equal config.expected (written by
// the test once it has read the database), or until the timeout.
//
// Usage: node conflicts.mjs '<config JSON>'
// config: {url, users: {name: {id, token}}, rows: [ids], edits, inFlight, done, expected, out}
import { changeSyncMap, Client, syncMapTemplate } from '@logux/client'
import { Reconnect, WsConnection } from '@logux/core'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import WebSocket from 'ws'

import { finish, log, newClient, shutdown, sleep, start, waitedFor, waitFor } from './common.mjs'

const config = JSON.parse(process.argv[2])
const POLL_MS = 50
const clients = []
const unbinds = []
const COLUMNS = ['todo', 'doing', 'done']

async function connect(name) {
  const client = newClient(
    { Client, Reconnect, WsConnection, WebSocket },
    { catchErrors: true, name, subprotocol: '1.0.0', url: config.url, user: config.users[name], wire: false }
  )
  const sent = []
  client.on('add', (action, meta) => {
    if (action.type === 'tasks/change' && meta.id.includes(` ${client.nodeId} `)) {
      sent.push({ fields: action.fields, id: meta.id, rowId: action.id, time: meta.time })
    }
  })
  await start(client, clients, 10000, POLL_MS)
  const Task = syncMapTemplate('tasks') // one template per client
  const stores = {}
  for (const id of config.rows) {
    stores[id] = Task(id, client)
    unbinds.push(stores[id].listen(() => {}))
  }
  await Promise.all(Object.values(stores).map(store => store.loading))
  return { client, name, sent, stores, outcomes: { fulfilled: 0, rejected: 0 } }
}

async function edit(state, number) {
  const id = config.rows[Math.floor(Math.random() * config.rows.length)]
  const roll = Math.random()
  const fields = {}
  if (roll < 0.6) fields.title = `${state.name} ${number}`
  if (roll >= 0.4) fields.column = COLUMNS[Math.floor(Math.random() * COLUMNS.length)]
  await changeSyncMap(state.stores[id], fields)
}

async function run(state) {
  const inFlight = new Set()
  for (let number = 0; number < config.edits; number++) {
    const promise = edit(state, number).then(
      () => (state.outcomes.fulfilled += 1),
      error => {
        state.outcomes.rejected += 1
        log(state.name, 'edit failed', error.message)
      }
    )
    inFlight.add(promise)
    promise.finally(() => inFlight.delete(promise))
    if (inFlight.size >= config.inFlight) await Promise.race(inFlight)
    if (Math.random() < 0.3) await sleep(Math.floor(Math.random() * 4))
  }
  await Promise.all(inFlight)
}

function rowValues(state) {
  const result = {}
  for (const [id, store] of Object.entries(state.stores)) {
    result[id] = { column: store.get().column, title: store.get().title }
  }
  return result
}

async function main() {
  const states = []
  for (const name of Object.keys(config.users)) states.push(await connect(name))
  const started = Date.now()
  await Promise.all(states.map(run))
  const editMs = Date.now() - started
  log(`edits done in ${editMs} ms`)
  writeFileSync(
    config.done,
    JSON.stringify(
      states.map(s => ({ name: s.name, nodeId: s.client.nodeId, sent: s.sent, timeFix: s.client.node.timeFix }))
    )
  )
  await waitFor('the test to write the expected rows', () => existsSync(config.expected), 120000, POLL_MS)
  const expected = JSON.parse(readFileSync(config.expected, 'utf8'))
  const agree = () => states.every(s => JSON.stringify(rowValues(s)) === JSON.stringify(expected))
  const convergedAfter = await waitedFor('every client to hold the database rows', agree, 15000, POLL_MS)
  const result = { convergedAfter, editMs }
  for (const s of states) result[s.name] = { outcomes: s.outcomes, rows: rowValues(s) }
  return result
}

finish(main, { close: () => shutdown(clients, unbinds), out: config.out })
