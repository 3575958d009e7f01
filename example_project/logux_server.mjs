// The Logux server of the example project: @logux/server 0.13.1 in back-end proxy mode.
// Every auth, action and subscription goes to Django (LOGUX_BACKEND); Django adds actions
// back on the same port with LOGUX_CONTROL_SECRET. Options come from LOGUX_* variables.
import { Server } from '@logux/server'

const server = new Server(
  Server.loadOptions(process, {
    backend: 'http://127.0.0.1:8000/logux/',
    controlSecret: 'parole',
    host: '127.0.0.1',
    port: 31337
  })
)

process.on('SIGTERM', async () => {
  await server.destroy()
  process.exit(0)
})

server.listen()
