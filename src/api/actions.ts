/**
 * Unsafe REST endpoints (POST /switchover, /failover, /restart, /reload, /reinitialize; PATCH/PUT /config).
 * Not built yet: each answers 501 so patronictl and scripts get a clear refusal instead of a silent no-op.
 */
import type { Logger } from '../lib/log.js';
import type { ApiHandlers } from './server.js';

export function actionHandlers(_log: Logger): ApiHandlers {
  const notYet = async () => ({ code: 501, body: 'not implemented yet in this pgkeel version\n' });
  return {
    'POST /switchover': notYet,
    'POST /failover': notYet,
    'POST /restart': notYet,
    'POST /reload': notYet,
    'POST /reinitialize': notYet,
    'PATCH /config': notYet,
    'PUT /config': notYet,
    'DELETE /switchover': notYet,
  };
}
