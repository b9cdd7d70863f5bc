// --system (API: system: true): the host's own system, granted read-only, so that its dynamically
// linked programs run (ld.so, the libraries, the configuration glibc, perl and python3 read at
// start-up). One list, SYSTEM_GRANTS, used by the run options, the tests and the README's table.
// It holds no secret: never /etc/shadow, /etc/gshadow, /etc/sudoers, /etc/ssh or /etc/ssl/private.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';

/**
 * What --system grants read-only, at the same path, when it exists on the host. Directories are
 * granted whole, files singly. `/etc/python3.*` stands for each versioned /etc/python3.N
 * directory, `/etc/java-*` for each /etc/java-N-openjdk, `/etc/ImageMagick-*` for each
 * /etc/ImageMagick-N. /etc/passwd and /etc/group are granted
 * only when they hold no password hash (the second field of every line is x, * or ! as on Debian,
 * where hashes are in /etc/shadow).
 */
export const SYSTEM_GRANTS: readonly string[] = [
  // Programs and libraries (on a merged-/usr system /bin, /sbin, /lib* are symlinks into /usr;
  // each is then granted as the directory it leads to).
  '/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32',
  // ld.so's cache and search path.
  '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d',
  // Names of users and groups (no hashes), and how to look them up.
  '/etc/passwd', '/etc/group', '/etc/nsswitch.conf',
  // Host names and services, for getaddrinfo and getservbyname (a sandbox has no network anyway).
  '/etc/hosts', '/etc/host.conf', '/etc/resolv.conf', '/etc/gai.conf', '/etc/protocols', '/etc/services',
  // The system's identity, time zone and file types.
  '/etc/os-release', '/etc/debian_version', '/etc/localtime', '/etc/timezone', '/etc/mime.types', '/etc/magic',
  // Debian's alternatives (/usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk...).
  '/etc/alternatives',
  // Interpreters' configuration: perl's @INC holds /etc/perl; python3's sitecustomize; the JVM's
  // jvm.cfg and security properties (Debian links /usr/lib/jvm/*/conf there); php.ini and its
  // modules' ini files; ImageMagick's policy and delegates.
  '/etc/perl', '/etc/python3', '/etc/python3.*', '/etc/java-*', '/etc/php', '/etc/ImageMagick-*',
  // Fontconfig's configuration (programs that draw text), the shells' start-up files and readline's.
  '/etc/fonts', '/etc/profile', '/etc/bash.bashrc', '/etc/inputrc',
  // man-db's search path and groff's local macros (man).
  '/etc/manpath.config', '/etc/groff',
  // Terminal descriptions, public CA certificates and OpenSSL's configuration (not /etc/ssl/private).
  '/etc/terminfo', '/etc/ssl/certs', '/etc/ssl/openssl.cnf',
];

/** Whether a passwd or group file holds a password hash (anything but x, *, ! or empty in field 2). */
function holdsHashes(path: string): boolean {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { return true; }
  return text.split('\n').some((line) => {
    if (line === '' || line.startsWith('#')) return false;
    const pw = line.split(':')[1] ?? '';
    return !(pw === '' || pw === 'x' || pw === '*' || /^!+\*?$/.test(pw));
  });
}

/** The patterns of SYSTEM_GRANTS: which names in /etc each stands for. */
const VERSIONED: Readonly<Record<string, RegExp>> = {
  '/etc/python3.*': /^python3\.\d+$/, '/etc/java-*': /^java-\d+-openjdk$/, '/etc/ImageMagick-*': /^ImageMagick-\d+$/,
};

/**
 * What the list depends on: the directories that hold its entries (a name added, removed or
 * replaced, a symlink retargeted, changes their times) and the two files checked for hashes.
 */
const DEPENDS_ON = ['/', '/etc', '/etc/ssl', '/etc/passwd', '/etc/group'];

let cached: { key: string; grants: readonly string[] } | null = null;

/**
 * SYSTEM_GRANTS as they exist on this host: patterns expanded, missing paths and hashed files
 * left out. Worked out again only when one of DEPENDS_ON changed (five stats, ~300 us less per
 * run of a warm service).
 */
export function systemGrants(): string[] {
  const key = DEPENDS_ON.map((p) => {
    try {
      const st = statSync(p, { bigint: true });
      return `${st.dev}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}:${st.size}`;
    } catch {
      return '-';
    }
  }).join(' ');
  if (cached?.key !== key) cached = { key, grants: listSystemGrants() };
  return [...cached.grants];
}

function listSystemGrants(): string[] {
  const out: string[] = [];
  let etc: string[] | null = null;
  for (const p of SYSTEM_GRANTS) {
    const pattern = VERSIONED[p];
    if (pattern) {
      if (!etc) {
        try { etc = readdirSync('/etc').sort(); } catch { etc = []; }
      }
      for (const n of etc) if (pattern.test(n)) out.push(`/etc/${n}`);
      continue;
    }
    if (!existsSync(p)) continue;
    if ((p === '/etc/passwd' || p === '/etc/group') && holdsHashes(p)) continue;
    out.push(p);
  }
  return out;
}
