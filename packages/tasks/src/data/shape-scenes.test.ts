import { describe, expect, it } from 'vitest';
import { SCENE_CLASSES } from './scenes.js';
import { generateShapeScene } from './shape-scenes.js';

describe('generated shape scenes', () => {
  it('are deterministic, and every labelled shape class is one of the scene shapes (0 = background)', () => {
    for (let i = 0; i < 6; i++) {
      const s = generateShapeScene(4, i, { size: 48, supersample: 2 });
      expect(generateShapeScene(4, i, { size: 48, supersample: 2 })).toEqual(s);
      const drawn = new Set(s.shapes.map((p) => p.label + 1));
      const used = new Set(s.mask.data);
      for (const c of used) expect(c === 0 || drawn.has(c)).toBe(true);
      expect(used.size).toBeGreaterThan(1);
      expect(Math.max(...used)).toBeLessThan(SCENE_CLASSES.length);
    }
  });
});
