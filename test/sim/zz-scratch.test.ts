import { Progress } from "../../src/core/progress.ts";
const P = Progress.prototype as any;
const orig = P.maybeDecrTo;
P.maybeDecrTo = function (rejected: number, _hint: number) { return orig.call(this, rejected, rejected - 1); };
await import("./mit.test.ts");
