import t from 'tap'
import { LoginThrottle } from '../src/middleware/throttle.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('ten failures lock one account for the window; other accounts are unaffected', async (t) => {
  const throttle = new LoginThrottle()
  for (let i = 0; i < 9; i++) {
    throttle.recordFailure('alice')
    t.same(throttle.check('alice'), { allowed: true }, `still allowed after ${i + 1} failures`)
  }
  throttle.recordFailure('alice')
  const decision = throttle.check('alice')
  t.equal(decision.allowed, false, 'the 11th attempt is refused')
  if (!decision.allowed) {
    t.ok(decision.retryAfterSeconds > 290 && decision.retryAfterSeconds <= 300, `Retry-After ${decision.retryAfterSeconds}s is the rest of the 5 minute window`)
  }
  t.same(throttle.check('bob'), { allowed: true }, 'bob is not affected')
  t.same(throttle.check('Alice'), { allowed: true }, 'names are case-sensitive')
})

t.test('a locked account stays locked whatever happens until the window has passed', async (t) => {
  const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 200 })
  for (let i = 0; i < 3; i++) throttle.recordFailure('alice')
  throttle.recordSuccess('alice')
  t.equal(throttle.check('alice').allowed, false, 'a success cannot unlock (callers check first anyway)')
  throttle.recordFailure('alice')
  await sleep(120)
  t.equal(throttle.check('alice').allowed, false, 'a failure while locked does not shorten or reset anything')
  await sleep(120)
  t.same(throttle.check('alice'), { allowed: true }, 'unlocked after the window')
  throttle.recordFailure('alice')
  t.same(throttle.check('alice'), { allowed: true }, 'the count started over')
})

t.test('Retry-After is at least one second', async (t) => {
  const throttle = new LoginThrottle({ maxFailures: 1, windowMs: 10 })
  throttle.recordFailure('x')
  const decision = throttle.check('x')
  t.same(decision, { allowed: false, retryAfterSeconds: 1 })
})

t.test('only failures within the window count (sliding window)', async (t) => {
  const throttle = new LoginThrottle({ maxFailures: 3, windowMs: 150 })
  throttle.recordFailure('alice')
  throttle.recordFailure('alice')
  await sleep(200)
  throttle.recordFailure('alice')
  throttle.recordFailure('alice')
  t.same(throttle.check('alice'), { allowed: true }, 'the two old failures have aged out')
  throttle.recordFailure('alice')
  t.equal(throttle.check('alice').allowed, false, 'three within the window lock')
})

t.test('a success resets the failure count', async (t) => {
  const throttle = new LoginThrottle({ maxFailures: 3 })
  throttle.recordFailure('alice')
  throttle.recordFailure('alice')
  throttle.recordSuccess('alice')
  throttle.recordFailure('alice')
  throttle.recordFailure('alice')
  t.same(throttle.check('alice'), { allowed: true })
  t.equal(throttle.size, 1)
  throttle.recordSuccess('nobody')
  t.equal(throttle.size, 1, 'a success of an untracked account stores nothing')
})

t.test('memory is bounded by maxAccounts, forgetting the least recently failing account', async (t) => {
  const throttle = new LoginThrottle({ maxFailures: 2, maxAccounts: 3 })
  throttle.recordFailure('a')
  throttle.recordFailure('a')
  throttle.recordFailure('b')
  throttle.recordFailure('c')
  throttle.recordFailure('d')
  t.equal(throttle.size, 3)
  t.same(throttle.check('a'), { allowed: true }, 'the oldest entry was dropped')
  throttle.recordFailure('c')
  t.equal(throttle.check('c').allowed, false, 'recent accounts are still counted')
})

t.test('huge account names are stored as a digest, still counted per name', async (t) => {
  const throttle = new LoginThrottle({ maxFailures: 2 })
  const long = 'x'.repeat(100_000)
  throttle.recordFailure(long)
  throttle.recordFailure(long)
  t.equal(throttle.check(long).allowed, false)
  t.same(throttle.check(long + 'y'), { allowed: true })
})

t.test('options are validated', async (t) => {
  t.throws(() => new LoginThrottle({ maxFailures: 0 }), { name: 'TypeError', message: /maxFailures/ })
  t.throws(() => new LoginThrottle({ windowMs: -1 }), { name: 'TypeError', message: /windowMs/ })
  t.throws(() => new LoginThrottle({ maxAccounts: 2.5 }), { name: 'TypeError', message: /maxAccounts/ })
  t.throws(() => new LoginThrottle(null as unknown as object), { name: 'TypeError' })
  const defaults = new LoginThrottle()
  t.equal(defaults.maxFailures, 10)
  t.equal(defaults.windowMs, 300_000)
  t.equal(defaults.maxAccounts, 100_000)
})
