// Who may do what to a host file, as the guest's uid sees it, and which mode bits may reach the
// host. The guest runs as uid/gid 1000 (GUEST_UID); files owned by uid 1000 or by the user
// running kvmbox are the guest's own. Permission bits are checked as Linux checks them for a
// non-root process (owner, group or other bits), also when kvmbox runs as root and the host
// would let everything through.
import { GUEST_GID, GUEST_UID } from '../abi/abi.generated.js';
import { S_IFDIR, S_IFMT, STAT } from '../abi/linux.js';
import { hostGid, hostUid } from './identity.js';

export const F_OK = 0, X_OK = 1, W_OK = 2, R_OK = 4;
export const S_ISUID = 0o4000, S_ISGID = 0o2000, S_ISVTX = 0o1000;

/** The file belongs to the guest: uid 1000, or the user running kvmbox (who creates the guest's files). */
export function owns(st: Buffer): boolean {
  const uid = st.readUInt32LE(STAT.uid);
  return uid === GUEST_UID || uid === hostUid;
}

/** Whether a process of uid/gid 1000 may access the file with `want` (R_OK|W_OK|X_OK bits). */
export function permitted(st: Buffer, want: number): boolean {
  if (want === 0) return true;
  const mode = st.readUInt32LE(STAT.mode);
  const gid = st.readUInt32LE(STAT.gid);
  const bits = owns(st) ? (mode >> 6) & 7 : gid === GUEST_GID || gid === hostGid ? (mode >> 3) & 7 : mode & 7;
  return (bits & want) === want;
}

/**
 * The permission bits the guest may give a host file (chmod, or a mode to create it with). kvmbox
 * often runs as root, and the guest's files are the user's: set-user-ID and set-group-ID never
 * reach the host, and the sticky bit only on directories. Whatever the mode or the umask says.
 */
export function hostMode(mode: number, isDir: boolean): number {
  return mode & (isDir ? 0o777 | S_ISVTX : 0o777);
}

/** hostMode for the file a struct stat describes. */
export function hostModeFor(st: Buffer, mode: number): number {
  return hostMode(mode, (st.readUInt32LE(STAT.mode) & S_IFMT) === S_IFDIR);
}
