/**
 * Preloaded (`node --import`) into every server the harness starts, so no
 * server outlives the run: it stops when the harness goes away (its IPC
 * channel closes) or after BENCH_LIFETIME_MS (default 30 min), whatever happens.
 */
const lifetimeMs = Number(process.env.BENCH_LIFETIME_MS) > 0 ? Number(process.env.BENCH_LIFETIME_MS) : 30 * 60_000

function stop() {
  // SIGTERM lets a server finish gracefully (and write its --cpu-prof profile);
  // the hard exit covers one that does not stop by itself.
  setTimeout(() => process.exit(1), 10_000).unref()
  process.kill(process.pid, 'SIGTERM')
}

setTimeout(stop, lifetimeMs).unref()
if (process.channel !== undefined) {
  process.once('disconnect', stop)
  // The channel must not keep a server alive that wants to exit.
  process.channel.unref()
}
