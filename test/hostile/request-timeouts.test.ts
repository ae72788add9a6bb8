/**
 * Requests whose headers or body do not arrive in time get 408 in the Matrix
 * error shape (issue 19, defect 6, second half); before, idle headers got 400
 * and a stalled body had its connection cut without an answer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, http, startService, testConfig, TOKENS, ALICE } from '../service/helpers.js';
import { rawRequest } from './raw-http.js';

afterEach(closeAll);

const presencePath = `/_matrix/client/v3/presence/${encodeURIComponent(ALICE)}/status`;

describe('408 for requests that do not arrive in time', () => {
  it('idle headers and a stalled body get 408 M_UNKNOWN within about read_timeout_ms', async () => {
    const { url } = await startService(testConfig({ service: { read_timeout_ms: 300 } }));
    const port = Number(new URL(url).port);
    const head = `PUT ${presencePath} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKENS[ALICE]}\r\ncontent-length: 100\r\n\r\n`;
    const [idleHeaders, stalledBody] = await Promise.all([
      rawRequest(port, `PUT ${presencePath} HTTP/1.1\r\nhost: x\r\n`, '', 5_000),
      rawRequest(port, head, '{"presence":', 5_000),
    ]);
    for (const r of [idleHeaders, stalledBody]) {
      expect(r.timedOut).toBe(false);
      expect(r.status).toBe(408);
      expect(r.body).toMatchObject({ errcode: 'M_UNKNOWN' });
      expect(r.ms).toBeLessThan(3_000);
    }
    // Still serving, and a body that arrives in time is fine.
    const ok = await http(url, 'PUT', presencePath, { token: TOKENS[ALICE] as string, json: { presence: 'online' } });
    expect(ok.status).toBe(200);
  });

  it('the federation endpoint answers a late transaction body with 408 too', async () => {
    const { federationAuth, federationHead } = await import('./raw-http.js');
    const secret = 'hostile-shared-secret-0123456789';
    const { url } = await startService({
      server_name: 'a.test',
      service: {
        listen: { host: '127.0.0.1', port: 0 },
        read_timeout_ms: 300,
        federation: { peers: [{ server_name: 'b.test', url: 'http://127.0.0.1:9', shared_secret: secret }] },
      },
    });
    const body = JSON.stringify({ origin: 'b.test', edus: [] });
    const path = '/_matrix/federation/v1/send/late';
    const r = await rawRequest(Number(new URL(url).port), federationHead(path, federationAuth(secret, path, 'b.test', 'a.test', body), body.length), body.slice(0, 5), 5_000);
    expect(r.status).toBe(408);
  });
});
