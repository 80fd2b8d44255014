/**
 * The deployment files in deploy/, checked offline as far as that goes (no docker engine or kubeconform here): the
 * YAML parses, each kind has its apiVersion and required fields, the containers' arguments are valid `effnet serve`
 * command lines, ports agree with the server's defaults, probes point at /v2/health/*, the Service and the HPA point
 * at the Deployment, the InferenceService at the runtime; the Dockerfile is multi-stage, runs as a non-root user and
 * starts effnet serve.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseModelSpec, SERVE_DEFAULTS } from '@effnet/serve';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseCommandArgs } from './args.js';
import { serveCommand } from './commands/serve.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');

/** Parsed YAML: untyped. */
type Obj = Record<string, any>;

function loadYaml(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'));
  for (const d of docs) expect([...d.errors, ...d.warnings].map((e) => e.message), file).toEqual([]);
  return docs.map((d) => d.toJS() as Obj);
}

/** apiVersion of each kind, and the fields each must have. */
const KINDS: Record<string, { apiVersion: string; required: string[] }> = {
  Deployment: { apiVersion: 'apps/v1', required: ['spec.selector.matchLabels', 'spec.template.metadata.labels', 'spec.template.spec.containers'] },
  Service: { apiVersion: 'v1', required: ['spec.selector', 'spec.ports'] },
  HorizontalPodAutoscaler: { apiVersion: 'autoscaling/v2', required: ['spec.scaleTargetRef', 'spec.maxReplicas', 'spec.metrics'] },
  ClusterServingRuntime: { apiVersion: 'serving.kserve.io/v1alpha1', required: ['spec.supportedModelFormats', 'spec.protocolVersions', 'spec.containers'] },
  InferenceService: { apiVersion: 'serving.kserve.io/v1beta1', required: ['spec.predictor.model.modelFormat.name', 'spec.predictor.model.storageUri'] },
};

const at = (o: Obj, path: string): unknown => path.split('.').reduce<unknown>((x, k) => (x as Obj | undefined)?.[k], o);

function checkKinds(docs: Obj[]): void {
  for (const d of docs) {
    const rule = KINDS[d.kind];
    expect(rule, `kind ${d.kind}`).toBeDefined();
    expect(d.apiVersion, d.kind).toBe(rule!.apiVersion);
    expect(d.metadata?.name, `${d.kind} metadata.name`).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    for (const f of rule!.required) expect(at(d, f), `${d.kind} ${f}`).toBeDefined();
  }
}

/** The serve flags a container runs with (its args must be a valid effnet serve command line). */
function serveArgs(container: Obj, name = 'ISVC'): { port: number; host: string; models: string[] } {
  const args = (container.args as string[]).map((a) => a.replace('{{.Name}}', name));
  expect(args[0]).toBe('serve');
  const parsed = parseCommandArgs(serveCommand, args.slice(1))!;
  expect(parsed.values.model.length).toBeGreaterThan(0);
  return { port: parsed.values.port, host: parsed.values.host, models: parsed.values.model };
}

describe('deploy/kubernetes', () => {
  const docs = loadYaml('kubernetes/effnet-serve.yaml');
  const byKind = (k: string) => docs.find((d) => d.kind === k)!;

  it('has a Deployment, a Service and an HPA with their apiVersions and required fields', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Deployment', 'Service', 'HorizontalPodAutoscaler']);
    checkKinds(docs);
  });

  it('runs effnet serve on the default port, reachable, with probes on /v2/health/*', () => {
    const dep = byKind('Deployment');
    const labels = dep.spec.template.metadata.labels as Record<string, string>;
    expect(labels).toMatchObject(dep.spec.selector.matchLabels);
    const [c] = dep.spec.template.spec.containers as Obj[];
    const { port, host, models } = serveArgs(c!);
    expect(port).toBe(SERVE_DEFAULTS.port);
    expect(host).toBe('0.0.0.0');
    expect(models).toEqual(['effnet-shapes']);
    const http = (c!.ports as Obj[]).find((p) => p.name === 'http')!;
    expect(http.containerPort).toBe(port);
    expect(c!.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 'http' });
    expect(c!.livenessProbe.httpGet).toEqual({ path: '/v2/health/live', port: 'http' });
    expect(c!.startupProbe.httpGet.path).toBe('/v2/health/ready');
    // The HPA scales on CPU utilization, which needs a CPU request; the server's threads fit in it.
    expect(Number(c!.resources.requests.cpu)).toBeGreaterThanOrEqual(Number(c!.args[c!.args.indexOf('--threads') + 1]));
    expect(dep.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    // Long enough for a queued request to meet its deadline after SIGTERM.
    const timeout = Number(c!.args[c!.args.indexOf('--timeout-ms') + 1]);
    expect(dep.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(timeout);
    expect((c!.env as Obj[]).find((e) => e.name === 'EFFNET_CACHE')?.value).toBe((c!.volumeMounts as Obj[]).find((m) => m.name === 'effnet-cache')?.mountPath);
  });

  it('the Service selects the pods and targets their port; the HPA targets the Deployment', () => {
    const dep = byKind('Deployment');
    const svc = byKind('Service');
    const hpa = byKind('HorizontalPodAutoscaler');
    expect(dep.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
    expect(svc.spec.ports[0]).toMatchObject({ port: SERVE_DEFAULTS.port, targetPort: 'http' });
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name });
    expect(hpa.spec.metrics[0]).toMatchObject({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization' } } });
    expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
  });
});

describe('deploy/kserve', () => {
  const [runtime] = loadYaml('kserve/effnet-runtime.yaml');
  const [isvc] = loadYaml('kserve/inferenceservice.yaml');

  it('a ClusterServingRuntime speaking v2 and an InferenceService that uses it', () => {
    checkKinds([runtime!, isvc!]);
    expect(runtime!.spec.protocolVersions).toEqual(['v2']);
    const model = isvc!.spec.predictor.model;
    expect(model.protocolVersion).toBe('v2');
    expect(model.runtime).toBe(runtime!.metadata.name);
    expect(runtime!.spec.supportedModelFormats.map((f: Obj) => f.name)).toContain(model.modelFormat.name);
  });

  it("serves KServe's /mnt/models under the InferenceService's name on KServe's port 8080", () => {
    const [c] = runtime!.spec.containers as Obj[];
    expect(c!.name).toBe('kserve-container');
    const { port, host, models } = serveArgs(c!, isvc!.metadata.name);
    expect(port).toBe(8080);
    expect(host).toBe('0.0.0.0');
    expect(models.map(parseModelSpec)).toEqual([{ name: isvc!.metadata.name, model: '/mnt/models' }]);
    expect(c!.ports[0].containerPort).toBe(port);
    expect(c!.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port });
  });
});

describe('deploy/Dockerfile', () => {
  const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  // Instructions, with continuation lines joined and comments dropped.
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: string[][] = [];
  for (const l of lines) {
    if (/^FROM /i.test(l)) stages.push([]);
    stages.at(-1)?.push(l);
  }
  const final = stages.at(-1)!;
  const json = (instr: string) => JSON.parse(final.find((l) => l.startsWith(`${instr} `))!.slice(instr.length + 1)) as string[];

  it('is multi-stage: a build stage with npm ci and a runtime stage that copies from it', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[0]![0]).toMatch(/^FROM \S+ AS build$/);
    expect(stages[0]!.some((l) => l.startsWith('RUN npm ci'))).toBe(true);
    expect(final.some((l) => l.startsWith('COPY --from=build'))).toBe(true);
    // Every file the build stage copies from the context exists in the repository.
    for (const l of stages[0]!.filter((x) => /^COPY (?!--from)/.test(x))) {
      const parts = l.split(/\s+/).slice(1, -1);
      for (const p of parts) expect(existsSync(join(ROOT, p)), p).toBe(true);
    }
  });

  it('runs as a non-root user, exposes the default port, and starts effnet serve on it', () => {
    const user = final.filter((l) => l.startsWith('USER ')).at(-1)?.split(/\s+/)[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user!.split(':')[0]);
    expect(final).toContain(`EXPOSE ${SERVE_DEFAULTS.port}`);
    const entry = json('ENTRYPOINT');
    expect(entry[0]).toBe('node');
    expect(existsSync(join(ROOT, entry[1]!.replace(/^\/app\//, '')))).toBe(true);
    const { port, host } = serveArgs({ args: json('CMD') });
    expect([port, host]).toEqual([SERVE_DEFAULTS.port, '0.0.0.0']);
    expect(final.find((l) => l.startsWith('HEALTHCHECK'))).toMatch(new RegExp(`127\\.0\\.0\\.1:${SERVE_DEFAULTS.port}/v2/health/live`));
    expect(final.some((l) => /^ENV .*EFFNET_CACHE=/.test(l))).toBe(true);
  });
});
