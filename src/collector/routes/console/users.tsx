import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MamoriError } from '../../../shared';
import { addAdmin, deleteAdmin, listAdmins, rotateApiToken, setPassword, setRole, unlockAccount } from '../../admins';
import type { ConsoleSession } from '../../console/auth';
import { translator, type MessageKey } from '../../console/messages';
import { UsersPage } from '../../console/views/pages/users';
import type { View } from '../../console/views/view';
import { AnyQuery, FormField, form, str, type ConsoleKit } from './kit';

const UserParams = z.object({ name: z.string() });
const AddForm = form({ username: FormField, role: FormField, password: FormField, password2: FormField });

type UserChange = (
  request: FastifyRequest,
  s: ConsoleSession,
  username: string,
) => Promise<{ key: MessageKey; vars?: Record<string, string>; secret?: string }>;

/** Console users (admins only): the list, adding one, and the changes to one user. */
export function userPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const { ctx, send, actorOf } = kit;
  const usersPage = async (reply: FastifyReply, v: View, status = 200, errors?: Record<string, string>) =>
    send(reply, <UsersPage v={v} users={await listAdmins(ctx.db)} errors={errors} />, status);

  scope.get(
    '/users',
    { config: { page: 'users' }, schema: { querystring: AnyQuery } },
    kit.guarded(async (_request, reply, _s, v) => usersPage(reply, v)),
  );
  scope.post(
    '/users',
    { config: { page: 'users' }, schema: { body: AddForm } },
    kit.guarded(async (request, reply, s, v) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const username = str(body.username).trim();
      if (str(body.password) !== str(body.password2))
        return usersPage(reply, { ...v, flash: { kind: 'error', text: v.t('users.passwordMismatch') } }, 400, { password2: v.t('users.passwordMismatch') });
      let token: string;
      try {
        token = await addAdmin(ctx.db, username, str(body.role), str(body.password), { actor: actorOf(request, s) });
      } catch (err) {
        if (err instanceof MamoriError) return usersPage(reply, { ...v, flash: { kind: 'error', text: err.message } }, 400);
        throw err;
      }
      return usersPage(reply, {
        ...v,
        path: '/users',
        flash: { kind: 'ok', text: `${v.t('users.added', { user: username })} ${v.t('users.token', { user: username })}`, secret: token },
      });
    }),
  );

  /** A change to one user (audited by the domain call); a secret is shown in this response, anything else after a redirect. */
  const userAction = (action: string, fields: z.ZodRawShape, fn: UserChange) =>
    scope.post(
      `/users/:name/${action}`,
      { config: { page: 'users' }, schema: { params: UserParams, body: form(fields) } },
      kit.guarded(async (request, reply, s, v) => {
        const username = (request.params as { name: string }).name.slice(0, 64);
        let result: Awaited<ReturnType<typeof fn>>;
        try {
          result = await fn(request, s, username);
        } catch (err) {
          if (err instanceof MamoriError && err.code !== 'not_found')
            return usersPage(reply, { ...v, path: '/users', flash: { kind: 'error', text: err.message } }, 400);
          throw err;
        }
        const vars = { user: username, ...result.vars };
        if (result.secret) return usersPage(reply, { ...v, path: '/users', flash: { kind: 'ok', text: v.t(result.key, vars), secret: result.secret } });
        kit.flashNext(reply, 'ok', result.key, vars);
        return kit.redirect(reply, '/users');
      }),
    );
  userChanges(kit, userAction);
}

/** What each user action does. */
function userChanges(kit: ConsoleKit, userAction: (action: string, fields: z.ZodRawShape, fn: UserChange) => unknown): void {
  const { ctx, actorOf } = kit;
  // Each domain call audits itself (`user.<action>`); role and password changes end the user's sessions.
  const by = (request: FastifyRequest, s: ConsoleSession) => ({ actor: actorOf(request, s), clock: ctx.clock });
  userAction('role', { role: FormField }, async (request, s, username) => {
    const change = await setRole(ctx.db, username, str((request.body as Record<string, unknown>).role), by(request, s));
    return { key: 'users.roleSet', vars: { role: translator(kit.langOf(request))(`role.${change.to}`) } };
  });
  userAction('password', { password: FormField }, async (request, s, username) => {
    await setPassword(ctx.db, username, str((request.body as Record<string, unknown>).password), by(request, s));
    return { key: 'users.passwordSet' };
  });
  userAction('unlock', {}, async (request, s, username) => {
    await unlockAccount(ctx.db, username, by(request, s));
    return { key: 'users.unlocked' };
  });
  userAction('token', {}, async (request, s, username) => ({ key: 'users.token', secret: await rotateApiToken(ctx.db, username, by(request, s)) }));
  userAction('delete', {}, async (request, s, username) => {
    await deleteAdmin(ctx.db, username, actorOf(request, s), { clock: ctx.clock });
    return { key: 'users.deleted' };
  });
}
