// Child process for bench/miner-relay.ts: the test OpenAI backend on a free
// port, printing the base URL on stdout, until killed.
import { startOpenAIBackend } from "../test/support/openai-backend.js";

const tokens = Number(process.argv[2] ?? "2000");
const backend = await startOpenAIBackend({ models: ["bench-model"], tokens, tokenDelayMs: 0 });
process.stdout.write(`${backend.url}\n`);
