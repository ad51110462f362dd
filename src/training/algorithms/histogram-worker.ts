/**
 * The entry of a histogram helper thread (started by `histogram.ts`): it sums the chunks of
 * large leaves that the fitting thread publishes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { helperLoop, type HistogramFitMessage } from './histogram.js';

const port = parentPort;
if (port !== null) {
  const { ctrl, slot } = workerData as { ctrl: SharedArrayBuffer; slot: number };
  helperLoop(
    new Int32Array(ctrl),
    slot,
    (ready) => port.postMessage(ready),
    (listener) => port.on('message', (m: HistogramFitMessage | { fit: number }) => listener(m)),
  );
}
