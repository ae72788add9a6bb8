/**
 * Login passwords: scrypt hashes (node:crypto) in the config as
 * `$scrypt$n=<N>,r=<r>,p=<p>$<salt>$<key>` (base64url), or plain text for
 * tests and demos (the service warns about those at start-up).
 */
import { randomBytes, scrypt, timingSafeEqual, createHash, type ScryptOptions } from 'node:crypto';

export const SCRYPT_HASH_PATTERN = /^\$scrypt\$n=(\d{1,8}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9_-]{16,128})\$([A-Za-z0-9_-]{43,128})$/;

export type PasswordCredential = { readonly kind: 'scrypt'; readonly hash: string } | { readonly kind: 'plain'; readonly password: string };

/** Cost of new hashes: one of OWASP's equivalent minimums (N=2^14, r=8, p=5), at 16 MiB per hash rather than 128. */
const DEFAULTS = { n: 16_384, r: 8, p: 5, keyLength: 32 } as const;

function scryptAsync(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyLength, options, (error, key) => (error === null ? resolve(key) : reject(error)));
  });
}

const maxmemFor = (n: number, r: number): number => 256 * n * r;

/** Why a stored hash's parameters are unusable, or undefined when they are fine (checked at config load). */
export function scryptParamsProblem(hash: string): string | undefined {
  const m = SCRYPT_HASH_PATTERN.exec(hash);
  if (m === null) return 'not a $scrypt$ hash';
  const [n, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (n < 2 || (n & (n - 1)) !== 0) return `n=${n} must be a power of two above 1`;
  if (r < 1 || p < 1 || p > 16) return 'r must be ≥ 1 and p between 1 and 16';
  if (128 * n * r > 256 * 1024 * 1024) return `n=${n}, r=${r} need more than 256 MiB per login`;
  return undefined;
}

export interface ScryptParams {
  readonly n: number;
  readonly r: number;
  readonly p: number;
}

/** The parameters of a stored hash (undefined when it is not one). */
export function scryptParamsOf(hash: string): ScryptParams | undefined {
  const m = SCRYPT_HASH_PATTERN.exec(hash);
  return m === null ? undefined : { n: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
}

/** Hash a password for `service.users[].password_hash` (lower `params` only for tests). */
export async function hashPassword(password: string, params: ScryptParams = DEFAULTS): Promise<string> {
  const salt = randomBytes(16);
  const { n, r, p } = params;
  const key = await scryptAsync(password, salt, DEFAULTS.keyLength, { N: n, r, p, maxmem: maxmemFor(n, r) });
  return `$scrypt$n=${n},r=${r},p=${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Whether `password` matches the credential (constant time in the compared bytes). A malformed hash never matches. */
export async function verifyPassword(credential: PasswordCredential, password: string): Promise<boolean> {
  if (credential.kind === 'plain') {
    // Compare digests so the comparison does not leak the length.
    const a = createHash('sha256').update(credential.password.normalize('NFKC')).digest();
    const b = createHash('sha256').update(password.normalize('NFKC')).digest();
    return timingSafeEqual(a, b);
  }
  const m = SCRYPT_HASH_PATTERN.exec(credential.hash);
  if (m === null) return false;
  const [n, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const salt = Buffer.from(m[4] ?? '', 'base64url');
  const expected = Buffer.from(m[5] ?? '', 'base64url');
  const key = await scryptAsync(password, salt, expected.length, { N: n, r, p, maxmem: maxmemFor(n, r) });
  return timingSafeEqual(key, expected);
}
