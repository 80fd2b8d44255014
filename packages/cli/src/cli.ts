import { parseArgs } from 'node:util';
import { EffnetError } from '@effnet/core';
import { infoCommand } from './commands/info.js';
import { CLASSIFY_USAGE, classifyCli, evalCli, trainCli } from './commands/classify.js';
import { COCO_EVAL_USAGE, cocoEvalCli } from './commands/coco-eval.js';
import { DEMO_USAGE, demoCli } from './commands/demo.js';
import { exportCommand } from './commands/onnx.js';
import { runCommand } from './commands/run.js';
import { variantsCommand } from './commands/variants.js';
import { pullCli, ZOO_USAGE, zooCli } from './commands/zoo.js';

const USAGE = `effnet: EfficientNet in TypeScript

Usage:
  effnet variants [--json]                          every variant with resolution, params, MACs
  effnet info <variant> [--resolution N] [--phi X] [--json]
                                                    stages, endpoints, params, MACs
                                                    (--phi X: compound-scaled from the variant's base, B0 by default;
                                                     negative: --phi=-1)
  effnet run --model <variant> [--weights <file.safetensors>] [--weights-format effnet|timm|torchvision]
             --input x.npy --output y.npy [--backend onnx|tfjs] [--device cpu|auto|cuda|webgpu|gpu|wasm]
             [--threads N]                          logits of an NCHW float32 batch
  effnet export <variant> [--weights <file>] [--weights-format ...] -o model.onnx [--opset N] [--fp16]
             [--no-fold] [--resolution N | --dynamic]  an ONNX model (random init without --weights)
${ZOO_USAGE}
${CLASSIFY_USAGE}
${COCO_EVAL_USAGE}
${DEMO_USAGE}
  effnet help                                       this text
`;

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new EffnetError(`--${name} needs a number, got "${v}"`);
  return n;
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n')): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'variants': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } } });
      out(variantsCommand({ json: values.json! }));
      return 0;
    }
    case 'info': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { json: { type: 'boolean', default: false }, resolution: { type: 'string' }, phi: { type: 'string' } },
      });
      out(infoCommand({ variant: positionals[0], resolution: num('resolution', values.resolution), phi: num('phi', values.phi), json: values.json! }));
      return 0;
    }
    case 'run': {
      const { values } = parseArgs({
        args: rest,
        options: {
          model: { type: 'string' },
          weights: { type: 'string' },
          'weights-format': { type: 'string' },
          input: { type: 'string' },
          output: { type: 'string' },
          backend: { type: 'string', default: 'onnx' },
          device: { type: 'string' },
          threads: { type: 'string' },
        },
      });
      for (const req of ['model', 'input', 'output'] as const) if (!values[req]) throw new EffnetError(`effnet run needs --${req}\n\n${USAGE}`);
      const lines = await runCommand({
        variant: values.model!,
        weights: values.weights,
        weightsFormat: values['weights-format'],
        input: values.input!,
        output: values.output!,
        backend: values.backend!,
        device: values.device,
        threads: num('threads', values.threads),
      });
      lines.forEach((l) => out(l));
      return 0;
    }
    case 'export': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          weights: { type: 'string' },
          'weights-format': { type: 'string' },
          output: { type: 'string', short: 'o' },
          opset: { type: 'string' },
          fp16: { type: 'boolean', default: false },
          'no-fold': { type: 'boolean', default: false },
          resolution: { type: 'string' },
          dynamic: { type: 'boolean', default: false },
        },
      });
      if (!positionals[0]) throw new EffnetError(`effnet export needs a variant\n\n${USAGE}`);
      if (!values.output) throw new EffnetError(`effnet export needs -o <model.onnx>\n\n${USAGE}`);
      const lines = await exportCommand({
        variant: positionals[0],
        weights: values.weights,
        weightsFormat: values['weights-format'],
        output: values.output,
        opset: num('opset', values.opset),
        fp16: values.fp16!,
        fold: !values['no-fold'],
        resolution: num('resolution', values.resolution),
        dynamic: values.dynamic!,
      });
      lines.forEach((l) => out(l));
      return 0;
    }
    case 'zoo':
      return zooCli(rest, out);
    case 'pull':
      return pullCli(rest, out);
    case 'classify':
      return classifyCli(rest, out);
    case 'train':
      return trainCli(rest, out);
    case 'eval':
      return evalCli(rest, out);
    case 'demo':
      return demoCli(rest, out);
    case 'coco-eval':
      return cocoEvalCli(rest, out);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out(USAGE);
      return 0;
    default:
      throw new EffnetError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

/** Runs the command line, printing errors as one actionable line (stack traces only for bugs), and sets the exit code. */
export async function runCli(argv = process.argv.slice(2)): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    const known = err instanceof EffnetError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    const msg = err instanceof Error ? (known ? err.message : (err.stack ?? err.message)) : String(err);
    process.stderr.write(`effnet: ${msg}\n`);
    process.exitCode = 1;
  }
}
