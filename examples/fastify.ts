/**
 * CloudSync mounted at `/cloudsync` inside a Fastify 5 app through
 * `@fastify/middie`. CloudSync answers its own paths (and reads its own
 * request bodies), so Fastify only needs no routes of its own below the
 * mount.
 *
 *   node dist/examples/fastify.js   (PORT, HOST, CLOUDSYNC_DATA as for the server)
 */
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import middie from '@fastify/middie'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { cloudsync } from '../src/index.js'
import type { CloudSyncOptions, CloudSyncHandler } from '../src/index.js'

export async function createFastifyApp(options: CloudSyncOptions): Promise<{ app: FastifyInstance; cloud: CloudSyncHandler }> {
  const app = Fastify()
  await app.register(middie)
  const cloud = cloudsync(options)
  app.use('/cloudsync', cloud)
  app.get('/', async () => 'My application. CloudSync lives at /cloudsync/\n')
  app.addHook('onClose', async () => cloud.close())
  return { app, cloud }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { app } = await createFastifyApp({ dataDir: path.resolve(process.env.CLOUDSYNC_DATA ?? 'data') })
  const port = Number(process.env.PORT ?? 8080)
  const host = process.env.HOST ?? '127.0.0.1'
  await app.listen({ port, host })
  console.log(`Fastify app on http://${host}:${port}/ with CloudSync at /cloudsync/`)
  const stop = (): void => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
