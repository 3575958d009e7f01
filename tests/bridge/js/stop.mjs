// One @logux/client 0.23 client of the bridge: a slow action (test/slow) and then a change of a row,
// both confirmed (`synced`) by the bridge; tests/bridge/test_bridge_stop.py stops the bridge while
// the slow one is still in Django, and starts it again.
//
// Usage: node stop.mjs '<config JSON>'
// config: {url, user: {id, token}, row, seconds, dir, out, stopped}
// Writes `<dir>/stop` once both actions are confirmed, waits for `<dir>/started` (and, if `stopped`, for
// the client to reconnect), then writes to `out` what became of the two actions' promises once the slow
// action is long over.
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { finish, newClient, shutdown, sleep, start, waitFor } from '../../e2e/js/common.mjs'
import { bridgePackages, quickReconnect } from './packages.mjs'

const config = JSON.parse(process.argv[2])
const { Client, Reconnect, WebSocket, WsConnection } = await bridgePackages(config.modules)

const QuickReconnect = quickReconnect(Reconnect)

const clients = []

async function main() {
  const logux = { Client, Reconnect: QuickReconnect, WebSocket, WsConnection }
  const options = { catchErrors: true, name: 'ann', subprotocol: 1, url: config.url, user: config.user }
  const client = await start(newClient(logux, options), clients, 8000)
  const states = []
  client.on('state', () => states.push(client.state))
  const outcome = { change: 'pending', slow: 'pending' }
  const track = (name, promise) =>
    promise.then(
      () => (outcome[name] = 'processed'),
      error => (outcome[name] = `undone: ${error.message}`)
    )
  track('slow', client.sync({ seconds: config.seconds, type: 'test/slow' }))
  track('change', client.sync({ fields: { title: 'After the slow action' }, id: config.row, type: 'tasks/change' }))
  // Confirmed: the server answered `synced` up to the last action the client added.
  const confirmedAll = () =>
    states.includes('sending') && client.state === 'synchronized' && client.node.lastSent >= client.node.lastAddedCache
  await waitFor('both actions confirmed', confirmedAll)
  const confirmed = client.wire.filter(message => message[0] === 'synced').length
  writeFileSync(join(config.dir, 'stop'), '')
  await waitFor('the bridge to start again', () => existsSync(join(config.dir, 'started')), 30000, 50)
  if (config.stopped) {
    const back = () => states.includes('disconnected') && client.state === 'synchronized'
    // 30 s, like the restart: on a loaded machine (CI beside other runs) reconnecting once took over 15 s.
    await waitFor('the client to reconnect', back, 30000)
  }
  // Past the slow action, and some more: time for anything the client would send again.
  await sleep(config.seconds * 1000 + 2000)
  return { confirmed, outcome: { ...outcome }, states: states.slice() }
}

finish(main, { close: () => shutdown(clients, []), label: 'stop', out: config.out })
