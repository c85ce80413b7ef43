/**
 * The Resource Index's CSV tuples (Fedora's `risearch`, `format=CSV`), read
 * as they stream in: only the first column of each row is kept, so memory
 * does not grow with the result size.
 */

/** Longest first CSV column kept (PIDs are at most 64 characters; longer values are not PIDs). */
const MAX_CSV_FIELD = 64 * 1024

/**
 * The first column of each CSV row (RFC 4180: quoted fields with doubled
 * quotes, line breaks inside quotes, CRLF or LF), fed in pieces.
 */
export class FirstColumnCsv {
  private state: 'start' | 'plain' | 'quoted' | 'quote' = 'start'
  private column = 0
  private field = ''
  private tooLong = false
  private rowStarted = false
  private skipLf = false
  /** The current row's first column once it is complete (`undefined` when too long to be a PID). */
  private first: string | undefined

  /** Parse `text`, appending the first column of each completed row to `out`. */
  push(text: string, out: string[]): void {
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!
      if (this.skipLf) {
        this.skipLf = false
        if (c === '\n') continue
      }
      switch (this.state) {
        case 'quoted':
          if (c === '"') this.state = 'quote'
          else this.add(c)
          continue
        case 'quote':
          if (c === '"') {
            this.add('"')
            this.state = 'quoted'
            continue
          }
          this.state = 'plain' // the closing quote: what follows is taken as written
          break
        case 'start':
          if (c === '"') {
            this.state = 'quoted'
            this.rowStarted = true
            continue
          }
          break
        default:
          break
      }
      if (c === ',') {
        this.endField()
        this.rowStarted = true
      } else if (c === '\n' || c === '\r') {
        this.endRow(out)
        this.skipLf = c === '\r'
      } else {
        this.rowStarted = true
        this.state = 'plain'
        this.add(c)
      }
    }
  }

  /** The input is complete: a last row without a line end counts too. */
  end(out: string[]): void {
    this.endRow(out)
  }

  private add(c: string): void {
    if (this.column !== 0 || this.tooLong) return
    if (this.field.length >= MAX_CSV_FIELD) {
      this.tooLong = true
      this.field = ''
    } else {
      this.field += c
    }
  }

  private endField(): void {
    if (this.column === 0) this.first = this.tooLong ? undefined : this.field
    this.column++
    this.field = ''
    this.state = 'start'
  }

  private endRow(out: string[]): void {
    const blank = !this.rowStarted && this.column === 0 && this.field === ''
    if (!blank) {
      this.endField()
      if (this.first !== undefined) out.push(this.first)
    }
    this.first = undefined
    this.column = 0
    this.field = ''
    this.tooLong = false
    this.rowStarted = false
    this.state = 'start'
  }
}
