import { readEvents } from './online-store.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../../config/load.js';
import { openWorkspace } from '../../project/workspace.js';
import { expectCode, uniqueName } from '../../testing/harness.js';
import { describeOnlineStoreConformance } from '../../testing/online-store.conformance.js';
import { testService } from '../../testing/services.js';
import { tempDirs } from '../../testing/temp.js';
import { openRedisOnlineStore, type RedisOnlineStore } from './redis.js';

const redis = await testService('redis');
const tmp = tempDirs();

/** Removes every key under `prefix:` from each node (every master of a cluster). */
async function deletePrefix(nodes: readonly Redis[], prefix: string): Promise<void> {
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      // One key per UNLINK: on a cluster node, keys of different slots cannot share a command.
      await Promise.all(keys.map((key) => node.unlink(key)));
      cursor = next;
    } while (cursor !== '0');
  }
}

/**
 * A TCP proxy in front of Redis that counts round trips: a round trip starts when the client
 * sends after having received a reply (or for the first time). The proxy runs in the test's own
 * event loop, so everything a client writes in one tick reaches it as one burst.
 */
async function roundTripCounter(target: string): Promise<{
  url: string;
  trips: () => number;
  reset: () => void;
  close: () => Promise<void>;
}> {
  const { hostname, port } = new URL(target);
  let trips = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port) || 6379, hostname);
    let waiting = false;
    client.on('data', (chunk) => {
      if (!waiting) trips++;
      waiting = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      waiting = false;
      client.write(chunk);
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.on('close', () => b.destroy());
      a.on('error', () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    url: `redis://127.0.0.1:${address.port}`,
    trips: () => trips,
    reset: () => (trips = 0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(!redis.available)('RedisOnlineStore on one Redis', () => {
  const prefix = uniqueName('ferry_test');
  const raw = new Redis(redis.url, { lazyConnect: true });
  const prefixes = [prefix];
  const open = (options: { keyPrefix?: string; url?: string } = {}): Promise<RedisOnlineStore> =>
    openRedisOnlineStore({ url: redis.url, keyPrefix: prefix, ...options });

  beforeAll(() => raw.connect());
  afterAll(async () => {
    for (const p of prefixes) await deletePrefix([raw], p);
    raw.disconnect();
  });

  describeOnlineStoreConformance('redis', () => open());

  it('reads a batch of 100 keys in one round trip, and both reads of a lookup share it', async () => {
    const proxy = await roundTripCounter(redis.url);
    const store = await open({ url: proxy.url });
    try {
      const set = uniqueName('fs');
      const keys = Array.from({ length: 100 }, (_, i) => `card-${i}`);
      const t = 1_700_000_000_000;
      await store.writeLatest(
        set,
        keys.map((key, i) => ({ key, ts: t, values: { i } })),
      );
      await store.appendEvents(
        set,
        keys.flatMap((key, i) => [1, 2, 3].map((n) => ({ key, ts: t - n, values: { i, n } }))),
        Infinity,
      );

      // The counter itself: three awaited calls are three round trips.
      proxy.reset();
      for (const key of keys.slice(0, 3)) await store.readLatest(set, [key]);
      expect(proxy.trips()).toBe(3);

      proxy.reset();
      const latest = await store.readLatest(set, keys);
      expect(proxy.trips()).toBe(1);
      expect(latest[99]).toEqual({ ts: t, values: { i: 99 } });

      proxy.reset();
      const events = await store.readEventsMany(set, keys, t - 10, t);
      expect(proxy.trips()).toBe(1);
      expect(events[42]?.map((e) => e.values.n)).toEqual([3, 2, 1]);

      // What FeatureStore.getOnlineVector does: both reads issued together.
      proxy.reset();
      const [both, windows] = await Promise.all([
        store.readLatest(set, keys),
        store.readEventsMany(set, keys, t - 10, t),
      ]);
      expect(proxy.trips()).toBe(1);
      expect(both).toEqual(latest);
      expect(windows).toEqual(events);

      // Writes of a batch are one round trip too, whatever the number of entities.
      proxy.reset();
      await store.writeLatest(
        set,
        keys.map((key, i) => ({ key, ts: t + 1, values: { i: -i } })),
      );
      await store.appendEvents(
        set,
        keys.map((key) => ({ key, ts: t + 1, values: {} })),
        1000,
      );
      expect(proxy.trips()).toBe(2);
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('keeps an entity’s latest hash and events under one hash tag, readable with plain commands', async () => {
    const store = await open();
    try {
      const set = uniqueName('fs');
      await store.writeLatest(set, [
        { key: 'c1', ts: 1000, values: { amount: 12.5, country: 'FR', online: true, gone: null } },
        { key: 'odd {key}: 50%', ts: 7, values: { '@ts': 'a feature named like the ts field' } },
      ]);
      await store.appendEvents(
        set,
        [
          { key: 'c1', ts: 900, eventId: 'e1', values: { amount: 2 } },
          { key: 'c1', ts: 1000, eventId: 'e2', values: { amount: 12.5 } },
        ],
        Infinity,
      );
      const tag = `{${set}:c1}`;
      expect(await raw.hgetall(`${prefix}:${tag}:latest`)).toEqual({
        '@ts': '1000',
        amount: '12.5',
        country: '"FR"',
        online: 'true',
        gone: 'null',
      });
      expect(await raw.zrange(`${prefix}:${tag}:events`, '0', '-1', 'WITHSCORES')).toEqual([
        'e1\0\0{"amount":2}',
        '900',
        'e2\0\0{"amount":12.5}',
        '1000',
      ]);
      // Braces and '%' of a key are escaped, so the hash tag is the whole (set, key) pair.
      const odd = `${prefix}:{${set}:odd %7Bkey%7D: 50%25}:latest`;
      expect(await raw.hgetall(odd)).toEqual({
        '@ts': '7',
        '@@ts': '"a feature named like the ts field"',
      });
      expect(await store.readLatest(set, ['odd {key}: 50%'])).toEqual([
        { ts: 7, values: { '@ts': 'a feature named like the ts field' } },
      ]);
    } finally {
      await store.close();
    }
  });

  it('keeps pairs of feature set and key apart even when names hold separators', async () => {
    const store = await open();
    try {
      const base = uniqueName('fs');
      // (set 'x:y', key 'z') and (set 'x', key 'y:z') would share a key without escaping.
      await store.writeLatest(`${base}:y`, [{ key: 'z', ts: 1, values: { who: 'x:y/z' } }]);
      await store.writeLatest(base, [{ key: 'y:z', ts: 1, values: { who: 'x/y:z' } }]);
      expect(await store.readLatest(`${base}:y`, ['z'])).toEqual([
        { ts: 1, values: { who: 'x:y/z' } },
      ]);
      expect(await store.readLatest(base, ['y:z'])).toEqual([{ ts: 1, values: { who: 'x/y:z' } }]);
      // A feature set name holding glob characters deletes itself only.
      await store.writeLatest(`${base}*`, [{ key: 'k', ts: 1, values: { v: 1 } }]);
      await store.writeLatest(`${base}ab`, [{ key: 'k', ts: 1, values: { v: 2 } }]);
      await store.deleteFeatureSet(`${base}*`);
      expect(await store.readLatest(`${base}*`, ['k'])).toEqual([null]);
      expect(await store.readLatest(`${base}ab`, ['k'])).toEqual([{ ts: 1, values: { v: 2 } }]);
      await store.deleteFeatureSet(base);
      expect(await store.readLatest(`${base}:y`, ['z'])).toEqual([
        { ts: 1, values: { who: 'x:y/z' } },
      ]);
    } finally {
      await store.close();
    }
  });

  it('isolates stores with different key prefixes on one Redis', async () => {
    const other = uniqueName('ferry_test');
    prefixes.push(other);
    const [one, two] = await Promise.all([open(), open({ keyPrefix: other })]);
    try {
      const set = uniqueName('fs');
      await one.writeLatest(set, [{ key: 'k', ts: 1, values: { from: 'one' } }]);
      await two.writeLatest(set, [{ key: 'k', ts: 1, values: { from: 'two' } }]);
      await one.appendEvents(set, [{ key: 'k', ts: 1, values: { from: 'one' } }], Infinity);
      expect(await two.readLatest(set, ['k'])).toEqual([{ ts: 1, values: { from: 'two' } }]);
      expect(await readEvents(two, set, 'k', 0, 10)).toEqual([]);
      await two.deleteFeatureSet(set);
      expect(await one.readLatest(set, ['k'])).toEqual([{ ts: 1, values: { from: 'one' } }]);
      expect(await readEvents(one, set, 'k', 0, 10)).toHaveLength(1);
      expect(await raw.exists(`${other}:{${set}:k}:latest`)).toBe(0);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('bounds the events kept per entity by retainMs, pruning as they are appended', async () => {
    const store = await open();
    try {
      const set = uniqueName('fs');
      const minute = 60_000;
      // Ten days of one event a minute, in batches, with a retention of one hour.
      for (let batch = 0; batch < 20; batch++) {
        const events = Array.from({ length: 720 }, (_, i) => ({
          key: 'busy',
          ts: (batch * 720 + i) * minute,
          values: { i },
        }));
        await store.appendEvents(set, events, 60 * minute);
      }
      // Newest at 14,399 minutes: events at 14,339 .. 14,399 are within the hour.
      expect(await raw.zcard(`${prefix}:{${set}:busy}:events`)).toBe(61);
    } finally {
      await store.close();
    }
  });

  it('opens from ferry.yaml through the workspace, with its key prefix', async () => {
    const keyPrefix = uniqueName('ferry_ws');
    prefixes.push(keyPrefix);
    const dir = tmp.fresh();
    const spec = parseProjectSpec(
      { online_store: { type: 'redis', url: redis.url, key_prefix: keyPrefix } },
      'test',
    );
    const ws = await openWorkspace({ dir, file: null, spec, stateDir: path.join(dir, '.ferry') });
    try {
      expect(ws.online.backend).toBe('redis');
      await ws.online.writeLatest('fs', [{ key: 'k', ts: 1, values: { v: 1 } }]);
      expect(await raw.exists(`${keyPrefix}:{fs:k}:latest`)).toBe(1);
    } finally {
      await ws.close();
    }
  });

  it('fails with a coded error when Redis goes away, and names it without the password', async () => {
    const proxy = await roundTripCounter(redis.url);
    const url = proxy.url.replace('redis://', 'redis://:secret-pw@');
    const store = await openRedisOnlineStore({ url: proxy.url, keyPrefix: prefix });
    try {
      await store.readLatest('fs', ['k']);
      await proxy.close();
      const error = await expectCode(store.readLatest('fs', ['k']), 'FERRY_BACKEND_UNAVAILABLE');
      expect(error.message).toContain('readLatest failed on the Redis online store at');
    } finally {
      await store.close();
    }
    // Nothing listens there now: opening fails at once, with the password masked.
    const error = await expectCode(
      openRedisOnlineStore({ url, keyPrefix: prefix }),
      'FERRY_BACKEND_UNAVAILABLE',
    );
    expect(error.message).toContain(`redis://:***@127.0.0.1:${new URL(url).port}`);
    expect(error.message).not.toContain('secret-pw');
  });
});

describe('RedisOnlineStore: opening', () => {
  it('gives up within connectTimeoutMs when the server accepts but never answers', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const error = await expectCode(
        openRedisOnlineStore({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 }),
        'FERRY_BACKEND_UNAVAILABLE',
      );
      expect(error.message).toContain(`redis://127.0.0.1:${port}`);
    } finally {
      silent.close();
    }
  });

  it('refuses a URL that is not a Redis URL and a malformed key prefix', async () => {
    await expectCode(openRedisOnlineStore({ url: 'http://x:6379' }), 'FERRY_ARGUMENT_INVALID');
    await expectCode(openRedisOnlineStore({ keyPrefix: 'has {braces}' }), 'FERRY_ARGUMENT_INVALID');
  });
});

/* ------------------------------------------------------------------ Redis Cluster */

function onPath(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
}

const clusterBinaries = onPath('redis-server') && onPath('redis-cli');
if (!clusterBinaries) {
  console.warn(
    '[ferry tests] redis-server or redis-cli is not on PATH: the Redis Cluster tests are skipped. ' +
      'Install Redis (apt-get install redis-server) to run them.',
  );
}

/** A port that is free, and whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await free(port)) && (await free(port + 10_000))) {
      taken.add(port).add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

interface LocalCluster {
  readonly seeds: string[];
  stop(): Promise<void>;
}

/** Three masters, no replicas, from the local redis-server, in `dir`. */
async function startCluster(dir: string): Promise<LocalCluster> {
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) ports.push(await freeClusterPort(taken));
  const processes: ChildProcess[] = ports.map((port) => {
    const nodeDir = path.join(dir, String(port));
    fs.mkdirSync(nodeDir);
    return spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout',
        '5000',
        '--dir',
        nodeDir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--logfile',
        path.join(nodeDir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
  });
  const stop = async (): Promise<void> => {
    await Promise.all(
      processes.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
  };
  try {
    for (const port of ports) await waitFor(() => pong(port), `redis-server on ${port}`);
    const created = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (created.status !== 0) {
      throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    }
    for (const port of ports) await waitFor(() => clusterOk(port), `cluster state on ${port}`);
    return { seeds: ports.map((p) => `redis://127.0.0.1:${p}`), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Whether a fresh connection to the node on `port` answers `check` with true; false if it cannot connect. */
async function probe(port: number, check: (node: Redis) => Promise<boolean>): Promise<boolean> {
  const node = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    retryStrategy: () => null,
  });
  node.on('error', () => {});
  try {
    await node.connect();
    return await check(node);
  } catch {
    return false;
  } finally {
    node.disconnect();
  }
}

function pong(port: number): Promise<boolean> {
  return probe(port, async (node) => (await node.ping()) === 'PONG');
}

function clusterOk(port: number): Promise<boolean> {
  return probe(port, async (node) =>
    String(await node.call('CLUSTER', 'INFO')).includes('cluster_state:ok'),
  );
}

describe.skipIf(!clusterBinaries)('RedisOnlineStore on a 3-master Redis Cluster', () => {
  const prefix = uniqueName('ferry_test');
  let cluster: LocalCluster | undefined;
  let seeds: string[] = [];

  beforeAll(async () => {
    cluster = await startCluster(tmp.fresh());
    seeds = cluster.seeds;
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  describeOnlineStoreConformance('redis cluster', () =>
    openRedisOnlineStore({ cluster: seeds, keyPrefix: prefix }),
  );

  it('spreads entities over every master, and batch reads and deletes reach all of them', async () => {
    const store = await openRedisOnlineStore({ cluster: seeds.slice(0, 1), keyPrefix: prefix });
    const raw = new Cluster(
      seeds.map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) })),
      { lazyConnect: true },
    );
    try {
      await raw.connect();
      const set = uniqueName('fs');
      const keys = Array.from({ length: 100 }, (_, i) => `card-${i}`);
      await store.writeLatest(
        set,
        keys.map((key, i) => ({ key, ts: 1000, values: { i } })),
      );
      await store.appendEvents(
        set,
        keys.map((key, i) => ({ key, ts: 1000, values: { i } })),
        Infinity,
      );
      const masters = raw.nodes('master');
      expect(masters).toHaveLength(3);
      const perNode = await Promise.all(
        masters.map(async (node) => (await node.keys(`${prefix}:{${set}:*`)).length),
      );
      // 200 keys (a hash and a sorted set per entity), every master holding some.
      expect(perNode.reduce((a, b) => a + b, 0)).toBe(200);
      for (const n of perNode) expect(n).toBeGreaterThan(0);
      // The two keys of an entity share its slot.
      const slot = (key: string): Promise<unknown> => raw.call('CLUSTER', 'KEYSLOT', key);
      expect(await slot(`${prefix}:{${set}:card-7}:latest`)).toEqual(
        await slot(`${prefix}:{${set}:card-7}:events`),
      );

      const latest = await store.readLatest(set, [...keys].reverse());
      expect(latest.map((r) => r?.values.i)).toEqual(keys.map((_, i) => 99 - i));
      const events = await store.readEventsMany(set, keys, 0, 1000);
      expect(events.map((list) => list[0]?.values.i)).toEqual(keys.map((_, i) => i));

      await store.deleteFeatureSet(set);
      const left = await Promise.all(masters.map((node) => node.keys(`${prefix}:{${set}:*`)));
      expect(left.flat()).toEqual([]);
      expect(await store.readLatest(set, keys.slice(0, 5))).toEqual([null, null, null, null, null]);
    } finally {
      await store.close();
      raw.disconnect();
    }
  });
});
