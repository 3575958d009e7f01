// Clients that live through Logux server crashes: each user holds createFilter lists of tasks while the
// test kills and restarts the Logux server and the database changes. @logux/client's Reconnect brings
// them back and resubscribes. When the test writes config.expected (the database's final state per
// user and list), this waits until every list equals it (or the timeout), then writes config.out.
//
// Usage: node faults.mjs '<config JSON>'
// config: {url, users: {name: {id, token}}, filters: {label: filter}, ready, expected, out, timeout}
import { Client, createFilter, syncMapTemplate } from '@logux/client'
import { Reconnect, WsConnection } from '@logux/core'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import WebSocket from 'ws'

const config = JSON.parse(process.argv[2])
const clients = []
const unbinds = []

function log(...args) {
  process.stderr.write(`[${new Date().toISOString()}] ${args.join(' ')}\n`)
}

async function waitFor(what, check, ms) {
  const started = Date.now()
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out after ${ms} ms waiting for: ${what}`)
}

function values(filterStore) {
  const result = {}
  for (const value of filterStore.get().list) {
    result[value.id] = { column: value.column, owner: value.owner, private: value.private, title: value.title }
  }
  return result
}

function differences(got, expected) {
  let count = 0
  for (const id of new Set([...Object.keys(got), ...Object.keys(expected)])) {
    if (JSON.stringify(got[id]) !== JSON.stringify(expected[id])) count += 1
  }
  return count
}

async function main() {
  const state = {}
  for (const [name, user] of Object.entries(config.users)) {
    const connection = new Reconnect(new WsConnection(config.url, WebSocket))
    const client = new Client({ server: connection, subprotocol: '1.0.0', token: user.token, userId: user.id })
    const s = { client, connects: 0, disconnects: 0, resubscribes: [], wire: [], lists: {} }
    // A copy: the client goes on to change the meta objects of what it received (reasons, time fix).
    connection.on('message', message => s.wire.push(JSON.parse(JSON.stringify(message))))
    let offline = true
    client.node.on('state', () => {
      if (client.state === 'synchronized' && offline) s.connects += 1
      if (client.state === 'disconnected') s.disconnects += 1
      offline = client.state === 'disconnected' || (offline && client.state !== 'synchronized')
      log(name, 'state', client.state)
    })
    client.on('add', (action, meta) => {
      if (action.type === 'logux/subscribe' && meta.resubscribe) s.resubscribes.push(action)
    })
    // catch(), not on('error'): a refused reconnect would otherwise be thrown and end the process.
    client.node.catch(error => log(name, 'node error', error.message))
    clients.push(client)
    client.start()
    await waitFor(`${name} connects`, () => client.state === 'synchronized', 10000)
    const Task = syncMapTemplate('tasks') // one template per client
    for (const [label, filter] of Object.entries(config.filters)) {
      const list = createFilter(client, Task, filter)
      unbinds.push(list.listen(() => {}))
      s.lists[label] = list
    }
    await Promise.all(Object.values(s.lists).map(list => list.loading))
    state[name] = s
  }
  writeFileSync(config.ready, 'ready')
  log('subscribed')
  await waitFor('the test to write the expected state', () => existsSync(config.expected), config.timeout)
  const expected = JSON.parse(readFileSync(config.expected, 'utf8'))
  const converged = async () => {
    for (const [name, s] of Object.entries(state)) {
      for (const [label, list] of Object.entries(s.lists)) {
        if (differences(values(list), expected[name][label]) > 0) return false
      }
    }
    return true
  }
  let convergedAfter = null
  try {
    convergedAfter = await waitFor('every list to equal the database', converged, config.convergeMs)
  } catch (error) {
    log(error.message)
  }
  const result = { convergedAfter }
  for (const [name, s] of Object.entries(state)) {
    const lists = {}
    for (const [label, list] of Object.entries(s.lists)) lists[label] = values(list)
    result[name] = {
      connects: s.connects,
      disconnects: s.disconnects,
      lists,
      resubscribes: s.resubscribes,
      state: s.client.state,
      wire: s.wire
    }
  }
  return result
}

async function shutdown() {
  for (const unbind of unbinds) unbind()
  for (const client of clients) client.destroy()
  await new Promise(resolve => setTimeout(resolve, 50))
}

main()
  .then(async result => {
    await shutdown()
    writeFileSync(config.out, JSON.stringify(result))
    process.exit(0)
  })
  .catch(async error => {
    process.stderr.write(`FAILED: ${error.stack || error}\n`)
    await shutdown()
    process.exit(1)
  })
