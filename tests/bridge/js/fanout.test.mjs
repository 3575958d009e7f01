// Unit tests of the bridge's fan-out (LOGUX_SYNC['FANOUT'] = 'bridge'): which nodes connected here a
// change Django sent once reaches. Run by tests/bridge/test_bridge_fanout.py (`node --test`).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  fanOutTargets,
  isFanOut,
  isWatch,
  subscriptionId,
  WATCH,
  Watches
} from '../../../logux_sync/bridge/bridge.mjs'

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
  for (let bad of [null, 'x', { ...info(['k']), keys: 'k' }, { ...info([1]) }, { ...info(['k']), channel: 1 }]) {
    assert.ok(!isFanOut(bad))
  }
})
