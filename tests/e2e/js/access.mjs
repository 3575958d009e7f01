// Access matrix with real @logux/client 0.21.1 clients (common.mjs accessMatrix(): every user subscribes
// to several filtered lists and probes row channels; then the database changes; every message each
// client receives on the wire is recorded).
//
// Usage: node access.mjs '<config JSON>'
// config: {url, users: {name: {id, token}}, python, exampleDir, filters: {label: filter},
//          probes: {name: [row ids]}, rowSubs: {name: [row ids]}, ownEdits: {name: {change: {id, fields},
//          create: {...fields with id}}}, liveScript, barrier, out}
// Writes to config.out {name: {wire, lists: {label: {id: fields}}, probes: {id: result}, rowStores: {id: value}}}.
import { changeSyncMapById, Client, createFilter, createSyncMap, syncMapTemplate } from '@logux/client'
import { Reconnect, WsConnection } from '@logux/core'
import WebSocket from 'ws'

import { accessMatrix, finish, newClient, shutdown, start } from './common.mjs'

const config = JSON.parse(process.argv[2])
const WAIT_MS = 15000
const clients = []
const unbinds = []

function connect(name) {
  const client = newClient(
    { Client, Reconnect, WsConnection, WebSocket },
    { name, subprotocol: '1.0.0', url: config.url, user: config.users[name] }
  )
  return start(client, clients, WAIT_MS)
}

const main = () =>
  accessMatrix({ changeSyncMapById, createFilter, createSyncMap, syncMapTemplate }, config, {
    connect,
    ms: WAIT_MS,
    unbinds
  })

// A file, not stdout: process.exit() cuts a large write to a pipe short.
finish(main, { close: () => shutdown(clients, unbinds, {}), out: config.out })
