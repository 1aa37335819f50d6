/**
 * The unsafe REST endpoints, Patroni's paths, codes and text bodies (docs/rest-api.md): POST /switchover,
 * /failover, /restart, /reinitialize, /reload, DELETE /switchover, PATCH and PUT /config; and pgkeel's own
 * POST /drill (actions-drill.ts). Basic auth is checked
 * by the server before any of these runs.
 */
import type { Logger } from '../lib/log.js';
import type { ActionOptions } from './actions-common.js';
import { patchConfig, putConfig } from './actions-config.js';
import { postReinitialize, postReload, postRestart } from './actions-node.js';
import { deleteSwitchover, postSwitchover } from './actions-switchover.js';
import { postDrill } from './actions-drill.js';
import type { ApiHandlers } from './server.js';

export function actionHandlers(log: Logger, opts: ActionOptions = {}): ApiHandlers {
  const alog = log.child({ component: 'api' });
  return {
    'POST /switchover': (body, deps) => postSwitchover('switchover', body, deps, alog, opts),
    'POST /failover': (body, deps) => postSwitchover('failover', body, deps, alog, opts),
    'DELETE /switchover': (_body, deps) => deleteSwitchover(deps),
    'POST /restart': (body, deps) => postRestart(body, deps.agent, alog),
    'POST /reinitialize': (_body, deps) => postReinitialize(deps, alog, opts),
    'POST /reload': async (_body, deps) => postReload(deps.agent, alog),
    'PATCH /config': (body, deps) => patchConfig(body, deps),
    'PUT /config': (body, deps) => putConfig(body, deps),
    'POST /drill': (body, deps) => postDrill(body, deps, alog),
  };
}
