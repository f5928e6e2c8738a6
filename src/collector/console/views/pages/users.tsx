import { ROLES, type AdminAccount } from '../../../admins';
import { PostForm, Table, Time } from '../components';
import { Layout } from '../layout';
import type { View } from '../view';

/** What an admin may do to one account, folded away until asked for. */
function Manage({ v, u, locked }: { v: View; u: AdminAccount; locked: boolean }) {
  const self = u.username === v.user!.username;
  const enc = encodeURIComponent(u.username);
  return (
    <details>
      <summary>{v.t('users.manage')}</summary>
      <div class="manage">
        <PostForm v={v} action={`/users/${enc}/role`} class="inline">
          <select name="role" aria-label={v.t('users.role')}>
            {ROLES.map((r) => (
              <option value={r} selected={r === u.role}>
                {v.t(`role.${r}`)}
              </option>
            ))}
          </select>
          <button type="submit">{v.t('users.setRole')}</button>
        </PostForm>
        <PostForm v={v} action={`/users/${enc}/password`} class="inline">
          <input
            type="password"
            name="password"
            autocomplete="new-password"
            minLength={12}
            maxLength={1024}
            required
            aria-label={v.t('users.password')}
            placeholder={v.t('users.password')}
          />
          <button type="submit">{v.t('users.setPassword')}</button>
        </PostForm>
        {locked ? (
          <PostForm v={v} action={`/users/${enc}/unlock`} class="inline">
            <button type="submit">{v.t('users.unlock')}</button>
          </PostForm>
        ) : null}
        <PostForm v={v} action={`/users/${enc}/token`} class="inline" confirm={v.t('users.rotate')}>
          <button type="submit">{v.t('users.rotate')}</button>
        </PostForm>
        {self ? null : (
          <PostForm v={v} action={`/users/${enc}/delete`} class="inline" confirm={`${v.t('users.delete')}: ${u.username}`}>
            <button type="submit" class="danger">
              {v.t('users.delete')}
            </button>
          </PostForm>
        )}
      </div>
    </details>
  );
}

export function UsersPage({ v, users, errors }: { v: View; users: AdminAccount[]; errors?: Record<string, string> }) {
  const now = v.now.toISOString();
  const locked = (u: AdminAccount) => !!u.lockedUntil && u.lockedUntil > now;
  return (
    <Layout v={v} title={v.t('users.title')}>
      <section class="card">
        <Table
          v={v}
          id="users"
          rows={users}
          rowAttrs={(u) => ({ 'data-user': u.username })}
          columns={[
            {
              head: v.t('users.username'),
              rowHeader: true,
              cell: (u) => (
                <>
                  {u.username} {u.username === v.user!.username ? <small>{v.t('users.you')}</small> : null}
                  {locked(u) ? <span class="badge bad small">{v.t('users.locked', { until: v.fmt.dateTime(u.lockedUntil) })}</span> : null}
                </>
              ),
            },
            { head: v.t('users.role'), cell: (u) => v.t(`role.${u.role}`) },
            { head: v.t('users.createdAt'), cell: (u) => <Time v={v} at={u.createdAt} /> },
            { head: v.t('users.lastLogin'), cell: (u) => <Time v={v} at={u.lastLoginAt} /> },
            { head: v.t('users.manage'), cell: (u) => <Manage v={v} u={u} locked={locked(u)} /> },
          ]}
        />
      </section>
      <section class="card">
        <h2>{v.t('users.add')}</h2>
        <PostForm v={v} action="/users" class="stack">
          <label for="new-username">
            <span>{v.t('users.username')}</span>
            <input id="new-username" name="username" required maxLength={64} pattern="[A-Za-z0-9._@\-]{1,64}" autocomplete="off" />
          </label>
          <label for="new-role">
            <span>{v.t('users.role')}</span>
            <select id="new-role" name="role">
              {ROLES.map((r) => (
                <option value={r} selected={r === 'auditor'}>
                  {v.t(`role.${r}`)}
                </option>
              ))}
            </select>
          </label>
          <label for="new-password">
            <span>{v.t('users.password')}</span>
            <input id="new-password" name="password" type="password" required minLength={12} maxLength={1024} autocomplete="new-password" />
          </label>
          <label for="new-password2">
            <span>{v.t('users.passwordConfirm')}</span>
            <input id="new-password2" name="password2" type="password" required minLength={12} maxLength={1024} autocomplete="new-password" />
            {errors?.password2 ? <span class="field-error">{errors.password2}</span> : null}
          </label>
          <button type="submit" class="primary">
            {v.t('users.add')}
          </button>
        </PostForm>
      </section>
    </Layout>
  );
}
