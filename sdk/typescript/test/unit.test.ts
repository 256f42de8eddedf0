// Backoff bounds and bad input, against a fake server on loopback.
import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { Client, PartylineError, backoff, type Disconnect, type WebSocketCtor } from "../src/index.js";
import { until } from "./node.js";

test("backoff: full jitter within [0, min(max, base*2^n)]", () => {
  const top = () => 0.999999;
  const low = () => 0;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 10, 100].map((n) => backoff(n, 500, 20000, top)),
    [500, 1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000],
  );
  assert.equal(backoff(7, 500, 20000, low), 0);
  for (let i = 0; i < 1000; i++) {
    const n = i % 12;
    const d = backoff(n, 500, 20000);
    assert.ok(d >= 0 && d <= Math.min(20000, 500 * 2 ** n), `attempt ${n}: ${d}`);
  }
});

/** fakeServer answers hello with ok, then runs script on each connection. */
async function fakeServer(script: (ws: WebSocket, n: number) => void) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((r) => wss.once("listening", r));
  let n = 0;
  wss.on("connection", (ws) => {
    const k = n++;
    ws.on("message", (raw) => {
      const m = JSON.parse(raw.toString()) as { type: string; id: number };
      if (m.type === "hello") {
        ws.send(JSON.stringify({ type: "ok", id: m.id, session: "s_1", user: "u_1", node: "fake", heartbeat_ms: 25000, limits: { max_frame_bytes: 65536, max_subscriptions: 500, publish_per_sec: 10 } }));
        script(ws, k);
      } else if (m.type === "ping") {
        ws.send(JSON.stringify({ type: "ok", id: m.id, ts: 42 }));
      }
    });
  });
  const addr = wss.address() as { port: number };
  return { url: `ws://127.0.0.1:${addr.port}/v1/ws`, close: () => new Promise((r) => wss.close(r)), wss };
}

test("bad input from the server gives error events, not a crash", async () => {
  const srv = await fakeServer((ws) => {
    ws.send('{"type":"msg","channel":"room:r_1","off');
    ws.send('{"type":"ok","id":99}\n{"type":"no.such.type","x":1}\n[1,2]\n{"type":"msg"}');
    ws.send(Buffer.from([1, 2, 3]));
  });
  const c = new Client({ url: srv.url, token: "t", WebSocket: WebSocket as unknown as WebSocketCtor });
  const errors: PartylineError[] = [];
  c.on("error", (e) => errors.push(e));
  try {
    await c.connect();
    await until(() => errors.length >= 5, 5000, "5 error events");
    assert.deepEqual(
      errors.map((e) => e.code),
      ["bad_frame", "unknown_type", "bad_frame", "bad_frame", "bad_frame"],
    );
    assert.equal(c.state, "connected");
    assert.equal(await c.ping(), 42);
  } finally {
    c.close();
    srv.wss.clients.forEach((w) => w.terminate());
    await srv.close();
  }
});

test("reconnect waits: backoff for 1013 and 4009 within bounds, 1012 at once, notice's after_ms", async () => {
  const closes = [1013, 1013, 4009, 1013, 1013, 1013, 1012, 0];
  const srv = await fakeServer((ws, n) => {
    const code = closes[n];
    if (code === 0) ws.send(JSON.stringify({ type: "reconnect", after_ms: 30, reason: "shutdown" }));
    else if (code !== undefined) ws.close(code, "test");
  });
  const downs: Disconnect[] = [];
  const c = new Client({
    url: srv.url,
    token: "t",
    WebSocket: WebSocket as unknown as WebSocketCtor,
    backoffBase: 4,
    backoffMax: 40,
    random: () => 0.999999,
  });
  c.on("disconnected", (d) => downs.push(d));
  try {
    await c.connect();
    await until(() => downs.length === closes.length, 10000, "every close");
    assert.deepEqual(
      downs.map((d) => d.code),
      [1013, 1013, 4009, 1013, 1013, 1013, 1012, 1012],
    );
    // full jitter at its top: 4, 8, 16, 32, then the cap
    assert.deepEqual(
      downs.slice(0, 6).map((d) => d.delay),
      [4, 8, 16, 32, 40, 40],
    );
    assert.ok(downs[6]!.delay < 4, `1012 waits ${downs[6]!.delay}`);
    assert.ok(downs[7]!.delay <= 30, `notice waits ${downs[7]!.delay}`);
    assert.ok(downs.every((d) => d.reconnect));
    await until(() => c.state === "connected", 5000, "connected again");
  } finally {
    c.close();
    srv.wss.clients.forEach((w) => w.terminate());
    await srv.close();
  }
});

test("resume: publications held during the resubscription and replayed ones arrive once, in order", async () => {
  const pub = (offset: number, epoch = "e1") =>
    JSON.stringify({ type: "msg", channel: "room:r_1", offset, epoch, id: `m${offset}`, kind: "message", from: "u_2", ts: 1, data: {} });
  const srv = await fakeServer((ws, n) => {
    ws.on("message", (raw) => {
      const m = JSON.parse(raw.toString()) as { type: string; id: number; since?: { offset: number } };
      if (m.type !== "sub") return;
      if (n === 0) {
        ws.send(JSON.stringify({ type: "ok", id: m.id, epoch: "e1", offset: 2, recovered: false }));
        ws.send([pub(3), pub(4), pub(3)].join("\n"));
        setTimeout(() => ws.close(1013, "test"), 20);
      } else if (n === 1) {
        assert.deepEqual(m.since, { epoch: "e1", offset: 4 });
        // A live publication races ahead of the reply; the replay repeats it.
        ws.send(pub(6));
        ws.send(JSON.stringify({ type: "ok", id: m.id, epoch: "e1", offset: 6, recovered: true }));
        ws.send([pub(4), pub(5), pub(6), pub(7)].join("\n"));
        setTimeout(() => ws.close(1013, "test"), 20);
      } else {
        ws.send(JSON.stringify({ type: "ok", id: m.id, epoch: "e2", offset: 0, recovered: false }));
        ws.send(pub(1, "e2"));
      }
    });
  });
  const c = new Client({ url: srv.url, token: "t", WebSocket: WebSocket as unknown as WebSocketCtor, backoffBase: 5, backoffMax: 10 });
  const seen: string[] = [];
  const gaps: unknown[] = [];
  c.on("publication", (p) => seen.push(`${p.epoch}/${p.offset}`));
  c.on("gap", (g) => gaps.push(g));
  try {
    await c.connect();
    await c.subscribe("room:r_1");
    await until(() => seen.length === 6, 5000, "6 publications");
    assert.deepEqual(seen, ["e1/3", "e1/4", "e1/5", "e1/6", "e1/7", "e2/1"]);
    assert.deepEqual(gaps, [{ channel: "room:r_1", recovered: false, last: { epoch: "e1", offset: 7 }, epoch: "e2", offset: 1 }]);
  } finally {
    c.close();
    srv.wss.clients.forEach((w) => w.terminate());
    await srv.close();
  }
});
