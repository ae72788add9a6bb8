/**
 * Mapping of everything a handler can throw to a Matrix `{errcode, error}`
 * response (`MatrixHttpError`), and the shared path-parameter parsers whose
 * failures are 400s.
 */
import { EngineStoppedError, ForbiddenError, InvalidInputError, RateLimitedError, UserIdSchema, isPresenceError } from '../src/index.js';
import { MatrixHttpError } from './http.js';

/** Map anything thrown by a handler to a Matrix error. */
export function toMatrixError(error: unknown): MatrixHttpError {
  if (error instanceof MatrixHttpError) return error;
  if (error instanceof RateLimitedError) {
    return new MatrixHttpError(429, 'M_LIMIT_EXCEEDED', 'Too many requests', { retry_after_ms: error.retryAfterMs });
  }
  if (error instanceof ForbiddenError) return new MatrixHttpError(403, 'M_FORBIDDEN', error.message);
  if (error instanceof InvalidInputError) {
    if (error.field === 'presence') return new MatrixHttpError(400, 'M_INVALID_PARAM', `Invalid presence state: ${error.message}`);
    return new MatrixHttpError(400, 'M_INVALID_PARAM', error.message);
  }
  if (error instanceof EngineStoppedError) return new MatrixHttpError(503, 'M_UNKNOWN', 'The server is shutting down');
  if (isPresenceError(error)) return new MatrixHttpError(500, 'M_UNKNOWN', error.message);
  return new MatrixHttpError(500, 'M_UNKNOWN', 'Internal server error');
}

/** Percent-decode one path segment; malformed encodings are 400. */
export function decodeParam(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new MatrixHttpError(400, 'M_INVALID_PARAM', 'malformed percent-encoding in the path');
  }
}

/** A user id from the path, or 400 `M_INVALID_PARAM`. */
export function parseUserParam(value: string | undefined): string {
  const r = UserIdSchema.safeParse(value);
  if (!r.success) throw new MatrixHttpError(400, 'M_INVALID_PARAM', `Invalid user id: ${r.error.issues[0]?.message ?? 'malformed'}`);
  return r.data;
}
