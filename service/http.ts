/**
 * Small HTTP helpers for the service: Matrix errors (`{errcode, error}`), JSON
 * responses, bounded body reading and bearer-token extraction.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** A Matrix error response. Thrown by handlers, turned into `{errcode, error}` by the router. */
export class MatrixHttpError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    readonly extra: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'MatrixHttpError';
  }
}

export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'Origin, X-Requested-With, Content-Type, Accept, Authorization',
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...CORS_HEADERS,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-cache, no-store, must-revalidate',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, error: MatrixHttpError, headers: Record<string, string> = {}): void {
  // After a body that timed out or was too large the connection cannot be reused.
  const close = error.status === 408 || error.status === 413 ? { connection: 'close' } : {};
  sendJson(res, error.status, { errcode: error.errcode, error: error.message, ...error.extra }, { ...close, ...headers });
}

/** Default deadline for a request body (and for request headers, see the server's `headersTimeout`). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** After a 408/413 answer, how long the client gets to read it before the connection is cut. */
const CLOSE_GRACE_MS = 2_000;

/**
 * Read a request body of at most `limit` bytes within `timeoutMs`. Over the
 * limit: 413 `M_TOO_LARGE` (announced lengths are refused before reading; the
 * rest is drained, up to a bound). A body that has not fully arrived in time
 * (idle or trickling): 408, answered before the connection is closed.
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): Promise<Buffer> {
  const announced = req.headers['content-length'];
  if (announced !== undefined && Number(announced) > limit) {
    return Promise.reject(new MatrixHttpError(413, 'M_TOO_LARGE', `request body too large: the limit is ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    let timedOut = false;
    // A client trickling its body does not hold the request forever: it gets
    // a 408 (sent with `connection: close` by sendError), and the connection
    // is cut shortly after in case the answer cannot be written.
    const timer = setTimeout(() => {
      timedOut = true;
      chunks.length = 0;
      reject(new MatrixHttpError(408, 'M_UNKNOWN', `the request body was not received within ${timeoutMs} ms`));
      setTimeout(() => req.destroy(), CLOSE_GRACE_MS).unref();
    }, timeoutMs);
    timer.unref();
    req.once('close', () => clearTimeout(timer));
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (tooLarge || timedOut) {
        if (size > limit * 16) req.destroy(); // stop draining a client that keeps sending
        return;
      }
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        reject(new MatrixHttpError(413, 'M_TOO_LARGE', `request body too large: the limit is ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      clearTimeout(timer);
      if (!tooLarge && !timedOut) resolve(Buffer.concat(chunks));
    });
    req.on('error', (error) => reject(error));
    req.on('aborted', () => reject(new MatrixHttpError(400, 'M_UNKNOWN', 'request aborted')));
  });
}

/**
 * Answer a request Node's HTTP parser refused (the server's `clientError`), in
 * the Matrix error shape when the socket still allows it: 408 when the
 * headers did not arrive within the server's `headersTimeout`, 431 for
 * oversized headers, 400 for anything unparsable.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const [status, reason, errcode] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'HPE_HEADER_TIMEOUT'
      ? [408, 'Request Timeout', 'M_UNKNOWN']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'M_TOO_LARGE']
        : [400, 'Bad Request', 'M_UNKNOWN'];
  const message = status === 408 ? 'the request headers were not received in time' : `malformed HTTP request: ${reason}`;
  const body = JSON.stringify({ errcode, error: message });
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  } else socket.destroy();
}

/**
 * Parse a JSON body. Anything unparsable is 400 `M_BAD_JSON` (issue 7 asks for
 * `M_BAD_JSON`; Synapse would say `M_NOT_JSON`).
 */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) throw new MatrixHttpError(400, 'M_BAD_JSON', 'Content not JSON: the request body is empty');
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new MatrixHttpError(400, 'M_BAD_JSON', 'Content not JSON.');
  }
}

/** The access token from `Authorization: Bearer …` or the `access_token` query parameter. */
export function accessTokenOf(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (m !== null) return m[1];
  }
  const q = query.get('access_token');
  return q === null || q === '' ? undefined : q;
}
