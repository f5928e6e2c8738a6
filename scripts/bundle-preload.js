'use strict';
// A sandboxed preload can require nothing but `electron`: inline the one function it uses from
// src/shared (createBridge, self-contained by design) into dist/preload/preload.js.
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '..', 'dist', 'preload', 'preload.js');
const { createBridge } = require('../dist/shared/bridge');
const source = fs.readFileSync(file, 'utf8');
const pattern = /require\("\.\.\/shared\/bridge"\)/;
if (!pattern.test(source)) throw new Error('bundle-preload: the preload no longer requires ../shared/bridge; update this script');
fs.writeFileSync(file, source.replace(pattern, `({ createBridge: ${createBridge.toString()} })`));
