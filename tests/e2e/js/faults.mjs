// Clients that live through Logux server crashes: each user holds createFilter lists of tasks while the
// test kills and restarts the Logux server and the database changes. @logux/client's Reconnect brings
// them back and resubscribes. When the test writes config.expected (the database's final state per
// user and list), this waits until every list equals it (or the timeout), then writes config.out.
//
// While it runs it keeps config.status up to date: {name: how many times that client got synchronized
// after being offline}, so that the test crashes the server again only once every client is back.
//
// Usage: node faults.mjs '<config JSON>'
// config: {url, users: {name: {id, token}}, filters: {label: filter}, ready, status, expected, out, timeout}
import { Client, createFilter, syncMapTemplate } from '@logux/client'
import { Reconnect, WsConnection } from '@logux/core'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import WebSocket from 'ws'

import { finish, listFields, log, newClient, shutdown, start, waitedFor, waitFor } from './common.mjs'

const config = JSON.parse(process.argv[2])
const POLL_MS = 50
const clients = []
const unbinds = []

function differences(got, expected) {
  let count = 0
  for (const id of new Set([...Object.keys(got), ...Object.keys(expected)])) {
    if (JSON.stringify(got[id]) !== JSON.stringify(expected[id])) count += 1
  }
  return count
}

async function main() {
  const state = {}
  const connects = {}
  const writeStatus = () => writeFileSync(config.status, JSON.stringify(connects))
  for (const [name, user] of Object.entries(config.users)) {
    const client = newClient(
      { Client, Reconnect, WsConnection, WebSocket },
      { catchErrors: true, name, subprotocol: '1.0.0', url: config.url, user }
    )
    // putBack: rows a list showed again after the client handled their `tasks/deleted` (Django sends
    // each deletion a second time, later, for these; reported, not a failure by itself).
    const s = {
      client,
      connects: 0,
      deleted: new Set(),
      disconnects: 0,
      lists: {},
      putBack: new Set(),
      resubscribes: []
    }
    let offline = true
    client.node.on('state', () => {
      if (client.state === 'synchronized' && offline) {
        s.connects += 1
        connects[name] = s.connects
        writeStatus()
      }
      if (client.state === 'disconnected') s.disconnects += 1
      offline = client.state === 'disconnected' || (offline && client.state !== 'synchronized')
      log(name, 'state', client.state)
    })
    client.on('add', (action, meta) => {
      if (action.type === 'logux/subscribe' && meta.resubscribe) s.resubscribes.push(action)
      if (action.type === 'tasks/deleted') s.deleted.add(action.id)
    })
    await start(client, clients, 10000, POLL_MS)
    const Task = syncMapTemplate('tasks') // one template per client
    for (const [label, filter] of Object.entries(config.filters)) {
      const list = createFilter(client, Task, filter)
      unbinds.push(
        list.listen(value => {
          for (const row of value.list) if (s.deleted.has(row.id)) s.putBack.add(row.id)
        })
      )
      s.lists[label] = list
    }
    await Promise.all(Object.values(s.lists).map(list => list.loading))
    state[name] = s
  }
  writeFileSync(config.ready, 'ready')
  log('subscribed')
  await waitFor('the test to write the expected state', () => existsSync(config.expected), config.timeout, POLL_MS)
  const expected = JSON.parse(readFileSync(config.expected, 'utf8'))
  const converged = async () => {
    for (const [name, s] of Object.entries(state)) {
      for (const [label, list] of Object.entries(s.lists)) {
        if (differences(listFields(list), expected[name][label]) > 0) return false
      }
    }
    return true
  }
  const convergedAfter = await waitedFor('every list to equal the database', converged, config.convergeMs, POLL_MS)
  const result = { convergedAfter }
  for (const [name, s] of Object.entries(state)) {
    const lists = {}
    for (const [label, list] of Object.entries(s.lists)) lists[label] = listFields(list)
    result[name] = {
      connects: s.connects,
      disconnects: s.disconnects,
      lists,
      putBack: [...s.putBack],
      resubscribes: s.resubscribes,
      state: s.client.state,
      wire: s.client.wire
    }
  }
  return result
}

finish(main, { close: () => shutdown(clients, unbinds), out: config.out })
