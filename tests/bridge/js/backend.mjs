// The bridge's Backend (requests to Django) against a fake Django on 127.0.0.1 that records each
// request's commands and answers when told to. Prints what it saw as JSON; test_backend.py asserts.
//
// Usage: node backend.mjs <scenario>
import http from 'node:http'

import { Backend } from '../../../logux_sync/bridge/bridge.mjs'

const requests = [] // the ids of each request's commands, in arrival order
const held = [] // [commands, res] of requests not answered yet
let answerAtOnce = true

function answer([commands, res]) {
  res.end(JSON.stringify(commands.flatMap(c => [{ answer: 'approved', id: c.meta.id }, { answer: 'processed', id: c.meta.id }])))
}

const django = http.createServer((req, res) => {
  let body = ''
  req.on('data', chunk => (body += chunk))
  req.on('end', () => {
    const { commands } = JSON.parse(body)
    requests.push(commands.map(c => c.meta.id))
    if (answerAtOnce) answer([commands, res])
    else held.push([commands, res])
  })
})
await new Promise(resolve => django.listen(0, '127.0.0.1', resolve))

// The batch wait is a minute: whatever is answered before the script ends was not waiting for it.
const backend = new Backend({ batchWait: 60000, secret: 'parole', url: `http://127.0.0.1:${django.address().port}/` })

function send(id) {
  return new Promise((resolve, reject) => {
    backend.send(
      { action: { type: 'x' }, command: 'action', headers: {}, meta: { id } },
      { approved: () => {}, end: resolve, error: reject, forbidden: reject, processed: () => {} }
    )
  })
}

const until = async check => {
  while (!check()) await new Promise(resolve => setTimeout(resolve, 5))
}

const scenarios = {
  // Idle: each command goes at once, alone; two sent in one turn go together.
  async idle() {
    await send('1 a:1 0')
    await send('2 a:1 0')
    await Promise.all([send('3 a:1 0'), send('4 a:1 0')])
  },
  // Busy: while one request is held, later commands gather and go together when it ends.
  async busy() {
    answerAtOnce = false
    const first = send('1 a:1 0')
    await until(() => held.length === 1)
    const later = [send('2 a:1 0'), send('3 a:1 0')]
    await new Promise(resolve => setTimeout(resolve, 50))
    const whileHeld = requests.length
    answerAtOnce = true
    answer(held.shift())
    await Promise.all([first, ...later])
    return { whileHeld }
  }
}

const extra = await scenarios[process.argv[2]]()
process.stdout.write(JSON.stringify({ requests, ...extra }) + '\n')
backend.destroy()
django.close()
