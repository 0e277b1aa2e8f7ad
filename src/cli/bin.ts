#!/usr/bin/env node
import { runCli } from './main.js';

// Every command closes what it opened before it returns; exiting here makes sure that a client
// library's lingering timer (a NATS reconnect to a server that is gone) cannot hold the process.
process.exit(await runCli(process.argv.slice(2)));
