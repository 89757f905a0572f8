// Builds the C library and its tests with ASan+UBSan (build-asan/) and with
// TSan (build-tsan/), and runs the C test suite in each.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function run(cmd, args) {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.error || r.status !== 0) process.exit(r.status ?? 1);
}

for (const [dir, option] of [["build-asan", "SHMCHAN_ASAN"], ["build-tsan", "SHMCHAN_TSAN"]]) {
  run("cmake", ["-S", ".", "-B", dir, `-D${option}=ON`, "-DSHMCHAN_TESTS=ON"]);
  run("cmake", ["--build", dir, "-j2"]);
  run("ctest", ["--test-dir", dir, "-j2", "--output-on-failure", "--no-tests=error"]);
}
