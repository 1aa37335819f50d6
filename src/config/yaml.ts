/**
 * Reading a YAML config file: a missing file, a syntax error, an alias bomb or any other failure of the YAML
 * library becomes a ConfigError naming the file (and the line and column when the parser knows them).
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError } from './schema.js';

/**
 * Aliases a document may expand (the `yaml` library's resource-exhaustion guard, made explicit): a config file
 * needs few, and a "billion laughs" file — aliases of aliases — is refused after a bounded amount of work.
 */
export const MAX_ALIAS_COUNT = 100;

export function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read the file: ${(err as Error).message}` }], file);
  }
  return parseYamlText(text, file);
}

/** Parses YAML text from `source` (a file name, for messages) into plain values. */
export function parseYamlText(text: string, source: string): unknown {
  try {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length) {
      throw new ConfigError(
        doc.errors.map((e) => ({
          path: e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '',
          message: `YAML syntax: ${e.message.split('\n')[0]}`,
        })),
        source,
      );
    }
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const why = /alias/i.test((err as Error).message)
      ? `too many YAML alias expansions (more than ${MAX_ALIAS_COUNT}; an alias bomb?)`
      : `cannot parse the YAML: ${(err as Error).message.split('\n')[0]}`;
    throw new ConfigError([{ path: '', message: why }], source);
  }
}
