import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SERVE_DEFAULTS } from '@effnet/serve';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../cli.js';
import { serveCommand } from './serve.js';

const bin = fileURLToPath(new URL('../../bin/effnet.js', import.meta.url));

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** Starts `effnet serve` on a free port; resolves with its URL once it listens. */
function startServe(args: string[]): Promise<{ url: string; stderr: () => string; exit: Promise<number | null> }> {
  const p = spawn(process.execPath, [bin, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child = p;
  let out = '';
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    p.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1]!, stderr: () => err, exit });
    });
    void exit.then((code) => reject(new Error(`effnet serve exited (${code}) before listening:\n${err}`)));
  });
}

describe('effnet serve', () => {
  it('declares the library defaults', () => {
    const o = serveCommand.options;
    expect([o.host.default, o.port.default, o['max-batch'].default, o['max-delay-ms'].default, o['max-queue'].default, o['max-body-mb'].default, o['timeout-ms'].default]).toEqual([
      SERVE_DEFAULTS.host,
      SERVE_DEFAULTS.port,
      SERVE_DEFAULTS.maxBatch,
      SERVE_DEFAULTS.maxDelayMs,
      SERVE_DEFAULTS.maxQueue,
      SERVE_DEFAULTS.maxBodyMb,
      SERVE_DEFAULTS.timeoutMs,
    ]);
  });

  it('usage mistakes are exit-code-2 errors', async () => {
    await expect(main(['serve'], () => undefined)).rejects.toThrow(/needs at least one --model/);
    await expect(main(['serve', '--model', 'a=effnet-shapes', '--model', 'a=effnet-shapes'], () => undefined)).rejects.toThrow(/two --model options are served as "a"/);
    await expect(main(['serve', '--model', 'effnet-shapes', '--max-batch', '0'], () => undefined)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/--max-batch/) });
  });

  it('serves a model, logs JSON lines, and on SIGTERM answers what is queued and exits 0', async () => {
    // A long batching delay keeps the requests queued until the signal: closing must run them at once.
    const s = await startServe(['--model', 'shapes=effnet-shapes', '--max-delay-ms', '60000', '--max-batch', '16']);
    const meta = (await (await fetch(`${s.url}/v2/models/shapes`)).json()) as { inputs: { shape: number[] }[] };
    expect(meta.inputs[0]!.shape).toEqual([-1, 3, 48, 48]);
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 48, 48], datatype: 'FP32', data: new Array(3 * 48 * 48).fill(0.5) }] });
    const pending = [0, 1, 2].map(() => fetch(`${s.url}/v2/models/shapes/infer`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } }));
    for (;;) {
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      if (/^effnet_queue_depth\{model="shapes"\} 3$/m.test(metrics)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child!.kill('SIGTERM');
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await s.exit).toBe(0);
    const logs = s
      .stderr()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; status?: number; endpoint?: string; model?: string });
    expect(logs[0]).toMatchObject({ msg: 'model loaded', model: 'shapes', task: 'classify', device: 'cpu' });
    expect(logs.filter((l) => l.msg === 'request' && l.endpoint === 'infer').map((l) => l.status)).toEqual([200, 200, 200]);
    // The queued requests are answered after the signal, before the server stops.
    const msgs = logs.map((l) => (l.endpoint === 'infer' ? 'infer' : l.msg)).filter((m) => m !== 'request');
    expect(msgs).toEqual(['model loaded', 'shutting down', 'infer', 'infer', 'infer', 'stopped']);
  });
});
