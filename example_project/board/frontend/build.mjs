// Bundles the board's front end (main.js + @logux/client + nanostores) into one ES module per Logux
// stack, which Django serves as static/board/app-<stack>.js (the board view picks the one of
// BOARD_LOGUX_STACK):
//   bridge: @logux/client 0.23 (protocol 5) from logux_sync/bridge/node_modules, for `manage.py
//           logux_server` (@logux/server 0.14), the default;
//   proxy:  @logux/client 0.21 (protocol 4) from the root node_modules, for @logux/server 0.13.1.
// A client of one stack cannot talk to the other's server, so the stack is baked into the bundle
// (LOGUX_STACK) and the page names it when the server refuses it.
// Run by `make example` and by the browser tests.
// Usage: node example_project/board/frontend/build.mjs [--watch]
import * as esbuild from 'esbuild'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const here = path => fileURLToPath(new URL(path, import.meta.url))
const BRIDGE_CLIENT = here('../../../logux_sync/bridge/node_modules/@logux/client')

const STACKS = {
  // esbuild resolves an alias from the working directory, and @logux/client's own imports (core,
  // nanostores 1.x) from where it lies, so the whole 0.23 tree comes from the bridge's node_modules.
  bridge: { alias: { '@logux/client': BRIDGE_CLIENT } },
  proxy: { alias: {} }
}

function options(stack) {
  return {
    entryPoints: [here('main.js')],
    outfile: here(`../static/board/app-${stack}.js`),
    bundle: true,
    format: 'esm',
    target: 'es2020',
    minify: true,
    sourcemap: 'linked',
    logLevel: 'warning',
    alias: STACKS[stack].alias,
    define: { LOGUX_STACK: JSON.stringify(stack) }
  }
}

if (!existsSync(BRIDGE_CLIENT)) {
  console.error('The bridge stack needs @logux/client 0.23: run `make bridge` (npm ci --prefix logux_sync/bridge).')
  process.exit(1)
}

for (const stack of Object.keys(STACKS)) {
  if (process.argv.includes('--watch')) {
    const context = await esbuild.context(options(stack))
    await context.watch()
    console.log(`esbuild: watching example_project/board/frontend/ (${stack})`)
  } else {
    const result = await esbuild.build({ ...options(stack), metafile: true })
    const bytes = Object.values(result.metafile.outputs).find(output => output.entryPoint)?.bytes
    console.log(`esbuild: example_project/board/static/board/app-${stack}.js (${Math.round(bytes / 1024)} kB)`)
  }
}
