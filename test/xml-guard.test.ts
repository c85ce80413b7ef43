import t from 'tap'
import { checkMarkup } from '../src/backend/stores/xml-guard.js'

t.test('well-formed documents give their root element name', async (t) => {
  t.equal(checkMarkup('<a/>'), 'a')
  t.equal(checkMarkup('\uFEFF<?xml version="1.0"?>\n<!-- c --><p:a xmlns:p="u" x=\'1\' y = "2 > 1"><b>t &amp; &#233; &#xE9;</b><![CDATA[ <raw> & ]]><?pi x?></p:a>\n'), 'p:a')
  t.equal(checkMarkup('<a><a><a/></a></a>'), 'a', 'nested same names')
  t.equal(checkMarkup('<é:données/>'), 'é:données', 'non-ASCII names')
  t.equal(checkMarkup('<a></a >'), 'a', 'white space before > of an end tag')
})

t.test('truncation, mismatches and stray markup are refused', async (t) => {
  const bad: Record<string, string> = {
    empty: '',
    'only a declaration': '<?xml version="1.0"?>',
    'unclosed root': '<a><b/>',
    'cut in a tag': '<a><b x="1"',
    'cut in an end tag': '<a></a',
    mismatched: '<a><b></a></b>',
    'end tag without start': '<a></a></b>',
    'two roots': '<a/><b/>',
    'text outside the root': 'x<a/>',
    'text after the root': '<a/>x',
    'CDATA outside the root': '<a/><![CDATA[x]]>',
    'unclosed comment': '<a><!-- x</a>',
    'unclosed CDATA': '<a><![CDATA[x</a>',
    'unclosed PI': '<a><?pi x</a>',
    DOCTYPE: '<!DOCTYPE a><a/>',
    'late XML declaration': '<a/><?xml version="1.0"?>',
    'bad name': '<1a/>',
    'space after <': '< a/>',
    'unquoted attribute': '<a x=1/>',
    'attribute without value': '<a x/>',
    'attributes without space': '<a x="1"y="2"/>',
    'repeated attribute': '<a x="1" x="2"/>',
    '< in attribute': '<a x="<"/>',
    'bare & in attribute': '<a x="a & b"/>',
    'bare & in text': '<a>a & b</a>',
    'unterminated reference': '<a>&amp</a>',
    'attributes on an end tag': '<a></a x="1">',
  }
  for (const [what, text] of Object.entries(bad)) t.equal(checkMarkup(text), undefined, what)
})

t.test('the check keeps no state between calls', async (t) => {
  t.equal(checkMarkup('<a><b>'), undefined)
  t.equal(checkMarkup('<c x="1" y="2"/>'), 'c', 'an earlier unclosed document leaves nothing behind')
  t.equal(checkMarkup('<d x="1"/>'), 'd', 'attribute names do not carry over')
})

t.test('long runs of white space are linear, not catastrophic', async (t) => {
  const spaces = ' '.repeat(200_000)
  const started = Date.now()
  t.equal(checkMarkup(`<a${spaces}x${spaces}/>`), undefined)
  t.equal(checkMarkup(`<a${spaces}x="1"${spaces}/>`), 'a')
  t.ok(Date.now() - started < 2000, 'fast')
})
