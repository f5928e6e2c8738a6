import type { Role } from '../../admins';
import type { Formatter } from '../format';
import type { Lang, Translate } from '../messages';

/** Everything a page needs to render for one reader. */
export interface View {
  t: Translate;
  fmt: Formatter;
  lang: Lang;
  /** The signed-in user, or null on the login page. */
  user: { username: string; role: Role } | null;
  /** The session's synchronizer token, put into every form. */
  csrf: string;
  /** The path of this page (with its query), for the navigation and the language switch. */
  path: string;
  flash?: Flash;
  /** The collector's clock at the time of the request: pages compute "7 days", "locked" from it. */
  now: Date;
}

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
  /** A secret shown once (a new API token, an unlock code), in a copyable box. */
  secret?: string;
}

/** Which roles see each console page; the server enforces the same table on every route. */
export const PAGE_ROLES = {
  dashboard: ['admin', 'auditor'],
  terminals: ['admin', 'auditor'],
  incidents: ['admin', 'auditor'],
  /** Moving an incident along its workflow: not a page of its own. */
  incidentWorkflow: ['admin'],
  exceptions: ['admin'],
  policies: ['admin'],
  exports: ['admin', 'auditor'],
  users: ['admin'],
  audit: ['admin', 'auditor'],
} as const satisfies Record<string, readonly Role[]>;

export type PageName = keyof typeof PAGE_ROLES;

export function mayOpen(role: Role, page: PageName): boolean {
  return (PAGE_ROLES[page] as readonly Role[]).includes(role);
}
