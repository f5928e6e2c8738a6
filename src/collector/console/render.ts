import type { VNode } from 'preact';
import { renderToString } from 'preact-render-to-string';

/**
 * Control characters and bidirectional overrides from terminals are shown, not obeyed: each becomes
 * a visible `[U+001B]` (the console's fonts have no glyphs for Unicode's control pictures), so an
 * escape sequence cannot colour anything and an override cannot make `exe.txt` read as `txt.exe`.
 * Tab, LF and CR stay. Preact has already escaped `<`, `&` and `"`; this makes the rest visible.
 */
export function inert(html: string): string {
  return html.replace(
    /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g,
    (c) => `[U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}]`,
  );
}

/** A whole HTML document from a page component. */
export function renderPage(page: VNode): string {
  return `<!DOCTYPE html>\n${inert(renderToString(page))}`;
}
