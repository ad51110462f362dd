/**
 * The worker-thread entry of model selection (`worker-pool.ts` starts it): decodes the selection
 * data it was given once, then evaluates one candidate per message and replies with its scores.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { evaluateCandidate } from './evaluate.js';
import {
  decodeSelectionData,
  type WireData,
  type WorkerReply,
  type WorkerRequest,
} from './worker-pool.js';

const port = parentPort;
if (port !== null) {
  const data = decodeSelectionData(workerData as WireData);
  port.on('message', (request: WorkerRequest) => {
    let reply: WorkerReply;
    try {
      reply = { id: request.id, ok: true, evaluation: evaluateCandidate(data, request.task) };
    } catch (error) {
      reply = {
        id: request.id,
        ok: false,
        message: error instanceof Error ? error.message : String(error),
      };
    }
    port.postMessage(reply);
  });
}
