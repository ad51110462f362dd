/**
 * The feature store's parity scenario and semantics cases with the Redis online store: online
 * lookups served from Redis equal the training set and the reference, as they do on SQLite.
 * Each harness gets its own key prefix; every key is removed once the file is done.
 */
import { Redis } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { describeFeatureParity } from '../testing/feature-parity.js';
import { uniqueName } from '../testing/harness.js';
import { testService } from '../testing/services.js';
import { openRedisOnlineStore } from './online/redis.js';

const redis = await testService('redis');

describe.skipIf(!redis.available)('FeatureStore with Redis', () => {
  const prefixes: string[] = [];

  afterAll(async () => {
    const raw = new Redis(redis.url, { lazyConnect: true });
    await raw.connect();
    try {
      for (const prefix of prefixes) {
        let cursor = '0';
        do {
          const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          if (keys.length > 0) await raw.unlink(...keys);
          cursor = next;
        } while (cursor !== '0');
      }
    } finally {
      raw.disconnect();
    }
  });

  describeFeatureParity('redis', () => {
    const keyPrefix = uniqueName('ferry_parity');
    prefixes.push(keyPrefix);
    return openRedisOnlineStore({ url: redis.url, keyPrefix });
  });
});
