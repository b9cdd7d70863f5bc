#!/usr/bin/env node
import { main } from '../build/src/cli/main.js';

const status = main(process.argv.slice(2));
// Let buffered stdout drain before exiting.
process.exitCode = status;
