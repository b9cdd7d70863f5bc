// /proc/net/tcp, tcp6, udp, udp6 and unix: the sandbox's own sockets, in Linux's text, which
// netstat, ss (without sock_diag), fuser and lsof read; /proc/net/dev: lo and its traffic. Each lists the sockets that the processes
// of the sandbox hold (an IP socket once it has a port, as Linux lists only hashed ones), with
// the guest's uid and the inode that fstat and /proc/PID/fd show; queues and timers are zero.
import { STAT, STAT_SIZE } from '../abi/linux.js';
import { GUEST_UID } from '../abi/abi.generated.js';
import type { OpenFile } from '../fs/open-file.js';
import { AF_INET, InetDatagram, InetStream, loopbackTraffic, type InetAddress } from '../fs/inet-socket.js';
import { SocketEnd } from '../fs/socket-pair.js';
import { UnixDatagram } from '../fs/unix-dgram.js';
import { UnixSocket } from '../fs/unix-socket.js';
import type { Process } from './process.js';

export const PROC_NET_FILES = ['dev', 'tcp', 'tcp6', 'udp', 'udp6', 'unix'];

const TCP_ESTABLISHED = 0x01, TCP_CLOSE = 0x07, TCP_LISTEN = 0x0a;
const SS_UNCONNECTED = 1, SS_CONNECTED = 3;
/** __SO_ACCEPTCON: a listening AF_UNIX socket's flag in /proc/net/unix. */
const SO_ACCEPTCON = 0x10000;

const hex = (n: number, width: number): string => n.toString(16).toUpperCase().padStart(width, '0');

/** Every open file of the sandbox's live processes, once each. */
function openFiles(p: Process): Set<OpenFile> {
  const files = new Set<OpenFile>();
  for (const q of p.kernel.all()) {
    if (q.zombie) continue;
    for (const fd of q.fds.numbers()) {
      const f = q.fds.peek(fd);
      if (f) files.add(f);
    }
  }
  return files;
}

function inode(f: OpenFile): bigint {
  const st = Buffer.alloc(STAT_SIZE);
  f.stat(st);
  return st.readBigUInt64LE(STAT.ino);
}

/** An address as Linux prints it there: the 32-bit words of the address in host order, and the port. */
function netAddress(a: InetAddress | null, v6: boolean): string {
  const ip = a?.ip ?? Buffer.alloc(v6 ? 16 : 4);
  let words = '';
  for (let i = 0; i < ip.length; i += 4) words += hex(ip.readUInt32LE(i), 8);
  return `${words}:${hex(a?.port ?? 0, 4)}`;
}

/** The lines of tcp, tcp6, udp or udp6. */
function inetLines(p: Process, name: string): string {
  const v6 = name.endsWith('6'), tcp = name.startsWith('tcp');
  const header = tcp
    ? (v6 ? '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
      : '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n')
    : (v6 ? '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n'
      : '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n');
  let out = header, sl = 0;
  for (const file of openFiles(p)) {
    const f = tcp ? (file instanceof InetStream ? file : null) : (file instanceof InetDatagram ? file : null);
    if (!f || f.local === null || (f.family === AF_INET) === v6) continue;
    const st = f instanceof InetStream ? (f.listening ? TCP_LISTEN : f.connected ? TCP_ESTABLISHED : TCP_CLOSE) : f.connected ? TCP_ESTABLISHED : TCP_CLOSE;
    const addrs = `${netAddress(f.local, v6)} ${netAddress(f.connected ? f.remote : null, v6)}`;
    const common = `${hex(st, 2)} 00000000:00000000 00:00000000 00000000 ${String(GUEST_UID).padStart(5)}        0 ${inode(f)}`;
    out += tcp ? `${String(sl).padStart(4)}: ${addrs} ${common} 1 0000000000000000 100 0 0 10 0\n`
      : `${String(sl).padStart(5)}: ${addrs} ${common} 2 0000000000000000 0\n`;
    sl++;
  }
  return out;
}

/** The lines of unix: named sockets, connections and socketpair ends. */
function unixLines(p: Process): string {
  let out = 'Num       RefCount Protocol Flags    Type St Inode Path\n';
  for (const f of openFiles(p)) {
    let flags = 0, type: number, st: number, name: string | null = null;
    if (f instanceof InetStream || f instanceof InetDatagram) continue;
    if (f instanceof UnixSocket) {
      type = 1;
      flags = f.listening ? SO_ACCEPTCON : 0;
      st = f.connected ? SS_CONNECTED : SS_UNCONNECTED;
      name = f.address;
    } else if (f instanceof UnixDatagram) {
      type = 2;
      st = f.connected ? SS_CONNECTED : SS_UNCONNECTED;
      name = f.address;
    } else if (f instanceof SocketEnd) {
      type = f.type;
      st = SS_CONNECTED;
    } else {
      continue;
    }
    const path = name === null ? '' : ` ${name.startsWith('\0') ? '@' + name.slice(1) : name}`;
    out += `0000000000000000: 00000002 00000000 ${hex(flags, 8)} ${hex(type, 4)} ${hex(st, 2)} ${inode(f)}${path}\n`;
  }
  return out;
}

/** The text of /proc/net/NAME (one of PROC_NET_FILES). */
export function procNetText(p: Process, name: string): string {
  if (name === 'dev') return devLines(p);
  return name === 'unix' ? unixLines(p) : inetLines(p, name);
}

/**
 * /proc/net/dev: the one interface, lo, with what went over it (loopbackTraffic: each packet
 * is transmitted and received), as ifconfig, netstat -i and psutil read it.
 */
function devLines(p: Process): string {
  const t = loopbackTraffic(p.kernel.unixNames);
  return 'Inter-|   Receive                                                |  Transmit\n' +
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
    `    lo: ${String(t.bytes).padStart(7)} ${String(t.packets).padStart(7)}    0    0    0     0          0         0 ` +
    `${String(t.bytes).padStart(8)} ${String(t.packets).padStart(7)}    0    0    0     0       0          0\n`;
}
