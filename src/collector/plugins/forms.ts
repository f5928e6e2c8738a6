import fastifyFormbody from '@fastify/formbody';
import fp from 'fastify-plugin';

/** The biggest form the console takes (a long allowlist fits well within it). */
export const FORM_LIMIT = 512 * 1024;

/**
 * Reads `application/x-www-form-urlencoded` bodies, the console's forms. Registered beside the
 * console only: the JSON API keeps refusing form bodies with 415.
 */
export const forms = fp<{ bodyLimit?: number }>(
  async (app, opts) => {
    await app.register(fastifyFormbody, { bodyLimit: opts.bodyLimit ?? FORM_LIMIT });
  },
  { name: 'mamori-forms' },
);
