/* A real SQLite program: create DIR/demo.db, insert N rows (default 20000) in one transaction,
 * query them (aggregates, an index, a join, ordering, text functions) and print the results.
 * Run natively and in kvmbox, it must print the same and leave a byte-identical database. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

static sqlite3 *db;

static void exec(const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : "?");
    exit(1);
  }
}

static int print_row(void *unused, int n, char **vals, char **names) {
  (void)unused;
  for (int i = 0; i < n; i++) printf("%s%s=%s", i ? " " : "", names[i], vals[i] ? vals[i] : "NULL");
  printf("\n");
  return 0;
}

static void query(const char *sql) {
  char *err = NULL;
  printf("-- %s\n", sql);
  if (sqlite3_exec(db, sql, print_row, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : "?");
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: sqlite-demo DIR [N]\n"); return 2; }
  int n = argc > 2 ? atoi(argv[2]) : 20000;
  char path[4096];
  snprintf(path, sizeof path, "%s/demo.db", argv[1]);
  if (sqlite3_open(path, &db) != SQLITE_OK) { fprintf(stderr, "sqlite: open %s: %s\n", path, sqlite3_errmsg(db)); return 1; }
  exec("CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, price REAL)");
  exec("CREATE TABLE grp(id INTEGER PRIMARY KEY, label TEXT)");
  exec("BEGIN");
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db, "INSERT INTO item(name, grp, price) VALUES (?, ?, ?)", -1, &st, NULL);
  unsigned x = 12345;
  for (int i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    char name[32];
    snprintf(name, sizeof name, "item-%05d-%u", i, (x >> 8) % 1000);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, (int)((x >> 4) % 37));
    sqlite3_bind_double(st, 3, ((x >> 12) % 100000) / 100.0);
    if (sqlite3_step(st) != SQLITE_DONE) { fprintf(stderr, "sqlite: insert: %s\n", sqlite3_errmsg(db)); return 1; }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  for (int g = 0; g < 37; g++) {
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO grp VALUES (%d, 'group-%02d')", g, g);
    exec(sql);
  }
  exec("COMMIT");
  exec("CREATE INDEX item_grp ON item(grp)");
  query("SELECT count(*) AS n, sum(price) AS total, min(name) AS first, max(name) AS last FROM item");
  query("SELECT g.label, count(*) AS n, round(avg(i.price), 2) AS avg FROM item i JOIN grp g ON g.id = i.grp GROUP BY g.id ORDER BY n DESC, g.id LIMIT 5");
  query("SELECT upper(substr(name, 1, 4)) AS p, length(name) AS len, count(*) AS n FROM item GROUP BY p, len ORDER BY len");
  query("SELECT id, name, price FROM item WHERE grp = 7 ORDER BY price DESC, id LIMIT 3");
  query("PRAGMA integrity_check");
  sqlite3_close(db);
  return 0;
}
