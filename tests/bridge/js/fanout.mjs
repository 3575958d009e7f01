// Drives real @logux/client 0.23 clients against the logux-sync bridge in LOGUX_SYNC['FANOUT'] =
// 'bridge' mode (tests/bridge/test_bridge_fanout.py asserts on what it prints).
//
// Usage: node fanout.mjs <scenario> '<config JSON>'
// config: as syncmap.mjs's, plus {secret, keys: {todo, doing}} (match keys of {column: ...} filters).
import { finish, managePy, newClient, shutdown, sleep, start, taskHelpers, titles, valueIn, WAIT_MS, waitFor } from '../../e2e/js/common.mjs'
import { bridgePackages } from './packages.mjs'

const [scenario, rawConfig] = process.argv.slice(2)
const config = JSON.parse(rawConfig)
const { Client, createFilter, createSyncMap, Reconnect, syncMapTemplate, WebSocket, WsConnection } = await bridgePackages(
  config.modules
)

const clients = []
const unbinds = []
const { taskList } = taskHelpers({ createFilter, createSyncMap, syncMapTemplate }, config.users, unbinds)

function connect(name, url = config.urls[0]) {
  const logux = { Client, Reconnect, WsConnection, WebSocket }
  return start(newClient(logux, { name, subprotocol: 1, url, user: config.users[name] }), clients, WAIT_MS)
}

let probes = 0

// Adds an action through the bridge's control port as Django does, fanned out to the lists with
// `keys` (meta.logux_sync); its id.
async function probe(keys, url = config.urls[0]) {
  probes += 1
  const id = `probe-${probes}-${Date.now()}`
  const port = new URL(url).port
  const meta = {
    id: `${Date.now()} server:probe 0`,
    logux_sync: { channel: `tasks/${id}`, created: false, keys, plural: 'tasks' },
    time: Date.now()
  }
  const body = { commands: [{ action: { fields: { title: id }, id, type: 'tasks/changed' }, command: 'action', meta }] }
  const response = await fetch(`http://127.0.0.1:${port}/`, {
    body: JSON.stringify({ ...body, secret: config.secret, version: 4 }),
    method: 'POST'
  })
  if (response.status !== 200) throw new Error(`the bridge answered ${response.status}`)
  return id
}

const heard = (client, id) => client.wire.some(message => JSON.stringify(message).includes(id))

// The reason of the undo a client got for its action, or 'none'.
async function refusal(client, action) {
  const meta = await client.log.add(action, { sync: true })
  let reason = 'none'
  await waitFor(`an undo of ${action.type}`, () => {
    const undo = client.wire.find(m => m[0] === 'sync' && m[2]?.type === 'logux/undo' && m[2].id === meta.id)
    if (undo) reason = undo[2].reason
    return Boolean(undo)
  }).catch(() => {})
  return reason
}

const scenarios = {
  // bob forges a watch of alice's list and then sees nothing fanned out to it; alice, whose watch
  // Django gave the bridge, does, without the private meta.
  async forged() {
    const alice = await connect('alice')
    const bob = await connect('bob')
    await taskList(alice, { column: 'doing' })
    await taskList(bob, { column: 'todo' })
    const forged = await refusal(bob, { key: config.keys.doing, list: true, plural: 'tasks', ttl: 3600, type: 'logux_sync/watch' })
    const other = await refusal(bob, { node: alice.nodeId, type: 'logux_sync/disconnected' })
    const doing = await probe([config.keys.doing])
    const todo = await probe([config.keys.todo])
    await waitFor('alice hears the probe of her list', () => heard(alice, doing))
    await waitFor('bob hears the probe of his list', () => heard(bob, todo))
    await sleep(300) // anything wrongly fanned out would have arrived by now
    const aliceWire = alice.wire.filter(m => JSON.stringify(m).includes('probe-'))
    return {
      aliceHeard: [heard(alice, doing), heard(alice, todo)],
      aliceWire,
      bobHeard: [heard(bob, doing), heard(bob, todo)],
      forged,
      other
    }
  },

  // Live changes of a public card made in Django reach every list it matches, before and after, and
  // leave the lists it no longer matches; an unsubscribed list hears nothing more.
  async live() {
    const alice = await connect('alice')
    const bob = await connect('bob', config.urls.at(-1))
    const all = await taskList(alice)
    const todo = await taskList(bob, { column: 'todo' })
    const doing = await taskList(bob, { column: 'doing' })
    const shell = code => managePy(config, `from board.models import Task\n${code}\nprint('ok')\n`)
    const id = `fan-${Date.now()}`
    const steps = []
    await shell(`Task.objects.create(pk='${id}', title='Fanned', column='todo', owner_id=${config.users.alice.id})`)
    await waitFor('alice lists the card', () => titles(all.list)[id] === 'Fanned')
    await waitFor("bob's todo lists the card", () => titles(todo.list)[id] === 'Fanned')
    steps.push('created')
    await shell(`t = Task.objects.get(pk='${id}'); t.column = 'doing'; t.save()`)
    await waitFor('alice sees it move', () => valueIn(all.list, id)?.column === 'doing')
    await waitFor("bob's doing lists it", () => valueIn(doing.list, id)?.column === 'doing')
    await waitFor("bob's todo drops it", () => !(id in titles(todo.list)))
    steps.push('moved')
    todo.unbind()
    // The store unsubscribes a moment after its last listener left; the bridge drops the watch then,
    // as it tells Django, which forgets the subscription.
    const remembered = async () =>
      Number(
        await managePy(
          config,
          'from logux_sync.sync.models import LoguxSubscription\n' +
            `print(LoguxSubscription.objects.filter(node_id=${JSON.stringify(bob.nodeId)}).count())\n`
        )
      )
    await waitFor('Django to forget bob\'s todo list', async () => (await remembered()) === 1, 15000)
    const after = await probe([config.keys.todo], config.urls.at(-1))
    await shell(`Task.objects.filter(pk='${id}').delete()`)
    await waitFor('alice drops it', () => !(id in titles(all.list)))
    await waitFor("bob's doing drops it", () => !(id in titles(doing.list)))
    steps.push('deleted')
    await sleep(300)
    return { afterUnsubscribe: heard(bob, after), steps }
  },

  // A private card (readers Q(pk=owner)) is fanned out naming alice alone: her clients on both bridges
  // hear every change of it, bob's clients subscribed to the same lists on both bridges never hear a
  // private state, only the public one between.
  async private() {
    const alices = [await connect('alice'), await connect('alice', config.urls.at(-1))]
    const bobs = [await connect('bob'), await connect('bob', config.urls.at(-1))]
    const aliceLists = [await taskList(alices[0]), await taskList(alices[1], { column: 'todo' })]
    const bobLists = [await taskList(bobs[0]), await taskList(bobs[1], { column: 'todo' })]
    const shell = code => managePy(config, `from board.models import Task\n${code}\nprint('ok')\n`)
    const id = `secret-${Date.now()}`
    const edit = fields =>
      shell(`t = Task.objects.get(pk='${id}')\n` + Object.entries(fields).map(([k, v]) => `t.${k} = ${v}`).join('\n') + '\nt.save()')
    const both = (label, check) => waitFor(label, () => aliceLists.every(check))
    const steps = []
    await shell(`Task.objects.create(pk='${id}', title='Secret-1', column='todo', private=True, owner_id=${config.users.alice.id})`)
    await both("alice's lists get the private card", ({ list }) => titles(list)[id] === 'Secret-1')
    await edit({ title: "'Secret-2'" })
    await both('alice hears its new title', ({ list }) => titles(list)[id] === 'Secret-2')
    steps.push('private')
    await edit({ private: 'False', title: "'Public-3'" })
    await waitFor('bob gets it once public', () => bobLists.every(({ list }) => titles(list)[id] === 'Public-3'))
    steps.push('public')
    await edit({ private: 'True', title: "'Secret-4'" })
    await waitFor('bob loses it', () => bobLists.every(({ list }) => !(id in titles(list))))
    await both('alice hears the last title', ({ list }) => titles(list)[id] === 'Secret-4')
    steps.push('private again')
    await edit({ title: "'Secret-5'" })
    await both('alice hears it', ({ list }) => titles(list)[id] === 'Secret-5')
    await shell(`Task.objects.filter(pk='${id}').delete()`)
    await both('alice drops it', ({ list }) => !(id in titles(list)))
    steps.push('deleted')
    await sleep(300) // anything wrongly fanned out would have arrived by now
    const leaked = bobs.flatMap(bob => bob.wire.filter(m => JSON.stringify(m).includes('Secret-')))
    return { bobSawPublic: bobs.every(bob => heard(bob, 'Public-3')), leaked, steps }
  }
}

finish(scenarios[scenario] || (() => Promise.reject(new Error(`unknown scenario ${scenario}`))), {
  close: () => shutdown(clients, unbinds),
  label: scenario
})
