// Drives real @logux/client 0.23 SyncMap clients against the logux-sync bridge (@logux/server 0.14) +
// Django. Packages come from logux_sync/bridge/node_modules (or config.modules).
//
// Usage: node syncmap.mjs <scenario> '<config JSON>'
// config: {urls: [ws url, ...], users: {alice: {id, token}, bob: {id, token}}, python, exampleDir}
// Prints one JSON object with what the clients saw; Python asserts on it.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

const [scenario, rawConfig] = process.argv.slice(2)
const config = JSON.parse(rawConfig)
const MODULES =
  config.modules || join(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'logux_sync', 'bridge', 'node_modules')
const load = path => import(pathToFileURL(join(MODULES, path)).href)
const {
  changeSyncMap,
  changeSyncMapById,
  Client,
  createFilter,
  createSyncMap,
  deleteSyncMap,
  syncMapTemplate
} = await load('@logux/client/index.js')
const { Reconnect, WsConnection } = await load('@logux/core/index.js')
const { default: WebSocket } = await load('ws/wrapper.mjs')

const WAIT_MS = 8000
const clients = []
const unbinds = []

function log(...args) {
  process.stderr.write(`[${new Date().toISOString()}] ${args.join(' ')}\n`)
}

async function connect(name, url = config.urls[0]) {
  const user = config.users[name]
  const connection = new Reconnect(new WsConnection(url, WebSocket))
  const client = new Client({ server: connection, subprotocol: 1, token: user.token, userId: user.id })
  client.userName = name
  client.wire = []
  connection.on('message', message => client.wire.push(message))
  client.node.on('error', error => log(name, 'node error', error.stack || error))
  clients.push(client)
  client.start()
  await waitFor(`${name} connects to ${url}`, () => client.state === 'synchronized')
  return client
}

async function taskList(client, filter = {}) {
  const Task = syncMapTemplate('tasks')
  const list = createFilter(client, Task, filter)
  const unbind = list.listen(() => {})
  unbinds.push(unbind)
  await list.loading
  return { list, Task, unbind }
}

function titles(filterStore) {
  const result = {}
  for (const value of filterStore.get().list) result[value.id] = value.title
  return result
}

function valueIn(filterStore, id) {
  return filterStore.get().list.find(v => v.id === id)
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
  const { stdout } = await promisify(execFile)(config.python, ['manage.py', 'shell', '-c', code], {
    cwd: config.exampleDir
  })
  return stdout.trim().split('\n').pop()
}

async function subscriptionsOf(nodeId) {
  const out = await managePy(
    'import json; from logux_sync.sync.models import LoguxSubscription\n' +
      `print(json.dumps(sorted(s.filter_key for s in LoguxSubscription.objects.filter(node_id=${JSON.stringify(nodeId)}))))`
  )
  return JSON.parse(out)
}

async function card(client, Task, title, extra = {}) {
  const id = newId('card')
  await createSyncMap(client, Task, {
    column: 'todo',
    id,
    owner: Number(config.users[client.userName].id),
    private: false,
    title,
    ...extra
  })
  return id
}

const scenarios = {
  async crud() {
    const alice = await connect('alice')
    const bob = await connect('bob')
    const a = await taskList(alice)
    const b = await taskList(bob)
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
    const alice = await connect('alice')
    const bob = await connect('bob')
    const a = await taskList(alice)
    const b = await taskList(bob)
    const secret = await card(alice, a.Task, 'Secret', { private: true })
    const title = `Secret ${secret}`
    await changeSyncMap(a.list.get().stores.get(secret), { column: 'doing', title })
    const barrier = await card(alice, a.Task, 'Barrier')
    await waitFor(`bob's list shows ${barrier}`, () => barrier in titles(b.list))
    const wireBefore = bob.wire.slice()
    const direct = b.Task(secret, bob)
    unbinds.push(direct.listen(() => {}))
    let directLoad
    try {
      await direct.loading
      directLoad = { loaded: direct.get() }
    } catch (error) {
      directLoad = { error: error.name, reason: error.action?.reason }
    }
    let change
    try {
      await changeSyncMapById(bob, b.Task, secret, { title: 'Changed by bob' })
      change = { processed: true }
    } catch (error) {
      change = { error: error.name, reason: error.action?.reason }
    }
    return { alice: titles(a.list), bob: titles(b.list), bobWire: bob.wire, change, directLoad, secret, title, wireBefore }
  },

  async orm() {
    const alice = await connect('alice')
    const bob = await connect('bob', config.urls.at(-1))
    const a = await taskList(alice)
    const b = await taskList(bob)
    const id = await card(alice, a.Task, 'Before the shell')
    await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Before the shell')
    const shell = await managePy(
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
    let after
    await waitFor(
      'Django to forget the list and the row',
      async () => {
        after = await subscriptionsOf(alice.nodeId)
        return after.length === 0
      },
      15000
    ).catch(() => {})
    return { after, before, done, nodeId: alice.nodeId }
  },

  async disconnect() {
    const alice = await connect('alice')
    await taskList(alice)
    await taskList(alice, { column: 'doing' })
    const before = await subscriptionsOf(alice.nodeId)
    alice.node.connection.disconnect()
    let after
    await waitFor(
      'Django to forget the node',
      async () => {
        after = await subscriptionsOf(alice.nodeId)
        return after.length === 0
      },
      15000
    ).catch(() => {})
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
      `from board.models import Task\nTask.objects.filter(pk=${JSON.stringify(id)}).update(column='done')\nprint('ok')\n`
    )
    await everyone('orm update', list => valueIn(list, id)?.column === 'done')
    await deleteSyncMap(lists[3].list.get().stores.get(id))
    await everyone('delete', list => !(id in titles(list)))
    return { id, nodes: lists.map(e => e.client.nodeId), seen }
  }
}

async function main() {
  const run = scenarios[scenario]
  if (!run) throw new Error(`unknown scenario ${scenario}`)
  try {
    process.stdout.write(JSON.stringify(await run()) + '\n')
  } finally {
    for (const unbind of unbinds) unbind()
    for (const client of clients) client.destroy()
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

main().then(
  () => process.exit(0),
  error => {
    process.stderr.write(`FAILED ${scenario}: ${error.stack || error}\n`)
    process.exit(1)
  }
)
