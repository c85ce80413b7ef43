import t from 'tap'
import { LogRing } from '../src/backend/tasks/log-ring.js'

t.test('lines go through in order, whole, across the end of the ring', async (t) => {
  const shared = LogRing.create(1024)
  const writer = new LogRing(shared)
  const reader = new LogRing(shared)
  t.equal(writer.capacity, 1024)
  t.equal(reader.take(), '', 'nothing yet')
  let expected = ''
  let got = ''
  const refused: number[] = []
  // Lines of awkward lengths with multi-byte characters, so that some straddle the end.
  for (let i = 0; i < 500; i++) {
    const line = `Copying démo:${i}..OK (new in destination) ${'€'.repeat(i % 7)}\n`
    if (!writer.write(line)) refused.push(i)
    expected += line
    if (i % 9 === 8) got += reader.take()
  }
  got += reader.take()
  t.same(refused, [], 'every line taken')
  t.equal(got, expected, 'everything, byte for byte')
  t.equal(reader.take(), '', 'taken once')
})

t.test('text longer than the ring is refused, not cut', async (t) => {
  const ring = new LogRing(LogRing.create(1024))
  t.equal(ring.write('x'.repeat(1025)), false)
  t.equal(ring.write('é'.repeat(513)), false, 'counted in bytes')
  t.equal(ring.take(), '')
  t.equal(ring.write('x'.repeat(1024)), true, 'exactly the capacity fits')
  t.equal(ring.take().length, 1024)
})

t.test('create checks the capacity', async (t) => {
  for (const capacity of [0, 1000, 1023, 3000, 2 ** 31]) t.throws(() => LogRing.create(capacity), RangeError)
  t.type(LogRing.create(), SharedArrayBuffer)
})
