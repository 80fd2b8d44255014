// Two shape images to classify, and a path that is not an image.
import { generateShape as __shape } from '@effnet/tasks';
import __sharp from 'sharp';
for (const [i, name] of ['circle.png', 'star.png'].entries()) {
  const im = __shape(11, i, { size: 48 });
  await __sharp(Buffer.from(im.data), { raw: { width: 48, height: 48, channels: 3 } }).png().toFile(name);
}
(await import('node:fs')).writeFileSync('broken.jpg', 'not an image');
