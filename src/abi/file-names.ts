// File names, as Linux has them (bytes other than NUL), in JavaScript strings (UTF-16).
//
// A name is carried as the string its UTF-8 decodes to, and each byte that is no part of valid
// UTF-8 as the lone surrogate U+DC80..U+DCFF (0x80..0xFF; Python's "surrogateescape", PEP 383).
// Valid UTF-8 never decodes to a lone surrogate, so the mapping is one to one: two names that
// differ in their bytes stay different strings, and a name goes back to the host or the program
// byte for byte. Buffer's own UTF-8 decoding puts U+FFFD for every bad byte, which is neither.

/** A lone surrogate: no pair, so no UTF-8 of its own (an escaped byte, see above). */
const SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const ESCAPE_BASE = 0xdc00;

/** The string for a name's bytes (see above). */
export function nameOf(bytes: Uint8Array): string {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const s = b.toString('utf8');
  // U+FFFD: a bad byte, or a name that has the character itself; either way, decode by hand.
  return s.includes('\ufffd') ? decodeEscaping(b) : s;
}

/** A name's bytes (the inverse of nameOf). */
export function bytesOf(name: string): Buffer {
  return SURROGATE.test(name) ? encodeEscaping(name) : Buffer.from(name, 'utf8');
}

/** A name's bytes, NUL-terminated: for C strings. */
export function cStringOf(name: string): Buffer {
  return bytesOf(name + '\0');
}

/** How many bytes a name has. */
export function nameLength(name: string): number {
  return SURROGATE.test(name) ? encodeEscaping(name).length : Buffer.byteLength(name, 'utf8');
}

/** The name as a C string argument for the host's libc: the string itself (UTF-8) where that is exact. */
export function hostName(name: string): string | Buffer {
  return SURROGATE.test(name) ? cStringOf(name) : name;
}

function decodeEscaping(b: Buffer): string {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) { out += String.fromCharCode(c); i++; continue; }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    let cp = n === 1 ? c & 0x1f : n === 2 ? c & 0x0f : c & 0x07;
    let ok = n > 0;
    for (let k = 1; ok && k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (d & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are no valid UTF-8.
    if (ok && ((n === 2 && cp < 0x800) || (n === 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (!ok) { out += String.fromCharCode(ESCAPE_BASE + c); i++; continue; }
    out += String.fromCodePoint(cp);
    i += n + 1;
  }
  return out;
}

function encodeEscaping(name: string): Buffer {
  const parts: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const u = name.charCodeAt(i);
    if (u >= 0xdc80 && u <= 0xdcff) { parts.push(u - ESCAPE_BASE); continue; }
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < name.length) {
      const v = name.charCodeAt(i + 1);
      if (v >= 0xdc00 && v <= 0xdfff) {
        for (const byte of Buffer.from(name.slice(i, i + 2), 'utf8')) parts.push(byte);
        i++;
        continue;
      }
    }
    // Any other lone surrogate has no bytes of its own: U+FFFD, as Buffer writes it.
    for (const byte of Buffer.from(name[i]!, 'utf8')) parts.push(byte);
  }
  return Buffer.from(parts);
}
