/**
 * CloudSync mounted at `/cloudsync` inside an Express 5 app that has routes
 * of its own. Links in API responses include the `/cloudsync` mount.
 *
 *   node dist/examples/express-mount.js   (PORT, HOST, CLOUDSYNC_DATA as for the server)
 */
import express from 'express'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { cloudsync } from '../src/index.js'
import type { CloudSyncOptions, CloudSyncHandler } from '../src/index.js'

export function createApp(options: CloudSyncOptions): { app: express.Express; cloud: CloudSyncHandler } {
  const app = express()
  const cloud = cloudsync(options)
  app.get('/', (_req, res) => {
    res.type('text/plain').send('My application. CloudSync lives at /cloudsync/\n')
  })
  app.get('/health', (_req, res) => {
    res.json({ ok: true })
  })
  app.use('/cloudsync', cloud)
  return { app, cloud }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { app, cloud } = createApp({ dataDir: path.resolve(process.env.CLOUDSYNC_DATA ?? 'data') })
  const port = Number(process.env.PORT ?? 8080)
  const host = process.env.HOST ?? '127.0.0.1'
  const server = app.listen(port, host, () => console.log(`Express app on http://${host}:${port}/ with CloudSync at /cloudsync/`))
  const stop = (): void => {
    server.close()
    server.closeIdleConnections()
    cloud.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
