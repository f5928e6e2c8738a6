import type { Collector } from '../../src/collector/server';

/** A signed-in console session: the cookie header to send and the CSRF token its forms carry. */
export interface ConsoleLogin {
  cookie: string;
  sid: string;
  csrf: string;
}

/**
 * Signs in through the login form in process (`app.inject`), as a browser would: the login page's
 * nonce cookie, the form, then the dashboard's CSRF token.
 * @throws Error when the login is refused.
 */
export async function consoleLogin(collector: Collector, username: string, password: string, remoteAddress = '127.0.0.1'): Promise<ConsoleLogin> {
  const page = await collector.app.inject({ method: 'GET', url: '/login', remoteAddress });
  const nonce = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1];
  if (!nonce) throw new Error(`no login form (${page.statusCode})`);
  const res = await collector.app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress,
    headers: { cookie: `mamori_login=${nonce}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: nonce, username, password, next: '/' }).toString(),
  });
  const sid = res.cookies.find((c) => c.name === 'mamori_sid')?.value;
  if (res.statusCode !== 303 || !sid) throw new Error(`login of ${username} refused: ${res.statusCode}`);
  const cookie = `mamori_sid=${sid}`;
  // The users page is for admins only; the audit page is open to both roles and has a form.
  const withForm = await collector.app.inject({ method: 'GET', url: '/audit', headers: { cookie }, remoteAddress });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(withForm.body)?.[1];
  if (!csrf) throw new Error(`no CSRF token for ${username} (${withForm.statusCode})`);
  return { cookie, sid, csrf };
}
