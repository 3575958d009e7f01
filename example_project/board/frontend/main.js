// The board's front end: one Logux client, one live filter over every task the user may read, and
// plain DOM updates. Every edit goes through @logux/client's SyncMap helpers: it shows at once, stays
// in the client's log while the connection is down, and is sent when it comes back; Django merges
// concurrent edits per field (last write wins) and tells every other reader.
import {
  changeSyncMap,
  createFilter,
  createSyncMap,
  CrossTabClient,
  deleteSyncMap,
  LoguxUndoError,
  status,
  syncMapTemplate
} from '@logux/client'
import { nanoid } from 'nanoid'

/* global LOGUX_STACK */
const config = JSON.parse(document.getElementById('logux-config').textContent)
const COLUMNS = ['todo', 'doing', 'done']
// Which Logux stack this bundle was built for (build.mjs defines it): the client inside cannot talk
// to the other stack's server, and the page says so in these words when that happens.
const STACKS = {
  bridge: {
    client: '@logux/client 0.23 (Logux protocol 5)',
    server: '@logux/server 0.14 through `manage.py logux_server`',
    run: 'make example'
  },
  proxy: {
    client: '@logux/client 0.21 (Logux protocol 4)',
    server: '@logux/server 0.13.1 in proxy mode',
    run: 'make example-proxy'
  }
}
const stack = STACKS[LOGUX_STACK]
const other = STACKS[LOGUX_STACK === 'bridge' ? 'proxy' : 'bridge']

const client = new CrossTabClient({
  server: config.server,
  subprotocol: config.subprotocol,
  userId: config.userId,
  token: config.token,
  // The example talks ws:// to a server on this machine; a deployment behind HTTPS uses wss://.
  allowDangerousProtocol: location.protocol === 'http:'
})

const Task = syncMapTemplate('tasks')
const tasks = createFilter(client, Task, {})

const board = document.getElementById('board')
const statusBox = document.getElementById('status')
const message = document.getElementById('message')
const banner = document.getElementById('problem')
const cards = new Map() // task id -> <li>
let current = { isLoading: true }
let editing = null // id of the card whose title is being edited
let waiting = 0 // edits sent but not yet confirmed by the server

// ---- connection status -------------------------------------------------------------------------

let lastStatus = 'connecting'
let problem = null // a lasting reason the page cannot sync, shown above the board

// The Logux server refused this client (`error` from the server: the page is older than the server)
// or the client refused the server (`clientError`: the server is older). Both end the connection for
// good, so say which side is too old and what to run instead of a bare "reload the page".
function protocolProblem(error, side) {
  const options = error.options || {}
  if (error.type === 'wrong-subprotocol') {
    return (
      `The back end does not accept this page's subprotocol ${JSON.stringify(config.subprotocol)} ` +
      `(it supports ${JSON.stringify(options.supported)}): LOGUX_SYNC["SUPPORTS"] in Django's settings ` +
      'and the subprotocol the page sends disagree.'
    )
  }
  const older =
    side === 'server'
      ? `The Logux server at ${config.server} wants protocol ${options.supported} or newer; this page's ` +
        `bundle has ${stack.client}, which is too old for it.`
      : `The Logux server at ${config.server} speaks protocol ${options.used}; this page's bundle has ` +
        `${stack.client}, which needs protocol ${options.supported}: the server is too old for it.`
  return (
    `${older} The page was built for ${stack.server} (run \`${stack.run}\`); ` +
    `that server looks like ${other.server} (run \`${other.run}\`). Start the matching pair, then reload.`
  )
}

function onProtocolError(side) {
  return error => {
    if (error.type === 'wrong-protocol' || error.type === 'wrong-subprotocol') {
      problem = protocolProblem(error, side)
      lastStatus = 'protocolError'
      showStatus()
    }
  }
}
// catch(), not on(): without a catch() listener the node rethrows every error it reports, and a
// refused WebSocket while the server is down would be an uncaught page error on every reconnect.
// The status badge and the banner report those instead.
client.node.catch(onProtocolError('server'))
client.node.on('clientError', onProtocolError('client'))

function showStatus() {
  let state = lastStatus
  let label
  if (state === 'synchronized' || state === 'synchronizedAfterWait') {
    state = waiting > 0 ? 'syncing' : 'online'
  } else if (state === 'disconnected' || state === 'wait') {
    state = navigator.onLine ? 'disconnected' : 'offline'
  } else if (state === 'protocolError' || state === 'denied-login') {
    state = 'disconnected'
  } else {
    state = 'syncing' // connecting, connected, sending
  }
  label = state
  if (lastStatus === 'protocolError') label = 'disconnected: wrong Logux version'
  if (lastStatus === 'denied-login') label = 'disconnected: log in again'
  if (waiting > 0 && state !== 'online') {
    label += ` · ${waiting} ${waiting === 1 ? 'edit' : 'edits'} waiting`
  }
  statusBox.dataset.state = state
  statusBox.querySelector('.label').textContent = label
  showProblem(state)
}

// Whether a WebSocket to the server ever opened: if it did, the server is up and something else
// (a wrong version, a refused login) is why the board did not load.
let reached = false
client.node.connection.on('connect', () => {
  reached = true
})

// A board that never loaded would look empty, as if there were no cards: say why it is empty.
function showProblem(state) {
  let text = problem
  if (!text && state === 'disconnected' && current.isLoading && !reached) {
    text =
      `The Logux server at ${config.server} cannot be reached, so the board cannot load: is it running? ` +
      `\`${stack.run}\` starts it with Django. The page keeps trying.`
  }
  if (text) {
    banner.textContent = text
    banner.hidden = false
  } else {
    banner.hidden = true
  }
}

status(client, (value, details) => {
  if (value === 'denied' || value === 'error') return // the edit's own promise reports it
  // A wrong version ends the connection for good: later states (disconnected) would hide why.
  if (value === 'protocolError' || problem) return // onProtocolError() has the details
  if (value === 'wrongCredentials') {
    // @logux/client 0.23 reports a refused token so; 0.21 as a syncError
    lastStatus = 'denied-login'
  } else if (value === 'syncError') {
    if (details && details.error && details.error.type === 'wrong-credentials') {
      lastStatus = 'denied-login'
    } else {
      return
    }
  } else {
    lastStatus = value
  }
  showStatus()
})

// When the browser says the network is gone, an open WebSocket may not notice for a minute, and
// retrying while offline only pushes the next attempt further away (up to 5 s after the network is
// back). Logux's Reconnect already pauses on the Page Lifecycle `freeze` event and reconnects at
// once on `resume`; losing the network is the same situation, so tell it so.
window.addEventListener('offline', () => {
  window.dispatchEvent(new Event('freeze'))
  showStatus()
})
window.addEventListener('online', () => {
  window.dispatchEvent(new Event('resume'))
  showStatus()
})

// ---- edits -------------------------------------------------------------------------------------

const REASONS = {
  denied: 'You may not do that: only the owner of a card may make it private.',
  notFound: 'That card was deleted meanwhile.'
}

function flash(text) {
  message.textContent = text
  message.hidden = false
  clearTimeout(flash.timer)
  flash.timer = setTimeout(() => {
    message.hidden = true
  }, 5000)
}

function explain(error) {
  if (error instanceof LoguxUndoError) {
    const undo = error.action
    if (undo.reason === 'invalid' && undo.errors) {
      return 'The server refused that: ' + Object.values(undo.errors).flat().join(' ')
    }
    return REASONS[undo.reason] || `The server undid that (${undo.reason}).`
  }
  return `Something went wrong: ${error.message || error}`
}

// Edits apply locally at once; the promise settles when the server has processed them, which may
// be much later if we are offline. The count feeds the status badge.
function track(promise) {
  waiting += 1
  showStatus()
  promise
    .catch(error => flash(explain(error)))
    .finally(() => {
      waiting -= 1
      showStatus()
    })
}

function storeOf(id) {
  return current.stores && current.stores.get(id)
}

function taskOf(id) {
  return current.list && current.list.find(task => task.id === id)
}

function create(title, column) {
  track(
    createSyncMap(client, Task, {
      id: nanoid(),
      title,
      column,
      private: false,
      owner: Number(config.userId) // a foreign key travels as its target's id
    })
  )
}

function change(id, fields) {
  const store = storeOf(id)
  if (store) track(changeSyncMap(store, fields))
}

function remove(id) {
  const store = storeOf(id)
  if (store) track(deleteSyncMap(store))
}

// ---- rendering ---------------------------------------------------------------------------------

function button(act, text, label) {
  const element = document.createElement('button')
  element.type = 'button'
  element.dataset.act = act
  element.textContent = text
  element.title = label
  element.setAttribute('aria-label', label)
  return element
}

function createCard(id) {
  const li = document.createElement('li')
  li.className = 'card'
  li.dataset.id = id
  li.draggable = true
  const title = document.createElement('p')
  title.className = 'title'
  title.tabIndex = 0
  title.title = 'Click to rename'
  const meta = document.createElement('p')
  meta.className = 'meta'
  const owner = document.createElement('span')
  owner.className = 'owner'
  const lock = document.createElement('span')
  lock.className = 'lock'
  lock.textContent = 'private'
  meta.append(owner, lock)
  const actions = document.createElement('div')
  actions.className = 'actions'
  actions.append(
    button('left', '←', 'Move left'),
    button('right', '→', 'Move right'),
    button('private', 'Private', 'Only I can see it'),
    button('delete', 'Delete', 'Delete')
  )
  li.append(title, meta, actions)
  cards.set(id, li)
  return li
}

function updateCard(li, task) {
  const mine = String(task.owner) === config.userId
  const index = COLUMNS.indexOf(task.column)
  if (editing !== task.id) li.querySelector('.title').textContent = task.title
  li.querySelector('.owner').textContent = mine ? 'me' : config.users[String(task.owner)] || `user ${task.owner}`
  li.classList.toggle('private', task.private)
  li.classList.toggle('mine', mine)
  li.querySelector('[data-act=left]').disabled = index <= 0
  li.querySelector('[data-act=right]').disabled = index >= COLUMNS.length - 1
  const toggle = li.querySelector('[data-act=private]')
  toggle.setAttribute('aria-pressed', String(task.private))
  toggle.textContent = task.private ? 'Share' : 'Private'
  toggle.title = mine
    ? task.private
      ? 'Let everyone see it'
      : 'Only I can see it'
    : 'Only its owner can make a card private'
  toggle.disabled = !mine
}

function render(value) {
  current = value
  board.classList.toggle('loading', value.isLoading)
  showProblem(statusBox.dataset.state)
  if (value.isLoading) return
  const seen = new Set()
  for (const column of COLUMNS) {
    const section = board.querySelector(`[data-column=${column}]`)
    const list = section.querySelector('.cards')
    const inColumn = value.list.filter(task => task.column === column)
    inColumn.forEach((task, index) => {
      seen.add(task.id)
      const li = cards.get(task.id) || createCard(task.id)
      updateCard(li, task)
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null)
    })
    section.querySelector('.count').textContent = String(inColumn.length)
  }
  for (const [id, li] of cards) {
    if (!seen.has(id)) {
      li.remove()
      cards.delete(id)
      if (editing === id) editing = null
    }
  }
}

// ---- interaction -------------------------------------------------------------------------------

function startRename(li) {
  const id = li.dataset.id
  const title = li.querySelector('.title')
  if (editing) return
  editing = id
  const input = document.createElement('input')
  input.className = 'rename'
  input.value = title.textContent
  input.maxLength = 200
  input.setAttribute('aria-label', 'Title')
  title.replaceChildren(input)
  input.focus()
  input.select()
  let done = false
  const finish = save => {
    if (done) return
    done = true
    editing = null
    const text = input.value.trim()
    const task = taskOf(id)
    if (task) title.textContent = save && text ? text : task.title
    if (save && !text) flash('A card needs a title: the old one stays.')
    if (save && text && task && text !== task.title) change(id, { title: text })
  }
  input.addEventListener('keydown', event => {
    if (event.key === 'Enter') finish(true)
    if (event.key === 'Escape') finish(false)
  })
  input.addEventListener('blur', () => finish(true))
}

board.addEventListener('click', event => {
  const li = event.target.closest('.card')
  if (!li) return
  const id = li.dataset.id
  const task = taskOf(id)
  if (!task) return
  const act = event.target.closest('button')?.dataset.act
  const index = COLUMNS.indexOf(task.column)
  if (act === 'left' && index > 0) change(id, { column: COLUMNS[index - 1] })
  else if (act === 'right' && index < COLUMNS.length - 1) change(id, { column: COLUMNS[index + 1] })
  else if (act === 'private') change(id, { private: !task.private })
  else if (act === 'delete') remove(id)
  else if (event.target.closest('.title') && editing !== id) startRename(li)
})

board.addEventListener('keydown', event => {
  if (event.key === 'Enter' && event.target.classList.contains('title')) {
    event.preventDefault()
    startRename(event.target.closest('.card'))
  }
})

board.addEventListener('submit', event => {
  event.preventDefault()
  const form = event.target
  const title = form.elements.title.value.trim()
  if (!title) return
  create(title, form.closest('.column').dataset.column)
  form.reset()
})

// Drag a card onto another column to move it.
board.addEventListener('dragstart', event => {
  const li = event.target.closest?.('.card')
  if (li) event.dataTransfer.setData('text/plain', li.dataset.id)
})
board.addEventListener('dragover', event => {
  if (event.target.closest('.column')) event.preventDefault()
})
board.addEventListener('drop', event => {
  const column = event.target.closest('.column')
  const id = event.dataTransfer.getData('text/plain')
  const task = taskOf(id)
  if (column && task && task.column !== column.dataset.column) {
    event.preventDefault()
    change(id, { column: column.dataset.column })
  }
})

tasks.subscribe(render)
client.start()
showStatus()

// For poking at the client from the browser console (the browser tests read it too).
window.board = { client, tasks, change }
