#!/usr/bin/env node
'use strict';
// The `mamori` command. It runs the built CLI in dist/ (`npm run build` makes it).
const path = require('node:path');
const fs = require('node:fs');

const entry = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('mamori: not built yet; run `npm run build` first\n');
  process.exit(1);
}
require(entry)
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
