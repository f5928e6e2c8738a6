'use strict';
// Benchmarks reuse the tests' fixture builders (TypeScript) without a TypeScript runtime.
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const ts = require('typescript');

/** Loads a TypeScript test helper: transpile with the repository's compiler, then compile as CommonJS. */
function requireTs(file) {
  const source = fs.readFileSync(file, 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(path.dirname(file));
  m._compile(outputText, file);
  return m.exports;
}

module.exports = { requireTs };
