import path from 'node:path';
import fastifyStatic from '@fastify/static';
import fp from 'fastify-plugin';

/** Where the console's CSS, script and icon are, next to the compiled console. */
export const STATIC_DIR = path.join(__dirname, '..', 'console', 'static');

/** Serves the console's CSS, script and icon under `/static/`, cached for an hour, no listings. */
export const staticFiles = fp<{ root?: string }>(
  async (app, opts) => {
    await app.register(fastifyStatic, { root: opts.root ?? STATIC_DIR, prefix: '/static/', index: false, cacheControl: true, maxAge: '1h' });
  },
  { name: 'mamori-static' },
);
