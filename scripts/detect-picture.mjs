// The README's detection picture: `effnet detect --draw` on a generated scene (no photo, no download), with a
// random-weight tf_efficientdet_lite0, so its boxes show what --draw draws, not what a trained model finds.
// Usage: npm run build && node scripts/detect-picture.mjs [docs/detect-example.png]
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ?? join(root, 'docs', 'detect-example.png');
const dir = mkdtempSync(join(tmpdir(), 'effnet-detect-picture-'));

// A street-like scene of flat shapes: sky, sun, ground, a house, a tree, two cars.
const scene = `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="320">
  <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#8ec5f0"/><stop offset="1" stop-color="#dcefff"/></linearGradient></defs>
  <rect width="480" height="320" fill="url(#sky)"/>
  <circle cx="400" cy="60" r="30" fill="#ffd34d"/>
  <rect y="220" width="480" height="100" fill="#7a8a6a"/>
  <rect y="262" width="480" height="34" fill="#555b60"/>
  <rect x="60" y="130" width="120" height="95" fill="#c8745a"/><polygon points="50,132 120,80 190,132" fill="#8a3b2c"/>
  <rect x="105" y="175" width="30" height="50" fill="#5a3a28"/><rect x="75" y="150" width="22" height="20" fill="#e8f4ff"/>
  <rect x="265" y="150" width="14" height="75" fill="#6b4a2b"/><circle cx="272" cy="130" r="38" fill="#3f8f4a"/>
  <rect x="300" y="240" width="110" height="30" rx="8" fill="#d23c3c"/><rect x="322" y="222" width="60" height="22" rx="6" fill="#d23c3c"/>
  <circle cx="325" cy="272" r="10" fill="#222"/><circle cx="388" cy="272" r="10" fill="#222"/>
  <rect x="30" y="252" width="90" height="26" rx="7" fill="#2c6ad2"/><circle cx="50" cy="280" r="9" fill="#222"/><circle cx="102" cy="280" r="9" fill="#222"/>
</svg>`;
const image = join(dir, 'scene.png');
await sharp(Buffer.from(scene)).flatten({ background: '#ffffff' }).png().toFile(image);

const bin = join(root, 'packages', 'cli', 'bin', 'effnet.js');
execFileSync(process.execPath, [bin, 'detect', image, '--model', 'tf_efficientdet_lite0', '--score', '0', '--max', '6', '--draw', join(dir, 'drawn')], { stdio: 'inherit' });
await sharp(join(dir, 'drawn', 'scene.png')).png({ palette: true, colours: 128 }).toFile(join(dir, 'small.png'));
copyFileSync(join(dir, 'small.png'), out);
rmSync(dir, { recursive: true, force: true });
console.log(`wrote ${out}`);
