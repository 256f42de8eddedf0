// The REST helpers against a real partyline node (memory broker, dev mode).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Rest, RestError, type FetchLike } from "../src/rest.js";
import { PartylineNode, apiKey } from "./node.js";

// An empty PATH hides ffprobe and ffmpeg from the node, so a clip becomes
// ready with the test's bytes as they are, whatever the machine has.
const node = new PartylineNode({ PATH: mkdtempSync(join(tmpdir(), "partyline-nopath-")) });
let alice: Rest;
let bob: Rest;

before(async () => {
  await node.start();
  alice = new Rest({ url: node.http, token: () => node.token("alice") });
  bob = new Rest({ url: node.http, token: await node.token("bob") });
  await bob.myRooms(); // the server knows bob from here on
});

after(async () => {
  await node.cleanup();
});

/** fakeMP4 is n random bytes behind an MP4 ftyp box, which the server's sniffer takes for video/mp4. */
function fakeMP4(n: number): Uint8Array {
  const b = new Uint8Array(randomBytes(n));
  b.set(new TextEncoder().encode("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"));
  return b;
}

/** published makes a public clip of alice's with media, which other users can see. */
async function published(title: string) {
  const c = await alice.createClip({ title, game: "quake", tags: ["rail"], visibility: "public" });
  assert.equal(c.status, "uploading");
  return alice.putMedia(c.id, fakeMP4(2048), "video/mp4");
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** fails runs p and checks the RestError it must throw. */
async function fails(p: Promise<unknown>, status: number): Promise<RestError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RestError, `want a RestError, got ${String(err)}`);
    assert.equal(err.status, status, err.message);
    if (status > 0) {
      assert.equal(err.type, "about:blank");
      assert.ok(err.title.length > 0);
    }
    return err;
  }
  assert.fail(`want a ${status} error`);
}

test("a bad token is a 401 problem", async () => {
  const bad = new Rest({ url: node.http, token: "not-a-token" });
  const err = await fails(bad.myRooms(), 401);
  assert.equal(err.title, "Unauthorized");
  await fails(bad.clip("c_x"), 401);
  await fails(bad.feed("trending"), 401);
});

test("a provider is asked again after a 401", async () => {
  let asked = 0;
  const r = new Rest({ url: node.http, token: () => (++asked === 1 ? "stale" : node.token("alice")) });
  assert.ok(Array.isArray(await r.myRooms()));
  assert.equal(asked, 2);
});

test("a lost connection is a status 0 error", async () => {
  const f: FetchLike = () => Promise.reject(new TypeError("fetch failed"));
  const err = await fails(new Rest({ url: node.http, token: "t", fetch: f }).clip("c_x"), 0);
  assert.equal(err.title, "network");
});

test("rooms: create, get, members, mine with unread counts", async () => {
  const room = await alice.createRoom("sdk rest", "private");
  assert.equal(room.name, "sdk rest");
  assert.equal(room.owner, "alice");
  const m = await alice.addMember(room.id, "bob");
  assert.deepEqual([m.room, m.user, m.role], [room.id, "bob", "member"]);
  const detail = await alice.room(room.id);
  assert.deepEqual(detail.members.map((x) => x.user).sort(), ["alice", "bob"]);

  const pub = await fetch(`${node.http}/v1/server/publish`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ channel: `room:${room.id}`, kind: "message", data: { text: "hi" } }),
  });
  assert.ok(pub.ok, await pub.text());
  const mine = (await bob.myRooms()).find((r) => r.id === room.id);
  assert.ok(mine, "bob's rooms list the room");
  assert.equal(mine.role, "member");
  assert.equal(mine.unread, 1);
  assert.equal(mine.last_message?.kind, "message");
  const msgs = await bob.messages(room.id, { limit: 10 });
  assert.equal(msgs.messages.length, 1);

  await alice.removeMember(room.id, "bob");
  assert.equal((await bob.myRooms()).find((r) => r.id === room.id), undefined);

  const bad = await fails(alice.createRoom(""), 400);
  assert.equal(bad.title, "Bad Request");
  assert.ok(bad.detail && bad.detail.length > 0);
  assert.ok(bad.requestId);
  await fails(alice.room("r_nosuchroom"), 404);
  await fails(bob.addMember(room.id, "carol"), 404); // bob is not in it any more
});

test("clips: create, get, edit, list, delete", async () => {
  const c = await published("first");
  assert.equal(c.owner, "alice");
  assert.deepEqual(c.tags, ["rail"]);
  assert.equal((await bob.clip(c.id)).title, "first");
  const e = await alice.editClip(c.id, { title: "renamed" });
  assert.equal(e.title, "renamed");
  const c2 = await published("second");
  const p1 = await bob.userClips("alice", { limit: 1 });
  assert.equal(p1.clips.length, 1);
  assert.ok(p1.next_cursor);
  const p2 = await bob.userClips("alice", { limit: 1, cursor: p1.next_cursor });
  assert.equal(p2.clips.length, 1);
  assert.notEqual(p2.clips[0]!.id, p1.clips[0]!.id);
  await alice.deleteClip(c2.id);
  await fails(alice.clip(c2.id), 404);
  await fails(bob.editClip(c.id, { title: "mine" }), 404); // not bob's
  const bad = await fails(alice.createClip({ title: "", game: "quake" }), 400);
  assert.ok(bad.detail);
});

test("likes, views and comments", async () => {
  const c = await published("social");
  assert.deepEqual(await bob.like(c.id), { liked: true, like_count: 1 });
  assert.deepEqual(await bob.unlike(c.id), { liked: false, like_count: 0 });
  await fails(bob.like("c_nosuchclip"), 404);

  await bob.view(c.id, 1500);
  await fails(bob.view(c.id, -1), 400);
  await fails(bob.view("c_nosuchclip", 10), 404);

  const said = [];
  for (const body of ["one", "two", "three"]) said.push(await bob.comment(c.id, body));
  assert.equal(said[0]!.author, "bob");
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await alice.comments(c.id, { limit: 2, ...(cursor ? { cursor } : {}) });
    assert.ok(page.comments.length <= 2);
    seen.push(...page.comments.map((x) => x.body));
    cursor = page.next_cursor || undefined;
  } while (cursor);
  assert.deepEqual(seen.sort(), ["one", "three", "two"]);
  await bob.deleteComment(c.id, said[1]!.id);
  assert.equal((await alice.comments(c.id)).comments.length, 2);
  await fails(bob.comment(c.id, ""), 400);
  await fails(bob.deleteComment(c.id, said[1]!.id), 404);
  await fails(alice.comments(c.id, { cursor: "garbage!" }), 400);
});

test("follows and profiles", async () => {
  await bob.follow("alice");
  const prof = await bob.profile("alice");
  assert.equal(prof.followed, true);
  assert.ok(prof.followers >= 1);
  const fl = await alice.followers("alice", { limit: 5 });
  assert.ok(fl.items.some((f) => f.user === "bob"));
  assert.ok((await bob.following("bob")).items.some((f) => f.user === "alice"));
  await bob.unfollow("alice");
  assert.equal((await bob.profile("alice")).followed, false);
  await fails(bob.follow("bob"), 400);
  await fails(bob.follow("nobody_at_all"), 404);
  await bob.follow("alice");
});

test("the three feeds page with cursors", async () => {
  for (const f of ["following", "trending", "for_you"] as const) {
    const page = await bob.feed(f, { limit: 1 });
    assert.ok(Array.isArray(page.items), f);
    assert.equal(typeof page.next_cursor, "string", f);
    for (const it of page.items) assert.equal(typeof it.clip.id, "string");
    if (page.next_cursor) await bob.feed(f, { limit: 1, cursor: page.next_cursor });
    await fails(bob.feed(f, { cursor: "garbage!" }), 400);
  }
  await fails(bob.feed("trending", { limit: 1000 }), 400);
});

test("putMedia uploads a small file in one request", async () => {
  const c = await alice.createClip({ title: "small", game: "quake" });
  const data = fakeMP4(4096);
  const got = await alice.putMedia(c.id, data, "video/mp4");
  assert.equal(got.id, c.id);
  assert.equal(got.content_type, "video/mp4");
  assert.deepEqual(await alice.media(c.id), data);
  await fails(alice.putMedia(c.id, new TextEncoder().encode("not a video at all"), "video/mp4"), 409);
  const other = await alice.createClip({ title: "junk", game: "quake" });
  await fails(alice.putMedia(other.id, new TextEncoder().encode("not a video at all"), "video/mp4"), 415);
});

test("upload sends chunks over tus with progress", async () => {
  const c = await alice.createClip({ title: "tus", game: "quake" });
  const data = fakeMP4(300 * 1024);
  const progress: number[] = [];
  const got = await alice.upload(c.id, data, {
    chunkSize: 64 * 1024,
    type: "video/mp4",
    onProgress: (sent, total) => {
      assert.equal(total, data.byteLength);
      progress.push(sent);
    },
  });
  assert.deepEqual(progress, [65536, 131072, 196608, 262144, 307200]);
  assert.equal(got.id, c.id);
  assert.notEqual(got.status, "uploading");
  const back = await alice.media(c.id);
  assert.deepEqual(back, data);
  assert.equal(sha256(back), sha256(data));
  if (got.sha256) assert.equal(got.sha256, sha256(data));
  await fails(bob.upload(c.id, data), 404); // not bob's clip
});

test("upload resumes from the server's offset after an abort and after a broken chunk", async () => {
  const c = await alice.createClip({ title: "resume", game: "quake" });
  const data = fakeMP4(400 * 1024);
  const stop = new AbortController();
  const first: number[] = [];
  const err = await fails(
    alice.upload(c.id, data, {
      chunkSize: 64 * 1024,
      signal: stop.signal,
      onProgress: (sent) => {
        first.push(sent);
        if (sent >= 128 * 1024) stop.abort();
      },
    }),
    0,
  );
  assert.equal(err.title, "aborted");
  assert.deepEqual(first, [65536, 131072]);
  assert.equal((await alice.clip(c.id)).status, "uploading");

  // Resume with a connection that breaks once in the middle of a chunk:
  // the server keeps the half that arrived and HEAD says where to go on.
  let broken = false;
  const flaky: FetchLike = async (url, init) => {
    if (init.method === "PATCH" && !broken) {
      broken = true;
      const half = (init.body as Uint8Array).subarray(0, 10000);
      await fetch(url, { ...init, body: half });
      throw new TypeError("fetch failed");
    }
    return fetch(url, init);
  };
  const resumer = new Rest({ url: node.http, token: () => node.token("alice"), fetch: flaky });
  const second: number[] = [];
  const got = await resumer.upload(c.id, data, { chunkSize: 64 * 1024, onProgress: (sent) => second.push(sent) });
  assert.ok(broken);
  assert.equal(second[0], 131072 + 10000, `resumed at ${second[0]}`);
  assert.equal(second.at(-1), data.byteLength);
  const back = await alice.media(got.id);
  assert.equal(back.byteLength, data.byteLength);
  assert.equal(sha256(back), sha256(data));
  assert.deepEqual(back, data);
  if (got.sha256) assert.equal(got.sha256, sha256(data));
});
