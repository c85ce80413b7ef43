/** Run the built server (`dist/examples/server.js`) as a real child process. */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const SERVER_ENTRY = path.join(ROOT, 'dist', 'examples', 'server.js')

export interface ChildServer {
  child: ChildProcess
  base: string
  output(): string
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>
}

export function startChildServer(env: Record<string, string>, timeoutMs = 20_000): Promise<ChildServer> {
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    // The child runs the built dist/ files; their coverage (mapped back onto src/) would corrupt the suite's report.
    env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server did not start: ${out}`))
    }, timeoutMs)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve({ child, base: m[1]!.replace(/\/$/, ''), output: () => out, exited })
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (c: Buffer) => { out += c.toString() })
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(`server exited early: ${out}`))
    })
  })
}
