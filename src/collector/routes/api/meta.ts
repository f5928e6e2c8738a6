import { openApiDocument } from '../../../shared/openapi';
import type { RouteHandlers } from './route';

/** Made once: the document depends on the route table alone. */
let document: Record<string, unknown> | undefined;

/** `GET /healthz` and the API's own description, open to anyone (nothing in them is secret). */
export const metaRoutes = (): RouteHandlers<'health' | 'openApi'> => ({
  health: async () => ({ status: 'ok' as const }),
  openApi: async () => (document ??= openApiDocument()),
});
