// How host owners appear to the guest. The guest runs as uid/gid 1000 (GUEST_UID/GUEST_GID);
// the user and group running kvmbox are shown as 1000, so the files the guest creates are its own
// (as after `docker run --user`). Other owners are shown as they are.
import { GUEST_GID, GUEST_UID } from '../abi/abi.generated.js';
import { STAT } from '../abi/linux.js';

export const hostUid = process.geteuid?.() ?? -1;
export const hostGid = process.getegid?.() ?? -1;

/** Rewrite a struct stat's owner in place (the one at offset off), as the guest sees it. */
export function mapOwner(st: Buffer, off = 0): Buffer {
  if (st.readUInt32LE(off + STAT.uid) === hostUid) st.writeUInt32LE(GUEST_UID, off + STAT.uid);
  if (st.readUInt32LE(off + STAT.gid) === hostGid) st.writeUInt32LE(GUEST_GID, off + STAT.gid);
  return st;
}
