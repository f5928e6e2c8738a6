'use strict';
// Copies the tray windows' HTML and CSS next to their compiled scripts in dist/web/renderer.
const fs = require('node:fs');
const path = require('node:path');

const from = path.join(__dirname, '..', 'src', 'renderer');
const to = path.join(__dirname, '..', 'dist', 'web', 'renderer');
fs.mkdirSync(to, { recursive: true });
for (const file of fs.readdirSync(from)) {
  if (/\.(html|css)$/.test(file)) fs.copyFileSync(path.join(from, file), path.join(to, file));
}
