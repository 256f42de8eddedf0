// The client against a real partyline node (memory broker, dev mode).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { Client, PartylineError, type Gap, type Options, type Publication, type WebSocketCtor } from "../src/index.js";
import { PartylineNode, sleep, until } from "./node.js";

const node = new PartylineNode();
const clients: Client[] = [];
const dm = "dm:u_1:u_2";

before(async () => {
  await node.start();
});

after(async () => {
  clients.forEach((c) => c.close());
  await node.cleanup();
});

function client(user: string, opts: Partial<Options> = {}): Client {
  const c = new Client({
    url: node.ws,
    token: () => node.token(user),
    WebSocket: WebSocket as unknown as WebSocketCtor,
    client: "sdk-test/0",
    backoffBase: 50,
    backoffMax: 500,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** record collects what c delivers on channel. */
function record(c: Client, channel: string) {
  const pubs: Publication[] = [];
  const gaps: Gap[] = [];
  c.on("publication", (p) => p.channel === channel && pubs.push(p));
  c.on("gap", (g) => g.channel === channel && gaps.push(g));
  return { pubs, gaps, texts: () => pubs.filter((p) => p.kind === "message").map((p) => (p.data as { text: string }).text) };
}

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof PartylineError && e.code === code);
}

test("connect and hello", async () => {
  const c = client("u_1");
  const s = await c.connect();
  assert.equal(s.user, "u_1");
  assert.ok(s.session && s.node && s.heartbeat_ms > 0);
  assert.equal(c.state, "connected");
  assert.ok((await c.ping()) > 0);
  c.close();
  assert.equal(c.state, "closed");
});

test("a bad token stops the client with unauthorized", async () => {
  const c = client("u_1", { token: "not-a-token" });
  const stops: number[] = [];
  c.on("disconnected", (d) => stops.push(d.code));
  await assert.rejects(c.connect());
  assert.deepEqual(stops, [4003]);
  assert.equal(c.state, "closed");
});

test("sub, pub, receive and every request", async () => {
  const a = client("u_1");
  const b = client("u_2");
  await Promise.all([a.connect(), b.connect()]);
  const ra = record(a, dm);
  const sa = await a.subscribe(dm);
  assert.equal(sa.recovered, false);
  assert.equal(typeof sa.epoch, "string");
  await b.subscribe(dm);

  const sent = [];
  for (let i = 0; i < 5; i++) sent.push(await b.publish(dm, { text: `m${i}` }));
  await until(() => ra.texts().length === 5, 5000, "5 publications");
  assert.deepEqual(ra.texts(), ["m0", "m1", "m2", "m3", "m4"]);
  assert.deepEqual(
    ra.pubs.map((p) => p.offset),
    sent.map((s) => s.offset),
  );
  assert.equal(ra.pubs[0]?.from, "u_2");

  // edit and delete: publications of their own
  const ed = await b.edit(dm, sent[1]!.msgId, { text: "m1!" });
  const del = await b.delete(dm, sent[2]!.msgId);
  assert.ok(del.offset > ed.offset && ed.offset > sent[4]!.offset);
  await until(() => ra.pubs.length === 7, 5000, "edit and delete");
  assert.deepEqual(
    ra.pubs.slice(5).map((p) => [p.kind, p.id]),
    [
      ["edit", sent[1]!.msgId],
      ["delete", sent[2]!.msgId],
    ],
  );
  await rejects(a.edit(dm, sent[0]!.msgId, { text: "not mine" }), "forbidden");

  // history paging, newest first, deleted left out, edits applied
  const p1 = await a.history<{ text: string }>(dm, { limit: 2 });
  assert.deepEqual(
    p1.messages.map((m) => m.data?.text),
    ["m4", "m3"],
  );
  assert.equal(p1.more, true);
  const p2 = await a.history<{ text: string }>(dm, { before: p1.next!, limit: 10 });
  assert.deepEqual(
    p2.messages.map((m) => m.data?.text),
    ["m1!", "m0"],
  );
  assert.equal(p2.more, false);
  assert.equal(p2.next, undefined);

  await a.read(dm, sent[4]!.msgId);
  const pr = await a.presence(dm);
  assert.equal(pr.count, 2);
  assert.deepEqual(pr.members.map((m) => m.user).sort(), ["u_1", "u_2"]);

  // status: b watches a's status channel
  const st = await b.subscribe("status:u_1");
  assert.equal(st.channel, "status:u_1");
  const rs = record(b, "status:u_1");
  await a.status("in_game", { game: "valorant" });
  await until(() => rs.pubs.length > 0, 5000, "status publication");
  assert.equal((rs.pubs[0]?.data as { status: string }).status, "in_game");

  // typing
  const typing: string[] = [];
  b.on("event", (e) => e.event === "typing" && typing.push(e.from ?? ""));
  a.typing(dm);
  await until(() => typing.length === 1, 5000, "typing event");
  assert.deepEqual(typing, ["u_1"]);

  // typed errors
  await rejects(a.publish("dm:u_3:u_4", { text: "x" }), "forbidden");
  await rejects(a.subscribe("no-namespace"), "bad_request");
  await rejects(a.history("dm:u_3:u_4"), "forbidden");
  await rejects(a.edit(dm, "01JD8XNOSUCHMESSAGE00000000", { text: "x" }), "not_found");
  await rejects(a.request("history", { channel: dm, limit: "ten" }), "bad_request");

  await b.unsubscribe("status:u_1");
  await a.unsubscribe(dm);
  await b.publish(dm, { text: "after unsub" });
  await sleep(200);
  assert.equal(ra.pubs.length, 7);
});

test("resume across a dropped socket: every publication once, in order; pub idempotent", async () => {
  const ch = "dm:u_5:u_6";
  const a = client("u_5");
  const b = client("u_6");
  await Promise.all([a.connect(), b.connect()]);
  const ra = record(a, ch);
  await a.subscribe(ch);
  const first = await a.publish(ch, { text: "p0" }, { idem: "idem-1" });
  await until(() => ra.pubs.length === 1, 5000, "p0");

  const downs: number[] = [];
  a.on("disconnected", (d) => downs.push(d.code));
  let ups = 0;
  a.on("connected", () => ups++);
  assert.equal(await node.disconnect("u_5", 4009), 1);
  await until(() => downs.length === 1, 5000, "disconnect");
  assert.equal(downs[0], 4009);
  // While a is away (or just back), b publishes.
  for (let i = 1; i <= 20; i++) await b.publish(ch, { text: `p${i}` });
  // The same idem after the reconnect publishes nothing new.
  const again = await a.publish(ch, { text: "p0" }, { idem: "idem-1" });
  assert.deepEqual(again, first);
  await until(() => ups >= 1 && ra.pubs.length === 21, 10000, "21 publications");
  await sleep(200);
  assert.deepEqual(
    ra.texts(),
    Array.from({ length: 21 }, (_, i) => `p${i}`),
  );
  assert.deepEqual(ra.gaps, []);
});

test("a pub in flight when the socket drops is sent again with the same idem", async () => {
  const ch = "dm:u_7:u_8";
  const a = client("u_7");
  const b = client("u_8");
  await Promise.all([a.connect(), b.connect()]);
  const rb = record(b, ch);
  await b.subscribe(ch);
  // Drop a's socket right after the pub is written: the reply may or may
  // not come; either way one publication exists.
  const ws = (a as unknown as { ws: { close(): void } }).ws;
  const pub = a.publish(ch, { text: "once" });
  ws.close();
  const r = await pub;
  assert.ok(r.offset > 0);
  await until(() => rb.pubs.length >= 1, 5000, "the publication");
  await sleep(300);
  assert.deepEqual(rb.texts(), ["once"]);
});

test("node killed with SIGKILL and restarted: a gap event, never a silent loss", async () => {
  const ch = "dm:u_1:u_9";
  const a = client("u_1");
  const b = client("u_9");
  await Promise.all([a.connect(), b.connect()]);
  const ra = record(a, ch);
  await a.subscribe(ch);
  await b.subscribe(ch);
  for (let i = 0; i < 3; i++) await b.publish(ch, { text: `k${i}` });
  await until(() => ra.pubs.length === 3, 5000, "3 publications");
  const last = ra.pubs[2]!;

  let ups = 0;
  a.on("connected", () => ups++);
  b.on("connected", () => ups++);
  await node.stop("SIGKILL");
  await sleep(300);
  await node.start();
  await until(() => ups >= 2, 15000, "both reconnected");
  await until(() => ra.gaps.length === 1, 5000, "the gap event");
  const g = ra.gaps[0]!;
  assert.equal(g.recovered, false);
  assert.equal(g.channel, ch);
  assert.deepEqual(g.last, { epoch: last.epoch, offset: last.offset });
  // Live delivery goes on after the gap.
  await b.publish(ch, { text: "k3" });
  await until(() => ra.pubs.length === 4, 5000, "k3");
  assert.deepEqual(ra.texts(), ["k0", "k1", "k2", "k3"]);
});

test("drain: SIGTERM gives a reconnect notice or 1012, and the client reconnects", async () => {
  const ch = "dm:u_1:u_10";
  const a = client("u_1");
  await a.connect();
  await a.subscribe(ch);
  const notices: number[] = [];
  const downs: number[] = [];
  let ups = 0;
  a.on("reconnect", (n) => notices.push(n.after_ms));
  a.on("disconnected", (d) => downs.push(d.code));
  a.on("connected", () => ups++);
  await node.stop("SIGTERM");
  assert.ok(notices.length === 1 || downs.includes(1012), `notices ${notices}, closes ${downs}`);
  await node.start();
  await until(() => ups >= 1, 15000, "reconnected");
  assert.equal(a.state, "connected");
  assert.ok((await a.presence(ch)).count >= 1);
});

test("token refresh: a token that expires closes with 4003 and the provider is asked again", async () => {
  const ch = "dm:u_11:u_12";
  let calls = 0;
  const a = client("u_11", {
    token: () => {
      calls++;
      return node.token("u_11", "2s");
    },
  });
  const b = client("u_12");
  await Promise.all([a.connect(), b.connect()]);
  const ra = record(a, ch);
  await a.subscribe(ch);
  const downs: number[] = [];
  let ups = 0;
  a.on("disconnected", (d) => downs.push(d.code));
  a.on("connected", () => ups++);
  await until(() => downs.includes(4003) && ups >= 1, 8000, "4003 and a new session");
  assert.ok(calls >= 2, `provider called ${calls} times`);
  assert.equal(a.state, "connected");
  await b.publish(ch, { text: "fresh" });
  await until(() => ra.pubs.length === 1, 5000, "publication after refresh");
});
