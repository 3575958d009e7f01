// Unit tests of the bridge's fan-out (LOGUX_SYNC['FANOUT'] = 'bridge'): which nodes connected here a
// change Django sent once reaches. Run by tests/bridge/test_bridge_fanout.py (`node --test`).
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'

import {
  createBridge,
  fanOutTargets,
  isFanOut,
  isWatch,
  subscriptionId,
  readOptions,
  WATCH,
  Watches
} from '../../../logux_sync/bridge/bridge.mjs'
import { bridgePackages } from './packages.mjs'

const watch = (key, list = true, ttl = 60) => ({ key, list, plural: 'tasks', ttl, type: WATCH })
const info = (keys, created = false) => ({ channel: 'tasks/t1', created, keys, plural: 'tasks' })

test('a change reaches the row subscribers and the nodes watching one of its keys, once each', () => {
  let watches = new Watches()
  watches.add('1:a:1', 'tasks\n{"column":"todo"}', watch('todo'))
  watches.add('2:b:1', 'tasks\n{"column":"done"}', watch('done'))
  watches.add('3:c:1', 'tasks\n{}', watch('all'))
  watches.add('1:a:1', 'tasks\n{}', watch('all'))
  let { marks, nodes } = fanOutTargets(watches, { '4:d:1': {}, '1:a:1': {} }, info(['todo', 'all']))
  assert.deepEqual(nodes.sort(), ['1:a:1', '3:c:1', '4:d:1'])
  assert.deepEqual(marks, [])
})

test('a watch of another plural or key reaches nothing', () => {
  let watches = new Watches()
  watches.add('1:a:1', 's', { ...watch('todo'), plural: 'notes' })
  watches.add('2:b:1', 's', watch('other'))
  assert.deepEqual(fanOutTargets(watches, undefined, info(['todo'])).nodes, [])
})

test('the author client is left out, row subscriber or watcher', () => {
  let watches = new Watches()
  watches.add('1:a:1', 's', watch('k'))
  watches.add('1:a:2', 's', watch('k'))
  watches.add('1:b:1', 's', watch('k'))
  let { nodes } = fanOutTargets(watches, { '1:a:3': {} }, info(['k']), ['1:a'])
  assert.deepEqual(nodes, ['1:b:1'])
  // A node id without a tab is its client id; a longer client id is another client.
  watches.add('1:a', 's', watch('k'))
  watches.add('1:ab:1', 's', watch('k'))
  assert.deepEqual(fanOutTargets(watches, {}, info(['k']), ['1:a']).nodes.sort(), ['1:ab:1', '1:b:1'])
})

test('a created row is marked subscribed for createFilter lists not already on its channel', () => {
  let watches = new Watches()
  watches.add('1:a:1', 'tasks', watch('k', true))
  watches.add('2:b:1', 'projects/1/tasks', watch('k', false))
  watches.add('3:c:1', 'tasks', watch('k', true))
  let { marks, nodes } = fanOutTargets(watches, { '3:c:1': {} }, info(['k'], true))
  assert.deepEqual(marks, ['1:a:1'])
  assert.deepEqual(nodes.sort(), ['1:a:1', '2:b:1', '3:c:1'])
  assert.deepEqual(fanOutTargets(watches, {}, info(['k'], false)).marks, [])
})

test('unsubscribe, disconnect and subscription_ttl end a watch', () => {
  let now = 1000
  let watches = new Watches(() => now)
  watches.add('1:a:1', 'one', watch('k'))
  watches.add('1:a:1', 'two', watch('j'))
  watches.add('2:b:1', 'one', watch('k', true, 10))
  watches.add('3:c:1', 'one', watch('k'))
  watches.remove('1:a:1', 'one')
  assert.deepEqual([...watches.find('tasks', ['k', 'j']).keys()].sort(), ['1:a:1', '2:b:1', '3:c:1'])
  watches.drop('3:c:1')
  now += 10_000
  assert.deepEqual([...watches.find('tasks', ['k', 'j']).keys()], ['1:a:1'])
  assert.equal(watches.size, 1)
  // A resubscribe refreshes the watch instead of adding one.
  watches.add('1:a:1', 'two', watch('j'))
  watches.add('1:a:1', 'two', watch('j'))
  assert.equal(watches.size, 1)
})

test('a subscription is identified by channel and filter as the server does', () => {
  assert.equal(subscriptionId({ channel: 'tasks', filter: { a: 1 } }), 'tasks\n{"a":1}')
  assert.equal(subscriptionId({ channel: 'tasks/1' }), 'tasks/1\n{}')
})

test('malformed watches and fan-out metas are refused', () => {
  assert.ok(isWatch(watch('k')))
  for (let bad of [{ ...watch('k'), ttl: 0 }, { ...watch('k'), key: 1 }, { type: WATCH }, { ...watch('k'), type: 'x' }]) {
    assert.ok(!isWatch(bad))
  }
  assert.ok(isFanOut(info(['k'])))
  assert.ok(isFanOut({ ...info(['k']), users: ['1', '2'] }))
  assert.ok(isFanOut({ ...info(['k']), users: [] }))
  let bads = [null, 'x', { ...info(['k']), keys: 'k' }, { ...info([1]) }, { ...info(['k']), channel: 1 }]
  bads.push({ ...info(['k']), users: '1' }, { ...info(['k']), users: [1] }, { ...info(['k']), users: null })
  for (let bad of bads) {
    assert.ok(!isFanOut(bad))
  }
})

test('with users listed, only their nodes are reached: row subscribers, watchers and marks alike', () => {
  let watches = new Watches()
  watches.add('1:a:1', 'tasks', watch('k', true))
  watches.add('2:b:1', 'tasks', watch('k', true))
  watches.add('12:c:1', 'tasks', watch('k', true)) // a user id that starts like a listed one
  watches.add('anonymous', 'tasks', watch('k', true)) // a node id with no user part
  let rows = { '1:a:2': {}, '2:b:2': {}, '1:x': {}, '21:z:1': {} }
  let { marks, nodes } = fanOutTargets(watches, rows, { ...info(['k'], true), users: ['1'] })
  assert.deepEqual(nodes.sort(), ['1:a:1', '1:a:2', '1:x'])
  assert.deepEqual(marks, ['1:a:1'])
  // An empty list reaches no one; no list (readers True) reaches every subscriber.
  assert.deepEqual(fanOutTargets(watches, rows, { ...info(['k']), users: [] }).nodes, [])
  assert.equal(fanOutTargets(watches, rows, info(['k'])).nodes.length, 8)
  // The author's client stays out even when its user is listed.
  let authored = fanOutTargets(watches, rows, { ...info(['k']), users: ['1', '2'] }, ['1:a'])
  assert.deepEqual(authored.nodes.sort(), ['1:x', '2:b:1', '2:b:2'])
})

// ---- a whole bridge against a fake Django --------------------------------------------------------

// A fake Django on 127.0.0.1: authenticates everyone, approves every action, and answers a list
// subscribe (approved at once) with a watch of `key` only when release() is called.
async function fakeDjango(key) {
  let release
  let released = new Promise(resolve => (release = resolve))
  let server = http.createServer((req, res) => {
    let body = ''
    req.on('data', chunk => (body += chunk))
    req.on('end', async () => {
      let { commands } = JSON.parse(body)
      res.write('[')
      let first = true
      let write = answer => {
        res.write((first ? '' : ',') + JSON.stringify(answer))
        first = false
      }
      for (let command of commands) {
        if (command.command === 'auth') {
          write({ answer: 'authenticated', authId: command.authId, subprotocol: '1.0.0' })
          continue
        }
        let id = command.meta.id
        write({ answer: 'approved', id })
        if (command.action.type === 'logux/subscribe') {
          await released
          let node = id.split(' ')[1]
          write({ action: watch(key), answer: 'action', id, meta: { nodes: [node] } })
        }
        write({ answer: 'processed', id })
      }
      res.end(']')
    })
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: server.address().port, release, server }
}

test('a change that arrives while a list subscribe is in flight waits for its watch; a disconnect ends it', async () => {
  let django = await fakeDjango('k')
  let port = await new Promise(resolve => {
    let probe = net.createServer().listen(0, '127.0.0.1', () => {
      let { port: free } = probe.address()
      probe.close(() => resolve(free))
    })
  })
  let options = readOptions(
    [`--backend=http://127.0.0.1:${django.port}/`, `--port=${port}`, '--secret=s', '--log-level=warn'],
    {}
  )
  let bridge = createBridge(options)
  await bridge.server.listen()
  let { Client, Reconnect, WebSocket, WsConnection } = await bridgePackages()
  let connection = new Reconnect(new WsConnection(`ws://127.0.0.1:${port}/`, WebSocket))
  let client = new Client({ server: connection, subprotocol: 1, token: 't', userId: '1' })
  let heard = []
  client.log.on('add', action => {
    if (action.type === 'tasks/changed') heard.push(action.id)
  })
  try {
    client.start()
    await client.node.waitFor('synchronized')
    client.log.add({ channel: 'tasks', filter: {}, type: 'logux/subscribe' }, { sync: true })
    // Wait until the subscribe is in flight to Django (the fake holds its answer).
    while (bridge.subscribing.size === 0) await sleep(10)
    let meta = {
      id: `${Date.now()} server:fake 0`,
      logux_sync: { channel: 'tasks/t1', created: false, keys: ['k'], plural: 'tasks' },
      time: Date.now()
    }
    let body = { commands: [{ action: { fields: { title: 'x' }, id: 't1', type: 'tasks/changed' }, command: 'action', meta }] }
    let posted = fetch(`http://127.0.0.1:${port}/`, { body: JSON.stringify({ ...body, secret: 's', version: 4 }), method: 'POST' })
    await sleep(200)
    assert.deepEqual(heard, []) // held: the list's watch has not come yet
    django.release()
    assert.equal((await posted).status, 200)
    let start = Date.now()
    while (heard.length === 0 && Date.now() - start < 3000) await sleep(10)
    assert.deepEqual(heard, ['t1'])
    assert.equal(bridge.watches.size, 1)
    // The node leaves: its watch goes with it.
    client.destroy()
    start = Date.now()
    while (bridge.watches.size > 0 && Date.now() - start < 3000) await sleep(10)
    assert.equal(bridge.watches.size, 0)
  } finally {
    client.destroy()
    await bridge.server.destroy()
    django.server.close()
  }
})
