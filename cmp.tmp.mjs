import { readNpy, writeNpy, float32Tensor } from '@effnet/core';
import { execFileSync } from 'node:child_process';
const logits = await readNpy('/tmp/tp/logits.npy');
const models = process.argv.slice(2);
models.forEach((m, i) => {
  execFileSync('node', ['/work/main/packages/cli/bin/effnet.js', 'run', '--model', m, '--weights', `/tmp/tp/${m}.safetensors`, '--input', '/tmp/tp/input.npy', '--output', `/tmp/tp/${m}.out.npy`, ...(process.env.B ? ['--backend', process.env.B] : [])], { stdio: 'inherit' });
});
for (const [i, m] of models.entries()) {
  const o = await readNpy(`/tmp/tp/${m}.out.npy`);
  const n = o.data.length; const ref = logits.data.subarray(i * n, (i + 1) * n);
  let d = 0, s = 0; for (let k = 0; k < n; k++) { d = Math.max(d, Math.abs(o.data[k] - ref[k])); s = Math.max(s, Math.abs(ref[k])); }
  console.log(m, d / s);
}
