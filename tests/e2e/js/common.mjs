// Helpers shared by the Node drivers of the end-to-end tests (tests/e2e/js/*.mjs, tests/bridge/js/*.mjs).
//
// Nothing here imports a @logux package: the e2e drivers use @logux/client 0.21.1 from the root
// node_modules, the bridge driver 0.23 from logux_sync/bridge/node_modules, so each passes its own
// classes in (`logux`: {Client, Reconnect, WsConnection, WebSocket}).
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { promisify } from 'node:util'

export function log(...args) {
  process.stderr.write(`[${new Date().toISOString()}] ${args.join(' ')}\n`)
}

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

export const WAIT_MS = 8000

// Polls `check()` every `every` ms until it holds; the milliseconds it took. Fails naming `what` after `ms`.
export async function waitFor(what, check, ms = WAIT_MS, every = 20) {
  const started = Date.now()
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started
    await sleep(every)
  }
  throw new Error(`timed out after ${ms} ms waiting for: ${what}`)
}

// Like waitFor(), but answers null (and logs why) instead of failing: for what the test reports on.
export async function waitedFor(what, check, ms, every) {
  try {
    return await waitFor(what, check, ms, every)
  } catch (error) {
    log(error.message)
    return null
  }
}

export function newId(label) {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
}

// `python <args>` in the example project (config: {python, exampleDir}); {stdout, stderr}.
export function python(config, args) {
  return promisify(execFile)(config.python, args, { cwd: config.exampleDir })
}

// `manage.py shell -c <code>` in the example project; the last line it printed (Django 5.2's shell
// prints a line about its automatic imports first).
export async function managePy(config, code) {
  const { stdout } = await python(config, ['manage.py', 'shell', '-c', code])
  return stdout.trim().split('\n').pop()
}

// ---- clients -------------------------------------------------------------------------------------

// A client of `user` on `url`, not started yet. With `wire`, client.wire records every message the
// server sends it: a copy, as the client goes on to change the meta objects of what it received
// (reasons, time fix). With `catchErrors`, node errors are logged instead of thrown (a refused
// reconnect would otherwise end the process).
export function newClient(logux, { url, name, user, subprotocol, wire = true, catchErrors = false }) {
  const { Client, Reconnect, WsConnection, WebSocket } = logux
  const connection = new Reconnect(new WsConnection(url, WebSocket))
  const client = new Client({ server: connection, subprotocol, token: user.token, userId: user.id })
  client.userName = name
  if (wire) {
    client.wire = []
    connection.on('message', message => client.wire.push(JSON.parse(JSON.stringify(message))))
  }
  if (catchErrors) client.node.catch(error => log(name, 'node error', error.message))
  else client.node.on('error', error => log(name, 'node error', error.stack || error))
  return client
}

// Starts `client`, adds it to `clients` (for shutdown()) and waits until it is synchronized.
export async function start(client, clients, ms, every) {
  clients.push(client)
  client.start()
  await waitFor(`${client.userName} connects`, () => client.state === 'synchronized', ms, every)
  return client
}

// How many of the client's own actions still wait for the server's `logux/processed`.
export async function syncing(client) {
  let count = 0
  await client.log.each((action, meta) => {
    if (meta.reasons.includes('syncing')) count += 1
  })
  return count
}

// Waits until no connected client has an action in flight; with `pause`, waits again after it, for
// what those answers set off (a row subscribe after a new card).
export async function settle(clients, { what = 'clients to finish syncing', ms = 3000, pause = 0 } = {}) {
  const quiet = async () => {
    for (const client of clients) {
      if (client.connected && (await syncing(client)) > 0) return false
    }
    return true
  }
  await waitFor(what, quiet, ms)
  if (pause) {
    await sleep(pause)
    await waitFor(what, quiet, ms)
  }
}

// Stops listening and destroys the clients. With `drain` (settle()'s options), first leaves nothing in
// flight: Logux server 0.13.1 in development mode loops on "WS was closed" errors when it answers a
// client whose socket is already closing (and then ignores SIGTERM).
export async function shutdown(clients, unbinds, drain = null) {
  if (drain) {
    try {
      await settle(clients, drain)
    } catch (error) {
      log(error.message)
    }
  }
  for (const unbind of unbinds) unbind()
  for (const client of clients) client.destroy()
  await sleep(50)
}

// ---- what the clients hold -------------------------------------------------------------------------

export function titles(filterStore) {
  const result = {}
  for (const value of filterStore.get().list) result[value.id] = value.title
  return result
}

export function valueIn(filterStore, id) {
  return filterStore.get().list.find(v => v.id === id)
}

// A task's fields in the order the Python side writes them (some compare JSON text).
export function taskFields(value) {
  return { column: value.column, owner: value.owner, private: value.private, title: value.title }
}

// {id: taskFields} of every task in a createFilter list.
export function listFields(filterStore) {
  const result = {}
  for (const value of filterStore.get().list) result[value.id] = taskFields(value)
  return result
}

// ---- running a driver ------------------------------------------------------------------------------

// Runs `main`, then `close` (shutdown), and exits 0 with main's result as JSON: in the file `out`,
// written after `close` (process.exit() cuts a large write to a pipe short), or else on stdout,
// written before it. On an error prints `FAILED <label>: <stack>`, closes and exits 1.
export function finish(main, { close, label = '', out = null }) {
  main()
    .then(async result => {
      if (out) {
        await close()
        writeFileSync(out, JSON.stringify(result))
      } else {
        process.stdout.write(JSON.stringify(result) + '\n')
        await close()
      }
      process.exit(0)
    })
    .catch(async error => {
      process.stderr.write(`FAILED${label ? ` ${label}` : ''}: ${error.stack || error}\n`)
      await close()
      process.exit(1)
    })
}

// ---- the example's tasks ----------------------------------------------------------------------------

// taskList() and card() with one @logux/client version's functions ({createFilter, createSyncMap,
// syncMapTemplate}); `users` as in the drivers' config, `unbinds` collects the listeners for shutdown().
export function taskHelpers({ createFilter, createSyncMap, syncMapTemplate }, users, unbinds) {
  // A createFilter list of tasks, loaded. Each client gets its own template: syncMapTemplate caches
  // stores by id, not per client.
  async function taskList(client, filter = {}) {
    const Task = syncMapTemplate('tasks')
    const list = createFilter(client, Task, filter)
    const unbind = list.listen(() => {})
    unbinds.push(unbind)
    await list.loading
    return { list, Task, unbind }
  }

  // A public card in To do of the client's user, created through createSyncMap (`extra` overrides
  // fields, the id included); its id.
  async function card(client, Task, title, extra = {}) {
    const fields = {
      column: 'todo',
      id: newId('card'),
      owner: Number(users[client.userName].id),
      private: false,
      title,
      ...extra
    }
    await createSyncMap(client, Task, fields)
    return fields.id
  }

  return { card, taskList }
}

// Awaits `work()`: what `done()` makes of a success, or {error, reason} of a refusal (a logux/undo).
export async function attempt(work, done) {
  try {
    await work()
  } catch (error) {
    return { error: error.name, reason: error.action && error.action.reason }
  }
  return done()
}

// ---- scenarios both stacks run ------------------------------------------------------------------------

// The two-user scenarios of tests/e2e/js/syncmap.mjs that the bridge's flows.mjs runs too, with one
// @logux/client version's changeSyncMap; `aliceAndBob()` opens alice and bob, each with a list of every
// task, and `card` is taskHelpers()'s.
export function twoUserScenarios({ changeSyncMap, syncMapTemplate }, { aliceAndBob, card, unbinds }) {
  return {
    // Alice and Bob edit the same card at the same moment, several times; they end up agreeing.
    async conflict() {
      const { alice, bob, a, b } = await aliceAndBob()
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
      const { alice, bob, a, b } = await aliceAndBob()
      const id = await card(alice, a.Task, 'Before bob left')
      await waitFor(`bob's list shows ${id}`, () => titles(b.list)[id] === 'Before bob left')
      const resubscribes = []
      bob.on('add', (action, meta) => {
        if (action.type === 'logux/subscribe' && meta.resubscribe) resubscribes.push(action)
      })

      // Go offline while idle. (Dropping while the row subscribe that follows a new card is still in
      // flight leaves Logux server 0.13.1's per-client queue stuck: the server never answers this
      // client's later actions, resubscribes included.)
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

    // Bob tries to take Alice's private card with a create of its id, probes it and a made-up id, and
    // stamps an edit of his own card a minute ahead; Alice's card and his card stay as they were.
    async hostile() {
      const { alice, bob, a, b } = await aliceAndBob()
      const secret = await card(alice, a.Task, 'Alice secret', { private: true })
      const own = await card(bob, b.Task, 'Bob card')
      await waitFor(`alice's list shows ${own}`, () => own in titles(a.list))
      // card() makes bob the owner of what he creates.
      const takeover = await attempt(() => card(bob, b.Task, 'Taken', { id: secret }), () => ({ created: true }))
      const probe = async id => {
        const Row = syncMapTemplate('tasks')
        const store = Row(id, bob)
        unbinds.push(store.listen(() => {}))
        return attempt(() => store.loading, () => ({ loaded: store.get().title }))
      }
      const probes = { hidden: await probe(secret), missing: await probe(newId('missing')) }
      const change = { fields: { title: 'Pinned ahead' }, id: own, type: 'tasks/change' }
      const skewed = await attempt(() => bob.sync(change, { time: Date.now() + 60000 }), () => ({ synced: true }))
      await sleep(300)
      return { bobList: titles(b.list), own, ownAtAlice: titles(a.list)[own], probes, secret, skewed, takeover }
    }
  }
}

// The access matrix (tests/e2e/matrix.py builds `config`), with one @logux/client version's functions:
// every user subscribes to several filtered lists and probes row channels; then the database changes
// (the config's ORM script, and the clients' own edits); every message each client receives on the wire
// is recorded. `connect(name, index)` starts the index-th user's client; `ms` bounds each wait.
// {name: {wire, lists: {label: {id: fields}}, probes: {id: result}, rowStores: {id: value}}}.
export async function accessMatrix(
  { changeSyncMapById, createFilter, createSyncMap, syncMapTemplate },
  config,
  { connect, unbinds, ms }
) {
  const names = Object.keys(config.users)
  const state = {}
  for (const [index, name] of names.entries()) {
    const client = await connect(name, index)
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
  // Row channels: others' private rows (answered as missing) and rows the user may read.
  for (const name of names) {
    const s = state[name]
    s.probes = {}
    s.rowStores = {}
    for (const id of [...config.probes[name], ...config.rowSubs[name]]) {
      const store = s.RowTask(id, s.client)
      unbinds.push(store.listen(() => {}))
      s.probes[id] = await attempt(
        () => store.loading,
        () => {
          s.rowStores[id] = store
          return { loaded: true }
        }
      )
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
    const barrierShown = () => config.barrier in listFields(state[name].lists.all)
    await waitFor(`${name}'s list shows the barrier`, barrierShown, ms)
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
