/**
 * The unsafe REST endpoints, Patroni's paths, codes and text bodies (docs/rest-api.md): POST /switchover,
 * /failover, /restart, /reinitialize, /reload, DELETE /switchover, PATCH and PUT /config. Basic auth is checked
 * by the server before any of these runs.
 */
import type { Logger } from '../lib/log.js';
import type { ActionOptions } from './actions-common.js';
import { patchConfig, putConfig } from './actions-config.js';
import { postReinitialize, postReload, postRestart } from './actions-node.js';
import { deleteSwitchover, postSwitchover } from './actions-switchover.js';
import type { ApiHandlers } from './server.js';

export function actionHandlers(log: Logger, opts: ActionOptions = {}): ApiHandlers {
  const alog = log.child({ component: 'api' });
  return {
    'POST /switchover': (body, agent) => postSwitchover('switchover', body, agent, alog, opts),
    'POST /failover': (body, agent) => postSwitchover('failover', body, agent, alog, opts),
    'DELETE /switchover': (_body, agent) => deleteSwitchover(agent),
    'POST /restart': (body, agent) => postRestart(body, agent, alog),
    'POST /reinitialize': (_body, agent) => postReinitialize(agent, alog, opts),
    'POST /reload': async (_body, agent) => postReload(agent, alog),
    'PATCH /config': (body, agent) => patchConfig(body, agent),
    'PUT /config': (body, agent) => putConfig(body, agent),
  };
}
