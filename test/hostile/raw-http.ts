/**
 * Raw HTTP over a socket for the hostile tests: send exactly the bytes given
 * (headers without a body, half a body, nothing at all) and read what comes
 * back, with a deadline. Also signs federation requests the way a peer does.
 */
import { createHmac } from 'node:crypto';
import { connect } from 'node:net';

export interface RawResponse {
  /** HTTP status, or 0 when the connection closed without a response (or the deadline passed). */
  readonly status: number;
  readonly body: unknown;
  readonly ms: number;
  readonly timedOut: boolean;
}

/** Send `head` (+ optional `body` bytes) and wait for the response until `deadlineMs`; the socket stays open meanwhile. */
export function rawRequest(port: number, head: string, body = '', deadlineMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let got = '';
    let done = false;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      const sep = got.indexOf('\r\n\r\n');
      let parsed: unknown;
      try {
        parsed = sep < 0 ? undefined : (JSON.parse(got.slice(sep + 4)) as unknown);
      } catch {
        parsed = undefined;
      }
      resolve({ status: m === null ? 0 : Number(m[1]), body: parsed, ms: Date.now() - t0, timedOut });
    };
    const socket = connect(port, '127.0.0.1', () => socket.write(head + body));
    const timer = setTimeout(() => finish(true), deadlineMs);
    socket.on('data', (d: Buffer) => {
      got += d.toString('utf8');
      const sep = got.indexOf('\r\n\r\n');
      if (sep < 0) return;
      const len = /content-length: (\d+)/i.exec(got.slice(0, sep));
      if (len !== null && Buffer.byteLength(got.slice(sep + 4)) >= Number(len[1])) finish(false);
    });
    socket.on('close', () => finish(false));
    socket.on('error', () => finish(false));
  });
}

/** The `Authorization` header of a federation transaction (header signature `hsig` and body signature `sig`). */
export function federationAuth(secret: string, path: string, origin: string, destination: string, body: string, announcedLength = Buffer.byteLength(body)): string {
  const hmac = (text: string) => createHmac('sha256', secret).update(text).digest('base64url');
  const hsig = hmac(`headers\nPUT\n${path}\n${origin}\n${destination}\n${announcedLength}`);
  const sig = hmac(`PUT\n${path}\n${origin}\n${destination}\n${body}`);
  return `X-Presence-HMAC origin="${origin}",destination="${destination}",hsig="${hsig}",sig="${sig}"`;
}

/** The request head of a federation PUT announcing `length` body bytes. */
export function federationHead(path: string, authorization: string, length: number): string {
  return `PUT ${path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\nauthorization: ${authorization}\r\ncontent-length: ${length}\r\n\r\n`;
}
