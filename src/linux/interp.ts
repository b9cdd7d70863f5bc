// A dynamically linked program's interpreter (PT_INTERP, glibc's ld.so): found in the guest's
// file namespace, through the grants, exactly as the program would see it. Reading it is exec's
// work, so its failures are exec's: status 127 when it is missing, 126 when it cannot be used,
// each with a message that names it and says how to grant it.
import { existsSync } from 'node:fs';
import * as libc from '../kvm/libc.js';
import { E, Errno } from '../abi/linux.js';
import { nameOf } from '../abi/file-names.js';
import { readWhole, type Vfs } from '../fs/vfs.js';
import { NotRunnableError } from './elf.js';

/** The interpreter does not exist in the guest's namespace (exit status 127, like Linux's ENOENT from execve). */
export class InterpreterNotFoundError extends Error {
  readonly exitStatus = 127;
  constructor(message: string) {
    super(message);
    this.name = 'InterpreterNotFoundError';
  }
}

/**
 * The interpreter exists on the host but is not granted (126 for the user). The guest must not
 * tell it from a missing one: an execve in the sandbox gets ENOENT for both.
 */
export class InterpreterNotGrantedError extends NotRunnableError {}

/** Bytes of a script's first line that are read (Linux's BINPRM_BUF_SIZE), and how many interpreters may be scripts in turn. */
const SHEBANG_BYTES = 256;
export const MAX_SCRIPT_DEPTH = 4;

/**
 * A script's `#!interpreter [argument]` line, as Linux's execve reads it: the interpreter's path
 * and the rest of the line as one optional argument. null when image is not a script; throws
 * NotRunnableError when the line names no interpreter.
 */
export function shebang(image: Buffer): { interp: string; arg: string | null } | null {
  if (image[0] !== 0x23 || image[1] !== 0x21) return null;
  const head = image.subarray(2, SHEBANG_BYTES);
  const nl = head.indexOf(10);
  // Names as nameOf carries them; the line's ends trimmed of blanks only.
  const line = nameOf(head.subarray(0, nl < 0 ? head.length : nl)).replace(/^[ \t]+|[ \t\r\v\f]+$/g, '');
  // Split at a blank only (JavaScript's \s would split at U+00A0 and other spaces of a name).
  const m = /^([^ \t]+)(?:[ \t]+(.*))?$/s.exec(line);
  if (!m) throw new NotRunnableError('its #! line names no interpreter');
  return { interp: m[1]!, arg: m[2] ?? null };
}

/** The argv a script's interpreter gets: [interpreter, its argument, the script's path, the script's arguments...]. */
export function scriptArgv(line: { interp: string; arg: string | null }, script: string, argv: readonly string[]): string[] {
  return [line.interp, ...(line.arg !== null ? [line.arg] : []), script, ...argv.slice(1)];
}

/** Largest interpreter kvmbox reads (glibc's ld.so is about 250 KiB). */
const MAX_INTERPRETER = 64 << 20;
/** Interpreter images by host identity, reused while the file is unchanged. */
const images = new Map<string, Buffer>();
const IMAGE_ENTRIES = 4;

const GRANT_HINT = 'grant the system directories read-only, e.g. --ro /lib64 --ro /lib --ro /usr (Debian, merged /usr)';

/**
 * Read the interpreter `path` (absolute, from the program's PT_INTERP) through the guest's grants.
 * `program` names the program in messages.
 */
export function readInterpreter(vfs: Vfs, path: string, program: string): Buffer {
  let file: { fd: number; size: number; identity: string };
  try {
    file = vfs.openRegular(path);
  } catch (e) {
    if (!(e instanceof Errno)) throw e;
    if (e.errno === E.ENOENT || e.errno === E.ENOTDIR) {
      // Only the user reads this message, so saying whether the host has the file leaks nothing to the guest.
      if (existsSync(path)) {
        throw new InterpreterNotGrantedError(`${program}: its interpreter ${path} is not granted to the program; ${GRANT_HINT}`);
      }
      throw new InterpreterNotFoundError(`${program}: its interpreter ${path} does not exist; ${GRANT_HINT}`);
    }
    if (e.errno === E.EISDIR || e.errno === E.ENXIO) {
      throw new NotRunnableError(`${program}: its interpreter ${path} is not a regular file`);
    }
    throw new NotRunnableError(`${program}: cannot open its interpreter ${path}: ${libc.errnoName(e.errno)}`);
  }
  try {
    if (file.size > MAX_INTERPRETER) throw new NotRunnableError(`${program}: its interpreter ${path} is too large (${file.size} bytes)`);
    const hit = images.get(file.identity);
    if (hit) return hit;
    let image: Buffer | null;
    try {
      image = readWhole(file.fd, file.size);
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      throw new NotRunnableError(`${program}: cannot read its interpreter ${path}: ${libc.errnoName(e.errno)}`);
    }
    if (!image) throw new NotRunnableError(`${program}: its interpreter ${path} changed while it was read`);
    if (images.size >= IMAGE_ENTRIES) images.delete(images.keys().next().value!);
    images.set(file.identity, image);
    return image;
  } finally {
    libc.closeFd(file.fd);
  }
}
