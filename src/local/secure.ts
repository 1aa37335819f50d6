/**
 * Takes back what older pgkeel handed to `postgres`: up to 0.1.0 the node folder (DIR/nodeN) was chowned to the
 * PostgreSQL user, which let `postgres` replace node.yml (whose callbacks then ran as root) or agent.pid. pgkeel
 * created those folders, so returning them to root is allowed; PostgreSQL's own entries inside (data/, run/,
 * postgresql.log, pgpass) stay postgres'. Runs on every `up`, before any agent starts, and in an agent started
 * alone from such a folder.
 */
import { chmodSync, chownSync, lstatSync, realpathSync, rmSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LocalClusterError, paths, readLocalCluster, type LocalCluster } from './layout.js';

/** Files of a node folder the root-run agent or `up` reads or writes, with the mode they must have. */
const ROOT_FILES: ReadonlyArray<readonly [string, number]> = [
  ['node.yml', 0o600],
  ['agent.pid', 0o644],
  ['agent.log', 0o640],
];

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/** Returns one line per repair made (empty when nothing needed it); `only` limits it to one node's folder. */
export function secureNodeFolders(lc: LocalCluster, only?: string): string[] {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return [];
  const done: string[] = [];
  for (const n of lc.nodes.filter((x) => only === undefined || x.name === only)) {
    const dir = paths.nodeDir(lc.dir, n.name);
    const st = lstatOrNull(dir);
    if (!st) continue;
    if (!st.isDirectory())
      throw new LocalClusterError(
        `${dir} is not a directory (a symlink?); pgkeel made it as a folder: remove it and restore the node's files`,
      );
    if (st.uid !== 0 || st.gid !== 0 || (st.mode & 0o7777) !== 0o755) {
      chownSync(dir, 0, 0);
      chmodSync(dir, 0o755);
      done.push(
        `${n.name}: took the node folder back from uid ${st.uid} (it is root's, 0755; PostgreSQL keeps data/, run/ and its log)`,
      );
    }
    for (const [name, mode] of ROOT_FILES) {
      const file = join(dir, name);
      const f = lstatOrNull(file);
      if (!f) continue;
      if (!f.isFile()) {
        if (name === 'node.yml')
          throw new LocalClusterError(
            `${file} is not a regular file (a symlink?); it may have been replaced by another user: restore it from a trusted copy`,
          );
        rmSync(file, { force: true });
        done.push(`${n.name}: removed ${name}, which was not a regular file`);
        continue;
      }
      if (f.uid !== 0 || f.gid !== 0 || (f.mode & 0o7777) !== mode) {
        chownSync(file, 0, 0);
        chmodSync(file, mode);
        done.push(`${n.name}: ${name} is root's again, mode ${mode.toString(8).padStart(4, '0')}`);
      }
    }
  }
  return done;
}

/**
 * The agent's own repair when started alone (not by `up`): only for a config that is DIR/<node>/node.yml of a
 * cluster `up` made (DIR/cluster.json lists <node>) — folders pgkeel created; any other layout is left to the
 * CONFIG_INSECURE check.
 */
export function secureOwnNodeFolder(configFile: string): string[] {
  let real: string;
  try {
    real = realpathSync(configFile);
  } catch {
    return [];
  }
  const nodeDir = dirname(real);
  if (basename(real) !== 'node.yml') return [];
  let lc: LocalCluster | null;
  try {
    lc = readLocalCluster(dirname(nodeDir));
  } catch {
    return [];
  }
  const node = lc?.nodes.find((n) => paths.nodeConfig(lc.dir, n.name) === real);
  return lc && node ? secureNodeFolders(lc, node.name) : [];
}
