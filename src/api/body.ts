/**
 * Reading an unsafe request's JSON body within bounds: at most MAX_BODY bytes (413 otherwise, the answer sent
 * before the connection closes), nesting at most MAX_DEPTH deep (400, checked before JSON.parse so no recursive
 * walk further on can overflow the stack). Slow senders are cut off by the server's requestTimeout.
 */
import type { IncomingMessage } from 'node:http';

export const MAX_BODY = 64 * 1024;
export const MAX_DEPTH = 32;

export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
  }
}

/** The deepest nesting of arrays/objects in JSON text, counting only brackets outside strings. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

export function parseBody(text: string): Record<string, unknown> {
  if (!text.trim()) return {};
  const depth = jsonDepth(text);
  if (depth > MAX_DEPTH)
    throw new BodyError(400, `the JSON body is nested ${depth} levels deep; at most ${MAX_DEPTH} are accepted`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new BodyError(400, 'the body is not valid JSON');
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  throw new BodyError(400, 'expected a JSON object');
}

/** Resolves with the parsed body; rejects with a BodyError (413 as soon as the limit is passed, or 400). */
export function readBody(req: IncomingMessage, limit = MAX_BODY): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit)
      return reject(new BodyError(413, `the request body is ${declared} bytes; at most ${limit} are accepted`));
    let size = 0;
    const chunks: Buffer[] = [];
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) return chunks.push(c);
      req.off('data', onData);
      reject(new BodyError(413, `the request body is over ${limit} bytes; at most ${limit} are accepted`));
    };
    req.on('data', onData);
    req.on('end', () => {
      if (size > limit) return;
      try {
        resolve(parseBody(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
  });
}
