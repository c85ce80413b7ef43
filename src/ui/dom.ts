/**
 * CloudSync default UI — DOM helpers.
 *
 * Every text reaches the page through text nodes or attributes, never as
 * HTML, so names and log lines from the server cannot inject markup.
 */
/** What `h()` accepts as children: nodes, text, nested lists; `null`/`false` are skipped. */
export type Child = Node | string | number | null | undefined | false | Child[]

/** Attributes of `h()`: `on<event>` functions become listeners, `true` a bare attribute, `false`/`null` nothing. */
export type Attrs = Record<string, string | number | boolean | null | undefined | ((event: any) => void)>

/**
 * Create an element with attributes and children.
 *
 * @example
 * h('button', { type: 'button', onclick: () => run(task) }, 'Run')
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  if (attrs) {
    for (const name of Object.keys(attrs)) {
      const value = attrs[name]
      if (value === undefined || value === null || value === false) continue
      if (typeof value === 'function') el.addEventListener(name.slice(2), value)
      else if (name === 'value' || name === 'checked') (el as any)[name] = value
      else el.setAttribute(name, value === true ? '' : String(value))
    }
  }
  append(el, children)
  return el
}

/**
 * Append children (text becomes text nodes).
 *
 * @example
 * append(list, items.map((item) => h('li', null, item.name)))
 */
export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(parent, child)
    else parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)))
  }
}

/**
 * Replace all children of `parent`.
 *
 * @example
 * replace(byId('users-body'), rows)
 */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild)
  append(parent, children)
}

/**
 * The element with this id; throws when the page shell lacks it (a build mismatch).
 *
 * @example
 * const notices = byId('cs-notices')
 */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`CloudSync UI: the page has no element #${id}`)
  return el as T
}

let nextId = 0
/**
 * A page-unique id for label/field pairs.
 *
 * @example
 * const id = uid('set-name') // 'set-name-3'
 */
export function uid(prefix: string): string {
  nextId += 1
  return `${prefix}-${nextId}`
}

/**
 * A labelled form field: `<div class="field"><label for>…</label>control hint</div>`.
 *
 * @example
 * field('Directory path', h('input', { name: 'path', required: true }), 'Absolute path on the server')
 */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLDivElement {
  if (!control.id) control.id = uid('f')
  let hintEl: HTMLElement | null = null
  if (hint !== undefined) {
    hintEl = h('p', { class: 'hint', id: uid('hint') }, hint)
    control.setAttribute('aria-describedby', hintEl.id)
  }
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl)
}

/**
 * A checkbox with its label to the right.
 *
 * @example
 * checkbox('overwrite', 'Replace objects that already exist', false)
 */
export function checkbox(name: string, label: string, checked: boolean): HTMLLabelElement {
  return h('label', { class: 'check' }, h('input', { type: 'checkbox', name, checked }), ' ', label)
}

/**
 * A `<select>` from value/label pairs, with an optional placeholder that cannot be submitted.
 *
 * @example
 * select('setUri', sets.map((s) => [s.uri, s.name]), 'Choose a set', current)
 */
export function select(name: string, options: Array<[string, string]>, placeholder: string | null, selected?: string): HTMLSelectElement {
  const el = h('select', { name, required: placeholder !== null })
  if (placeholder !== null) el.appendChild(h('option', { value: '', disabled: true, selected: selected === undefined || selected === '' }, placeholder))
  for (const [value, label] of options) el.appendChild(h('option', { value, selected: value === selected }, label))
  if (selected !== undefined && selected !== '') el.value = selected
  return el
}

/**
 * Remember which keyed control (`data-key="<entity uri> <action>"`) has the
 * focus, and restore it after a re-render, so polling never throws a
 * keyboard user out of a list. When that action is gone (Pause became
 * Resume), the focus goes to another action of the same entity.
 *
 * @example
 * const restore = keepFocus(); replace(list, rows); restore()
 */
export function keepFocus(): () => void {
  const active = document.activeElement
  const key = active instanceof HTMLElement ? active.getAttribute('data-key') : null
  return () => {
    if (key === null || document.activeElement !== document.body) return
    const entity = key.slice(0, key.indexOf(' ') + 1)
    const again = document.querySelector(`[data-key="${cssEscape(key)}"]`) ??
      (entity === '' ? null : document.querySelector(`[data-key^="${cssEscape(entity)}"]`))
    if (again instanceof HTMLElement) again.focus()
  }
}

function cssEscape(value: string): string {
  return value.replace(/["\\]/g, '\\$&')
}

/**
 * A `<time>` element showing a date in the reader's locale, with the exact value as `datetime`.
 *
 * @example
 * time(log.startDate)
 */
export function time(iso: string | undefined): HTMLElement | string {
  if (iso === undefined) return '—'
  const date = new Date(iso)
  if (isNaN(date.getTime())) return iso
  return h('time', { datetime: iso, title: iso }, date.toLocaleString())
}

/**
 * A table with a header row.
 *
 * @example
 * table(['Name', 'Actions'], rows)
 */
export function table(headings: string[], rows: HTMLElement[]): HTMLTableElement {
  return h('table', null,
    h('thead', null, h('tr', null, headings.map((text) => h('th', { scope: 'col' }, text)))),
    h('tbody', null, rows))
}

/**
 * Show the part of a form that belongs to the chosen type (`data-for`);
 * disable the others' controls so they neither block nor feed the submission.
 *
 * @example
 * showOnly(parts, 'pidList')
 */
export function showOnly(parts: HTMLElement[], type: string): void {
  for (const part of parts) {
    const on = part.getAttribute('data-for') === type
    part.hidden = !on
    part.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>('input, select, textarea').forEach((c) => {
      c.disabled = !on
    })
  }
}
