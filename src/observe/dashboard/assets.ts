/**
 * The page's static files (web/dashboard/ in the package: plain HTML, CSS and JS, no build step, nothing fetched
 * from elsewhere), found relative to this module so they are served from dist/ as from a checkout, and read once.
 * Every dashboard answer carries a strict Content-Security-Policy: scripts and styles from this origin only, no
 * inline script, no framing, fetches to this origin only.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Compiled, this module is <package>/dist/src/observe/dashboard/assets.js: four levels up is the package. */
export const ASSET_DIR = fileURLToPath(new URL('../../../../web/dashboard/', import.meta.url));

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** URL path → file and content type; nothing else under /dashboard/ is a file. */
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/dashboard': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

export interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

const loaded = new Map<string, Asset>();

/** The asset served at `path`, or undefined (not an asset path). Throws when the package lacks the file. */
export function asset(path: string, dir = ASSET_DIR): Asset | undefined {
  const f = Object.hasOwn(FILES, path) ? FILES[path] : undefined;
  if (!f) return undefined;
  const key = `${dir}\0${path}`;
  let a = loaded.get(key);
  if (!a) loaded.set(key, (a = { body: readFileSync(dir + f.file), type: f.type }));
  return a;
}
