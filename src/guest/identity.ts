// How host owners appear to the guest. The guest runs as uid/gid 1000 (GUEST_UID/GUEST_GID);
// the user and group running kvmbox are shown as 1000, so the files the guest creates are its own
// (as after `docker run --user`). Other owners are shown as they are.
import { GUEST_GID, GUEST_UID } from './abi.generated.js';
import { STAT } from './linux.js';

export const hostUid = process.geteuid?.() ?? -1;
export const hostGid = process.getegid?.() ?? -1;

/** Rewrite a struct stat's owner in place, as the guest sees it. */
export function mapOwner(st: Buffer): Buffer {
  if (st.readUInt32LE(STAT.uid) === hostUid) st.writeUInt32LE(GUEST_UID, STAT.uid);
  if (st.readUInt32LE(STAT.gid) === hostGid) st.writeUInt32LE(GUEST_GID, STAT.gid);
  return st;
}
