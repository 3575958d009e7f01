// Drives real @logux/client 0.21.1 clients against the Logux server + Django, the way a front end does:
// syncMapTemplate('tasks'), createFilter, createSyncMap, changeSyncMap, deleteSyncMap.
//
// Usage: node syncmap.mjs <scenario> '<config JSON>'
// config: {url, users: {alice: {id, token}, bob: {id, token}}, python, exampleDir}
// Prints one JSON object with what the clients saw on stdout; Python asserts on it. A step that does
// not happen in time fails with a message naming it and exits 1.
import {
  changeSyncMap,
  changeSyncMapById,
  Client,
  createFilter,
  createSyncMap,
  deleteSyncMap,
  syncMapTemplate
} from '@logux/client'
import { Reconnect, WsConnection } from '@logux/core'
import WebSocket from 'ws'

import {
  attempt,
  finish,
  managePy,
  newClient,
  newId,
  shutdown,
  sleep,
  start,
  taskHelpers,
  titles,
  twoUserScenarios,
  valueIn,
  WAIT_MS,
  waitFor
} from './common.mjs'

const [scenario, rawConfig] = process.argv.slice(2)
const config = JSON.parse(rawConfig)
const clients = []
const unbinds = []
const { card, taskList } = taskHelpers({ createFilter, createSyncMap, syncMapTemplate }, config.users, unbinds)

async function connect(name) {
  const client = newClient(
    { Client, Reconnect, WsConnection, WebSocket },
    { name, subprotocol: '1.0.0', url: config.url, user: config.users[name] }
  )
  // Others' actions the client added to its log.
  client.received = []
  client.on('add', (action, meta) => {
    if (!meta.id.includes(` ${client.nodeId} `)) client.received.push({ action, meta })
  })
  return start(client, clients, WAIT_MS)
}

// Alice and bob, each with a list of every task.
async function aliceAndBob() {
  const alice = await connect('alice')
  const bob = await connect('bob')
  return { a: await taskList(alice), alice, b: await taskList(bob), bob }
}

// ---- scenarios ---------------------------------------------------------------------------

const scenarios = {
  // Create, change and delete travel between two users' filter lists.
  async crud() {
    const { alice, bob, a, b } = await aliceAndBob()
    const id = await card(alice, a.Task, 'Public card', { id: newId('public') })
    const times = {}
    times.created = await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Public card')

    const bobsCard = b.list.get().stores.get(id)
    await changeSyncMap(bobsCard, { title: 'Renamed by bob' })
    times.changed = await waitFor(
      `alice's list shows bob's title`,
      () => titles(a.list)[id] === 'Renamed by bob'
    )

    const kept = await card(bob, b.Task, 'Kept card', { id: newId('kept') })
    await waitFor(`alice's list shows ${kept}`, () => titles(a.list)[kept] === 'Kept card')
    await changeSyncMap(a.list.get().stores.get(kept), { column: 'doing' })
    await waitFor(`bob's list moves ${kept} to doing`, () =>
      b.list.get().list.some(v => v.id === kept && v.column === 'doing')
    )

    await deleteSyncMap(a.list.get().stores.get(id))
    times.deleted = await waitFor(`bob's list drops ${id}`, () => !(id in titles(b.list)))
    return { alice: titles(a.list), bob: titles(b.list), id, kept, times }
  },

  // A private card stays with its owner: bob's list, log and wire never see it, and loading it
  // or changing it by id is refused.
  async privacy() {
    const { alice, bob, a, b } = await aliceAndBob()
    const secret = newId('secret')
    const title = `Secret ${secret}`

    await card(alice, a.Task, title, { id: secret, private: true })
    await changeSyncMap(a.list.get().stores.get(secret), { column: 'doing', title: `${title} v2` })
    // Bob gets a public card after the secret's create and change: had they leaked, they came first.
    const barrier = await card(alice, a.Task, 'Barrier', { id: newId('barrier') })
    await waitFor(`bob's list shows ${barrier}`, () => barrier in titles(b.list))
    const bobWireBeforeProbes = bob.wire.slice()

    const direct = b.Task(secret, bob)
    unbinds.push(direct.listen(() => {}))
    const load = await attempt(
      () => direct.loading,
      () => ({ loaded: direct.get() })
    )
    const change = await attempt(
      () => changeSyncMapById(bob, b.Task, secret, { title: 'Changed by bob' }),
      () => ({ processed: true })
    )
    await sleep(300)

    return {
      alice: titles(a.list),
      bob: titles(b.list),
      bobReceived: bob.received,
      bobWire: bob.wire,
      bobWireBeforeProbes,
      change,
      directLoad: load,
      secret,
      title
    }
  },

  // A card bob saw (and whose row channel his client then subscribed to) turns private: its later
  // edits must not reach him. (His list alone does not subscribe to the row: Django tells the list's
  // node that the row's channel is covered, so bob opens the card's own store, as a card page would.)
  async turnsPrivate() {
    const { alice, bob, a, b } = await aliceAndBob()
    const id = newId('turns')
    const title = `Turns private ${id}`
    await card(alice, a.Task, 'Public for now', { id })
    await waitFor(`bob's list shows ${id}`, () => id in titles(b.list))
    const page = syncMapTemplate('tasks')(id, bob)
    unbinds.push(page.listen(() => {}))
    await page.loading
    const rowSubscription = JSON.stringify({ channel: `tasks/${id}`, type: 'logux/subscribe' })
    await waitFor(`bob's client subscribed to tasks/${id}`, () => rowSubscription in bob.subscriptions)
    const bobWireBefore = bob.wire.length

    const row = a.list.get().stores.get(id)
    await changeSyncMap(row, { private: true })
    await changeSyncMap(row, { column: 'done', title })
    const barrier = await card(alice, a.Task, 'Barrier', { id: newId('barrier') })
    await waitFor(`bob's list shows ${barrier}`, () => barrier in titles(b.list))

    return {
      alice: valueIn(a.list, id),
      bob: valueIn(b.list, id) || null,
      bobWireAfter: bob.wire.slice(bobWireBefore),
      id,
      title
    }
  },

  // An edit made with the ORM in another process (`manage.py shell`) reaches both clients live.
  async orm() {
    const { alice, bob, a, b } = await aliceAndBob()
    const id = await card(alice, a.Task, 'Before the shell')
    await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Before the shell')

    // With the save, in its transaction: an action of our own through the outbox, to the owner only.
    const shell = await managePy(
      config,
      'import logux_sync\n' +
        'from django.db import transaction\n' +
        'from board.models import Task\n' +
        'with transaction.atomic():\n' +
        `    task = Task.objects.get(pk=${JSON.stringify(id)})\n` +
        "    task.title = 'Saved in the shell'\n" +
        '    task.save()\n' +
        "    logux_sync.add_on_commit({'type': 'board/notice', 'text': 'saved in the shell'}, " +
        "{'users': [str(task.owner_id)]})\n" +
        `Task.objects.filter(pk=${JSON.stringify(id)}).update(column='done')\n` +
        "print('shell done')\n"
    )
    const arrived = {}
    for (const [name, list] of [['alice', a.list], ['bob', b.list]]) {
      arrived[name] = await waitFor(`${name}'s list shows the shell's edits`, () => {
        const value = valueIn(list, id)
        return value && value.title === 'Saved in the shell' && value.column === 'done'
      })
    }
    const notices = client =>
      client.wire
        .filter(message => message[0] === 'sync')
        .flatMap(message => message.slice(2).filter((_, i) => i % 2 === 0))
        .filter(action => action.type === 'board/notice')
    await waitFor("alice receives the shell's notice", () => notices(alice).length > 0)
    return {
      alice: valueIn(a.list, id),
      arrived,
      bob: valueIn(b.list, id),
      id,
      notices: { alice: notices(alice), bob: notices(bob) },
      shell
    }
  },

  // conflict, offline
  ...twoUserScenarios({ changeSyncMap, syncMapTemplate }, { aliceAndBob, card, unbinds })
}

// Leave nothing in flight (see shutdown()), and again once their answers' effects are done.
finish(scenarios[scenario] || (() => Promise.reject(new Error(`unknown scenario ${scenario}`))), {
  close: () => shutdown(clients, unbinds, { pause: 100 }),
  label: scenario
})
