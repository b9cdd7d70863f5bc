// The concurrency rows of the bench, as a test file the project's KVM lane can run (the lane runs
// test files only): node --test build/bench/lane-concurrency.js prints the table.
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { concurrencyTable, measureConcurrency } from './concurrency.js';

const OUT = fileURLToPath(new URL('../../bench/out/', import.meta.url));

test('concurrency rows (printed, not judged)', async () => {
  const c = await measureConcurrency({
    truePath: `${OUT}true`, spinPath: `${OUT}spin`, spinRounds: Number(process.env.SPIN_ROUNDS ?? 20), reps: 2, batch: 20,
  });
  console.log(concurrencyTable(c));
  console.log(JSON.stringify(c));
});
