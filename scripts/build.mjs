// Builds the C library (build/libshmchan.so) and the C tests with CMake.
// `npm run build`; `npm test` and `npm run demo` run it first (pretest, predemo).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function run(cmd, args) {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.error) {
    console.error(`shmchan build: cannot run ${cmd}: ${r.error.message} (CMake and a C compiler are needed)`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run("cmake", ["-S", ".", "-B", "build", "-DCMAKE_BUILD_TYPE=Release", "-DSHMCHAN_TESTS=ON"]);
run("cmake", ["--build", "build", "-j2"]);
