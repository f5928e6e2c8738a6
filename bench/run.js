'use strict';
// `npm run bench`: every benchmark in one run, each printing its figure and its ratio to the raw
// limit measured in the same run.
const path = require('node:path');
const fs = require('node:fs');

const order = ['agent-append.js', 'collector-ingest.js', 'reconcile.js', 'ledger-export.js'];
const found = fs.readdirSync(__dirname).filter((f) => f.endsWith('.js') && f !== 'run.js');
const files = [...order.filter((f) => found.includes(f)), ...found.filter((f) => !order.includes(f)).sort()];

(async () => {
  for (const file of files) {
    const bench = require(path.join(__dirname, file));
    if (typeof bench.run !== 'function') continue;
    console.log(`\n== ${file}`);
    await bench.run();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
