/**
 * Tests that need a real engine (Redis, NATS, PostgreSQL) ask for it here. When the engine is not
 * reachable they are skipped with a message that says which one and how to start it, so that
 * `npm test` passes on a newcomer's laptop; with `FERRY_REQUIRE_SERVICES=1` (set by `.ci/run`) an
 * unreachable engine fails the test file instead, so CI never passes by skipping.
 *
 * Addresses come from `FERRY_TEST_REDIS_URL`, `FERRY_TEST_NATS_URL` and `FERRY_TEST_POSTGRES_URL`,
 * defaulting to this machine's services on 127.0.0.1.
 */
import net from 'node:net';

export type ServiceName = 'redis' | 'nats' | 'postgres';

const DEFAULTS: Record<ServiceName, { env: string; url: string; start: string }> = {
  redis: {
    env: 'FERRY_TEST_REDIS_URL',
    url: 'redis://127.0.0.1:6379',
    start: 'redis-server --daemonize yes --port 6379 --save ""',
  },
  nats: {
    env: 'FERRY_TEST_NATS_URL',
    url: 'nats://127.0.0.1:4222',
    start: 'nats-server -a 127.0.0.1 -p 4222 -js &',
  },
  postgres: {
    env: 'FERRY_TEST_POSTGRES_URL',
    url: 'postgres://postgres@127.0.0.1:5432/test',
    start: 'pg_ctlcluster <version> main start',
  },
};

export interface Service {
  readonly name: ServiceName;
  readonly url: string;
  /** Whether a TCP connection to the service succeeded. */
  readonly available: boolean;
}

const DEFAULT_PORTS: Record<ServiceName, number> = { redis: 6379, nats: 4222, postgres: 5432 };

/**
 * Checks that the service accepts connections. Call at the top level of a test file and pass
 * `!service.available` to `describe.skipIf`.
 * @example
 * const redis = await testService('redis');
 * describe.skipIf(!redis.available)('Redis online store', () => { ... open(redis.url) ... });
 */
export async function testService(name: ServiceName): Promise<Service> {
  const defaults = DEFAULTS[name];
  const url = process.env[defaults.env] ?? defaults.url;
  const parsed = new URL(url);
  const host = parsed.hostname || '127.0.0.1';
  const port = Number(parsed.port) || DEFAULT_PORTS[name];
  const available = await reachableUrl(url, DEFAULT_PORTS[name]);
  if (!available) {
    const message =
      `${name} is not reachable at ${host}:${port}; its tests are skipped. ` +
      `Start it (${defaults.start}) or set ${defaults.env}.`;
    if (process.env.FERRY_REQUIRE_SERVICES === '1') {
      throw new Error(`${message} FERRY_REQUIRE_SERVICES=1 requires it, so this is a failure.`);
    }
    console.warn(`[ferry tests] ${message}`);
  }
  return { name, url, available };
}

/**
 * Whether a TCP connection to the URL's host and port (`defaultPort` when it names none) succeeds
 * within a second; benchmarks use it too, to skip an engine that is down.
 * @example await reachableUrl('redis://127.0.0.1:6379', 6379)
 */
export function reachableUrl(url: string, defaultPort: number): Promise<boolean> {
  const parsed = new URL(url);
  return reachable(parsed.hostname || '127.0.0.1', Number(parsed.port) || defaultPort);
}

function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
