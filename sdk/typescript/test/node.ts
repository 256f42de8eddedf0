// A real partyline node for the tests: built once from the tree, started in
// dev mode on free loopback ports with a temporary data dir.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(fileURLToPath(import.meta.url), "../../../../..");

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => res(typeof a === "object" && a ? a.port : 0));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** until polls cond every 20 ms until it holds, failing after ms. */
export async function until(cond: () => boolean, ms = 10000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export const apiKey = "sdk-test-key";

export class PartylineNode {
  readonly dir = mkdtempSync(join(tmpdir(), "partyline-sdk-"));
  private bin = join(this.dir, "partyline");
  private proc: ChildProcess | null = null;
  private ports: number[] = [];
  log = "";

  /** env is added to the node's environment. */
  constructor(private env: Record<string, string> = {}) {}

  get http(): string {
    return `http://127.0.0.1:${this.ports[0]}`;
  }
  get ws(): string {
    return `ws://127.0.0.1:${this.ports[0]}/v1/ws`;
  }

  async start(): Promise<void> {
    if (this.ports.length === 0) {
      execFileSync("go", ["build", "-o", this.bin, "./cmd/partyline"], { cwd: repo, stdio: "inherit" });
      this.ports = [await freePort(), await freePort(), await freePort()];
    }
    const env = {
      ...process.env,
      PARTYLINE_ADDR: `127.0.0.1:${this.ports[0]}`,
      PARTYLINE_ADMIN_ADDR: `127.0.0.1:${this.ports[1]}`,
      PARTYLINE_VOICE_UDP_ADDR: `127.0.0.1:${this.ports[2]}`,
      PARTYLINE_DATA_DIR: join(this.dir, "data"),
      PARTYLINE_DEV: "true",
      PARTYLINE_API_KEY: apiKey,
      PARTYLINE_DRAIN_WINDOW: "500ms",
      PARTYLINE_DATABASE_URL: "",
      PARTYLINE_REDIS_URL: "",
      ...this.env,
    };
    const p = spawn(this.bin, [], { env, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = p;
    const keep = (b: Buffer) => (this.log = (this.log + b.toString()).slice(-20000));
    p.stdout?.on("data", keep);
    p.stderr?.on("data", keep);
    const end = Date.now() + 20000;
    for (;;) {
      try {
        const r = await fetch(`${this.http}/v1/openapi.json`);
        if (r.ok) return;
      } catch {
        /* not up yet */
      }
      if (p.exitCode !== null || Date.now() > end) throw new Error(`partyline did not start:\n${this.log}`);
      await sleep(50);
    }
  }

  /** stop sends sig and waits for the process to exit. */
  async stop(sig: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once("exit", r));
    p.kill(sig);
    await Promise.race([done, sleep(15000).then(() => p.kill("SIGKILL"))]);
    await done;
    this.proc = null;
  }

  async cleanup(): Promise<void> {
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }

  async token(user: string, ttl?: string): Promise<string> {
    const r = await fetch(`${this.http}/v1/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(ttl ? { user, ttl } : { user }),
    });
    if (!r.ok) throw new Error(`dev token: ${r.status} ${await r.text()}`);
    return ((await r.json()) as { token: string }).token;
  }

  /** disconnect closes every socket of user with code, through the server API. */
  async disconnect(user: string, code: number): Promise<number> {
    const r = await fetch(`${this.http}/v1/server/disconnect`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ user, code, reason: "test" }),
    });
    if (!r.ok) throw new Error(`disconnect: ${r.status} ${await r.text()}`);
    return ((await r.json()) as { closed: number }).closed;
  }
}
