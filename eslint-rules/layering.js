'use strict';
/**
 * mamori/layering: each folder under src/ is the runtime it runs in, and may import only the
 * layers listed here (DESIGN.md "Layering"; VS Code's code-layering rule does the same job).
 */
const path = require('node:path');
const { builtinModules } = require('node:module');

/** layer → the other layers it may import, and whether electron and Node built-ins are allowed. */
const LAYERS = {
  shared: { imports: [], electron: false, node: false },
  renderer: { imports: ['shared'], electron: false, node: false },
  preload: { imports: ['shared'], electron: true, node: false },
  main: { imports: ['shared'], electron: true, node: true },
  agent: { imports: ['shared'], electron: false, node: true },
  // The command line composes the agent and the collector; nothing imports it.
  cli: { imports: ['shared', 'agent', 'collector'], electron: false, node: true },
  collector: { imports: ['shared'], electron: false, node: true },
};

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function layerOf(file) {
  const parts = path.resolve(file).split(path.sep);
  const src = parts.lastIndexOf('src');
  if (src < 0 || src + 1 >= parts.length) return null;
  const layer = parts[src + 1];
  return Object.prototype.hasOwnProperty.call(LAYERS, layer) ? layer : null;
}

module.exports = {
  meta: {
    type: 'problem',
    docs: { description: 'Enforce the process layering of DESIGN.md' },
    schema: [],
    messages: {
      layer: "src/{{from}} must not import src/{{to}} ('{{source}}'): {{from}} may import only {{allowed}}.",
      electron: "src/{{from}} must not import electron ('{{source}}').",
      node: "src/{{from}} must not import Node built-in '{{source}}': it runs without Node.",
    },
  },
  create(context) {
    const filename = context.filename ?? context.getFilename();
    const from = layerOf(filename);
    if (!from) return {};
    const rules = LAYERS[from];
    function check(node, source) {
      if (typeof source !== 'string') return;
      if (source.startsWith('.')) {
        const to = layerOf(path.resolve(path.dirname(filename), source));
        if (to && to !== from && !rules.imports.includes(to)) {
          context.report({
            node,
            messageId: 'layer',
            data: { from, to, source, allowed: rules.imports.join(', ') || 'nothing' },
          });
        }
        return;
      }
      if (!rules.electron && (source === 'electron' || source.startsWith('electron/'))) {
        context.report({ node, messageId: 'electron', data: { from, source } });
      }
      if (!rules.node && (NODE_BUILTINS.has(source) || NODE_BUILTINS.has(source.split('/')[0]))) {
        context.report({ node, messageId: 'node', data: { from, source } });
      }
    }
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
      CallExpression: (node) => {
        if (node.callee.type === 'Identifier' && node.callee.name === 'require' && node.arguments[0]?.type === 'Literal') {
          check(node, node.arguments[0].value);
        }
      },
    };
  },
};
