import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

function capture(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('redacts authorization headers and API keys, keeping the rest', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', name: 'ferry-test', destination: stream });
    log.info(
      {
        req: {
          headers: { authorization: 'Bearer secret-token', 'x-api-key': 'k1', host: 'localhost' },
        },
        api_key: 'k2',
        client: { api_key: 'k3', id: 'c1' },
      },
      'hello',
    );
    const text = JSON.stringify(lines);
    expect(text).not.toMatch(/secret-token|k1|k2|k3/);
    expect(lines[0]).toMatchObject({
      name: 'ferry-test',
      msg: 'hello',
      req: {
        headers: { authorization: '[redacted]', 'x-api-key': '[redacted]', host: 'localhost' },
      },
      api_key: '[redacted]',
      client: { api_key: '[redacted]', id: 'c1' },
    });
  });

  it('writes nothing below its level', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'warn', destination: stream });
    log.info('quiet');
    log.warn('loud');
    expect(lines.map((l) => l.msg)).toEqual(['loud']);
  });
});
