// The proxy stack's remaining end-to-end flows (tests/e2e/js/syncmap.mjs: conflict, offline,
// turnsPrivate; common.mjs accessMatrix(): the access matrix), driven with real @logux/client 0.23 clients
// against the logux-sync bridge (@logux/server 0.14) + Django. Packages come from
// logux_sync/bridge/node_modules (or config.modules).
//
// Usage: node flows.mjs <scenario> '<config JSON>'
// config: {urls: [ws url, ...], users: {name: {id, token}}, python, exampleDir, out?} and, for
// `access`, the matrix tests/e2e/matrix.py builds (filters, probes, rowSubs, ownEdits,
// liveScript, barrier). Prints one JSON object with what the clients saw (to config.out if given);
// Python asserts on it. A step that does not happen in time fails naming it and exits 1.
import {
  accessMatrix,
  finish,
  newClient,
  newId,
  settle,
  shutdown,
  start,
  taskFields,
  taskHelpers,
  titles,
  twoUserScenarios,
  valueIn,
  waitFor
} from '../../e2e/js/common.mjs'
import { bridgePackages } from './packages.mjs'

const [scenario, rawConfig] = process.argv.slice(2)
const config = JSON.parse(rawConfig)
const {
  changeSyncMap,
  changeSyncMapById,
  Client,
  createFilter,
  createSyncMap,
  Reconnect,
  syncMapTemplate,
  WebSocket,
  WsConnection
} = await bridgePackages(config.modules)

const WAIT_MS = scenario === 'access' ? 15000 : 8000
const clients = []
const unbinds = []
const { card, taskList } = taskHelpers({ createFilter, createSyncMap, syncMapTemplate }, config.users, unbinds)

function connect(name, url = config.urls[0]) {
  const logux = { Client, Reconnect, WsConnection, WebSocket }
  return start(newClient(logux, { name, subprotocol: 1, url, user: config.users[name] }), clients, WAIT_MS)
}

// Alice on the first bridge and bob on the last, each with a list of every task.
async function aliceAndBob() {
  const alice = await connect('alice')
  const bob = await connect('bob', config.urls.at(-1))
  return { a: await taskList(alice), alice, b: await taskList(bob), bob }
}

// Whether `client` is subscribed to `channel`: by its own logux/subscribe, or server-side (the bridge
// subscribes a node to the row channels of a list load and says so with logux/subscribed).
function subscribedTo(client, channel) {
  if (JSON.stringify({ channel, type: 'logux/subscribe' }) in client.subscriptions) return 'client'
  const told = client.wire.some(
    m => m[0] === 'sync' && m.slice(2).some(a => a.type === 'logux/subscribed' && a.channel === channel)
  )
  return told ? 'server' : null
}

const scenarios = {
  // conflict, offline (as the proxy stack's)
  ...twoUserScenarios({ changeSyncMap, syncMapTemplate }, { aliceAndBob, card, unbinds }),

  // A card bob saw (and whose row channel he is then subscribed to) turns private: it leaves his list
  // and its later edits must not reach him. Shared again, it comes back whole.
  async turnsPrivate() {
    const { alice, bob, a, b } = await aliceAndBob()
    const id = newId('turns')
    const title = `Turns private ${id}`
    await card(alice, a.Task, 'Public for now', { id })
    await waitFor(`bob's list shows ${id}`, () => id in titles(b.list))
    await waitFor(`bob subscribed to tasks/${id}`, () => subscribedTo(bob, `tasks/${id}`))
    const rowSubscription = subscribedTo(bob, `tasks/${id}`)
    const bobWireBefore = bob.wire.length

    const row = a.list.get().stores.get(id)
    await changeSyncMap(row, { private: true })
    const hiddenMs = await waitFor(`bob's list drops ${id}`, () => !valueIn(b.list, id)).catch(() => null)
    await changeSyncMap(row, { column: 'done', title })
    const barrier = await card(alice, a.Task, 'Barrier', { id: newId('barrier') })
    await waitFor(`bob's list shows ${barrier}`, () => barrier in titles(b.list))
    const bobWhilePrivate = valueIn(b.list, id) || null
    const bobWireAfter = bob.wire.slice(bobWireBefore)

    await changeSyncMap(row, { private: false })
    const sharedMs = await waitFor(`bob's list shows ${id} again`, () => valueIn(b.list, id)?.title === title).catch(
      () => null
    )
    await settle([alice, bob], { ms: WAIT_MS, pause: 200 })

    return {
      alice: taskFields(valueIn(a.list, id)),
      bob: valueIn(b.list, id) ? taskFields(valueIn(b.list, id)) : null,
      bobWhilePrivate,
      bobWireAfter,
      hiddenMs,
      id,
      rowSubscription,
      sharedMs,
      title
    }
  },

  // The access matrix (common.mjs accessMatrix()), the users spread over the bridges.
  access() {
    return accessMatrix({ changeSyncMapById, createFilter, createSyncMap, syncMapTemplate }, config, {
      connect: (name, index) => connect(name, config.urls[index % config.urls.length]),
      ms: WAIT_MS,
      unbinds
    })
  }
}

finish(scenarios[scenario] || (() => Promise.reject(new Error(`unknown scenario ${scenario}`))), {
  close: () => shutdown(clients, unbinds, { pause: 100 }),
  label: scenario,
  out: config.out || null
})
