// The @logux/client 0.23 packages of the bridge drivers: from logux_sync/bridge/node_modules, or from
// `modules` (a config's `modules`) if given. The whole of @logux/client and of @logux/core, and WebSocket.
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export async function bridgePackages(modules) {
  const root =
    modules || join(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'logux_sync', 'bridge', 'node_modules')
  const load = path => import(pathToFileURL(join(root, path)).href)
  const { default: WebSocket } = await load('ws/wrapper.mjs')
  return { ...(await load('@logux/client/index.js')), ...(await load('@logux/core/index.js')), WebSocket }
}

// A Reconnect that tries again sooner than the default (1 s doubling to 5 s): for drivers that stop and
// start a bridge, which is back within a second.
export function quickReconnect(Reconnect) {
  return class QuickReconnect extends Reconnect {
    constructor(connection) {
      super(connection, { maxDelay: 1000, minDelay: 200 })
    }
  }
}
