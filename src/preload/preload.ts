import { contextBridge, ipcRenderer } from 'electron';
import { createBridge } from '../shared/bridge';

/**
 * `window.mamori`: the handful of named functions of the bridge contract, nothing generic.
 * A sandboxed preload may require only `electron`, so the build inlines createBridge into the
 * compiled file (scripts/bundle-preload.js).
 */
contextBridge.exposeInMainWorld(
  'mamori',
  createBridge((channel, params) => ipcRenderer.invoke(channel, params)),
);
