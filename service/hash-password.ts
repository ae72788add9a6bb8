/**
 * `npm run hash-password`: print a `$scrypt$…` hash for `service.users[].password_hash`.
 * Reads the password from standard input (first line), so it stays out of the
 * shell history:   printf '%s' 'correct horse' | npm run -s hash-password
 */
import { hashPassword } from './password.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('password (then Enter): ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    if (process.stdin.isTTY && chunks.some((c) => c.includes(10))) break;
  }
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

const password = await readStdin();
if (password.length === 0) {
  process.stderr.write('no password given on standard input\n');
  process.exit(2);
}
process.stdout.write(`${await hashPassword(password)}\n`);
