// Drives 8 @logux/client 0.23 clients of 4 users, spread over 3 logux-sync bridges, through rounds of
// changes, while tests/bridge/test_scale_topology.py kills and restarts servers between the rounds.
//
// Usage: node scale.mjs '<config JSON>'
// config: {urls: [ws url x3], users: {name: {id, token}}, rows: [{id, owner, column, private}],
//          python, exampleDir, dir, out, rounds: [{down: [bridge index, ...]}]}
// Between rounds the driver writes `<dir>/round-<r>.done` and waits for `<dir>/go-<r+1>` (the test
// kills or restarts servers meanwhile); a round's `down` bridges are dead while it runs. At the end
// it writes to `out` what every client saw (its whole wire) and the plan of the changes made.
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  attempt,
  finish,
  log,
  managePy,
  newClient,
  settle,
  shutdown,
  start,
  valueIn,
  waitFor
} from '../../e2e/js/common.mjs'
import { bridgePackages, quickReconnect } from './packages.mjs'

const config = JSON.parse(process.argv[2])
const { changeSyncMap, Client, createFilter, Reconnect, syncMapTemplate, WebSocket, WsConnection } =
  await bridgePackages(config.modules)

const QuickReconnect = quickReconnect(Reconnect)

const WAIT = 20000
const clients = []
const unbinds = []
const names = Object.keys(config.users)
const rows = config.rows

function readable(user, row) {
  return !row.private || row.owner === user
}

// Client i is user names[i % 4] on bridge i % 3. Even clients list every task; odd ones list the To do
// column and subscribe by id to the public rows outside it and to their user's own private rows
// outside it, and probe the private row of the next user (which must answer as a missing row).
async function openClient(index) {
  const name = names[index % names.length]
  const bridge = index % config.urls.length
  const logux = { Client, Reconnect: QuickReconnect, WsConnection, WebSocket }
  const client = newClient(logux, {
    catchErrors: true,
    name,
    subprotocol: 1,
    url: config.urls[bridge],
    user: config.users[name]
  })
  client.userName = name
  await start(client, clients, WAIT)
  const entry = { bridge, client, index, kind: index % 2 ? 'todo' : 'all', name, rows: {}, states: [] }
  client.on('state', () => entry.states.push(client.state))
  const ListTask = syncMapTemplate('tasks')
  entry.list = createFilter(client, ListTask, index % 2 ? { column: 'todo' } : {})
  unbinds.push(entry.list.listen(() => {}))
  await entry.list.loading
  if (index % 2) {
    const RowTask = syncMapTemplate('tasks')
    for (const row of rows) {
      if (row.column !== 'todo' && readable(name, row)) {
        const store = RowTask(row.id, client)
        unbinds.push(store.listen(() => {}))
        await store.loading
        entry.rows[row.id] = store
      }
    }
    const next = names[(names.indexOf(name) + 1) % names.length]
    const hidden = rows.find(row => row.private && row.owner === next)
    const Probe = syncMapTemplate('tasks')
    const probe = Probe(hidden.id, client)
    unbinds.push(probe.listen(() => {}))
    entry.probe = await attempt(
      () => probe.loading,
      () => ({ loaded: probe.get() })
    )
  }
  entry.covered = rows
    .filter(row => readable(name, row) && (entry.kind === 'all' || row.column === 'todo' || row.id in entry.rows))
    .map(row => row.id)
  return entry
}

function store(entry, id) {
  return entry.rows[id] || entry.list.get().stores.get(id)
}

function title(entry, id) {
  return entry.rows[id] ? entry.rows[id].get().title : valueIn(entry.list, id)?.title
}

async function waitForFile(name) {
  await waitFor(`the test's ${name}`, () => existsSync(join(config.dir, name)), 60000, 50)
}

// Every row changes once per round: by a client that holds it (on a live bridge), or in the ORM.
async function round(number, entries, { down }) {
  const live = entries.filter(entry => !down.includes(entry.bridge))
  const changes = {}
  for (const [k, row] of rows.entries()) {
    const value = `${row.private ? 'secret' : 'public'}-${k}-r${number}`
    const authors = live.filter(entry => entry.covered.includes(row.id))
    if ((k + number) % 3 === 0 || authors.length === 0) {
      changes[row.id] = { author: 'orm', title: value }
    } else {
      const author = authors[(k + number) % authors.length]
      changes[row.id] = { author: author.index, title: value }
    }
  }
  const edits = Object.entries(changes)
  const orm = edits.filter(([, change]) => change.author === 'orm')
  const save = ([id, change]) =>
    `t = Task.objects.get(pk=${JSON.stringify(id)}); t.title = ${JSON.stringify(change.title)}; t.save()\n`
  await Promise.all([
    ...edits
      .filter(([, change]) => change.author !== 'orm')
      .map(([id, change]) => changeSyncMap(store(entries[change.author], id), { title: change.title })),
    managePy(config, 'from board.models import Task\n' + orm.map(save).join(''))
  ])
  for (const entry of live) {
    for (const id of entry.covered) {
      const what = `round ${number}: client ${entry.index} (${entry.name}, bridge ${entry.bridge}) holds ${id}`
      await waitFor(what, () => title(entry, id) === changes[id].title, WAIT)
    }
  }
  log(`round ${number} done`)
  return { changes, down, round: number }
}

async function main() {
  const entries = []
  for (let index = 0; index < 2 * names.length; index++) entries.push(await openClient(index))
  const plan = []
  for (const [number, spec] of config.rounds.entries()) {
    if (number > 0) await waitForFile(`go-${number}`)
    // Clients of a bridge that was restarted reconnect and resubscribe: wait until they are back and
    // hold the previous round's values.
    const up = entries.filter(entry => !spec.down.includes(entry.bridge))
    for (const entry of up) {
      await waitFor(`client ${entry.index} synchronized`, () => entry.client.state === 'synchronized', WAIT)
    }
    await settle(
      up.map(entry => entry.client),
      { ms: WAIT, pause: 100 }
    )
    if (number > 0) {
      const previous = plan[number - 1].changes
      for (const entry of up) {
        for (const id of entry.covered) {
          await waitFor(`client ${entry.index} catches up on ${id}`, () => title(entry, id) === previous[id].title, WAIT)
        }
      }
    }
    plan.push(await round(number, entries, spec))
    writeFileSync(join(config.dir, `round-${number}.done`), '')
  }
  await waitForFile('go-end')
  for (const entry of entries) {
    await waitFor(`client ${entry.index} synchronized at the end`, () => entry.client.state === 'synchronized', WAIT)
  }
  const last = plan.at(-1).changes
  for (const entry of entries) {
    for (const id of entry.covered) {
      await waitFor(`client ${entry.index} ends with ${id}`, () => title(entry, id) === last[id].title, WAIT)
    }
  }
  return {
    clients: entries.map(entry => ({
      bridge: entry.bridge,
      covered: entry.covered,
      final: Object.fromEntries(entry.covered.map(id => [id, title(entry, id)])),
      index: entry.index,
      kind: entry.kind,
      name: entry.name,
      node: entry.client.nodeId,
      probe: entry.probe || null,
      states: entry.states.slice(),
      wire: entry.client.wire.slice()
    })),
    plan
  }
}

finish(main, { close: () => shutdown(clients, unbinds), label: 'scale', out: config.out })
