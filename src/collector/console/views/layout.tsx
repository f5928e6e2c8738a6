import type { ComponentChildren } from 'preact';
import { MAMORI_VERSION as VERSION } from '../../../shared';
import type { MessageKey } from '../messages';
import { PostForm } from './components';
import { mayOpen, type PageName, type View } from './view';

const NAV: { page: PageName; href: string; label: MessageKey }[] = [
  { page: 'dashboard', href: '/', label: 'nav.dashboard' },
  { page: 'terminals', href: '/terminals', label: 'nav.terminals' },
  { page: 'incidents', href: '/incidents', label: 'nav.incidents' },
  { page: 'exceptions', href: '/exceptions', label: 'nav.exceptions' },
  { page: 'policies', href: '/policies', label: 'nav.policies' },
  { page: 'exports', href: '/exports', label: 'nav.exports' },
  { page: 'users', href: '/users', label: 'nav.users' },
  { page: 'audit', href: '/audit', label: 'nav.audit' },
];

function current(path: string, href: string): boolean {
  const p = path.split('?')[0]!;
  return href === '/' ? p === '/' : p === href || p.startsWith(`${href}/`);
}

/** The page shell: header with navigation by role, the language switch, logout, and the content. */
export function Layout({ v, title, children, active }: { v: View; title: string; active?: PageName; children: ComponentChildren }) {
  const other = v.lang === 'ja' ? 'en' : 'ja';
  return (
    <html lang={v.lang}>
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${title} — ${v.t('app.title')}`}</title>
        <link rel="stylesheet" href={`/static/console.css?v=${VERSION}`} />
        <link rel="icon" href="/static/icon.png" />
        <script src={`/static/console.js?v=${VERSION}`} defer />
      </head>
      <body>
        <a class="skip" href="#main">
          {v.t('nav.skip')}
        </a>
        <header class="top">
          <a class="brand" href="/">
            <img src="/static/icon.png" alt="" width="28" height="28" />
            <span>{v.t('app.title')}</span>
          </a>
          <div class="account">
            {v.user ? <span class="who">{v.t('common.signedInAs', { user: v.user.username, role: v.t(`role.${v.user.role}`) })}</span> : null}
            <a class="lang" href={`/lang/${other}?next=${encodeURIComponent(v.path)}`} hreflang={other} lang={other}>
              {v.t('nav.lang')}
            </a>
            {v.user ? (
              <PostForm v={v} action="/logout" class="inline">
                <button type="submit" class="link">
                  {v.t('nav.logout')}
                </button>
              </PostForm>
            ) : null}
          </div>
        </header>
        {v.user ? (
          <nav class="side" aria-label="main">
            <ul>
              {NAV.filter((n) => mayOpen(v.user!.role, n.page)).map((n) => (
                <li>
                  <a href={n.href} aria-current={active === n.page || (!active && current(v.path, n.href)) ? 'page' : undefined}>
                    {v.t(n.label)}
                  </a>
                </li>
              ))}
            </ul>
            {v.user.role === 'auditor' ? <p class="note">{v.t('common.readOnly')}</p> : null}
          </nav>
        ) : null}
        <main id="main" class={v.user ? 'with-nav' : 'bare'}>
          <h1>{title}</h1>
          {v.flash ? (
            <div class={`flash ${v.flash.kind}`} role={v.flash.kind === 'error' ? 'alert' : 'status'}>
              <p>{v.flash.text}</p>
              {v.flash.secret ? <output class="secret">{v.flash.secret}</output> : null}
            </div>
          ) : null}
          {children}
        </main>
        <footer class="foot">Mamori {VERSION}</footer>
      </body>
    </html>
  );
}

/** A page that says what went wrong (403, 404, an expired form). */
export function Problem({ v, title, body }: { v: View; title: string; body: string }) {
  return (
    <Layout v={v} title={title}>
      <p class="problem">{body}</p>
      <p>
        <a href="/">{v.t('nav.dashboard')}</a>
      </p>
    </Layout>
  );
}
