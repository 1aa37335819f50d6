/** The heavy-job lock the benchmarks share with the test suite (/tmp/pgkeel-heavy.lock), held by flock(1). */
import { spawn, type ChildProcess } from 'node:child_process';
import { pidAlive } from '../../src/lib/proc.js';

export /** Holds an flock(1) on `file` in a child process until the returned release is called (or we exit). */
async function acquireLock(file: string): Promise<() => Promise<void>> {
  const child: ChildProcess = spawn('flock', [file, '-c', 'echo locked; exec cat'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`flock ${file} exited with ${code}`)));
    child.stdout?.once('data', () => resolve());
  });
  return async () => {
    const pid = child.pid;
    if (pid === undefined || child.exitCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.stdin?.end();
    const t = setTimeout(() => pidAlive(pid) && process.kill(pid, 'SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  };
}
