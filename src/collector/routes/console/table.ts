import type { PageName } from '../../console/views/view';

/** One console route and the page whose roles guard it. */
export interface ConsoleRoute {
  method: 'GET' | 'POST';
  url: string;
  page: PageName;
}

/**
 * Every page and action of the console with the page whose roles guard it: the role matrix, in
 * one place. A route registered without an entry here fails at start-up.
 */
export const CONSOLE_ROUTES: readonly ConsoleRoute[] = [
  { method: 'GET', url: '/', page: 'dashboard' },
  { method: 'GET', url: '/terminals', page: 'terminals' },
  { method: 'GET', url: '/terminals/:id', page: 'terminals' },
  { method: 'POST', url: '/terminals/:id/verify', page: 'terminals' },
  { method: 'GET', url: '/incidents', page: 'incidents' },
  { method: 'GET', url: '/incidents/:id', page: 'incidents' },
  { method: 'POST', url: '/incidents/:id/status', page: 'incidentWorkflow' },
  { method: 'GET', url: '/exceptions', page: 'exceptions' },
  { method: 'POST', url: '/exceptions/:id/approve', page: 'exceptions' },
  { method: 'POST', url: '/exceptions/:id/deny', page: 'exceptions' },
  { method: 'POST', url: '/exceptions/unlock', page: 'exceptions' },
  { method: 'GET', url: '/policies', page: 'policies' },
  { method: 'GET', url: '/policies/:segment', page: 'policies' },
  { method: 'POST', url: '/policies/:segment/preview', page: 'policies' },
  { method: 'POST', url: '/policies/:segment/edit', page: 'policies' },
  { method: 'POST', url: '/policies/:segment', page: 'policies' },
  { method: 'GET', url: '/policies/:segment/versions/:version', page: 'policies' },
  { method: 'GET', url: '/exports', page: 'exports' },
  { method: 'GET', url: '/exports/download', page: 'exports' },
  { method: 'GET', url: '/users', page: 'users' },
  { method: 'POST', url: '/users', page: 'users' },
  { method: 'POST', url: '/users/:name/role', page: 'users' },
  { method: 'POST', url: '/users/:name/password', page: 'users' },
  { method: 'POST', url: '/users/:name/unlock', page: 'users' },
  { method: 'POST', url: '/users/:name/token', page: 'users' },
  { method: 'POST', url: '/users/:name/delete', page: 'users' },
  { method: 'GET', url: '/audit', page: 'audit' },
  { method: 'GET', url: '/audit/export.csv', page: 'audit' },
];
