// Drives the example's board page in Debian's Chromium through playwright-core, as people use it:
// log in, type, click, drag nothing. Two browser contexts are alice and bob; a third page is the
// Django admin. Prints one JSON object with what the pages showed and how long it took; the
// assertions are in test_board.py. A step that does not happen in time fails naming the step.
//
// Usage: node board.mjs <scenario> '<config JSON>'
// config: {base, screenshots, chromium, timeout}
import { chromium } from 'playwright-core'

const [scenario, rawConfig] = process.argv.slice(2)
const config = JSON.parse(rawConfig)
// The bar: another user's page shows an edit within a second of the edit.
const LIVE_MS = config.timeout ?? 1000
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync'
]

const problems = [] // page errors and unexpected console errors, reported to Python
const pages = []

function log(...args) {
  process.stderr.write(`[${new Date().toISOString()}] ${args.join(' ')}\n`)
}

async function login(browser, name, { base = config.base, online = true } = {}) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 640 } })
  const page = await context.newPage()
  page.on('pageerror', error => problems.push(`${name}: ${error.message}`))
  page.on('console', message => {
    if (message.type() === 'error') {
      const text = message.text()
      // Chromium reports the refused reconnects of a page that is offline on purpose.
      if (!/ERR_INTERNET_DISCONNECTED/.test(text) && !(scenario === 'down' && /ERR_CONNECTION_REFUSED/.test(text))) problems.push(`${name} console: ${text}`)
    }
  })
  // The WebSocket's life, for the log of a failed run.
  page.on('websocket', ws => {
    log(name, 'ws open', ws.url())
    ws.on('framesent', frame => log(name, 'ws >', String(frame.payload).slice(0, 200)))
    ws.on('framereceived', frame => log(name, 'ws <', String(frame.payload).slice(0, 200)))
    ws.on('socketerror', error => log(name, 'ws error', error))
    ws.on('close', () => log(name, 'ws closed'))
  })
  await page.goto(base + '/')
  await page.fill('input[name=username]', name)
  await page.fill('input[name=password]', name)
  await page.click('button[type=submit]')
  if (online) {
    await page.waitForSelector('#status[data-state=online]', { timeout: 10000 })
    await page.waitForSelector('#board:not(.loading)')
  } else {
    await page.waitForSelector('#status')
  }
  pages.push(page)
  return { context, page, name }
}

function card(page, title) {
  return page.locator('.card', { has: page.locator('.title', { hasText: exact(title) }) })
}

function exact(text) {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)
}

// What a page shows: {title: {column, private, owner}} for every card.
async function board(page) {
  return page.evaluate(() => {
    const result = {}
    for (const li of document.querySelectorAll('.card')) {
      const title = li.querySelector('.title').textContent
      result[title] = {
        column: li.closest('.column').dataset.column,
        owner: li.querySelector('.owner').textContent,
        private: li.classList.contains('private')
      }
    }
    return result
  })
}

// Comparable boards: the owner label says "me" on one's own cards.
async function neutral(user) {
  const shown = await board(user.page)
  for (const value of Object.values(shown)) {
    if (value.owner === 'me') value.owner = user.name
  }
  return shown
}

// A board without its private cards: what every user's page should agree on.
function visibleToAll(shown) {
  return Object.fromEntries(Object.entries(shown).filter(([, value]) => !value.private))
}

function same(one, other) {
  const sorted = value => JSON.stringify(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)))
  return sorted(one) === sorted(other)
}

// Waits until `check()` holds, at most `ms`; returns the milliseconds it took.
async function within(what, ms, check) {
  const started = performance.now()
  for (;;) {
    if (await check()) return Math.round(performance.now() - started)
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

// Like within(), but answers null instead of failing: for what the tests mark as a known gap.
async function maybeWithin(ms, check) {
  try {
    return await within('', ms, check)
  } catch {
    return null
  }
}

// The column a card with exactly this title is in on the page, or null; one look at the DOM, so a
// card that moves or goes meanwhile cannot break it.
async function columnOf(page, title) {
  return page.evaluate(wanted => {
    const found = [...document.querySelectorAll('.card')].filter(li => li.querySelector('.title').textContent === wanted)
    return found.length === 1 ? found[0].closest('.column').dataset.column : null
  }, title)
}

async function add(user, column, title) {
  const input = user.page.locator(`[data-column=${column}] input[name=title]`)
  await input.fill(title)
  await input.press('Enter')
}

async function rename(user, from, to) {
  await card(user.page, from).locator('.title').click()
  const input = user.page.locator('.card input.rename')
  await input.fill(to)
  await input.press('Enter')
}

async function press(user, title, act) {
  await card(user.page, title).locator(`[data-act=${act}]`).click()
}

async function settled(user) {
  await user.page.waitForSelector('#status[data-state=online]', { timeout: 10000 })
}

// Waits until the page's client has no subscription to these cards' channels in flight: it subscribed,
// or it never had to (Django tells a list's node that a new card's channel is covered, with
// `logux/subscribed` before its `tasks/created`). Logux server 0.13.1 never ends a subscription whose
// client left while Django checked access, and then holds every later action of that client (same
// client id, after reconnecting) behind it for good.
async function subscribedTo(user, titles) {
  const ids = []
  for (const title of titles) ids.push(await card(user.page, title).getAttribute('data-id'))
  await within(`${user.name} subscribes to ${titles.join(', ')}`, 3000, () =>
    user.page.evaluate(async wanted => {
      const client = window.board.client
      const channels = Object.keys(client.subscriptions).map(key => JSON.parse(key).channel)
      const inFlight = new Set()
      await client.log.each((action, meta) => {
        if (action.type === 'logux/subscribe' && meta.reasons.includes('syncing')) inFlight.add(action.channel)
      })
      return wanted.every(id => channels.includes(`tasks/${id}`) || !inFlight.has(`tasks/${id}`))
    }, ids)
  )
}

async function shot(user, name) {
  const path = `${config.screenshots}/${name}.png`
  await user.page.screenshot({ path })
  return path
}

// What a page says about a lasting problem (#problem) and its status badge, once the banner shows.
async function problemOf(user) {
  await user.page.waitForSelector('#problem:not([hidden])', { timeout: 10000 })
  return {
    problem: await user.page.textContent('#problem'),
    status: await user.page.textContent('#status .label'),
    loading: await user.page.locator('#board.loading').count()
  }
}

const scenarios = {
  // Edits the server refuses: the page says why (Django's validation message), and an empty title is
  // refused by the page itself.
  async refused(browser) {
    const alice = await login(browser, 'alice')
    const title = `Refused edits ${Date.now() % 100000}`
    await add(alice, 'todo', title)
    await within('alice sees her card', LIVE_MS, async () => (await columnOf(alice.page, title)) === 'todo')
    await settled(alice)
    const id = await card(alice.page, title).getAttribute('data-id')
    const shown = async () => {
      await alice.page.waitForSelector('#message:not([hidden])', { timeout: 5000 })
      const text = await alice.page.textContent('#message')
      await alice.page.evaluate(() => { document.getElementById('message').hidden = true })
      return text
    }
    // The rename box stops at 200 characters, so a too-long title comes from code, as a script would.
    await alice.page.evaluate(id => window.board.change(id, { title: 'x'.repeat(201) }), id)
    const tooLong = await shown()
    await within('the long title is undone', 3000, async () => (await columnOf(alice.page, title)) === 'todo')
    await rename(alice, title, '   ')
    const empty = await shown()
    await settled(alice)
    return { tooLong, empty, title, shownTitle: await columnOf(alice.page, title) }
  },

  // The page of a board whose Logux server does not answer (config.deadBase serves such a page).
  async down(browser) {
    const alice = await login(browser, 'alice', { base: config.deadBase, online: false })
    const seen = await problemOf(alice)
    // Let the client's reconnects fail a few times: none may become an uncaught page error.
    await new Promise(resolve => setTimeout(resolve, 4000))
    return seen
  },

  // A page built for the other stack's client (config.otherBase) against this stack's Logux server.
  async mismatch(browser) {
    const alice = await login(browser, 'alice', { base: config.otherBase, online: false })
    await alice.page.waitForSelector('#status[data-state=disconnected]', { timeout: 10000 })
    const seen = await problemOf(alice)
    await shot(alice, `mismatch-${config.stack}`)
    return seen
  },

  // Alice's edits reach bob's page, and bob's reach alice's, each within LIVE_MS.
  async live(browser) {
    const alice = await login(browser, 'alice')
    const bob = await login(browser, 'bob')
    const ms = {}
    const title = `Write the release notes ${Date.now() % 100000}`

    await add(alice, 'todo', title)
    ms.create = await within(`bob sees "${title}"`, LIVE_MS, async () => (await columnOf(bob.page, title)) === 'todo')

    await rename(alice, title, `${title} v2`)
    ms.rename = await within('bob sees the new title', LIVE_MS, async () => (await columnOf(bob.page, `${title} v2`)) === 'todo')

    await press(bob, `${title} v2`, 'right')
    ms.move = await within('alice sees the card in Doing', LIVE_MS, async () => (await columnOf(alice.page, `${title} v2`)) === 'doing')

    await press(bob, `${title} v2`, 'delete')
    ms.delete = await within('alice sees the card go', LIVE_MS, async () => (await columnOf(alice.page, `${title} v2`)) === null)

    await settled(alice)
    await settled(bob)
    return { ms, title, alice: await neutral(alice), bob: await neutral(bob) }
  },

  // Only the owner may make a card private; a private card's later edits never reach others.
  async private(browser) {
    const alice = await login(browser, 'alice')
    const bob = await login(browser, 'bob')
    const title = `Salary review ${Date.now() % 100000}`
    await add(alice, 'todo', title)
    await within(`bob sees "${title}"`, LIVE_MS, async () => (await columnOf(bob.page, title)) === 'todo')
    await settled(alice)
    const bobMayToggle = await card(bob.page, title).locator('[data-act=private]').isEnabled()

    await press(alice, title, 'private')
    const aliceSeesPrivate = await card(alice.page, title).evaluate(li => li.classList.contains('private'))
    const hiddenMs = await maybeWithin(LIVE_MS, async () => (await columnOf(bob.page, title)) === null)
    await rename(alice, title, `${title}: secret`)
    await press(alice, `${title}: secret`, 'right')
    await settled(alice)
    await new Promise(resolve => setTimeout(resolve, LIVE_MS))
    const bobAfterSecretEdits = await neutral(bob)

    await press(alice, `${title}: secret`, 'private')
    const sharedMs = await maybeWithin(LIVE_MS, async () => (await columnOf(bob.page, `${title}: secret`)) === 'doing')
    await settled(alice)
    return {
      title,
      bobMayToggle,
      aliceSeesPrivate,
      hiddenMs,
      sharedMs,
      bobAfterSecretEdits,
      // Other tests may leave alice's own private cards on the board: compare what both may see.
      alice: visibleToAll(await neutral(alice)),
      bob: visibleToAll(await neutral(bob))
    }
  },

  // Bob edits while offline; alice edits the same cards meanwhile. Back online, both pages agree,
  // per field the later edit winning.
  async offline(browser) {
    const alice = await login(browser, 'alice')
    const bob = await login(browser, 'bob')
    const tag = Date.now() % 100000
    const both = `Shared card ${tag}`
    const clash = `Contested card ${tag}`
    await add(alice, 'todo', both)
    await add(alice, 'todo', clash)
    await within('bob sees both cards', 3000, async () => (await columnOf(bob.page, clash)) === 'todo')
    await settled(alice)
    await subscribedTo(bob, [both, clash])

    log('bob goes offline')
    await bob.context.setOffline(true)
    await within('bob\'s page says offline', 3000, async () =>
      (await bob.page.getAttribute('#status', 'data-state')) === 'offline'
    )
    await rename(bob, both, `${both} renamed by bob`) // bob: title of the shared card
    await rename(bob, clash, `${clash}: bob's title`) // bob first, alice later: alice's title wins
    await press(bob, `${both} renamed by bob`, 'right') // bob: Doing
    await new Promise(resolve => setTimeout(resolve, 50))
    await press(alice, both, 'right')
    await press(alice, both, 'right') // alice, later: Done, so her column wins over bob's
    await rename(alice, clash, `${clash}: alice's title`)
    await settled(alice)
    const offlineStatus = await bob.page.textContent('#status .label')
    const offlineShot = await shot(bob, 'offline-bob')
    const bobWhileOffline = await neutral(bob)
    const aliceWhileBobOffline = await neutral(alice)

    log('bob comes back')
    await bob.context.setOffline(false)
    const started = performance.now()
    // Chromium fires `online`, the client reconnects at once and sends what it kept.
    const expected = {
      [`${both} renamed by bob`]: 'done',
      [`${clash}: alice's title`]: 'todo'
    }
    const converged = async () => {
      for (const user of [alice, bob]) {
        for (const [title, column] of Object.entries(expected)) {
          if ((await columnOf(user.page, title)) !== column) return false
        }
      }
      return same(visibleToAll(await neutral(alice)), await neutral(bob))
    }
    await within('both pages converge', 5000, converged)
    const ms = Math.round(performance.now() - started)
    await settled(bob)
    await settled(alice)
    await shot(bob, 'reconnected-bob')
    return {
      expected,
      ms,
      offlineStatus,
      offlineShot,
      bobWhileOffline,
      aliceWhileBobOffline,
      alice: await neutral(alice),
      bob: await neutral(bob),
      bobStatus: await bob.page.textContent('#status .label')
    }
  },

  // The page as a newcomer meets it: log in, the three columns, cards, a private one, log out.
  async tour(browser) {
    const alice = await login(browser, 'alice')
    for (const [column, text] of [
      ['todo', 'Write the README walkthrough'],
      ['todo', 'Try the board offline'],
      ['doing', 'Review the outbox retry'],
      ['done', 'Pin @logux/client 0.21.1']
    ]) {
      await add(alice, column, text)
    }
    await press(alice, 'Try the board offline', 'private')
    await settled(alice)
    const bob = await login(browser, 'bob')
    await add(bob, 'doing', 'Show the board to the team')
    await within('alice sees bob\'s card', LIVE_MS, async () => (await columnOf(alice.page, 'Show the board to the team')) === 'doing')
    await settled(bob)
    const headings = await alice.page.locator('.column h2').allTextContents()
    const status = await alice.page.textContent('#status .label')
    const boardShot = await shot(alice, 'board-alice')
    await shot(bob, 'board-bob')
    const shown = { alice: await neutral(alice), bob: await neutral(bob) }

    await bob.page.click('button:text("Log out")')
    await bob.page.waitForURL(/\/login\/$/)
    await bob.page.goto(config.base + '/')
    const afterLogout = new URL(bob.page.url()).pathname + new URL(bob.page.url()).search
    await shot(bob, 'login')
    return { headings, status, boardShot, afterLogout, ...shown }
  },

  // An edit saved in the Django admin reaches both open boards.
  async admin(browser) {
    const alice = await login(browser, 'alice')
    const bob = await login(browser, 'bob')
    const title = `Edited in the admin ${Date.now() % 100000}`
    await add(bob, 'todo', `Before the admin ${title}`)
    await within("alice sees bob's card", 3000, async () => (await columnOf(alice.page, `Before the admin ${title}`)) === 'todo')
    await settled(bob)
    const id = await card(alice.page, `Before the admin ${title}`).getAttribute('data-id')

    // A third page in alice's browser: her session is logged in to the admin as well.
    const admin = await alice.context.newPage()
    await admin.goto(`${config.base}/admin/board/task/${id}/change/`)
    await admin.fill('input[name=title]', title)
    await admin.selectOption('select[name=column]', 'doing')
    const clicked = performance.now()
    await admin.click('input[name=_save]')
    await admin.waitForURL(/\/admin\/board\/task\/$/)
    const ms = { adminPage: Math.round(performance.now() - clicked) }
    for (const user of [alice, bob]) {
      await within(`${user.name} sees the admin's edit`, LIVE_MS, async () => (await columnOf(user.page, title)) === 'doing')
      ms[user.name] = Math.round(performance.now() - clicked)
    }
    await admin.close()
    await settled(alice)
    return { id, title, ms, alice: await neutral(alice), bob: await neutral(bob) }
  }
}

const browser = await chromium.launch({ executablePath: config.chromium, args: CHROMIUM_ARGS })
let exitCode = 0
try {
  const result = await scenarios[scenario](browser)
  result.problems = problems
  process.stdout.write(JSON.stringify(result) + '\n')
} catch (error) {
  log(error.stack || error)
  log('problems seen:', JSON.stringify(problems))
  for (const [index, page] of pages.entries()) {
    try {
      log(`page ${index} shows`, JSON.stringify(await board(page)), await page.textContent('#status'))
      await page.screenshot({ path: `${config.screenshots}/${scenario}-failed-${index}.png` })
    } catch {}
  }
  exitCode = 1
} finally {
  await browser.close()
}
process.exit(exitCode)
