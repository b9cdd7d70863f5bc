#!/usr/bin/env node
// The CLI, bundled into one file at build time and loaded with its V8 code cache (load-cli.js).
import { loadCli } from './load-cli.js';

const { main } = loadCli().exports;
// Let buffered stdout drain before exiting.
process.exitCode = main(process.argv.slice(2));
