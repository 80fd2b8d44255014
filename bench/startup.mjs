// Start-up time of the effnet command, whole process, hyperfine-style: warm-up runs, then N timed runs of each
// command line; prints the median, min and p90 wall time, and the median CPU time (user + sys, from /usr/bin/time
// when present: less sensitive than wall time to other jobs on a shared machine), and writes
// bench/results/startup.json.
// node bench/startup.mjs [--runs 20] [--no-write]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages/cli/bin/effnet.js');
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] || 20) || 20;
const lines = [['node', '-e', '0'], ['effnet', '--help'], ['effnet', 'variants'], ['effnet', 'variants', '--json'], ['effnet', 'classify', '--help']];

const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const cpuFile = join(mkdtempSync(join(tmpdir(), 'effnet-startup-')), 'cpu');
const pct = (s, q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
const rows = [];
for (const line of lines) {
  const argv = line[0] === 'node' ? line.slice(1) : [bin, ...line.slice(1)];
  const cpu = [];
  const once = () => {
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`${line.join(' ')} exited ${r.status}: ${r.stderr}`);
    const wall = Number(process.hrtime.bigint() - t) / 1e6;
    if (TIME) {
      spawnSync(TIME, ['-o', cpuFile, '-f', '%U %S', process.execPath, ...argv], { stdio: 'ignore' });
      const [u, s] = readFileSync(cpuFile, 'utf8').trim().split(/\s+/).map(Number);
      cpu.push(1000 * (u + s));
    }
    return wall;
  };
  for (let i = 0; i < 3; i++) once();
  cpu.length = 0;
  const ms = Array.from({ length: runs }, once).sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const cpuMs = cpu.length ? +pct(cpu, 0.5).toFixed(0) : undefined;
  rows.push({ command: line.join(' '), runs, medianMs: +pct(ms, 0.5).toFixed(1), minMs: +ms[0].toFixed(1), p90Ms: +pct(ms, 0.9).toFixed(1), cpuMedianMs: cpuMs });
  console.log(`${line.join(' ').padEnd(28)} median ${pct(ms, 0.5).toFixed(1)} ms  min ${ms[0].toFixed(1)}  p90 ${pct(ms, 0.9).toFixed(1)}  cpu ${cpuMs ?? '-'} ms`);
}
const load = loadavg()[0];
console.log(`load average ${load.toFixed(2)}`);
if (!args.includes('--no-write')) {
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results/startup.json'), JSON.stringify({ node: process.version, loadAverage: load, date: new Date().toISOString(), rows }, null, 2) + '\n');
}
