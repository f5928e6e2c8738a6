'use strict';
// Writes docs/api.md from the HTTP route table (src/shared/http.ts), compiled: run `npm run build` first.
// test/packaging/api-doc.test.ts fails when the file and the table differ.
const fs = require('node:fs');
const path = require('node:path');

const { apiMarkdown } = require(path.join(__dirname, '..', 'dist', 'shared', 'api-doc.js'));
fs.writeFileSync(path.join(__dirname, '..', 'docs', 'api.md'), apiMarkdown());
console.log('wrote docs/api.md');
