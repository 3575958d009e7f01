// The proxy stack's remaining end-to-end flows (tests/e2e/js/syncmap.mjs: conflict, offline,
// turnsPrivate; tests/e2e/js/access.mjs: the access matrix), driven with real @logux/client 0.23 clients
// against the logux-sync bridge (@logux/server 0.14) + Django. Packages come from
// logux_sync/bridge/node_modules (or config.modules).
//
// Usage: node flows.mjs <scenario> '<config JSON>'
// config: {urls: [ws url, ...], users: {name: {id, token}}, python, exampleDir, out?} and, for
// `access`, the matrix of tests/bridge/test_bridge_access.py (filters, probes, rowSubs, ownEdits,
// liveScript, barrier). Prints one JSON object with what the clients saw (to config.out if given);
// Python asserts on it. A step that does not happen in time fails naming it and exits 1.
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import {
  finish,
  listFields,
  log,
  newClient,
  newId,
  python,
  settle,
  shutdown,
  sleep,
  start,
  taskFields,
  taskHelpers,
  titles,
  valueIn,
  waitFor as waitUpTo
} from '../../e2e/js/common.mjs'

const [scenario, rawConfig] = process.argv.slice(2)
const config = JSON.parse(rawConfig)
const MODULES =
  config.modules || join(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'logux_sync', 'bridge', 'node_modules')
const load = path => import(pathToFileURL(join(MODULES, path)).href)
const { changeSyncMap, changeSyncMapById, Client, createFilter, createSyncMap, syncMapTemplate } = await load(
  '@logux/client/index.js'
)
const { Reconnect, WsConnection } = await load('@logux/core/index.js')
const { default: WebSocket } = await load('ws/wrapper.mjs')

const WAIT_MS = scenario === 'access' ? 15000 : 8000
const clients = []
const unbinds = []
const { card, taskList } = taskHelpers({ createFilter, createSyncMap, syncMapTemplate }, config.users, unbinds)

const waitFor = (what, check, ms = WAIT_MS) => waitUpTo(what, check, ms)

async function connect(name, url = config.urls[0]) {
  const client = newClient(
    { Client, Reconnect, WsConnection, WebSocket },
    { name, subprotocol: 1, url, user: config.users[name] }
  )
  // Others' actions the client added to its log.
  client.received = []
  client.on('add', (action, meta) => {
    if (!meta.id.includes(` ${client.nodeId} `)) client.received.push({ action, meta })
  })
  return start(client, clients, WAIT_MS)
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
  // Alice and Bob edit the same card at the same moment, several times; they end up agreeing.
  async conflict() {
    const alice = await connect('alice')
    const bob = await connect('bob', config.urls.at(-1))
    const a = await taskList(alice)
    const b = await taskList(bob)
    const id = await card(alice, a.Task, 'Contested')
    await waitFor(`bob's list shows ${id}`, () => id in titles(b.list))
    const aCard = a.list.get().stores.get(id)
    const bCard = b.list.get().stores.get(id)

    const rounds = []
    for (let round = 0; round < 5; round++) {
      const edits = [
        changeSyncMap(aCard, { title: `alice ${round}` }),
        changeSyncMap(bCard, round % 2 ? { column: 'doing', title: `bob ${round}` } : { title: `bob ${round}` })
      ]
      const results = await Promise.allSettled(edits)
      const same = () => {
        const x = aCard.get()
        const y = bCard.get()
        return x.title === y.title && x.column === y.column
      }
      await waitFor(`round ${round}: both clients hold the same card`, same).catch(error => {
        const show = store => JSON.stringify({ ...store.get(), lastChanged: store.lastChanged })
        throw new Error(`${error.message}\n alice: ${show(aCard)}\n bob: ${show(bCard)}`)
      })
      // Give late broadcasts a moment; agreement must still hold after them.
      await sleep(300)
      await waitFor(`round ${round}: both clients still agree`, same)
      rounds.push({
        alice: { column: aCard.get().column, title: aCard.get().title },
        bob: { column: bCard.get().column, title: bCard.get().title },
        results: results.map(r => r.status)
      })
    }
    return { id, rounds }
  },

  // Bob goes offline, Alice edits, Bob comes back: his client resubscribes with `since` and catches up.
  async offline() {
    const alice = await connect('alice')
    const bob = await connect('bob', config.urls.at(-1))
    const a = await taskList(alice)
    const b = await taskList(bob)
    const id = await card(alice, a.Task, 'Before bob left')
    await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Before bob left')
    const resubscribes = []
    bob.on('add', (action, meta) => {
      if (action.type === 'logux/subscribe' && meta.resubscribe) resubscribes.push(action)
    })

    await settle([bob], { what: 'bob to finish syncing', ms: WAIT_MS, pause: 200 })
    bob.node.connection.disconnect()
    await waitFor('bob disconnects', () => bob.state === 'disconnected')
    await changeSyncMap(a.list.get().stores.get(id), { column: 'doing', title: 'Changed while bob was away' })
    await sleep(300)
    const whileAway = valueIn(b.list, id)

    bob.node.connection.connect()
    await waitFor('bob reconnects', () => bob.state === 'synchronized')
    const caughtUp = await waitFor(`bob's list catches up`, () => {
      const value = valueIn(b.list, id)
      return value.title === 'Changed while bob was away' && value.column === 'doing'
    })
    return { bob: valueIn(b.list, id), caughtUp, id, resubscribes, whileAway }
  },

  // A card bob saw (and whose row channel he is then subscribed to) turns private: it leaves his list
  // and its later edits must not reach him. Shared again, it comes back whole.
  async turnsPrivate() {
    const alice = await connect('alice')
    const bob = await connect('bob', config.urls.at(-1))
    const a = await taskList(alice)
    const b = await taskList(bob)
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

  // The access matrix: every user subscribes to several filtered lists and probes row channels; then
  // the database changes (the config's ORM script, and the clients' own edits); every message each
  // client receives on the wire is recorded.
  async access() {
    const names = Object.keys(config.users)
    const state = {}
    for (const [index, name] of names.entries()) {
      const client = await connect(name, config.urls[index % config.urls.length])
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
    const { stdout, stderr } = await python(config, ['-c', config.liveScript])
    if (stderr.trim()) log('live script:', stderr.trim())
    log('live script:', stdout.trim())
    for (const name of names) {
      await waitFor(`${name}'s list shows the barrier`, () => config.barrier in listFields(state[name].lists.all))
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
}

finish(scenarios[scenario] || (() => Promise.reject(new Error(`unknown scenario ${scenario}`))), {
  close: () => shutdown(clients, unbinds, { pause: 100 }),
  label: scenario,
  out: config.out || null
})
