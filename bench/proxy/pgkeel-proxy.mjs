#!/usr/bin/env node
// Runs `pgkeel proxy` from the compiled tree without going through bin/pgkeel (until the lead wires the
// subcommand into src/cli/main.ts): node bench/proxy/pgkeel-proxy.mjs --listen ... --primary ...
import { runProxyCommand } from '../../dist/src/cli/proxy-cmd.js';
process.exitCode = await runProxyCommand(process.argv.slice(2));
