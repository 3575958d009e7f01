// Bundles the board's front end (@logux/client + nanostores + main.js) into one ES module that
// Django serves as static/board/app.js. Run by `make example` and by the browser tests.
// Usage: node example_project/board/frontend/build.mjs [--watch]
import * as esbuild from 'esbuild'
import { fileURLToPath } from 'node:url'

const options = {
  entryPoints: [fileURLToPath(new URL('main.js', import.meta.url))],
  outfile: fileURLToPath(new URL('../static/board/app.js', import.meta.url)),
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  sourcemap: 'linked',
  logLevel: 'warning'
}

if (process.argv.includes('--watch')) {
  const context = await esbuild.context(options)
  await context.watch()
  console.log('esbuild: watching example_project/board/frontend/')
} else {
  const result = await esbuild.build({ ...options, metafile: true })
  const bytes = Object.values(result.metafile.outputs).find(output => output.entryPoint)?.bytes
  console.log(`esbuild: example_project/board/static/board/app.js (${Math.round(bytes / 1024)} kB)`)
}
