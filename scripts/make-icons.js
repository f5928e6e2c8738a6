'use strict';
// Draws the tray and app icons into assets/: a shield (守り) in the colour of each state, a
// black-and-alpha template image for the macOS menu bar, and a Windows .ico holding PNG frames.
// Run `node scripts/make-icons.js` after changing the drawing; the outputs are committed.
const fs = require('node:fs');
const path = require('node:path');
const { PNG } = require('pngjs');

const OUT = path.join(__dirname, '..', 'assets');
const STATES = {
  protected: [0x2e, 0x7d, 0x32],
  alert: [0xc6, 0x28, 0x28],
  degraded: [0xf9, 0xa8, 0x25],
  offline: [0x75, 0x75, 0x75],
};

/** Coverage of a shield at (x, y) in a unit square, with a little supersampling. */
function shield(x, y) {
  // Flat top with rounded shoulders, straight sides, a point at the bottom.
  if (y < 0.08 || y > 0.95) return 0;
  const half = y < 0.55 ? 0.4 : 0.4 * (1 - (y - 0.55) / 0.4);
  const dx = Math.abs(x - 0.5);
  if (dx > half) return 0;
  // The inner mark: a check, in the colour of the background (cut out).
  const inCheck = (() => {
    const ax = 0.3,
      ay = 0.48,
      bx = 0.45,
      by = 0.63,
      cx = 0.72,
      cy = 0.33,
      w = 0.06;
    const dist = (px, py, qx, qy) => {
      const t = Math.max(0, Math.min(1, ((x - px) * (qx - px) + (y - py) * (qy - py)) / ((qx - px) ** 2 + (qy - py) ** 2)));
      return Math.hypot(x - (px + t * (qx - px)), y - (py + t * (qy - py)));
    };
    return Math.min(dist(ax, ay, bx, by), dist(bx, by, cx, cy)) < w;
  })();
  return inCheck ? 0 : 1;
}

function draw(size, rgb) {
  const png = new PNG({ width: size, height: size });
  const n = 4;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let cover = 0;
      for (let sy = 0; sy < n; sy++) for (let sx = 0; sx < n; sx++) cover += shield((x + (sx + 0.5) / n) / size, (y + (sy + 0.5) / n) / size);
      const i = (y * size + x) * 4;
      png.data[i] = rgb[0];
      png.data[i + 1] = rgb[1];
      png.data[i + 2] = rgb[2];
      png.data[i + 3] = Math.round((cover / (n * n)) * 255);
    }
  }
  return PNG.sync.write(png);
}

/** An .ico whose frames are PNGs (supported since Windows Vista). */
function ico(frames) {
  const header = Buffer.alloc(6 + 16 * frames.length);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2);
  header.writeUInt16LE(frames.length, 4);
  let offset = header.length;
  frames.forEach(({ size, data }, i) => {
    const e = 6 + 16 * i;
    header.writeUInt8(size >= 256 ? 0 : size, e);
    header.writeUInt8(size >= 256 ? 0 : size, e + 1);
    header.writeUInt16LE(1, e + 4);
    header.writeUInt16LE(32, e + 6);
    header.writeUInt32LE(data.length, e + 8);
    header.writeUInt32LE(offset, e + 12);
    offset += data.length;
  });
  return Buffer.concat([header, ...frames.map((f) => f.data)]);
}

fs.mkdirSync(OUT, { recursive: true });
for (const [state, rgb] of Object.entries(STATES)) {
  fs.writeFileSync(path.join(OUT, `tray-${state}.png`), draw(16, rgb));
  fs.writeFileSync(path.join(OUT, `tray-${state}@2x.png`), draw(32, rgb));
  fs.writeFileSync(path.join(OUT, `tray-${state}.ico`), ico([16, 24, 32].map((size) => ({ size, data: draw(size, rgb) }))));
}
fs.writeFileSync(path.join(OUT, 'trayTemplate.png'), draw(16, [0, 0, 0]));
fs.writeFileSync(path.join(OUT, 'trayTemplate@2x.png'), draw(32, [0, 0, 0]));
fs.writeFileSync(path.join(OUT, 'icon.png'), draw(512, STATES.protected));
fs.writeFileSync(path.join(OUT, 'icon.ico'), ico([16, 32, 48, 256].map((size) => ({ size, data: draw(size, STATES.protected) }))));
console.log(`icons written to ${OUT}`);
