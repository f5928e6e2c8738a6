import { storeInventory } from '../../agents';
import type { CollectorContext } from '../../context';
import { sendLedger } from '../../export/http';
import type { RouteHandlers } from './route';

/** The terminal's inventory upload and the ledger export made from every terminal's. */
export const inventoryRoutes = (ctx: CollectorContext): RouteHandlers<'putInventory' | 'exportLedger'> => ({
  putInventory: async ({ params, body, reply }) => {
    await storeInventory(ctx.db, params.agentId, body, ctx.clock);
    return reply.code(204).send();
  },
  exportLedger: async ({ actor, query, reply }) => sendLedger(ctx, reply, actor, query),
});
