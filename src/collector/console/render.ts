import type { VNode } from 'preact';
import { renderToString } from 'preact-render-to-string';

/**
 * Control characters and bidirectional overrides from terminals are shown, not obeyed: C0
 * controls become their Unicode "control pictures" (U+2400…), DEL becomes ␡, and bidi controls
 * (which could make `exe.txt` read as `txt.exe`) become a visible `[U+202E]`. Tab, LF and CR stay.
 * Preact has already escaped `< > & "`, so this only makes the remaining bytes visible.
 */
export function inert(html: string): string {
  return html
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, (c) => String.fromCharCode(0x2400 + c.charCodeAt(0)))
    .replace(/\u007f/g, '\u2421')
    .replace(/[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g, (c) => `[U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
}

/** A whole HTML document from a page component. */
export function renderPage(page: VNode): string {
  return `<!DOCTYPE html>\n${inert(renderToString(page))}`;
}
