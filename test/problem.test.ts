import t from 'tap'
import { HttpError, renderProblem, acceptsJson, acceptsXml } from '../src/middleware/problem.js'

t.test('HttpError keeps status and code', async (t) => {
  const e = new HttpError(405, 'Use GET.', { headers: { Allow: 'GET' } })
  t.equal(e.status, 405)
  t.equal(e.code, 'method_not_allowed')
  t.same(e.headers, { Allow: 'GET' })
})

t.test('accept families', async (t) => {
  t.ok(acceptsJson(undefined))
  t.ok(acceptsJson('*/*'))
  t.notOk(acceptsXml('*/*'))
  t.ok(acceptsXml('application/vnd.fcrepo-cloudsync.task+xml'))
  t.notOk(acceptsJson('text/html'))
})

t.test('xml escapes', async (t) => {
  const { body } = renderProblem({ type: 'about:blank', title: 'Bad Request', status: 400, detail: '<x>&', instance: '/a' }, 'xml')
  t.match(body, /&#60;x&#62;&#38;/)
})
