#!/usr/bin/env node
/**
 * The `shmchan` executable: `shmchan <command> [options]`. See main.ts.
 *
 *   bun src/cli/shmchan.ts --help
 *   deno run --allow-ffi --allow-net --allow-env --allow-read --allow-write=/tmp --allow-sys src/cli/shmchan.ts --help
 */
import process from "node:process";
import { main } from "./main.ts";

const status = await main(process.argv.slice(2));
process.exit(status);
