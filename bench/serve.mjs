// Serving throughput and latency: `effnet serve` with dynamic batching vs one request per batch (--max-batch 1),
// 16 concurrent clients (autocannon) sending binary FP32 infer requests of one image each over loopback.
// Writes bench/results/serve.json and prints a table. Run after `npm run build`:
//   node bench/serve.mjs [--seconds 10] [--connections 16] [--models effnet-shapes,efficientnet_b0]
// effnet-shapes is the embedded 48x48 model (offline); efficientnet_b0 is the architecture with random weights at 224
// (no download): the numbers are about serving, not accuracy.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { encodeBinaryInferRequest } from '@effnet/serve';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages/cli/bin/effnet.js');
const { values: o } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '16' }, models: { type: 'string', default: 'effnet-shapes,efficientnet_b0' }, threads: { type: 'string', default: '2' } } });
const seconds = Number(o.seconds);
const connections = Number(o.connections);

const CONFIGS = [
  { name: 'dynamic batching', args: ['--max-batch', '16', '--max-delay-ms', '5'] },
  { name: 'batch 1', args: ['--max-batch', '1', '--max-delay-ms', '0'] },
];

function startServer(model, args) {
  const p = spawn(process.execPath, [bin, 'serve', '--model', `m=${model}`, '--port', '0', '--quiet', '--threads', o.threads, '--max-queue', '1024', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1], stop: () => new Promise((r) => (p.once('exit', r), p.kill('SIGTERM'))) });
    });
    p.once('exit', (code) => reject(new Error(`effnet serve exited with ${code}`)));
  });
}

const cannon = (opts) => new Promise((resolve, reject) => autocannon(opts, (err, r) => (err ? reject(err) : resolve(r))));

async function batchStats(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const num = (re) => Number(re.exec(text)?.[1] ?? NaN);
  return { rows: num(/^effnet_batch_size_sum\{model="m"\} (\S+)$/m), batches: num(/^effnet_batch_size_count\{model="m"\} (\S+)$/m) };
}

const runs = [];
for (const model of o.models.split(',')) {
  for (const config of CONFIGS) {
    const server = await startServer(model, config.args);
    try {
      const meta = await (await fetch(`${server.url}/v2/models/m`)).json();
      const [, c, h, w] = meta.inputs[0].shape;
      const data = new Float32Array(c * h * w).map((_, i) => Math.sin(i));
      const { body, headers } = encodeBinaryInferRequest({ name: meta.inputs[0].name, shape: [1, c, h, w], data }, { binaryOutput: true });
      const request = { url: `${server.url}/v2/models/m/infer`, connections, method: 'POST', headers, body, timeout: 60 };
      await cannon({ ...request, duration: 2 }); // warm-up
      const before = await batchStats(server.url);
      const r = await cannon({ ...request, duration: seconds });
      const after = await batchStats(server.url);
      const run = {
        model,
        input: `1x${c}x${h}x${w}`,
        config: `${config.name} (${config.args.join(' ')})`,
        connections,
        seconds: r.duration,
        requests: r.requests.total,
        throughput: Math.round((r.requests.total / r.duration) * 10) / 10,
        p50_ms: r.latency.p50,
        p99_ms: r.latency.p99,
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        mean_batch: Math.round(((after.rows - before.rows) / (after.batches - before.batches)) * 100) / 100,
      };
      runs.push(run);
      process.stderr.write(`${model} ${config.name}: ${run.throughput} req/s\n`);
    } finally {
      await server.stop();
    }
  }
}

const result = {
  what: `effnet serve over loopback: ${connections} concurrent autocannon clients, binary FP32 /infer requests of one image, ${seconds} s per run after a 2 s warm-up`,
  machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'} (shared with other work while measured)`,
  node: process.version,
  date: new Date().toISOString(),
  runs,
};
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/serve.json'), `${JSON.stringify(result, null, 2)}\n`);

const rows = [['model', 'input', 'batching', 'req/s', 'p50 ms', 'p99 ms', 'mean batch', 'non-2xx', 'errors']];
for (const r of runs) rows.push([r.model, r.input, r.config.split(' (')[0], String(r.throughput), String(r.p50_ms), String(r.p99_ms), String(r.mean_batch), String(r.non2xx), String(r.errors)]);
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const [i, r] of rows.entries()) {
  console.log(`| ${r.map((c, j) => c.padEnd(widths[j])).join(' | ')} |`);
  if (i === 0) console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
}
for (const model of o.models.split(',')) {
  const [d, b] = CONFIGS.map((c) => runs.find((r) => r.model === model && r.config.startsWith(c.name)));
  if (d && b) console.log(`${model}: dynamic batching serves ${(d.throughput / b.throughput).toFixed(2)}x the requests of batch-1 serving`);
}
