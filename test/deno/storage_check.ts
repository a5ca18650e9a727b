/**
 * Opens a data directory with FileStorage under Deno (recovering it: torn tails cut off,
 * stale locks taken over), loads it and prints one JSON line: the state's digest and the lines
 * the storage logged. For test/integration/deno-file-storage.test.ts.
 *
 *   deno run --allow-read=DIR --allow-write=DIR --allow-sys=hostname test/deno/storage_check.ts DIR
 */
import { FileStorage } from "../../adapters/deno/file-storage.ts";
import { digestState } from "./storage_digest.ts";

const dir = Deno.args[0];
const log: string[] = [];
const storage = await FileStorage.open(dir, { segmentBytes: 16 * 1024, log: (line) => log.push(line) });
try {
  console.log(JSON.stringify({ ...(await digestState(await storage.load())), log }));
} finally {
  await storage.close();
}
