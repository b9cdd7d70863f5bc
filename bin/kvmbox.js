#!/usr/bin/env node
// The CLI bundled into one module at build time (scripts/bundle-cli.mjs): a faster start.
import { main } from '../build/src/cli/kvmbox.bundle.js';

const status = main(process.argv.slice(2));
// Let buffered stdout drain before exiting.
process.exitCode = status;
