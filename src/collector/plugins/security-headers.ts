import fastifyHelmet from '@fastify/helmet';
import fp from 'fastify-plugin';

export interface SecurityHeadersOptions {
  /** Served over TLS: also send `Strict-Transport-Security`. */
  secure: boolean;
}

/**
 * The console's security headers (docs/design.md#console-routes): a CSP without inline script or
 * style, `frame-ancestors 'none'`, `no-referrer`, and HSTS under TLS.
 */
export const securityHeaders = fp<SecurityHeadersOptions>(
  async (app, opts) => {
    await app.register(fastifyHelmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          fontSrc: ["'self'"],
          connectSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          objectSrc: ["'none'"],
        },
      },
      hsts: opts.secure ? { maxAge: 31_536_000 } : false,
      crossOriginEmbedderPolicy: false,
      referrerPolicy: { policy: 'no-referrer' },
      frameguard: { action: 'deny' },
    });
  },
  { name: 'mamori-security-headers' },
);
