/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum zlib and
 * PNG use. `crc32(Buffer.from('123456789'))` is `0xCBF43926`. Uses zlib's
 * native `crc32` where Node has it (20.15+, 22.2+), a table otherwise.
 */
import * as zlib from 'node:zlib';

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The table-driven CRC-32 of `bytes[start, end)`. */
export function crc32Table(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

type NativeCrc = (data: Uint8Array, value?: number) => number;
const native = (zlib as unknown as { crc32?: NativeCrc }).crc32;
const useNative = typeof native === 'function' && native(Buffer.from('123456789')) === 0xcbf43926;

/** CRC-32 of `bytes[start, end)`, as an unsigned 32-bit integer. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (useNative) return (native as NativeCrc)(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end)) >>> 0;
  return crc32Table(bytes, start, end);
}
