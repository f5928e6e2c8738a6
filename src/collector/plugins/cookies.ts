import fastifyCookie from '@fastify/cookie';
import fp from 'fastify-plugin';

/** Parses cookies (`request.cookies`) and lets replies set them; the console's sessions ride on them. */
export const cookies = fp(
  async (app) => {
    await app.register(fastifyCookie);
  },
  { name: 'mamori-cookies' },
);
