// One real @logux/client 0.21.1 client subscribed to the channels of given rows (syncMapTemplate), which
// records every `tasks/changed` its log accepted: a second action with an id the log holds is dropped,
// so a change sent under a repeated id is lost to it. When the test writes config.expected ({id:
// title}), this waits until its rows show those titles (or the timeout), then writes config.out.
//
// Usage: node rows.mjs '<config JSON>'
// config: {url, user: {id, token}, rows: [ids], ready, expected, out}
import { Client, syncMapTemplate } from '@logux/client'
import { Reconnect, WsConnection } from '@logux/core'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import WebSocket from 'ws'

import { finish, newClient, shutdown, start, waitedFor, waitFor } from './common.mjs'

const config = JSON.parse(process.argv[2])
const POLL_MS = 50
const clients = []
const unbinds = []

async function main() {
  const client = newClient(
    { Client, Reconnect, WsConnection, WebSocket },
    { catchErrors: true, name: 'alice', subprotocol: '1.0.0', url: config.url, user: config.user, wire: false }
  )
  const received = []
  client.on('add', action => {
    if (action.type === 'tasks/changed') received.push([action.id, action.fields.title])
  })
  await start(client, clients, 10000, POLL_MS)
  const Task = syncMapTemplate('tasks')
  const stores = config.rows.map(id => Task(id, client))
  for (const store of stores) unbinds.push(store.listen(() => {}))
  await Promise.all(stores.map(store => store.loading))
  writeFileSync(config.ready, 'ready')
  await waitFor('the test to write the expected titles', () => existsSync(config.expected), 60000, POLL_MS)
  const expected = JSON.parse(readFileSync(config.expected, 'utf8'))
  const shown = () => Object.fromEntries(stores.map(store => [store.get().id, store.get().title]))
  const agree = () => JSON.stringify(shown()) === JSON.stringify(expected)
  const convergedAfter = await waitedFor('the rows to show the database titles', agree, 5000, POLL_MS)
  return { convergedAfter, received, rows: shown() }
}

finish(main, { close: () => shutdown(clients, unbinds), out: config.out })
