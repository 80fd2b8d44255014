import { EffnetError } from '@effnet/core';
import { SERVE_DEFAULTS as D } from '@effnet/serve/defaults';
import { defineCommand, UsageError } from '../args.js';
import { BACKEND_OPTIONS } from './common.js';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'models behind an HTTP server (Open Inference Protocol, KServe v2)',
  usage: 'effnet serve --model M [--model M2 ...] [options]',
  options: {
    model: { type: 'strings', short: 'm', valueName: 'M', description: 'a zoo entry, checkpoint or variant to serve; NAME=M sets its name in URLs (repeat for several models)' },
    host: { type: 'string', default: D.host, valueName: 'ADDR', description: 'address to listen on (0.0.0.0 in a container)' },
    port: { type: 'number', integer: true, min: 0, max: 65535, default: D.port, description: 'TCP port (0: any free port, printed at start)' },
    ...BACKEND_OPTIONS,
    'max-batch': { type: 'number', integer: true, min: 1, max: 4096, default: D.maxBatch, description: 'rows per batch: requests are coalesced up to this' },
    'max-delay-ms': { type: 'number', min: 0, max: 60_000, default: D.maxDelayMs, valueName: 'MS', description: 'how long the oldest request waits for others to join its batch' },
    'max-queue': { type: 'number', integer: true, min: 1, max: 1_000_000, default: D.maxQueue, description: 'requests waiting per model; beyond it 503 with Retry-After' },
    'max-body-mb': { type: 'number', above: 0, max: 4096, default: D.maxBodyMb, valueName: 'MB', description: 'largest request body (413 above)' },
    'timeout-ms': { type: 'number', integer: true, min: 0, max: 3_600_000, default: D.timeoutMs, valueName: 'MS', description: 'deadline of a request, queue and run (0: none)' },
    quiet: { type: 'boolean', description: 'no JSON request logs on stderr' },
  },
  notes: [
    'Endpoints (Open Inference Protocol REST, with the binary tensor data extension):',
    '  GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME, /v2/models/NAME/ready, /metrics (Prometheus)',
    '  POST /v2/models/NAME/infer (tensors), /v2/models/NAME/classify?topk=5 (an image body)',
    'A model is served under NAME=M, else its zoo or variant name, or its checkpoint directory name.',
    'SIGTERM or SIGINT: stop accepting, answer what is in flight and queued, exit 0.',
  ],
  examples: [
    'effnet serve --model effnet-shapes',
    'effnet serve --model b0=efficientnet_b0.ra_in1k --model runs/shapes --host 0.0.0.0 --port 8080',
    'curl -s localhost:8080/v2/models/effnet-shapes/classify?topk=3 --data-binary @photo.png -H "Content-Type: image/png"',
  ],
  async run({ values: v }, io) {
    if (!v.model.length) throw new UsageError('effnet serve needs at least one --model M (a zoo entry, checkpoint or variant; NAME=M to name it); see effnet serve --help');
    const { InferenceServer, loadServedModel, parseModelSpec } = await import('@effnet/serve');
    const specs = v.model.map((m) => {
      try {
        return parseModelSpec(m);
      } catch (e) {
        throw e instanceof EffnetError ? new UsageError(e.message) : e;
      }
    });
    const names = specs.map((s) => s.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new UsageError(`two --model options are served as "${twice}"; name one with --model NAME=M`);

    const log = v.quiet ? undefined : (r: object) => io.progress.write(`${JSON.stringify(r)}\n`);
    const note = (msg: string, extra: object = {}) => log?.({ time: new Date().toISOString(), level: 'info', msg, ...extra });
    let server: InstanceType<typeof InferenceServer> | undefined;
    const models: Awaited<ReturnType<typeof loadServedModel>>[] = [];
    try {
      for (const spec of specs) {
        const m = await loadServedModel(spec, {
          backend: v.backend,
          device: v.device as never,
          threads: v.threads,
          allowNonFinite: v['allow-nan'],
          maxBatch: v['max-batch'],
          maxDelayMs: v['max-delay-ms'],
          maxQueue: v['max-queue'],
          timeoutMs: v['timeout-ms'],
          onBatch: (name, b) => server?.observeBatch(name, b),
        });
        models.push(m);
        note('model loaded', { model: m.name, source: spec.model, task: m.task ?? null, device: m.runner.device, random_weights: m.weights.random, inputs: m.inputs, outputs: m.outputs });
      }
      server = new InferenceServer(models, { host: v.host, port: v.port, maxBodyBytes: Math.floor(v['max-body-mb'] * 1024 * 1024), log, version: '0.1.0' });
      let address;
      try {
        address = await server.listen();
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL')
          throw new EffnetError(`cannot listen on ${v.host}:${v.port} (${code}): ${code === 'EADDRINUSE' ? 'the port is in use; pick another with --port' : code === 'EACCES' ? 'not allowed; use a port above 1023' : 'no such address on this machine; check --host'}`);
        throw e;
      }
      io.out(`effnet serve: listening on ${address.url} (models: ${models.map((m) => m.name).join(', ')})`);
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      note('shutting down', { signal, queued: models.reduce((s, m) => s + m.batcher.queued, 0) });
      await server.close();
      note('stopped');
      return 0;
    } finally {
      for (const m of models) await m.dispose();
    }
  },
});
