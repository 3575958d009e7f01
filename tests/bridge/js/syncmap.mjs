// Drives real @logux/client 0.23 SyncMap clients against the logux-sync bridge (@logux/server 0.14) +
// Django. Packages come from logux_sync/bridge/node_modules (or config.modules).
//
// Usage: node syncmap.mjs <scenario> '<config JSON>'
// config: {urls: [ws url, ...], users: {alice: {id, token}, bob: {id, token}}, python, exampleDir}
// Prints one JSON object with what the clients saw; Python asserts on it.
import {
  attempt,
  finish,
  managePy,
  newClient,
  newId,
  shutdown,
  start,
  taskHelpers,
  titles,
  valueIn,
  WAIT_MS,
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
  deleteSyncMap,
  Reconnect,
  syncMapTemplate,
  WebSocket,
  WsConnection
} = await bridgePackages(config.modules)

const clients = []
const unbinds = []
const { card, taskList } = taskHelpers({ createFilter, createSyncMap, syncMapTemplate }, config.users, unbinds)

function connect(name, url = config.urls[0]) {
  const logux = { Client, Reconnect, WsConnection, WebSocket }
  return start(newClient(logux, { name, subprotocol: 1, url, user: config.users[name] }), clients, WAIT_MS)
}

async function subscriptionsOf(nodeId) {
  const out = await managePy(
    config,
    'import json; from logux_sync.sync.models import LoguxSubscription\n' +
      `print(json.dumps(sorted(s.filter_key for s in LoguxSubscription.objects.filter(node_id=${JSON.stringify(nodeId)}))))`
  )
  return JSON.parse(out)
}

// The node's subscriptions Django remembers once it forgot them all, or after 15 s.
async function forgotten(what, nodeId) {
  let after
  const none = async () => {
    after = await subscriptionsOf(nodeId)
    return after.length === 0
  }
  await waitFor(what, none, 15000).catch(() => {})
  return after
}

// Alice and bob (on `bobUrl`), each with a list of every task.
async function aliceAndBob(bobUrl = config.urls[0]) {
  const alice = await connect('alice')
  const bob = await connect('bob', bobUrl)
  return { a: await taskList(alice), alice, b: await taskList(bob), bob }
}

const scenarios = {
  async crud() {
    const { alice, bob, a, b } = await aliceAndBob()
    const id = await card(alice, a.Task, 'Public card')
    const times = {}
    times.created = await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Public card')
    await changeSyncMap(b.list.get().stores.get(id), { title: 'Renamed by bob' })
    times.changed = await waitFor(`alice's list shows bob's title`, () => titles(a.list)[id] === 'Renamed by bob')
    const kept = await card(bob, b.Task, 'Kept card')
    await waitFor(`alice's list shows ${kept}`, () => titles(a.list)[kept] === 'Kept card')
    await changeSyncMap(a.list.get().stores.get(kept), { column: 'doing' })
    await waitFor(`bob's list moves ${kept}`, () => valueIn(b.list, kept)?.column === 'doing')
    await deleteSyncMap(a.list.get().stores.get(id))
    times.deleted = await waitFor(`bob's list drops ${id}`, () => !(id in titles(b.list)))
    return { alice: titles(a.list), bob: titles(b.list), id, kept, times }
  },

  async privacy() {
    const { alice, bob, a, b } = await aliceAndBob()
    const secret = await card(alice, a.Task, 'Secret', { private: true })
    const title = `Secret ${secret}`
    await changeSyncMap(a.list.get().stores.get(secret), { column: 'doing', title })
    const barrier = await card(alice, a.Task, 'Barrier')
    await waitFor(`bob's list shows ${barrier}`, () => barrier in titles(b.list))
    const wireBefore = bob.wire.slice()
    const direct = b.Task(secret, bob)
    unbinds.push(direct.listen(() => {}))
    const directLoad = await attempt(
      () => direct.loading,
      () => ({ loaded: direct.get() })
    )
    const change = await attempt(
      () => changeSyncMapById(bob, b.Task, secret, { title: 'Changed by bob' }),
      () => ({ processed: true })
    )
    return { alice: titles(a.list), bob: titles(b.list), bobWire: bob.wire, change, directLoad, secret, title, wireBefore }
  },

  async orm() {
    const { alice, a, b } = await aliceAndBob(config.urls.at(-1))
    const id = await card(alice, a.Task, 'Before the shell')
    await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Before the shell')
    const shell = await managePy(
      config,
      'from board.models import Task\n' +
        `task = Task.objects.get(pk=${JSON.stringify(id)})\n` +
        "task.title = 'Saved in the shell'\n" +
        'task.save()\n' +
        "print('shell done')\n"
    )
    for (const [name, list] of [['alice', a.list], ['bob', b.list]]) {
      await waitFor(`${name}'s list shows the shell's edit`, () => valueIn(list, id)?.title === 'Saved in the shell')
    }
    return { alice: valueIn(a.list, id), bob: valueIn(b.list, id), id, shell }
  },

  // A list (with a filter) and a row subscription, then both dropped: Django forgets both.
  async unsubscribe() {
    const alice = await connect('alice')
    const done = await managePy(
      config,
      'from board.models import Task\n' +
        `t = Task.objects.create(pk=${JSON.stringify(newId('done'))}, title='Done', column='done', owner_id=${config.users.alice.id})\n` +
        'print(t.pk)\n'
    )
    const todo = await taskList(alice, { column: 'todo' })
    const row = todo.Task(done, alice)
    const unbindRow = row.listen(() => {})
    await row.loading
    const before = await subscriptionsOf(alice.nodeId)
    todo.unbind()
    unbindRow()
    const after = await forgotten('Django to forget the list and the row', alice.nodeId)
    return { after, before, done, nodeId: alice.nodeId }
  },

  async disconnect() {
    const alice = await connect('alice')
    await taskList(alice)
    await taskList(alice, { column: 'doing' })
    const before = await subscriptionsOf(alice.nodeId)
    alice.node.connection.disconnect()
    const after = await forgotten('Django to forget the node', alice.nodeId)
    return { after, before, nodeId: alice.nodeId }
  },

  // Clients spread over two bridges; every change reaches every client.
  async twoBridges() {
    const [first, second] = config.urls
    const people = [
      ['alice', first],
      ['bob', second],
      ['alice', second],
      ['bob', first]
    ]
    const lists = []
    for (const [name, url] of people) {
      const client = await connect(name, url)
      lists.push({ client, ...(await taskList(client)) })
    }
    const seen = []
    const everyone = async (what, check) => {
      for (const [index, entry] of lists.entries()) {
        await waitFor(`${what} on client ${index}`, () => check(entry.list))
      }
      seen.push(what)
    }
    const id = await card(lists[0].client, lists[0].Task, 'Two bridges')
    await everyone('create', list => titles(list)[id] === 'Two bridges')
    await changeSyncMap(lists[1].list.get().stores.get(id), { title: 'Changed via second' })
    await everyone('change', list => titles(list)[id] === 'Changed via second')
    await managePy(
      config,
      `from board.models import Task\nTask.objects.filter(pk=${JSON.stringify(id)}).update(column='done')\nprint('ok')\n`
    )
    await everyone('orm update', list => valueIn(list, id)?.column === 'done')
    await deleteSyncMap(lists[3].list.get().stores.get(id))
    await everyone('delete', list => !(id in titles(list)))
    return { id, nodes: lists.map(e => e.client.nodeId), seen }
  }
}

finish(scenarios[scenario] || (() => Promise.reject(new Error(`unknown scenario ${scenario}`))), {
  close: () => shutdown(clients, unbinds),
  label: scenario
})
