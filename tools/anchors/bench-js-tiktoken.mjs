// bench-js-tiktoken.mjs FILE [REPEATS] — js-tiktoken's GPT-2 encoding throughput on FILE, as JSON on one line.
// Same measurement as `attnbench tokenize --bench`: the whole file encoded as ordinary text (<|endoftext|> is
// not special), REPEATS passes (default 3), the fastest counts; loading the tables is not timed.
import { readFileSync } from "node:fs";
import { getEncoding } from "js-tiktoken";

const [file, repeatsArg] = process.argv.slice(2);
const repeats = Number(repeatsArg ?? 3);
const text = readFileSync(file, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const enc = getEncoding("gpt2");
let best = Infinity, tokens = 0;
for (let r = 0; r < repeats; r++) {
  const t0 = process.hrtime.bigint();
  tokens = enc.encode(text, [], []).length;
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (dt < best) best = dt;
}
console.log(JSON.stringify({ tokenizer: "js-tiktoken", file, bytes, tokens, threads: 1, repeats, seconds: best,
  mb_per_s: +(bytes / 1e6 / best).toFixed(2), tokens_per_s: Math.round(tokens / best) }));
