// SQLite: create DIR/bench.db, insert N rows (default 20000) in one transaction, read them back and
// print a checksum that depends on every row, so a wrong byte anywhere changes the output.
// Usage: sqlite DIR [N [SYNC]]   SYNC: off, normal or full (SQLite's default), set with PRAGMA synchronous
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static sqlite3 *db;

static void check(int rc, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, "sqlite: %s: %s (%d)\n", what, sqlite3_errmsg(db), rc);
    exit(1);
  }
}

static void exec(const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : "?");
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [ROWS [off|normal|full]]\n", argv[0]);
    return 2;
  }
  long rows = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
  char path[4096];
  snprintf(path, sizeof path, "%s/bench.db", argv[1]);
  unlink(path);
  check(sqlite3_open(path, &db), "open");
  if (argc > 3) {
    const char *mode = argv[3];
    if (strcasecmp(mode, "off") && strcasecmp(mode, "normal") && strcasecmp(mode, "full")) {
      fprintf(stderr, "sqlite: SYNC must be off, normal or full, not '%s'\n", mode);
      return 2;
    }
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", mode);
    exec(pragma);
  }
  exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value INTEGER NOT NULL)");

  exec("BEGIN");
  sqlite3_stmt *ins;
  check(sqlite3_prepare_v2(db, "INSERT INTO t (id, name, value) VALUES (?, ?, ?)", -1, &ins, NULL), "prepare insert");
  uint64_t x = 88172645463325252ull; // xorshift64 state: deterministic pseudo-random values
  for (long i = 1; i <= rows; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    char name[64];
    int len = snprintf(name, sizeof name, "row-%ld-%016llx", i, (unsigned long long)x);
    sqlite3_bind_int64(ins, 1, i);
    sqlite3_bind_text(ins, 2, name, len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 3, (sqlite3_int64)(x >> 16));
    check(sqlite3_step(ins), "insert");
    sqlite3_reset(ins);
  }
  sqlite3_finalize(ins);
  exec("COMMIT");

  sqlite3_stmt *sel;
  check(sqlite3_prepare_v2(db, "SELECT id, name, value FROM t ORDER BY id", -1, &sel, NULL), "prepare select");
  uint64_t h = 1469598103934665603ull; // FNV-1a over every column of every row
  long seen = 0;
  int rc;
  while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
    sqlite3_int64 id = sqlite3_column_int64(sel, 0);
    const unsigned char *name = sqlite3_column_text(sel, 1);
    sqlite3_int64 value = sqlite3_column_int64(sel, 2);
    for (const unsigned char *p = name; *p; p++) h = (h ^ *p) * 1099511628211ull;
    h = (h ^ (uint64_t)id) * 1099511628211ull;
    h = (h ^ (uint64_t)value) * 1099511628211ull;
    seen++;
  }
  check(rc, "select");
  sqlite3_finalize(sel);
  check(sqlite3_close(db), "close");
  printf("rows=%ld checksum=%016llx\n", seen, (unsigned long long)h);
  return seen == rows ? 0 : 1;
}
