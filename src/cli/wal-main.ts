/**
 * A light entry point for `archive-push` / `archive-get` only: PostgreSQL starts it once per WAL file when the
 * agent's archiver is not ahead (archive_command's slow path) and per restored segment, so its start-up time is the
 * archive's throughput. main.js loads every command (~380 ms here); this loads only backup/ (~30 ms over Node's own
 * start). Same commands, same exit codes as `pgkeel archive-push|archive-get` (wal-cmd.ts).
 */
import { runWalCommand } from './wal-cmd.js';

const [cmd, ...rest] = process.argv.slice(2);
if (cmd !== 'archive-push' && cmd !== 'archive-get') {
  process.stderr.write('usage: wal-main.js archive-push|archive-get ...\n');
  process.exit(2);
}
runWalCommand(cmd, rest).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`pgkeel ${cmd}: ${err.message}\n`);
    process.exit(1);
  },
);
