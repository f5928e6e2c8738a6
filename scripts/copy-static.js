'use strict';
// Copies the files tsc does not emit next to the compiled code: the tray windows' HTML and CSS
// (dist/web/renderer) and the console's CSS, script and icon (dist/collector/console/static).
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
function copy(fromDir, toDir, pattern) {
  fs.mkdirSync(toDir, { recursive: true });
  for (const file of fs.readdirSync(fromDir)) {
    if (pattern.test(file)) fs.copyFileSync(path.join(fromDir, file), path.join(toDir, file));
  }
}
copy(path.join(root, 'src', 'renderer'), path.join(root, 'dist', 'web', 'renderer'), /\.(html|css)$/);
const consoleStatic = path.join(root, 'dist', 'collector', 'console', 'static');
copy(path.join(root, 'src', 'collector', 'console', 'static'), consoleStatic, /\.(css|js)$/);
fs.copyFileSync(path.join(root, 'assets', 'icon.png'), path.join(consoleStatic, 'icon.png'));
