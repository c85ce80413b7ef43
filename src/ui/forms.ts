/**
 * CloudSync default UI — the inline editor every panel uses for "new" and
 * "edit": a titled form that opens above the list, reports the server's
 * refusal inside the form (`role="alert"`), and gives the focus back to the
 * button that opened it when it closes.
 */
/// <reference path="../../dist/public/js/cloudsync-api.d.ts" />
import { field, h, replace, uid } from './dom.js'
import type { Child } from './dom.js'
import { detailOf, isFatal, notify } from './notices.js'

/** What an editor needs. */
export interface EditorSpec {
  /** The heading, e.g. "New object set". */
  title: string
  /** The fields (labelled controls). */
  fields: Child[]
  /** The submit button's text. */
  submitLabel: string
  /** Send the form; resolve with a confirmation sentence, reject with the failure. */
  submit(form: HTMLFormElement): Promise<string>
  /** What failed, for the error sentence ("The task was not saved"). */
  failure: string
}

/**
 * Open an editor in `container` (replacing any open one).
 *
 * @example
 * openEditor(byId('sets-editor'), button, { title: 'New object set', fields, submitLabel: 'Create', failure: 'The set was not created', submit })
 */
export function openEditor(container: HTMLElement, opener: HTMLElement | null, spec: EditorSpec): HTMLFormElement {
  const headingId = uid('editor')
  const error = h('p', { class: 'form-error', role: 'alert' })
  const submit = h('button', { type: 'submit', class: 'primary' }, spec.submitLabel)
  const close = (): void => closeEditor(container, opener)
  const form = h('form', { class: 'editor-form', 'aria-labelledby': headingId },
    spec.fields,
    error,
    h('div', { class: 'buttons' }, submit, h('button', { type: 'button', onclick: close }, 'Cancel')))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (!form.reportValidity()) return
    submit.disabled = true
    error.textContent = ''
    spec.submit(form).then((message) => {
      close()
      notify(message, 'info')
    }, (err: unknown) => {
      submit.disabled = false
      if (isFatal(err)) {
        CloudSyncClient.handleError(err)
        return
      }
      error.textContent = `${spec.failure}: ${detailOf(err)}`
    })
  })
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') close()
  })
  replace(container, h('h3', { id: headingId }, spec.title), form)
  container.hidden = false
  if (opener) opener.setAttribute('aria-expanded', 'true')
  const first = form.querySelector<HTMLElement>('input:not([type=hidden]), select, textarea')
  if (first) first.focus()
  return form
}

/**
 * Close the editor in `container` and return the focus to its opener.
 *
 * @example
 * closeEditor(byId('sets-editor'), newSetButton)
 */
export function closeEditor(container: HTMLElement, opener: HTMLElement | null): void {
  container.hidden = true
  replace(container)
  if (opener) {
    opener.setAttribute('aria-expanded', 'false')
    if (document.body.contains(opener)) opener.focus()
  }
}

/**
 * A form control's value: the trimmed text, or for a checkbox `"true"`/`"false"`.
 *
 * @example
 * valueOf(form, 'overwrite') // 'false'
 */
export function valueOf(form: HTMLFormElement, name: string): string {
  const control = form.elements.namedItem(name)
  if (control instanceof HTMLInputElement && control.type === 'checkbox') return control.checked ? 'true' : 'false'
  if (control instanceof RadioNodeList) return control.value
  if (control instanceof HTMLInputElement || control instanceof HTMLSelectElement || control instanceof HTMLTextAreaElement) {
    return control.type === 'password' ? control.value : control.value.trim()
  }
  return ''
}

/**
 * A name field that follows a suggestion until the person types in it.
 *
 * @example
 * const name = suggestedName('Name', () => suggestStoreName(read()))
 * form.addEventListener('input', name.update)
 */
export function suggestedName(label: string, suggest: () => string, initial?: string): { field: HTMLDivElement; update: () => void } {
  const input = h('input', { name: 'name', type: 'text', required: true, maxlength: 256, autocomplete: 'off', value: initial ?? '' })
  let edited = initial !== undefined && initial !== ''
  input.addEventListener('input', () => {
    edited = input.value.trim() !== ''
  })
  const update = (): void => {
    if (edited) return
    input.value = suggest()
  }
  return { field: field(label, input, 'Suggested from your choices; type to change it.'), update }
}
