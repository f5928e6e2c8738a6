import { LOCKOUT_MINUTES, LOCKOUT_THRESHOLD } from '../../auth';
import { Layout } from '../layout';
import type { View } from '../view';

/** The login form; `next` is where to go afterwards (a local path). */
export function LoginPage({ v, next, username }: { v: View; next: string; username?: string }) {
  return (
    <Layout v={v} title={v.t('login.title')}>
      <form method="post" action="/login" class="card login">
        <input type="hidden" name="_csrf" value={v.csrf} />
        <input type="hidden" name="next" value={next} />
        <label for="username">
          <span>{v.t('login.username')}</span>
          <input id="username" name="username" autocomplete="username" required maxLength={64} value={username ?? ''} autofocus />
        </label>
        <label for="password">
          <span>{v.t('login.password')}</span>
          <input id="password" name="password" type="password" autocomplete="current-password" required maxLength={1024} />
        </label>
        <button type="submit" class="primary">
          {v.t('login.submit')}
        </button>
        <p class="hint">{v.t('login.hint', { n: LOCKOUT_THRESHOLD, minutes: LOCKOUT_MINUTES })}</p>
      </form>
    </Layout>
  );
}
