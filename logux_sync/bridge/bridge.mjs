// logux-sync bridge: @logux/server 0.14 in front of a Django back end speaking back-end protocol v4.
//
// @logux/server 0.14 removed the back-end proxy of 0.13. This entry point puts it back on 0.14's public
// API (auth, otherType, otherChannel, http, subscribe, process, the `unsubscribed` and `disconnected`
// events), and adds what the old proxy never told the back end: unsubscribes and disconnects.
//
// Options (command-line flag, else environment variable, else default):
//   --backend  LOGUX_SYNC_BACKEND  Django's Logux endpoint       http://127.0.0.1:8000/logux/
//   --secret   LOGUX_CONTROL_SECRET  shared secret                (required)
//   --port     LOGUX_PORT          WebSocket + HTTP port          31337
//   --host     LOGUX_HOST          host to bind                   127.0.0.1
//   --subprotocol      LOGUX_SUBPROTOCOL      this server's subprotocol number      1
//   --min-subprotocol  LOGUX_MIN_SUBPROTOCOL  oldest client subprotocol accepted    1
//   --control-mask     LOGUX_CONTROL_MASK     IPs allowed to add actions (CIDR, comma-separated) 127.0.0.1/8
//   --batch-size       LOGUX_SYNC_BATCH_SIZE  most commands in one request to Django              50
//   --batch-wait       LOGUX_SYNC_BATCH_WAIT  ms commands gather while a request is in flight       2
//   --logger           LOGUX_LOGGER           human or json                                       human
//   --log-level        LOGUX_LOG_LEVEL        info (every action) or warn (problems only)          info
// `manage.py logux_server` fills these from Django's settings.
//
// With LOGUX_SYNC['FANOUT'] = 'bridge', Django sends a change whose readers did not change once, with
// `meta.logux_sync = {plural, channel, keys, created, users?}`, and this bridge finds the nodes
// connected here that it reaches (see "fan-out" below); Django addresses every other change to its
// nodes itself.
import { LoguxError, parseId } from '@logux/core'
import { Server } from '@logux/server'
import http from 'node:http'
import https from 'node:https'
import { parseArgs } from 'node:util'

const VERSION = 4
const RESEND_KEYS = ['channels', 'channel', 'nodes', 'node', 'clients', 'client', 'users', 'user']
// The exact bodies @logux/server 0.13.1's control server answered.
const WRONG_FORMAT = 'Wrong format'
const WRONG_BODY = 'Wrong body'
const WRONG_VERSION = 'Back-end protocol version is not supported'
const TOO_MANY = 'Too many wrong secret attempts'
const WRONG_SECRET = 'Wrong secret'
const WRONG_COMMAND = 'Wrong command'
const WRONG_IP = 'IP address is not in LOGUX_CONTROL_MASK/controlMask'
const MAX_CONTROL_BODY = 16 * 1024 * 1024

// ---- options ---------------------------------------------------------------------------------

export function readOptions(argv = process.argv.slice(2), env = process.env) {
  let { values } = parseArgs({
    args: argv,
    options: {
      'backend': { type: 'string' },
      'batch-size': { type: 'string' },
      'batch-wait': { type: 'string' },
      'control-mask': { type: 'string' },
      'host': { type: 'string' },
      'log-level': { type: 'string' },
      'logger': { type: 'string' },
      'min-subprotocol': { type: 'string' },
      'port': { type: 'string' },
      'secret': { type: 'string' },
      'subprotocol': { type: 'string' }
    }
  })
  let pick = (flag, name, fallback) => values[flag] ?? env[name] ?? fallback
  let int = (flag, name, fallback) => {
    let value = Number(pick(flag, name, fallback))
    if (!Number.isInteger(value) || value < 0) throw new Error(`--${flag} must be a whole number`)
    return value
  }
  let options = {
    backend: pick('backend', 'LOGUX_SYNC_BACKEND', 'http://127.0.0.1:8000/logux/'),
    batchSize: Math.max(1, int('batch-size', 'LOGUX_SYNC_BATCH_SIZE', 50)),
    batchWait: int('batch-wait', 'LOGUX_SYNC_BATCH_WAIT', 2),
    controlMask: pick('control-mask', 'LOGUX_CONTROL_MASK', '127.0.0.1/8'),
    host: pick('host', 'LOGUX_HOST', '127.0.0.1'),
    logger: pick('logger', 'LOGUX_LOGGER', 'human'),
    logLevel: pick('log-level', 'LOGUX_LOG_LEVEL', 'info'),
    minSubprotocol: int('min-subprotocol', 'LOGUX_MIN_SUBPROTOCOL', 1),
    port: int('port', 'LOGUX_PORT', 31337),
    secret: pick('secret', 'LOGUX_CONTROL_SECRET', ''),
    subprotocol: int('subprotocol', 'LOGUX_SUBPROTOCOL', 1)
  }
  if (!['info', 'warn'].includes(options.logLevel)) throw new Error('--log-level must be info or warn')
  if (!options.secret) throw new Error('Set --secret or LOGUX_CONTROL_SECRET (LOGUX_SYNC["SECRET"] in Django)')
  return options
}

// Django speaks semver subprotocols, Logux 0.14 numbers: number N is semver `N.0.0`.
export function semverOf(subprotocol) {
  return typeof subprotocol === 'number' ? `${subprotocol}.0.0` : subprotocol
}

// ---- IP masks (CIDR, IPv4 and IPv4-mapped IPv6, as 0.13's netmask accepted) -----------------

function ipv4(text) {
  let parts = text.split('.')
  if (parts.length !== 4) return null
  let value = 0
  for (let part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return null
    value = value * 256 + Number(part)
  }
  return value
}

export function parseMasks(text) {
  return text.split(/,\s*/).filter(Boolean).map(item => {
    let [address, bits = '32'] = item.split('/')
    let base = ipv4(address)
    let size = Number(bits)
    if (base === null || !Number.isInteger(size) || size < 0 || size > 32) {
      throw new Error(`LOGUX_CONTROL_MASK: ${item} is not an IPv4 CIDR mask`)
    }
    let block = 2 ** (32 - size)
    return { first: base - (base % block), last: base - (base % block) + block - 1 }
  })
}

export function inMasks(masks, remote = '') {
  if (remote === '::1') remote = '127.0.0.1'
  if (remote.startsWith('::ffff:')) remote = remote.slice(7)
  let value = ipv4(remote)
  return value !== null && masks.some(mask => value >= mask.first && value <= mask.last)
}

// ---- a JSON array read as it streams in ------------------------------------------------------

// Calls onItem with each element of a top-level JSON array as soon as its text is complete.
export function arrayStreamParser(onItem) {
  let buffer = ''
  let depth = 0
  let inString = false
  let escaped = false
  let start = -1
  let scanned = 0
  return {
    push(chunk) {
      buffer += chunk
      for (let i = scanned; i < buffer.length; i++) {
        let char = buffer[i]
        if (inString) {
          if (escaped) escaped = false
          else if (char === '\\') escaped = true
          else if (char === '"') inString = false
          continue
        }
        if (char === '"') {
          inString = true
        } else if (char === '{' || char === '[') {
          depth += 1
          if (depth === 2) start = i
        } else if (char === '}' || char === ']') {
          depth -= 1
          if (depth === 1) {
            onItem(JSON.parse(buffer.slice(start, i + 1)))
            start = -1
          } else if (depth < 0) {
            throw new Error('Wrong back-end answer')
          }
        } else if (depth === 1 && !/[\s,]/.test(char)) {
          throw new Error('Wrong back-end answer')
        }
      }
      // Keep only the unfinished element.
      if (start === -1) {
        buffer = ''
      } else {
        buffer = buffer.slice(start)
        start = 0
      }
      scanned = buffer.length
    },
    done() {
      return depth === 0 && !inString
    }
  }
}

// ---- the back end: batched commands, answers routed by id ------------------------------------

export class Backend {
  constructor({ url, secret, batchSize = 50, batchWait = 2 }) {
    this.url = new URL(url)
    this.secret = secret
    this.batchSize = batchSize
    this.batchWait = batchWait
    this.pending = []
    this.timer = null
    this.immediate = null
    this.inFlight = 0
    let Agent = this.url.protocol === 'https:' ? https.Agent : http.Agent
    this.agent = new Agent({ keepAlive: true, maxSockets: 64 })
    this.transport = this.url.protocol === 'https:' ? https : http
  }

  // events: {[answer]: fn(answer)}, error(err), end() — like 0.13's proxy `send()`.
  // With no request to Django in flight a command goes at once (with those of the same event-loop
  // turn, e.g. one WebSocket message); while one is in flight, commands gather until it ends or
  // `batchWait` ms pass, so a busy bridge sends fewer, larger requests and an idle one waits for none.
  send(command, events) {
    this.pending.push({ command, events, key: command.authId ?? command.meta.id, seen: false })
    if (this.pending.length >= this.batchSize) {
      this.flush()
    } else if (this.inFlight === 0) {
      this.immediate ??= setImmediate(() => this.flush())
    } else {
      this.timer ??= setTimeout(() => this.flush(), this.batchWait)
    }
  }

  flush() {
    clearTimeout(this.timer)
    clearImmediate(this.immediate)
    this.timer = null
    this.immediate = null
    while (this.pending.length > 0) {
      this.post(this.pending.splice(0, this.batchSize))
    }
  }

  // A request ended (answered or failed): what gathered meanwhile need not wait for the timer.
  settled() {
    this.inFlight -= 1
    if (this.inFlight === 0 && this.pending.length > 0) this.flush()
  }

  post(batch) {
    let byKey = new Map()
    for (let item of batch) {
      if (!byKey.has(item.key)) byKey.set(item.key, [])
      byKey.get(item.key).push(item)
    }
    this.inFlight += 1
    let ended = false
    let end = () => {
      if (ended) return
      ended = true
      this.settled()
    }
    let failed = false
    let fail = error => {
      if (failed) return
      failed = true
      for (let item of batch) {
        if (!item.finished) {
          item.finished = true
          item.events.error(error)
        }
      }
      end()
    }
    let body = JSON.stringify({
      commands: batch.map(i => i.command),
      secret: this.secret,
      version: VERSION
    })
    let req = this.transport.request(
      {
        agent: this.agent,
        headers: { 'Content-Length': Buffer.byteLength(body), 'Content-Type': 'application/json' },
        host: this.url.hostname,
        method: 'POST',
        path: this.url.pathname + this.url.search,
        port: this.url.port
      },
      res => {
        if (res.statusCode < 200 || res.statusCode > 299) {
          res.resume()
          fail(new Error(`Backend responded with ${res.statusCode} code`))
          return
        }
        res.setEncoding('utf8')
        let parser = arrayStreamParser(answer => {
          if (typeof answer !== 'object' || answer === null || typeof answer.answer !== 'string') {
            throw new Error('Wrong back-end answer')
          }
          let items = byKey.get(answer.authId ?? answer.id)
          if (!items) return // an answer for nobody here: ignored, as 0.13's filter() did
          for (let item of items) {
            if (item.finished) continue
            if (answer.answer === 'error') {
              let error = new Error('Error on back-end server')
              error.stack = answer.details
              item.finished = true
              item.events.error(error)
            } else if (!item.events[answer.answer]) {
              item.finished = true
              item.events.error(new Error('Unknown back-end answer'))
            } else {
              item.seen = true
              item.events[answer.answer](answer)
            }
          }
        })
        res.on('data', chunk => {
          if (failed) return
          try {
            parser.push(chunk)
          } catch (error) {
            fail(error)
            res.destroy()
          }
        })
        res.on('error', fail)
        res.on('end', () => {
          if (failed) return
          if (!parser.done()) {
            fail(new Error('Wrong back-end answer'))
            return
          }
          for (let item of batch) {
            if (item.finished) continue
            item.finished = true
            if (!item.seen) item.events.error(new Error('Empty back-end answer'))
            else if (item.events.end) item.events.end()
          }
          end()
        })
      }
    )
    req.on('error', fail)
    req.end(body)
  }

  destroy() {
    this.flush()
    this.agent.destroy()
  }
}

// ---- fan-out (LOGUX_SYNC['FANOUT'] = 'bridge') -------------------------------------------------

export const WATCH = 'logux_sync/watch'
export const FANOUT_META = 'logux_sync'
// Longest wait (ms) of a fanned-out change for the subscribes in flight when it arrived: a list being
// subscribed right now may match it, and its watch comes in the subscribe's answer.
export const HOLD_MS = 2000

// What identifies one subscription of a node: its channel and filter (as @logux/server keys filters).
export function subscriptionId(action) {
  return `${action.channel}\n${JSON.stringify(action.filter || {})}`
}

export function isWatch(action) {
  return (
    action.type === WATCH &&
    typeof action.plural === 'string' &&
    typeof action.key === 'string' &&
    typeof action.ttl === 'number' &&
    action.ttl > 0
  )
}

const isStrings = list => Array.isArray(list) && list.every(item => typeof item === 'string')

export function isFanOut(info) {
  return (
    typeof info === 'object' &&
    info !== null &&
    typeof info.plural === 'string' &&
    typeof info.channel === 'string' &&
    isStrings(info.keys) &&
    (info.users === undefined || isStrings(info.users))
  )
}

// The list and derived subscriptions Django approved for the nodes connected here, by the match key
// of their filter: Django opens each such load with a watch, and only those are taken.
export class Watches {
  constructor(now = () => Date.now()) {
    this.now = now
    this.byNode = new Map() // node -> Map(subscription id -> entry)
    this.byKey = new Map() // `plural\nkey` -> Set(entry)
  }

  get size() {
    let size = 0
    for (let entries of this.byNode.values()) size += entries.size
    return size
  }

  add(node, subscription, { key, list, plural, ttl }) {
    this.remove(node, subscription)
    let entry = { expires: this.now() + ttl * 1000, index: `${plural}\n${key}`, list: list === true, node, subscription }
    if (!this.byNode.has(node)) this.byNode.set(node, new Map())
    this.byNode.get(node).set(subscription, entry)
    if (!this.byKey.has(entry.index)) this.byKey.set(entry.index, new Set())
    this.byKey.get(entry.index).add(entry)
  }

  remove(node, subscription) {
    let entry = this.byNode.get(node)?.get(subscription)
    if (entry) this.forget(entry)
  }

  // A node left: every watch of it goes.
  drop(node) {
    for (let entry of [...(this.byNode.get(node)?.values() || [])]) this.forget(entry)
  }

  forget(entry) {
    let mine = this.byNode.get(entry.node)
    mine?.delete(entry.subscription)
    if (mine?.size === 0) this.byNode.delete(entry.node)
    let same = this.byKey.get(entry.index)
    same?.delete(entry)
    if (same?.size === 0) this.byKey.delete(entry.index)
  }

  // Calls visit(node, list) for each unexpired watch of a list of `plural` with one of `keys` (a node
  // may come more than once); `list`: it is a createFilter list.
  each(plural, keys, visit) {
    let now = this.now()
    for (let key of keys) {
      let entries = this.byKey.get(`${plural}\n${key}`)
      if (!entries) continue
      for (let entry of entries) {
        if (entry.expires <= now) {
          this.forget(entry) // subscription_ttl passed without a resubscribe, as Django forgets it
        } else {
          visit(entry.node, entry.list)
        }
      }
    }
  }

  // The nodes watching a list of `plural` with one of `keys`, each with whether one of them is a
  // createFilter list.
  find(plural, keys) {
    let found = new Map()
    this.each(plural, keys, (node, list) => found.set(node, found.get(node) === true || list))
    return found
  }
}

// Is the node one of these clients' (`user:client`)?
function excluder(clients = []) {
  if (clients.length === 0) return () => false
  let prefixes = clients.map(client => `${client}:`)
  return node => clients.includes(node) || prefixes.some(prefix => node.startsWith(prefix))
}

// Is the node left out because its user is not one of `users` (the readers Django listed)? A node's
// user is the part of its id before the first colon (as parseId reads it), the user @logux/server
// authenticated it as; a node id without one (no user) is never among them.
function unlisted(users) {
  if (users === undefined) return () => false
  let allowed = new Set(users)
  return node => {
    let colon = node.indexOf(':')
    return colon < 0 || !allowed.has(node.slice(0, colon))
  }
}

// The nodes connected here a fanned-out change reaches: those subscribed to its row's channel (this
// server's subscribers: Django approved them) and those watching a list it matches, without the
// author's client and, when Django listed the users who may read the row (`info.users`, a `readers`
// Q), without the nodes of every other user; `marks`: the createFilter list nodes to mark subscribed
// to the row first when it is created (as Django does when it addresses a `created`).
export function fanOutTargets(watches, rowSubscribers, info, excludeClients = []) {
  let author = excluder(excludeClients)
  let other = unlisted(info.users)
  let excluded = node => author(node) || other(node)
  let onRow = new Set()
  for (let node in rowSubscribers || {}) {
    if (!excluded(node)) onRow.add(node)
  }
  let nodes = new Set(onRow)
  let marks = new Set()
  let created = info.created === true
  watches.each(info.plural, info.keys, (node, list) => {
    if (excluded(node)) return
    nodes.add(node)
    if (created && list && !onRow.has(node)) marks.add(node)
  })
  return { marks: [...marks], nodes: [...nodes] }
}

function settledWithin(promises, ms) {
  if (promises.length === 0) return Promise.resolve()
  return new Promise(resolve => {
    let timer = setTimeout(resolve, ms)
    timer.unref?.()
    Promise.allSettled(promises).then(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}

// ---- the Logux server ------------------------------------------------------------------------

function deferred() {
  let resolve, reject
  let promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  // A rejection nobody awaits (the action's callback already ended) is not a crash.
  promise.catch(() => {})
  return { promise, reject, resolve }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let chunks = []
    let size = 0
    req.on('data', chunk => {
      size += chunk.length
      if (size > MAX_CONTROL_BODY) {
        reject(new Error('too large'))
        req.destroy()
      } else {
        chunks.push(chunk)
      }
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function isValidBody(body) {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof body.version === 'number' &&
    typeof body.secret === 'string' &&
    Array.isArray(body.commands) &&
    !body.commands.some(i => typeof i !== 'object')
  )
}

function isValidCommand(command) {
  let { action, meta } = command || {}
  return (
    command.command === 'action' &&
    typeof action === 'object' &&
    action !== null &&
    typeof action.type === 'string' &&
    typeof meta === 'object' &&
    meta !== null
  )
}

export function createBridge(options) {
  let server = new Server({
    env: process.env.NODE_ENV || 'production', // development mode sends every error's stack to every client
    host: options.host,
    logger: options.logger,
    minSubprotocol: options.minSubprotocol,
    port: options.port,
    subprotocol: options.subprotocol
  })
  if (options.logLevel === 'warn') {
    // The reporter writes through this object: every action costs a few formatted lines at `info`.
    server.logger.info = () => {}
    server.logger.debug = () => {}
  }
  let backend = new Backend({
    batchSize: options.batchSize,
    batchWait: options.batchWait,
    secret: options.secret,
    url: options.backend
  })
  let masks = parseMasks(options.controlMask)
  let inFlight = new Map()
  let watches = new Watches()
  // States of the subscribes sent to Django and not finished (a fanned-out change waits for them).
  let subscribing = new Set()
  // Fanned-out changes go out in the order they came, each after the subscribes it waits for.
  let fanning = Promise.resolve()

  function fanOut(action, meta) {
    let { [FANOUT_META]: info, ...rest } = meta
    if (!isFanOut(info)) return Promise.resolve() // not Django's: deliver nothing rather than guess
    let waitFor = [...subscribing].map(state => state.settled.promise)
    let send = () => {
      let { marks, nodes } = fanOutTargets(watches, server.subscribers[info.channel], info, rest.excludeClients)
      for (let node of marks) server.subscribe(node, info.channel)
      if (nodes.length === 0) return undefined
      return server.log.add(action, { status: 'processed', ...rest, nodes })
    }
    fanning = fanning.then(() => settledWithin(waitFor, HOLD_MS)).then(send)
    fanning = fanning.catch(error => server.emitter.emit('report', 'error', { actionId: meta.id, err: error }))
    return fanning
  }

  // Actions for nodes: `logux/subscribed` to a node connected here subscribes it on this server
  // (server.subscribe), so a list load or Django's add() covers a row without a subscribe per row.
  function deliver(action, meta) {
    // A watch counts only in the answer to the subscribe it opens (see sendAction); never for a client.
    if (action.type === WATCH) return Promise.resolve()
    if (meta[FANOUT_META] !== undefined) return fanOut(action, meta)
    if (action.type === 'logux/subscribed' && typeof action.channel === 'string' && Array.isArray(meta.nodes)) {
      let others = meta.nodes.filter(node => !server.nodeIds.has(node))
      for (let node of meta.nodes) {
        if (!server.nodeIds.has(node)) continue
        if (server.subscribers[action.channel]?.[node]) {
          server.log.add(action, { nodes: [node], status: 'processed' })
        } else {
          server.subscribe(node, action.channel)
        }
      }
      let { nodes, ...rest } = meta
      let more = others.length > 0 || ['channels', 'clients', 'users', 'channel', 'client', 'user'].some(k => rest[k])
      if (!more) return Promise.resolve()
      return server.log.add(action, { status: 'processed', ...rest, nodes: others })
    }
    return server.log.add(action, { status: 'processed', ...meta })
  }

  // Django's view of an action's meta: subprotocols as semver strings.
  function backendMeta(meta) {
    return meta.subprotocol === undefined ? meta : { ...meta, subprotocol: semverOf(meta.subprotocol) }
  }

  function sendAction(action, meta, headers) {
    let state = {
      access: deferred(),
      actions: [],
      process: deferred(),
      resend: action.type === 'logux/subscribe' ? null : deferred()
    }
    inFlight.set(meta.id, state)
    if (action.type === 'logux/subscribe') {
      state.settled = deferred()
      subscribing.add(state)
    }
    let checked = false
    let processed = false
    let failed = false
    let reject = error => {
      if (state.resend) state.resend.resolve()
      if (checked) state.process.reject(error)
      else state.access.reject(error)
    }
    let start = Date.now()
    server.emitter.emit('backendSent', action, meta)
    backend.send(
      { action, command: 'action', headers, meta: backendMeta(meta) },
      {
        action(data) {
          if (data.action?.type === WATCH) {
            // Django approved this node's list: it watches the match key (never from another answer).
            if (action.type === 'logux/subscribe' && isWatch(data.action)) {
              watches.add(parseId(meta.id).nodeId, subscriptionId(action), data.action)
            }
            return
          }
          state.actions.push(deliver(data.action, data.meta || {}))
        },
        approved() {
          if (state.resend) state.resend.resolve()
          server.emitter.emit('backendGranted', action, meta, Date.now() - start)
          checked = true
          state.access.resolve(true)
        },
        end() {
          if (!failed && (!checked || !processed)) {
            reject(new Error('Back-end do not send required answers'))
          }
        },
        error(error) {
          failed = true
          reject(error)
        },
        forbidden() {
          if (state.resend) state.resend.resolve()
          failed = true
          state.access.resolve(false)
        },
        async processed() {
          if (!checked) {
            failed = true
            state.access.reject(new Error('Processed answer was sent before access'))
            return
          }
          processed = true
          await Promise.all(state.actions)
          server.emitter.emit('backendProcessed', action, meta, Date.now() - start)
          state.process.resolve()
        },
        resend(answer) {
          if (checked) {
            failed = true
            reject(new Error('Resend answer was sent after access'))
          } else if (!state.resend) {
            failed = true
            state.access.reject(new Error('Resend can be called on subscription'))
          } else {
            let resend = {}
            for (let key of RESEND_KEYS) {
              if (answer[key] !== undefined) resend[key] = answer[key]
            }
            state.resend.resolve(resend)
          }
        },
        unknownAction() {
          if (state.resend) state.resend.resolve()
          failed = true
          server.unknownType(action, meta)
          state.access.resolve(false)
        },
        unknownChannel() {
          failed = true
          server.wrongChannel(action, meta)
          state.access.resolve(false)
        }
      }
    )
    return state
  }

  // Tells Django about something on this server (an unsubscribe, a disconnect) as this server's
  // own action: Django accepts these only from a meta id of a `server:` node, which no client can
  // send (Logux refuses the user id `server` and actions under another client's id).
  function tell(action) {
    let id = server.log.generateId()
    let meta = { id, reasons: [], server: server.nodeId, subprotocol: semverOf(options.subprotocol), time: parseInt(id) }
    let report = error => server.emitter.emit('report', 'error', { actionId: id, err: error })
    let finished = false
    let done = () => {
      finished = true
    }
    backend.send(
      { action, command: 'action', headers: {}, meta },
      {
        action(data) {
          deliver(data.action, data.meta || {})
        },
        approved() {},
        end() {},
        error(error) {
          if (!finished) report(error)
          done()
        },
        forbidden() {
          report(new Error(`Back end refused ${action.type}`))
          done()
        },
        processed: done,
        unknownAction: done // a back end without model sync has nothing to forget
      }
    )
  }

  server.auth(
    ({ client, cookie, headers, token, userId }) =>
      new Promise((resolve, reject) => {
        let authId = server.log.generateId()
        backend.send(
          {
            authId,
            command: 'auth',
            cookie,
            headers,
            subprotocol: semverOf(client.node.remoteSubprotocol),
            token,
            userId
          },
          {
            // Django answers with its semver subprotocol; this server's number stays as configured.
            authenticated() {
              resolve(true)
            },
            denied() {
              resolve(false)
            },
            error(error) {
              reject(error)
            },
            wrongSubprotocol() {
              reject(
                new LoguxError('wrong-subprotocol', {
                  supported: options.minSubprotocol,
                  used: client.node.remoteSubprotocol
                })
              )
            }
          }
        )
      })
  )

  let forgetState = (ctx, action, meta) => {
    let state = inFlight.get(meta.id)
    if (state?.settled) {
      subscribing.delete(state)
      state.settled.resolve()
    }
    inFlight.delete(meta.id)
  }

  // Only Django and this bridge speak `logux_sync/*` (watches, notices): a client's is refused.
  server.type(/^logux_sync\//, { access: () => false })

  server.otherType({
    access(ctx, action, meta) {
      return sendAction(action, meta, ctx.headers).access.promise
    },
    finally: forgetState,
    process(ctx, action, meta) {
      return inFlight.get(meta.id)?.process.promise
    },
    resend(ctx, action, meta) {
      let state = inFlight.get(meta.id) || sendAction(action, meta, ctx.headers)
      return state.resend.promise
    }
  })

  server.otherChannel({
    access(ctx, action, meta) {
      return sendAction(action, meta, ctx.headers).access.promise
    },
    finally: forgetState,
    load(ctx, action, meta) {
      return inFlight.get(meta.id)?.process.promise
    }
  })

  // A client's own `logux/unsubscribe` (not the ones the server makes up while a client disconnects:
  // those carry the server's node id, and the disconnect below covers them).
  server.on('unsubscribed', (action, meta, clientNodeId) => {
    watches.remove(clientNodeId, subscriptionId(action))
    if (parseId(meta.id).nodeId === server.nodeId) return
    let forward = { channel: action.channel, node: clientNodeId, type: 'logux/unsubscribe' }
    if (action.filter) forward.filter = action.filter
    tell(forward)
  })

  server.on('disconnected', client => {
    if (client.nodeId && !client.zombie) {
      watches.drop(client.nodeId)
      tell({ node: client.nodeId, type: 'logux_sync/disconnected' })
    }
  })

  // Django's add(): the same rules and answers as 0.13.1's control server.
  server.http('POST', '/', async (req, res) => {
    let ip = req.socket.remoteAddress
    let reply = (status, text) => {
      res.statusCode = status
      res.end(text)
    }
    if (!inMasks(masks, ip)) {
      // 0.14's reporter knows no control events: log them directly.
      server.logger.warn({ ipAddress: ip, mask: options.controlMask }, 'IP address is not in control mask')
      reply(403, WRONG_IP)
      return
    }
    let body
    try {
      body = JSON.parse(await readBody(req))
    } catch {
      reply(400, WRONG_FORMAT)
      return
    }
    if (!isValidBody(body)) {
      reply(400, WRONG_BODY)
    } else if (body.version !== VERSION) {
      reply(400, WRONG_VERSION)
    } else if (server.isBruteforce(ip)) {
      reply(429, TOO_MANY)
    } else if (body.secret !== options.secret) {
      server.rememberBadAuth(ip)
      server.logger.warn({ ipAddress: ip }, 'Wrong control secret')
      reply(403, WRONG_SECRET)
    } else if (!body.commands.every(isValidCommand)) {
      reply(400, WRONG_COMMAND)
    } else {
      await Promise.all(
        body.commands.map(({ action, meta }) => {
          meta.backend = ip
          return deliver(action, meta)
        })
      )
      res.end()
    }
  })

  server.unbind.push(() => backend.destroy())
  return { backend, server, subscribing, watches }
}

// Longest wait (ms) on SIGTERM for the actions clients already sent. The Logux server confirms each
// (`synced`) as it arrives and a client never sends a confirmed action again, so one still queued
// (behind a slow action of the same client) or on its way to Django would be lost by a stop at once.
export const DRAIN_MS = 8000

// Resolves once no client action waits in the server's queues (@logux/server 0.14 keeps each in
// `actionToQueue` until it is processed), or after `ms`.
export async function drained(server, ms = DRAIN_MS) {
  let deadline = Date.now() + ms
  while (server.actionToQueue.size > 0 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function main() {
  let bridge
  try {
    bridge = createBridge(readOptions())
  } catch (error) {
    process.stderr.write(`logux-sync bridge: ${error.message}\n`)
    process.exit(2)
  }
  process.on('SIGTERM', async () => {
    await drained(bridge.server)
    await bridge.server.destroy()
    process.exit(0)
  })
  await bridge.server.listen()
}

if (import.meta.url === `file://${process.argv[1]}`) main()
