// `tensorclaw demo-model` as a real child process: it serves the model on
// the port it is given (0: one the system picks, read from its start-up
// line), answers the OpenAI client, refuses bad settings, and stops cleanly.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { expect } from "chai";
import OpenAI from "openai";
import { demoModelCommand } from "../../cli/demo-model.js";
import { DEMO_MODEL_ID } from "../../common/demo-model/model.js";
import { CLI } from "../support/cli.js";

describe("tensorclaw demo-model (process)", () => {
  it("refuses a bad port or a stray argument, naming it (exit 2)", async () => {
    for (const [argv, named] of [
      [["--port", "70000"], "--port"],
      [["--port", "0", "extra"], "extra"],
    ] as const) {
      let stderr = "";
      const code = await demoModelCommand.run(argv, {
        env: {},
        stdout: () => {},
        stderr: (t) => {
          stderr += t;
        },
      });
      expect(code).to.equal(2);
      expect(stderr).to.contain(named);
    }
  });

  it("serves the OpenAI API on the port it was given and exits 0 on SIGTERM", async () => {
    const proc = spawn(process.execPath, [CLI, "demo-model", "--port", "0", "--host", "127.0.0.1"], {
      env: { ...process.env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    try {
      let log = "";
      const url = await new Promise<string>((resolve, reject) => {
        proc.stderr?.on("data", (d: Buffer) => {
          log += d.toString();
          const m = /serving tensorclaw-demo on (http:\/\/\S+)\n/.exec(log);
          if (m?.[1] !== undefined) resolve(m[1]);
        });
        proc.once("exit", (code) => reject(new Error(`demo-model exited (${code}):\n${log}`)));
      });
      expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
      const client = new OpenAI({ baseURL: url, apiKey: "unused", maxRetries: 0 });
      expect((await client.models.list()).data.map((m) => m.id)).to.deep.equal([DEMO_MODEL_ID]);
      const r = await client.chat.completions.create({
        model: DEMO_MODEL_ID,
        messages: [{ role: "user", content: "Why does it rain?" }],
        temperature: 0,
        logprobs: true,
      });
      expect(r.choices[0]?.message.content).to.be.a("string").that.is.not.empty;
      expect(r.choices[0]?.logprobs?.content?.length).to.equal(r.usage?.completion_tokens);

      proc.kill("SIGTERM");
      const [code] = (await once(proc, "exit")) as [number | null];
      expect(code).to.equal(0);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGKILL");
        await once(proc, "exit");
      }
    }
  });
});
