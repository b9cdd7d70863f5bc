/* A real Lua program: embeds Lua 5.4 (Debian's liblua5.4.a) and runs a script exercising tables,
 * closures, coroutines, string patterns and formatting, integer and float arithmetic, and
 * reading a file given as argv[1] through io.open. Output must match a native run. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>

static const char *script =
  "local path = ...\n"
  "local t = {}\n"
  "for i = 1, 2000 do t[i] = (i * 7919) % 1000 end\n"
  "table.sort(t, function(a, b) return a > b end)\n"
  "print('sorted', t[1], t[1000], t[2000])\n"
  "local function counter() local n = 0; return function() n = n + 1; return n end end\n"
  "local c = counter(); c(); c(); print('closure', c())\n"
  "local co = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i * i) end end)\n"
  "print('coroutine', co(), co(), co())\n"
  "local s = 'The quick brown fox jumps over the lazy dog'\n"
  "local words = {}\n"
  "for w in s:gmatch('%a+') do words[#words + 1] = w:upper() end\n"
  "print('words', #words, table.concat(words, ','))\n"
  "print('gsub', (s:gsub('o', '0')))\n"
  "print('format', string.format('%5.2f|%-6s|%x|%q', math.pi, 'ab', 255, 'x\\ny'))\n"
  "print('ints', 7 // 2, 7 % -3, 2^10, math.maxinteger, 3 | 5, 6 & 3)\n"
  "local f = assert(io.open(path, 'rb'))\n"
  "local data = f:read('a'); f:close()\n"
  "local sum = 0\n"
  "for i = 1, #data do sum = (sum * 31 + data:byte(i)) % 1000000007 end\n"
  "print('file', #data, sum)\n"
  "local fib = {} ; local function fibm(n) if n < 2 then return n end if fib[n] then return fib[n] end local v = fibm(n-1) + fibm(n-2); fib[n] = v; return v end\n"
  "print('fib', fibm(80))\n"
  "print('utf8', utf8.len('h\\u{e9}llo'), utf8.char(72, 228))\n";

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_loadstring(L, script) != LUA_OK) { fprintf(stderr, "lua: %s\n", lua_tostring(L, -1)); return 1; }
  lua_pushstring(L, argc > 1 ? argv[1] : "/dev/null");
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) { fprintf(stderr, "lua: %s\n", lua_tostring(L, -1)); return 1; }
  lua_close(L);
  return 0;
}
