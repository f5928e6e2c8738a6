/**
 * The console moved to one plugin per page under `src/collector/routes/console/` (the guard is
 * `src/collector/plugins/guard.ts`); this module keeps the names its callers import.
 */
export { CONSOLE_ROUTES, registerConsole, safeNext, zonedMidnight, type ConsoleOptions, type ConsoleRoute } from '../routes/console';
export { PAGE_ROLES } from './views/view';
export type { Role } from '../admins';
