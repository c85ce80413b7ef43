/** Shared start-up of the peer servers: listen on PORT (default 0), say where, stop on SIGTERM/SIGINT. */
export function listen(server, name) {
  const port = Number(process.env.PORT ?? 0)
  server.keepAliveTimeout = 5_000
  server.listen(port, '127.0.0.1', () => {
    console.log(`${name} listening on http://127.0.0.1:${server.address().port}/`)
  })
  const stop = () => {
    server.close(() => process.exit(0))
    server.closeIdleConnections()
    setTimeout(() => process.exit(0), 2_000).unref()
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
