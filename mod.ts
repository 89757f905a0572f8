/**
 * shmchan: keyed message channels between processes, in POSIX shared memory,
 * for Node.js, Deno and Bun on Linux. See README.md.
 *
 * This is the entry for imports from the sources (a checkout); the package
 * "shmchan" serves the same API compiled (dist/index.js, from src/index.ts).
 */
export * from "./src/index.ts";
