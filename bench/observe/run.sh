#!/bin/sh
# Observability benchmark: the agent's /metrics beside prometheus-postgres-exporter (see run.mjs). Serialised with
# other heavy jobs on this host.
set -e
cd "$(dirname "$0")/../.."
./node_modules/.bin/tsc -p tsconfig.json
exec flock /tmp/pgkeel-heavy.lock node bench/observe/run.mjs "$@"
