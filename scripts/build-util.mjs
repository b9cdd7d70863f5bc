// Helpers shared by the scripts that build test and bench programs.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

/** True when cmd is on PATH. */
export function onPath(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** True when `out` exists and is newer than `src`. */
export function upToDate(src, out) {
  return existsSync(out) && statSync(out).mtimeMs > statSync(src).mtimeMs;
}
