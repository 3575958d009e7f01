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
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import WebSocket from 'ws'

const [scenario, rawConfig] = process.argv.slice(2)
const config = JSON.parse(rawConfig)
const WAIT_MS = 8000
const clients = []
const unbinds = []

function log(...args) {
  process.stderr.write(`[${new Date().toISOString()}] ${args.join(' ')}\n`)
}

async function connect(name) {
  const user = config.users[name]
  const connection = new Reconnect(new WsConnection(config.url, WebSocket))
  const client = new Client({
    server: connection,
    subprotocol: '1.0.0',
    token: user.token,
    userId: user.id
  })
  client.userName = name
  // Everything the server sends this client, as raw protocol messages and as log entries.
  client.wire = []
  connection.on('message', message => client.wire.push(message))
  client.received = []
  client.on('add', (action, meta) => {
    if (!meta.id.includes(` ${client.nodeId} `)) client.received.push({ action, meta })
  })
  client.node.on('error', error => log(name, 'node error', error.stack || error))
  clients.push(client)
  client.start()
  await waitFor(`${name} connects`, () => client.state === 'synchronized')
  return client
}

// Each client gets its own template: syncMapTemplate caches stores by id, not per client.
async function taskList(client, filter = {}) {
  const Task = syncMapTemplate('tasks')
  const list = createFilter(client, Task, filter)
  unbinds.push(list.listen(() => {}))
  await list.loading
  return { list, Task }
}

function titles(filterStore) {
  const result = {}
  for (const value of filterStore.get().list) result[value.id] = value.title
  return result
}

async function waitFor(what, check, ms = WAIT_MS) {
  const started = Date.now()
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`timed out after ${ms} ms waiting for: ${what}`)
}

function newId(label) {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
}

async function managePy(code) {
  const run = promisify(execFile)
  const { stdout } = await run(config.python, ['manage.py', 'shell', '-c', code], {
    cwd: config.exampleDir
  })
  return stdout
}

// ---- scenarios ---------------------------------------------------------------------------

const scenarios = {
  // Create, change and delete travel between two users' filter lists.
  async crud() {
    const alice = await connect('alice')
    const bob = await connect('bob')
    const a = await taskList(alice)
    const b = await taskList(bob)
    const id = newId('public')
    const times = {}

    await createSyncMap(alice, a.Task, {
      column: 'todo',
      id,
      owner: Number(config.users.alice.id),
      private: false,
      title: 'Public card'
    })
    times.created = await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Public card')

    const bobsCard = b.list.get().stores.get(id)
    await changeSyncMap(bobsCard, { title: 'Renamed by bob' })
    times.changed = await waitFor(
      `alice's list shows bob's title`,
      () => titles(a.list)[id] === 'Renamed by bob'
    )

    const kept = newId('kept')
    await createSyncMap(bob, b.Task, {
      column: 'todo',
      id: kept,
      owner: Number(config.users.bob.id),
      private: false,
      title: 'Kept card'
    })
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
    const alice = await connect('alice')
    const bob = await connect('bob')
    const a = await taskList(alice)
    const b = await taskList(bob)
    const secret = newId('secret')
    const title = `Secret ${secret}`

    await createSyncMap(alice, a.Task, {
      column: 'todo',
      id: secret,
      owner: Number(config.users.alice.id),
      private: true,
      title
    })
    await changeSyncMap(a.list.get().stores.get(secret), { column: 'doing', title: `${title} v2` })
    // Bob gets a public card after the secret's create and change: had they leaked, they came first.
    const barrier = newId('barrier')
    await createSyncMap(alice, a.Task, {
      column: 'todo',
      id: barrier,
      owner: Number(config.users.alice.id),
      private: false,
      title: 'Barrier'
    })
    await waitFor(`bob's list shows ${barrier}`, () => barrier in titles(b.list))
    const bobWireBeforeProbes = bob.wire.slice()

    const direct = b.Task(secret, bob)
    unbinds.push(direct.listen(() => {}))
    let load
    try {
      await direct.loading
      load = { loaded: direct.get() }
    } catch (error) {
      load = { error: error.name, reason: error.action && error.action.reason }
    }

    let change
    try {
      await changeSyncMapById(bob, b.Task, secret, { title: 'Changed by bob' })
      change = { processed: true }
    } catch (error) {
      change = { error: error.name, reason: error.action && error.action.reason }
    }
    await new Promise(resolve => setTimeout(resolve, 300))

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
  // edits must not reach him.
  async turnsPrivate() {
    const alice = await connect('alice')
    const bob = await connect('bob')
    const a = await taskList(alice)
    const b = await taskList(bob)
    const id = newId('turns')
    const title = `Turns private ${id}`
    await createSyncMap(alice, a.Task, {
      column: 'todo',
      id,
      owner: Number(config.users.alice.id),
      private: false,
      title: 'Public for now'
    })
    await waitFor(`bob's list shows ${id}`, () => id in titles(b.list))
    const rowSubscription = JSON.stringify({ channel: `tasks/${id}`, type: 'logux/subscribe' })
    await waitFor(`bob's client subscribed to tasks/${id}`, () => rowSubscription in bob.subscriptions)
    const bobWireBefore = bob.wire.length

    const card = a.list.get().stores.get(id)
    await changeSyncMap(card, { private: true })
    await changeSyncMap(card, { column: 'done', title })
    const barrier = newId('barrier')
    await createSyncMap(alice, a.Task, {
      column: 'todo',
      id: barrier,
      owner: Number(config.users.alice.id),
      private: false,
      title: 'Barrier'
    })
    await waitFor(`bob's list shows ${barrier}`, () => barrier in titles(b.list))

    return {
      alice: a.list.get().list.find(v => v.id === id),
      bob: b.list.get().list.find(v => v.id === id) || null,
      bobWireAfter: bob.wire.slice(bobWireBefore),
      id,
      title
    }
  }
}


async function publicCard(client, Task, title) {
  const id = newId('card')
  await createSyncMap(client, Task, {
    column: 'todo',
    id,
    owner: Number(config.users[client.userName].id),
    private: false,
    title
  })
  return id
}

function valueIn(filterStore, id) {
  return filterStore.get().list.find(v => v.id === id)
}

Object.assign(scenarios, {
  // An edit made with the ORM in another process (`manage.py shell`) reaches both clients live.
  async orm() {
    const alice = await connect('alice')
    const bob = await connect('bob')
    const a = await taskList(alice)
    const b = await taskList(bob)
    const id = await publicCard(alice, a.Task, 'Before the shell')
    await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Before the shell')

    const output = await managePy(
      'from board.models import Task\n' +
        `task = Task.objects.get(pk=${JSON.stringify(id)})\n` +
        "task.title = 'Saved in the shell'\n" +
        'task.save()\n' +
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
    return {
      alice: valueIn(a.list, id),
      arrived,
      bob: valueIn(b.list, id),
      id,
      shell: output.trim().split('\n').pop()
    }
  },

  // Alice and Bob edit the same card at the same moment, several times; they end up agreeing.
  async conflict() {
    const alice = await connect('alice')
    const bob = await connect('bob')
    const a = await taskList(alice)
    const b = await taskList(bob)
    const id = await publicCard(alice, a.Task, 'Contested')
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
      await new Promise(resolve => setTimeout(resolve, 300))
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
    const bob = await connect('bob')
    const a = await taskList(alice)
    const b = await taskList(bob)
    const id = await publicCard(alice, a.Task, 'Before bob left')
    await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Before bob left')
    const resubscribes = []
    bob.on('add', (action, meta) => {
      if (action.type === 'logux/subscribe' && meta.resubscribe) resubscribes.push(action)
    })

    // Go offline while idle. (Dropping while the row subscribe that follows a new card is still in
    // flight leaves Logux server 0.13.1's per-client queue stuck: the server never answers this
    // client's later actions, resubscribes included.)
    await waitFor('bob to finish syncing', async () => (await syncing(bob)) === 0)
    await new Promise(resolve => setTimeout(resolve, 200))
    await waitFor('bob to finish syncing', async () => (await syncing(bob)) === 0)
    bob.node.connection.disconnect()
    await waitFor('bob disconnects', () => bob.state === 'disconnected')
    await changeSyncMap(a.list.get().stores.get(id), { column: 'doing', title: 'Changed while bob was away' })
    await new Promise(resolve => setTimeout(resolve, 300))
    const whileAway = valueIn(b.list, id)

    bob.node.connection.connect()
    await waitFor('bob reconnects', () => bob.state === 'synchronized')
    const caughtUp = await waitFor(`bob's list catches up`, () => {
      const value = valueIn(b.list, id)
      return value.title === 'Changed while bob was away' && value.column === 'doing'
    })
    return { bob: valueIn(b.list, id), caughtUp, id, resubscribes, whileAway }
  }
})

async function main() {
  const scenarioFn = scenarios[scenario]
  if (!scenarioFn) throw new Error(`unknown scenario ${scenario}`)
  try {
    const result = await scenarioFn()
    process.stdout.write(JSON.stringify(result) + '\n')
  } finally {
    await shutdown()
  }
}

async function syncing(client) {
  let count = 0
  await client.log.each((action, meta) => {
    if (meta.reasons.includes('syncing')) count += 1
  })
  return count
}

// Leave nothing in flight: Logux server 0.13.1 in development mode loops on "WS was closed" errors
// when it answers a client whose socket is already closing (and then ignores SIGTERM).
async function shutdown() {
  const quiet = async () => {
    for (const client of clients) {
      if (client.connected && (await syncing(client)) > 0) return false
    }
    return true
  }
  try {
    await waitFor('clients to finish syncing', quiet, 3000)
    await new Promise(resolve => setTimeout(resolve, 100))
    await waitFor('clients to finish syncing', quiet, 3000)
  } catch (error) {
    log(error.message)
  }
  for (const unbind of unbinds) unbind()
  for (const client of clients) client.destroy()
  await new Promise(resolve => setTimeout(resolve, 50))
}

main().then(
  () => process.exit(0),
  error => {
    process.stderr.write(`FAILED ${scenario}: ${error.stack || error}\n`)
    process.exit(1)
  }
)
