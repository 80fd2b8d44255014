/**
 * Protocol conformance over loopback (real HTTP on 127.0.0.1:0) with the embedded effnet-shapes model: every endpoint
 * and error code, and JSON and binary inference giving the numbers of the Classifier run directly.
 */
import { request } from 'node:http';
import { Classifier } from '@effnet/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxRelDiff, randomRows, shapePng, startShapesServer, stopServer, type TestServer } from '../test/helpers.js';
import { decodeInferResponse, encodeBinaryInferRequest } from './oip.js';

let t: TestServer;
let direct: Classifier;

beforeAll(async () => {
  [t, direct] = await Promise.all([startShapesServer({ maxBatch: 8, maxBodyBytes: 2 * 1024 * 1024 }), Classifier.load('effnet-shapes', { threads: 1 })]);
});
afterAll(async () => {
  await stopServer(t);
  await direct?.dispose();
});

const get = (path: string, init: RequestInit = {}) => fetch(`${t.url}${path}`, init);
const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) => fetch(`${t.url}${path}`, { method: 'POST', body, headers });
const postJson = (path: string, value: unknown) => post(path, JSON.stringify(value), { 'Content-Type': 'application/json' });

async function expectError(r: Response, status: number, message: RegExp): Promise<void> {
  const body = (await r.json()) as { error?: string };
  expect({ status: r.status, error: body.error }).toMatchObject({ status, error: expect.stringMatching(message) });
}

const input = (rows: Float32Array, n: number) => ({ name: 'input', shape: [n, 3, 48, 48], datatype: 'FP32', data: Array.from(rows) });

describe('health and metadata', () => {
  it('GET /v2/health/live and /ready answer 200', async () => {
    expect((await get('/v2/health/live')).status).toBe(200);
    const r = await get('/v2/health/ready');
    expect([r.status, await r.json()]).toEqual([200, { ready: true }]);
  });

  it('GET /v2 is the server metadata with the binary tensor data extension', async () => {
    const r = await get('/v2');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ name: 'effnet', version: 'test', extensions: ['binary_tensor_data', 'effnet_classify', 'effnet_detect', 'effnet_segment'] });
  });

  it('GET /v2/models/{name} gives inputs and outputs with -1 for the batch, and the platform', async () => {
    for (const path of ['/v2/models/shapes', '/v2/models/shapes/versions/1']) {
      const r = await get(path);
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({
        name: 'shapes',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 48, 48] }],
        outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 6] }],
      });
    }
  });

  it('GET /v2/models/{name}/ready answers 200; unknown models and versions 404', async () => {
    expect((await get('/v2/models/shapes/ready')).status).toBe(200);
    expect((await get('/v2/models/shapes/versions/1/ready')).status).toBe(200);
    await expectError(await get('/v2/models/nope'), 404, /no model "nope".*"shapes"/);
    await expectError(await get('/v2/models/nope/ready'), 404, /no model "nope"/);
    await expectError(await get('/v2/models/shapes/versions/2'), 404, /no version "2".*version 1/);
  });

  it('unknown paths are 404 and wrong methods 405 with Allow', async () => {
    await expectError(await get('/v1/models/shapes'), 404, /no such endpoint.*\/v2/);
    await expectError(await get('/v2/models/shapes/explain'), 404, /no such endpoint/);
    const r = await get('/v2/models/shapes/infer');
    expect(r.headers.get('allow')).toBe('POST');
    await expectError(r, 405, /GET .*infer is not supported; use POST/);
    await expectError(await post('/v2/health/live', ''), 405, /use GET or HEAD/);
  });
});

describe('POST /v2/models/{name}/infer', () => {
  it('JSON tensors give the logits of the Classifier run directly, and echo the id', async () => {
    const x = randomRows(2);
    const r = await postJson('/v2/models/shapes/infer', { id: 'req-1', inputs: [input(x, 2)] });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    const body = (await r.json()) as { model_name: string; model_version: string; id: string; outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] };
    expect({ ...body, outputs: body.outputs.map((o) => ({ ...o, data: o.data.length })) }).toEqual({
      model_name: 'shapes',
      model_version: '1',
      id: 'req-1',
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [2, 6], data: 12 }],
    });
    const want = await direct.logits({ dtype: 'float32', shape: [2, 3, 48, 48], data: x });
    expect(maxRelDiff(body.outputs[0]!.data, want.data as Float32Array)).toBeLessThan(1e-5);
  });

  it('nested data arrays are read row-major', async () => {
    const x = randomRows(1, 5);
    const nested = [[0, 1, 2].map((c) => Array.from({ length: 48 }, (_, h) => Array.from(x.subarray(c * 2304 + h * 48, c * 2304 + h * 48 + 48))))];
    const flat = (await (await postJson('/v2/models/shapes/infer', { inputs: [input(x, 1)] })).json()) as { outputs: { data: number[] }[] };
    const r = await postJson('/v2/models/shapes/infer', { inputs: [{ ...input(x, 1), data: nested }] });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual(flat.outputs[0]!.data);
  });

  it('binary tensor data in and out (Inference-Header-Content-Length) gives the same numbers as JSON', async () => {
    const x = randomRows(3, 9);
    const { body, headers } = encodeBinaryInferRequest({ name: 'input', shape: [3, 3, 48, 48], data: x }, { id: 'b', binaryOutput: true });
    const r = await post('/v2/models/shapes/infer', body, headers);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    const bytes = new Uint8Array(await r.arrayBuffer());
    const decoded = decodeInferResponse(bytes, r.headers.get('inference-header-content-length'));
    const header = JSON.parse(Buffer.from(bytes.subarray(0, Number(r.headers.get('inference-header-content-length')))).toString()) as { outputs: { parameters: { binary_data_size: number } }[] };
    expect(header.outputs[0]!.parameters).toEqual({ binary_data_size: 3 * 6 * 4 });
    expect(decoded.outputs[0]!.shape).toEqual([3, 6]);
    // Binary input, JSON output: the same values.
    const asJson = encodeBinaryInferRequest({ name: 'input', shape: [3, 3, 48, 48], data: x });
    const j = (await (await post('/v2/models/shapes/infer', asJson.body, asJson.headers)).json()) as { outputs: { data: number[] }[] };
    expect(Array.from(decoded.outputs[0]!.data)).toEqual(j.outputs[0]!.data);
    const want = await direct.logits({ dtype: 'float32', shape: [3, 3, 48, 48], data: x });
    expect(maxRelDiff(decoded.outputs[0]!.data, want.data as Float32Array)).toBeLessThan(1e-5);
  });

  it('a requested output with binary_data: true comes back binary; named outputs must exist', async () => {
    const x = randomRows(1, 3);
    const r = await postJson('/v2/models/shapes/infer', { inputs: [input(x, 1)], outputs: [{ name: 'logits', parameters: { binary_data: true } }] });
    expect(r.status).toBe(200);
    expect(Number(r.headers.get('inference-header-content-length'))).toBeGreaterThan(0);
    await expectError(await postJson('/v2/models/shapes/infer', { inputs: [input(x, 1)], outputs: [{ name: 'probs' }] }), 400, /output "probs".*no such output.*"logits"/);
  });

  it('malformed requests are 400 with a message naming the tensor and what is expected', async () => {
    const x = randomRows(1);
    const cases: [unknown, RegExp][] = [
      [{ inputs: [] }, /"inputs" must be a non-empty array.*"input"/],
      [{ inputs: [{ ...input(x, 1), name: 'image' }] }, /input "image": model "shapes" has no such input; it takes "input" FP32 \[-1, 3, 48, 48\]/],
      [{ inputs: [{ ...input(x, 1), datatype: 'FP64' }] }, /input "input": datatype "FP64", but the model takes FP32/],
      [{ inputs: [{ ...input(x, 1), shape: [1, 3, 32, 32] }] }, /input "input": shape \[1, 3, 32, 32\] does not fit the model's \[-1, 3, 48, 48\].*dimension 2 must be 48/],
      [{ inputs: [{ ...input(x, 1), shape: [1, 48, 48, 3] }] }, /dimension 1 must be 3/],
      [{ inputs: [{ ...input(x, 1), shape: [3, 48, 48] }] }, /rank 3, expected 4/],
      [{ inputs: [{ ...input(x, 1), data: Array.from(x).slice(1) }] }, /input "input": "data" has 6911 values, its shape needs 6912/],
      [{ inputs: [{ ...input(x, 1), data: ['a'] }] }, /"data" must hold numbers for datatype FP32/],
      [{ inputs: [input(x, 1), input(x, 1)] }, /input "input" is given twice/],
      [{ id: 3, inputs: [input(x, 1)] }, /"id" must be a string/],
      [[1, 2], /must be a JSON object/],
      [{ inputs: [{ ...input(randomRows(9), 9) }] }, /9 rows.*--max-batch 8/],
    ];
    for (const [body, message] of cases) await expectError(await postJson('/v2/models/shapes/infer', body), 400, message);
    await expectError(await post('/v2/models/shapes/infer', '{"inputs": [', { 'Content-Type': 'application/json' }), 400, /not valid JSON/);
  });

  it('binary framing errors are 400', async () => {
    const x = randomRows(1);
    const good = encodeBinaryInferRequest({ name: 'input', shape: [1, 3, 48, 48], data: x });
    await expectError(await post('/v2/models/shapes/infer', good.body, { ...good.headers, 'Inference-Header-Content-Length': '99999999' }), 400, /Inference-Header-Content-Length.*no larger than the body/);
    await expectError(await post('/v2/models/shapes/infer', good.body.subarray(0, good.body.length - 4), good.headers), 400, /ends 4 bytes short/);
    await expectError(await post('/v2/models/shapes/infer', Buffer.concat([good.body, Buffer.alloc(8)]), good.headers), 400, /8 bytes after the JSON header/);
    const noHeader = { ...good.headers };
    delete (noHeader as Record<string, string>)['Inference-Header-Content-Length'];
    await expectError(await post('/v2/models/shapes/infer', good.body, noHeader), 400, /not valid JSON/);
    const header = JSON.stringify({ inputs: [{ ...input(x, 1), data: undefined, parameters: { binary_data_size: 100 } }] });
    await expectError(await post('/v2/models/shapes/infer', Buffer.concat([Buffer.from(header), Buffer.alloc(100)]), { 'Inference-Header-Content-Length': String(header.length) }), 400, /binary_data_size 100, but shape \[1, 3, 48, 48\] of FP32 needs 27648 bytes/);
  });

  it('bodies over --max-body-mb are 413, by Content-Length or while streaming, and the server keeps serving', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 32);
    await expectError(await post('/v2/models/shapes/infer', big, { 'Content-Type': 'application/json' }), 413, /over this server's limit of 2097152 bytes/);
    // Chunked (no Content-Length): refused once the limit is passed.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${t.url}/v2/models/shapes/infer`, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      for (let i = 0; i < 12; i++) req.write(Buffer.alloc(256 * 1024, 32));
      req.end();
    });
    expect(status).toBe(413);
    expect((await get('/v2/health/ready')).status).toBe(200);
  });
});

describe('task endpoints', () => {
  it('POST /classify takes an image and returns the top-k labels of the Classifier', async () => {
    for (const index of [0, 1, 3]) {
      const png = await shapePng(index);
      const r = await post('/v2/models/shapes/classify?topk=3', png, { 'Content-Type': 'image/png' });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { model_name: string; top: { label: string; index: number; prob: number }[] };
      const want = (await direct.classify([png], { topK: 3 })).results[0]!.top;
      expect(body.model_name).toBe('shapes');
      expect(body.top.map((e) => [e.label, e.index])).toEqual(want.map((e) => [e.label, e.index]));
      body.top.forEach((e, i) => expect(e.prob).toBeCloseTo(want[i]!.prob, 5));
    }
    const r = await post('/v2/models/shapes/classify', await shapePng(2), { 'Content-Type': 'application/octet-stream' });
    expect(((await r.json()) as { top: unknown[] }).top).toHaveLength(5);
  });

  it('classify errors: a bad topk, a body that is no image, another content type', async () => {
    const png = await shapePng(0);
    await expectError(await post('/v2/models/shapes/classify?topk=0', png, { 'Content-Type': 'image/png' }), 400, /topk.*an integer in \[1, 6\]/);
    await expectError(await post('/v2/models/shapes/classify?topk=x', png, { 'Content-Type': 'image/png' }), 400, /topk/);
    await expectError(await post('/v2/models/shapes/classify', Buffer.from('hello'), { 'Content-Type': 'image/png' }), 400, /cannot decode image the request body/);
    await expectError(await post('/v2/models/shapes/classify', Buffer.alloc(0), { 'Content-Type': 'image/png' }), 400, /body is empty/);
    await expectError(await post('/v2/models/shapes/classify', png, { 'Content-Type': 'text/plain' }), 415, /reads an image body/);
  });

  it('a classifier has no detect or segment endpoint (404 saying what it serves)', async () => {
    await expectError(await post('/v2/models/shapes/detect', Buffer.alloc(4)), 404, /"shapes" is a classify model.*\/v2\/models\/shapes\/infer and \/classify/);
    await expectError(await post('/v2/models/shapes/segment', Buffer.alloc(4)), 404, /"shapes" is a classify model/);
  });
});

describe('metrics and logs', () => {
  it('GET /metrics is Prometheus text: request counts by model/endpoint/code, latency and batch histograms, queue depth', async () => {
    await postJson('/v2/models/shapes/infer', { inputs: [input(randomRows(1), 1)] });
    const r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    for (const type of ['effnet_requests_total counter', 'effnet_request_duration_seconds histogram', 'effnet_batch_size histogram', 'effnet_batch_duration_seconds histogram', 'effnet_queue_depth gauge'])
      expect(text).toContain(`# TYPE ${type}`);
    expect(Number(/^effnet_requests_total\{model="shapes",endpoint="infer",code="200"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^effnet_requests_total\{model="shapes",endpoint="infer",code="400"\} \d+$/m);
    expect(text).toMatch(/^effnet_queue_depth\{model="shapes"\} 0$/m);
    // Every histogram series: cumulative buckets that end at +Inf = _count.
    const buckets = new Map<string, number[]>();
    for (const m of text.matchAll(/^(\w+)_bucket\{(.*),le="([^"]+)"\} (\d+)$/gm)) {
      const key = `${m[1]}{${m[2]}}`;
      buckets.set(key, [...(buckets.get(key) ?? []), Number(m[4])]);
    }
    expect(buckets.size).toBeGreaterThanOrEqual(3);
    for (const [key, counts] of buckets) {
      expect(counts).toEqual([...counts].sort((a, b) => a - b));
      const count = new RegExp(`^${key.split('{')[0]}_count\\{${key.split('{')[1]!.slice(0, -1)}\\} (\\d+)$`, 'm').exec(text);
      expect(Number(count?.[1]), key).toBe(counts.at(-1));
    }
  });

  it('logs one JSON record per request with its status', async () => {
    const before = t.logs.length;
    await get('/v2/models/shapes');
    await get('/v2/models/nope');
    const records = t.logs.slice(before);
    expect(records.map((l) => [l.msg, l.method, l.path, l.status, l.level])).toEqual([
      ['request', 'GET', '/v2/models/shapes', 200, 'info'],
      ['request', 'GET', '/v2/models/nope', 404, 'warn'],
    ]);
    expect(JSON.parse(JSON.stringify(records[0]))).toMatchObject({ model: 'shapes', endpoint: 'model_metadata', time: expect.any(String), ms: expect.any(Number) });
  });
});
