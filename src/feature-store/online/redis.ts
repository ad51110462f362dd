/**
 * RedisOnlineStore: the OnlineStore on Redis or Redis Cluster (ioredis), for serving replicas on
 * several machines that must see the same features. Same semantics as the SQLite store.
 *
 * Layout, per feature set `<set>` and entity key `<key>` (both escaped, see {@link entityTag}):
 * - `<prefix>:{<set>:<key>}:latest`, a HASH: field `@ts` holds the record's ts and every other
 *   field one feature value, JSON-encoded so that numbers, strings, booleans and null read back as
 *   they were (a feature whose name starts with `@` is stored as `@@name`). A lookup of one entity
 *   is one HGETALL.
 * - `<prefix>:{<set>:<key>}:events`, a sorted set scored by ts. A member is the event id (its NUL
 *   bytes escaped), a `\0\0` terminator, then the event's values as JSON: within one ts, members
 *   sort by event id, and the terminator lets a script find an event with the same (ts, id).
 * The `{...}` hash tag puts both keys of an entity in one slot, so one Lua script can update them
 * on a Redis Cluster, and entities spread over the masters.
 *
 * Writes go through two Lua scripts (sent once per connection, then called by SHA): the latest
 * record is replaced only by a record with an equal or greater ts, and an event replaces the one
 * with the same (ts, id), then events older than `retainMs` before the key's newest are pruned,
 * so each entity keeps only the events its largest window (plus history) needs.
 *
 * Round trips: a batch of N entities is N commands sent as one pipeline (ioredis auto-pipelining,
 * which on a cluster makes one pipeline per node, sent in parallel). Commands issued in the same
 * tick share it, so `readLatest` and `readEventsMany` issued together cost one round trip.
 *
 * Durability: a write resolves once Redis has applied it. Whether it survives a restart of Redis
 * is the server's persistence setting (`appendonly yes` with `appendfsync everysec` loses at most
 * a second); the online store can always be rebuilt from the offline store.
 *
 * `deleteFeatureSet` walks the keys with SCAN (every master of a cluster): no index is kept on the
 * write path, so deleting a feature set costs a pass over the database's keys. It is rare.
 */
import { Cluster, Redis } from 'ioredis';

import type { Row } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import type { OnlineEvent, OnlineRecord, OnlineStore, OnlineWrite } from './online-store.js';
import { assertEvents, assertWrites } from './validate.js';

export interface RedisOnlineStoreOptions {
  /** One Redis server (standalone or behind a proxy); default `redis://127.0.0.1:6379`. */
  readonly url?: string;
  /** Seed nodes of a Redis Cluster; when given, `url` is ignored. */
  readonly cluster?: readonly string[];
  /** Prefix of every key the store writes, so several projects can share one Redis; default `ferry`. */
  readonly keyPrefix?: string;
  /** How long opening waits for Redis before it gives up (ms, default 5000). */
  readonly connectTimeoutMs?: number;
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const DEFAULT_PREFIX = 'ferry';
const KEY_PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Field of the latest hash that holds the record's ts. */
const TS_FIELD = '@ts';
/** Ends the event id inside an event member; an id's own NUL bytes are escaped as `\0\x01`. */
const ID_END = '\0\0';
/** Keys one SCAN step asks for, and UNLINKs issued together, when a feature set is deleted. */
const SCAN_COUNT = 1000;

// KEYS[1]: the entity's latest hash. ARGV[1]: ts; ARGV[2..]: field, value pairs.
// An older record never replaces a newer one; an equal ts replaces (last write wins). HSET is
// called in chunks so that unpack stays far below Lua's stack limit.
const WRITE_LATEST_LUA = `
local current = redis.call('HGET', KEYS[1], '${TS_FIELD}')
if current and tonumber(current) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '${TS_FIELD}', ARGV[1])
for i = 2, #ARGV, 512 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 511, #ARGV)))
end
return 1
`;

// KEYS[1]: the entity's events. ARGV[1]: retainMs ('inf' keeps every event); then ts, member
// pairs. An event replaces the one with the same (ts, id): same score, same member up to and
// including the id terminator. Then events with ts < newest - retainMs are pruned; the cutoff is
// formatted with 17 digits so that it is the exact double.
const APPEND_EVENTS_LUA = `
for i = 2, #ARGV, 2 do
  local ts, member = ARGV[i], ARGV[i + 1]
  local id = string.sub(member, 1, (string.find(member, '\\0\\0', 1, true)) + 1)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ts, ts)) do
    if m ~= member and string.sub(m, 1, #id) == id then redis.call('ZREM', KEYS[1], m) end
  end
  redis.call('ZADD', KEYS[1], ts, member)
end
if ARGV[1] ~= 'inf' then
  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if newest[2] then
    local cutoff = tonumber(newest[2]) - tonumber(ARGV[1])
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.17g', cutoff))
  end
end
return 0
`;

const SCRIPTS = {
  ferryWriteLatest: { numberOfKeys: 1, lua: WRITE_LATEST_LUA },
  ferryAppendEvents: { numberOfKeys: 1, lua: APPEND_EVENTS_LUA },
};

/** The commands {@link SCRIPTS} add to a client. */
interface ScriptCommands {
  ferryWriteLatest(key: string, ...args: string[]): Promise<number>;
  ferryAppendEvents(key: string, ...args: string[]): Promise<number>;
}

type Client = (Redis | Cluster) & ScriptCommands;

/**
 * Connects to Redis (or a Redis Cluster) and returns the online store; fails within
 * `connectTimeoutMs` with FERRY_BACKEND_UNAVAILABLE when Redis cannot be reached.
 * @example
 * const online = await openRedisOnlineStore({ url: 'redis://127.0.0.1:6379', keyPrefix: 'shop' });
 * await online.writeLatest('cards', [{ key: 'c1', ts: Date.now(), values: { amount_sum_1h: 42 } }]);
 * const [record] = await online.readLatest('cards', ['c1']);
 */
export async function openRedisOnlineStore(
  options: RedisOnlineStoreOptions = {},
): Promise<RedisOnlineStore> {
  const keyPrefix = options.keyPrefix ?? DEFAULT_PREFIX;
  if (!KEY_PREFIX.test(keyPrefix)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `Redis key prefix '${keyPrefix}' must be 1 to 64 letters, digits, '_', '.', ':' or '-'`,
    );
  }
  const timeoutMs = options.connectTimeoutMs ?? 5000;
  const seeds = options.cluster ?? [];
  const urls = seeds.length > 0 ? seeds : [options.url ?? DEFAULT_URL];
  const parsed = urls.map(parseRedisUrl);
  const where =
    seeds.length > 0
      ? `the Redis Cluster online store (seeds ${parsed.map((p) => p.safe).join(', ')})`
      : `the Redis online store at ${(parsed[0] as ParsedUrl).safe}`;

  const common = {
    lazyConnect: true,
    // Commands issued in one tick leave as one pipeline (one per node on a cluster).
    enableAutoPipelining: true,
    scripts: SCRIPTS,
  };
  const perConnection = {
    connectTimeout: timeoutMs,
    // Fail a lookup after a couple of reconnection attempts instead of holding it for seconds.
    maxRetriesPerRequest: 2,
  };
  let client: Redis | Cluster;
  if (seeds.length > 0) {
    const first = parsed[0] as ParsedUrl;
    client = new Cluster(
      parsed.map((p) => ({ host: p.host, port: p.port })),
      {
        ...common,
        redisOptions: {
          ...perConnection,
          ...(first.username ? { username: first.username } : {}),
          ...(first.password ? { password: first.password } : {}),
          ...(first.tls ? { tls: {} } : {}),
        },
      },
    );
  } else {
    client = new Redis((parsed[0] as ParsedUrl).url, { ...common, ...perConnection });
  }
  const state: { lastError?: Error } = {};
  // Without a listener ioredis prints connection errors; keep the last one for our messages.
  client.on('error', (error: Error) => (state.lastError = error));
  client.on('node error', (error: Error) => (state.lastError = error));

  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    const reason = state.lastError ?? error;
    throw new FerryError(
      'FERRY_BACKEND_UNAVAILABLE',
      `cannot connect to ${where}: ${messageOf(reason)}. Check that Redis is running and that ` +
        `online_store in ferry.yaml (url, cluster) points to it.`,
      { cause: reason },
    );
  } finally {
    clearTimeout(timer);
  }
  return new RedisOnlineStore(client as Client, keyPrefix, where, state);
}

export class RedisOnlineStore implements OnlineStore {
  readonly backend = 'redis';
  private readonly client: Client;
  private readonly prefix: string;
  private readonly where: string;
  private readonly state: { lastError?: Error };
  private closed = false;

  /** Use {@link openRedisOnlineStore}. */
  constructor(client: Client, keyPrefix: string, where: string, state: { lastError?: Error }) {
    this.client = client;
    this.prefix = keyPrefix;
    this.where = where;
    this.state = state;
  }

  async writeLatest(featureSet: string, records: readonly OnlineWrite[]): Promise<void> {
    this.assertOpen();
    assertWrites(featureSet, records);
    // The record each key keeps from this batch: the greatest ts, the last of equal ones.
    const winners = new Map<string, OnlineWrite>();
    for (const r of records) {
      const kept = winners.get(r.key);
      if (kept === undefined || r.ts >= kept.ts) winners.set(r.key, r);
    }
    const tag = this.setTag(featureSet);
    const calls = [...winners.values()].map((r) => {
      const args = [String(r.ts)];
      for (const [name, value] of Object.entries(r.values)) {
        if (value === undefined) continue;
        args.push(name.startsWith('@') ? `@${name}` : name, JSON.stringify(value));
      }
      return this.client.ferryWriteLatest(latestKey(tag, r.key), ...args);
    });
    await this.settle('writeLatest', calls);
  }

  async readLatest(featureSet: string, keys: readonly string[]): Promise<(OnlineRecord | null)[]> {
    this.assertOpen();
    const tag = this.setTag(featureSet);
    const hashes = await this.settle(
      'readLatest',
      keys.map((key) => this.client.hgetall(latestKey(tag, key))),
    );
    return hashes.map(decodeLatest);
  }

  async appendEvents(
    featureSet: string,
    events: readonly OnlineEvent[],
    retainMs: number,
  ): Promise<void> {
    this.assertOpen();
    assertEvents(featureSet, events, retainMs);
    const byKey = new Map<string, string[]>();
    const retain = retainMs === Infinity ? 'inf' : String(retainMs);
    for (const e of events) {
      let args = byKey.get(e.key);
      if (args === undefined) byKey.set(e.key, (args = [retain]));
      args.push(String(e.ts), encodeEventId(e.eventId ?? '') + ID_END + JSON.stringify(e.values));
    }
    const tag = this.setTag(featureSet);
    await this.settle(
      'appendEvents',
      [...byKey].map(([key, args]) => this.client.ferryAppendEvents(eventsKey(tag, key), ...args)),
    );
  }

  async readEventsMany(
    featureSet: string,
    keys: readonly string[],
    since: number,
    until: number,
  ): Promise<OnlineRecord[][]> {
    this.assertOpen();
    // Like SQL, a comparison with NaN holds for no event.
    if (Number.isNaN(since) || Number.isNaN(until)) return keys.map(() => []);
    const min = scoreBound(since, true);
    const max = scoreBound(until, false);
    const tag = this.setTag(featureSet);
    const replies = await this.settle(
      'readEventsMany',
      keys.map((key) => this.client.zrangebyscore(eventsKey(tag, key), min, max, 'WITHSCORES')),
    );
    return replies.map(decodeEvents);
  }

  async deleteFeatureSet(featureSet: string): Promise<void> {
    this.assertOpen();
    // The set's part of every key is escaped, so the pattern matches this feature set only.
    const pattern = `${this.setTag(featureSet)}*`;
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    try {
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
          // One UNLINK per key: on a cluster, keys of different slots cannot share a command.
          await Promise.all(found.map((key) => this.client.unlink(key)));
          cursor = next;
        } while (cursor !== '0');
      }
    } catch (error) {
      throw this.unavailable('deleteFeatureSet', error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      // Already disconnected: nothing is left to flush.
      this.client.disconnect();
    }
  }

  /** `<prefix>:{<set>:`, the start of every key of the feature set. */
  private setTag(featureSet: string): string {
    return `${this.prefix}:{${escapeSetName(featureSet)}:`;
  }

  /** Awaits the commands of one call, which were all issued in the same tick. */
  private async settle<T>(what: string, commands: Promise<T>[]): Promise<T[]> {
    try {
      return await Promise.all(commands);
    } catch (error) {
      throw this.unavailable(what, error);
    }
  }

  private unavailable(what: string, error: unknown): FerryError {
    // A reply error is Redis refusing a command (out of memory, read-only replica...); anything
    // else is the connection.
    const refused = error instanceof Error && error.name === 'ReplyError';
    const reason = error instanceof Error ? error : (this.state.lastError ?? error);
    return new FerryError(
      'FERRY_BACKEND_UNAVAILABLE',
      `${what} failed on ${this.where}: ${messageOf(reason)}. ` +
        (refused
          ? "Redis refused the command: check its log and its memory limit ('maxmemory')."
          : 'Check that Redis is running and reachable.'),
      { cause: error },
    );
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new FerryError('FERRY_STORE_CLOSED', `${this.where} is closed`);
    }
  }
}

/* ------------------------------------------------------------------ keys and encodings */

function latestKey(setTag: string, key: string): string {
  return `${setTag}${entityTag(key)}}:latest`;
}

function eventsKey(setTag: string, key: string): string {
  return `${setTag}${entityTag(key)}}:events`;
}

/**
 * In a feature set name, `%`, `:`, the braces and the glob characters are percent-escaped, so
 * that `<set>:<key>` names one pair only and a SCAN pattern of one set matches no other.
 */
function escapeSetName(featureSet: string): string {
  return featureSet.replace(/[%:{}*?[\]\\]/g, percent);
}

/** In an entity key, `%` and the braces are percent-escaped, so the hash tag ends where it should. */
function entityTag(key: string): string {
  return key.replace(/[%{}]/g, percent);
}

function percent(char: string): string {
  return `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
}

/** Escapes NUL so that `\0\0` only ever ends an id; byte order, hence ZSET order, is kept. */
function encodeEventId(eventId: string): string {
  return eventId.replaceAll('\0', '\0\x01');
}

function scoreBound(value: number, exclusive: boolean): string {
  if (value === Infinity) return '+inf';
  if (value === -Infinity) return '-inf';
  return `${exclusive ? '(' : ''}${value}`;
}

function decodeLatest(hash: Record<string, string>): OnlineRecord | null {
  const raw = hash[TS_FIELD];
  if (raw === undefined) return null;
  const values: Row = {};
  for (const [field, json] of Object.entries(hash)) {
    if (field === TS_FIELD) continue;
    values[field.startsWith('@@') ? field.slice(1) : field] = JSON.parse(json) as Row[string];
  }
  return { ts: Number(raw), values };
}

function decodeEvents(reply: string[]): OnlineRecord[] {
  const out: OnlineRecord[] = [];
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const member = reply[i] as string;
    out.push({
      ts: Number(reply[i + 1]),
      values: JSON.parse(member.slice(member.indexOf(ID_END) + ID_END.length)) as Row,
    });
  }
  return out;
}

/* ------------------------------------------------------------------ connection */

interface ParsedUrl {
  readonly url: string;
  /** The URL with its password masked, for messages and logs. */
  readonly safe: string;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly tls: boolean;
}

function parseRedisUrl(url: string): ParsedUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    parsed = new URL('invalid:');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `'${maskPassword(url)}' is not a Redis URL; give one such as redis://127.0.0.1:6379/0 (rediss:// for TLS)`,
    );
  }
  return {
    url,
    safe: maskPassword(url),
    host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(parsed.port) || 6379,
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    tls: parsed.protocol === 'rediss:',
  };
}

function maskPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    // Not a URL at all: cut anything that could be credentials.
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // A refused connection to a name with two addresses is an AggregateError without a message.
  const code = (error as NodeJS.ErrnoException).code;
  let message = (error.message || code || error.name).replace(/\.+$/, '');
  if (code && !message.includes(code)) message += ` (${code})`;
  // ioredis' cluster errors carry the error of the last node they tried.
  const last = (error as { lastNodeError?: unknown }).lastNodeError;
  if (last instanceof Error) message += `; last node error: ${messageOf(last)}`;
  return message;
}
