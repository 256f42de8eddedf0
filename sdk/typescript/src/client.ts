import { backoff } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { PartylineError, type ErrorCode } from "./errors.js";
import type {
  ChannelEvent,
  Disconnect,
  Gap,
  HistoryPage,
  Incoming,
  Position,
  Presence,
  Publication,
  PubResult,
  ReconnectNotice,
  Session,
  State,
  SubResult,
  UserStatus,
} from "./types.js";

/** The part of the WebSocket API the client uses: browsers' and the `ws` package's both fit. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A token, or a function that returns a fresh one. */
export type TokenSource = string | (() => string | Promise<string>);

export interface Options {
  /** The gateway's WebSocket URL, such as `ws://127.0.0.1:8080/v1/ws`. */
  url: string;
  token: TokenSource;
  /** The WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: WebSocketCtor;
  /** Sent in hello, such as `overlay/2.3.1`. */
  client?: string;
  /** Reconnect backoff in ms: full jitter over [0, min(backoffMax, backoffBase*2^n)]. Default 500 and 20000. */
  backoffBase?: number;
  backoffMax?: number;
  /** How long a request waits for its reply, in ms, including time spent reconnecting. Default 10000. */
  timeout?: number;
  /** How long before a token's expiry (its JWT `exp`) a provider is asked for the next one, in ms. Default 30000, at most a fifth of its life. */
  refreshBefore?: number;
  /** Ping interval in ms; a connection without a reply for as long is dropped. Default the server's heartbeat_ms; 0 turns it off. */
  ping?: number;
  /** A uniform random source in [0, 1), for the jitter. */
  random?: () => number;
}

export interface Events {
  state: State;
  connecting: { attempt: number };
  connected: Session;
  disconnected: Disconnect;
  publication: Publication;
  event: ChannelEvent;
  gap: Gap;
  reconnect: ReconnectNotice;
  /** Every other notification (voice.* and types this version does not know). */
  notification: Incoming;
  /** Bad input from the server, a failed token provider, a refused resubscription; the client carries on. */
  error: PartylineError;
}

interface Call {
  type: string;
  body: Record<string, unknown>;
  resolve: (m: Incoming) => void;
  reject: (e: PartylineError) => void;
  timer: ReturnType<typeof setTimeout>;
  /** Sent again on the next connection when the current one is lost before the reply. */
  retry: boolean;
  id?: number;
}

interface Sub {
  pos: Position | null;
  /** A sub request is in flight: publications wait in held until its reply. */
  pending: boolean;
  held: Publication[];
  waiters: { resolve: (r: SubResult) => void; reject: (e: PartylineError) => void }[];
}

const SUBPROTOCOL = "partyline.v1";
const notificationTypes = new Set(["voice.offer", "voice.answer", "voice.ice"]);

/**
 * Client is one authenticated session with a partyline gateway that outlives
 * its WebSocket: it reconnects with backoff, says hello again and resumes
 * every subscription from the last position it delivered, so the application
 * sees each publication once and in order, or a `gap` event.
 */
export class Client extends Emitter<Events> {
  private readonly o: Required<Omit<Options, "WebSocket" | "client" | "ping">> & Pick<Options, "client" | "ping">;
  private readonly WS: WebSocketCtor;
  private ws: WebSocketLike | null = null;
  private st: State = "disconnected";
  private ids = 0;
  private attempt = 0;
  private since = 0;
  private helloId = 0;
  private sess: Session | null = null;
  private calls = new Map<number, Call>();
  private queue: Call[] = [];
  private subs = new Map<string, Sub>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The timers of the current connection: hello, pings, token refresh, drain. */
  private timers: ReturnType<typeof setTimeout>[] = [];
  private drainAt = 0;
  private token: string | null = null;
  private lastToken = "";
  private authRetry = false;
  private lastPong = 0;

  constructor(opts: Options) {
    super();
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!WS) throw new TypeError("partyline: no WebSocket; pass options.WebSocket");
    this.WS = WS;
    this.o = {
      backoffBase: 500,
      backoffMax: 20000,
      timeout: 10000,
      refreshBefore: 30000,
      random: Math.random,
      ...opts,
    };
  }

  get state(): State {
    return this.st;
  }

  /** The reply to the current (or last) connection's hello. */
  get session(): Session | null {
    return this.sess;
  }

  /** The last position delivered on each subscribed channel. */
  positions(): Map<string, Position | null> {
    return new Map([...this.subs].map(([c, s]) => [c, s.pos]));
  }

  /** connect starts the client; it resolves at the first connected session and rejects if the client stops first. */
  connect(): Promise<Session> {
    return new Promise((resolve, reject) => {
      if (this.st === "closed") return reject(new PartylineError("closed", "partyline: client closed"));
      if (this.st === "connected" && this.sess) return resolve(this.sess);
      const offs = [
        this.on("connected", (s) => {
          offs.forEach((f) => f());
          resolve(s);
        }),
        this.on("state", (s) => {
          if (s === "closed") {
            offs.forEach((f) => f());
            reject(new PartylineError("closed", "partyline: client stopped"));
          }
        }),
      ];
      if (this.st === "disconnected" && this.timer === undefined) void this.open();
    });
  }

  /** close ends the session with 1000; pending requests fail with `closed`. */
  close(): void {
    this.stop(new PartylineError("closed", "partyline: client closed"));
  }

  // ---- requests ----

  /**
   * subscribe subscribes to channel and keeps the subscription across
   * reconnects. since asks for a replay of every publication after it.
   */
  subscribe(channel: string, opts: { since?: Position } = {}): Promise<SubResult> {
    return new Promise((resolve, reject) => {
      if (this.st === "closed") return reject(new PartylineError("closed", "partyline: client closed", "sub"));
      let s = this.subs.get(channel);
      if (s && s.pos && !s.pending && this.st === "connected") {
        // Already subscribed: answer from what the client knows.
        return resolve({ channel, epoch: s.pos.epoch, offset: s.pos.offset, recovered: true });
      }
      if (!s) {
        s = { pos: opts.since ?? null, pending: false, held: [], waiters: [] };
        this.subs.set(channel, s);
        if (this.st === "connected") this.sendRaw(this.subLine(channel, s));
      }
      // A subscribe that times out stays wanted and is made on the next
      // connection; unsubscribe drops it.
      const sub = s;
      const w = {
        resolve: (r: SubResult) => (clearTimeout(t), resolve(r)),
        reject: (e: PartylineError) => (clearTimeout(t), reject(e)),
      };
      const t = setTimeout(() => {
        const i = sub.waiters.indexOf(w);
        if (i >= 0) sub.waiters.splice(i, 1);
        reject(new PartylineError("timeout", "partyline: sub: no reply", "sub"));
      }, this.o.timeout);
      sub.waiters.push(w);
    });
  }

  /** unsubscribe stops delivery on channel and forgets it. */
  async unsubscribe(channel: string): Promise<void> {
    const s = this.subs.get(channel);
    this.subs.delete(channel);
    s?.waiters.forEach((w) => w.reject(new PartylineError("closed", "partyline: unsubscribed", "sub")));
    if (this.st !== "connected") return;
    await this.request("unsub", { channel });
  }

  /**
   * publish publishes data on a room or dm channel. idem (generated when not
   * given) makes a retry on the next connection safe: the server answers it
   * with the first msg_id and publishes nothing new.
   */
  async publish(channel: string, data: unknown, opts: { idem?: string } = {}): Promise<PubResult> {
    const m = await this.request("pub", { channel, data, idem: opts.idem ?? newIdem() }, true);
    return { msgId: String(m.msg_id), offset: Number(m.offset) };
  }

  /** edit replaces the data of the caller's message msgId; it resolves with the edit's offset. */
  async edit(channel: string, msgId: string, data: unknown): Promise<{ offset: number }> {
    const m = await this.request("edit", { channel, msg_id: msgId, data });
    return { offset: Number(m.offset) };
  }

  /** delete deletes message msgId; it resolves with the delete's offset. */
  async delete(channel: string, msgId: string): Promise<{ offset: number }> {
    const m = await this.request("delete", { channel, msg_id: msgId });
    return { offset: Number(m.offset) };
  }

  /** history returns one page of messages before `before` (a message id), newest first. */
  async history<D = unknown>(channel: string, opts: { before?: string; limit?: number } = {}): Promise<HistoryPage<D>> {
    const m = await this.request("history", { channel, ...opts }, true);
    const messages = (Array.isArray(m.messages) ? m.messages : []) as Publication<D>[];
    const more = m.more === true;
    return { messages, more, next: more ? messages[messages.length - 1]?.id : undefined };
  }

  /** read stores the caller's read marker on channel at msgId. */
  async read(channel: string, msgId: string): Promise<void> {
    await this.request("read", { channel, msg_id: msgId }, true);
  }

  /** presence lists the users subscribed to channel. */
  async presence(channel: string): Promise<Presence> {
    const m = await this.request("presence", { channel }, true);
    return { count: Number(m.count), members: (m.members ?? []) as Presence["members"] };
  }

  /** status publishes the caller's status to status:<user>. */
  async status(status: UserStatus, extra: { game?: string; text?: string } = {}): Promise<void> {
    await this.request("status", { status, ...extra }, true);
  }

  /** typing tells channel that the caller types. It has no reply; while disconnected it is dropped. */
  typing(channel: string): void {
    if (this.st === "connected") this.send({ type: "typing", channel });
  }

  /** ping asks the server for its clock. */
  async ping(): Promise<number> {
    return Number((await this.request("ping", {}, true)).ts);
  }

  /**
   * request sends any request of the protocol and resolves with the ok
   * reply, or rejects with a PartylineError carrying the error code. With
   * retry, a request lost with its connection is sent again on the next one.
   */
  request(type: string, body: Record<string, unknown> = {}, retry = false): Promise<Incoming> {
    return new Promise((resolve, reject) => {
      if (this.st === "closed") return reject(new PartylineError("closed", "partyline: client closed", type));
      const c: Call = {
        type,
        body,
        resolve,
        reject,
        retry,
        timer: setTimeout(() => {
          this.forget(c);
          reject(new PartylineError("timeout", `partyline: ${type}: no reply`, type));
        }, this.o.timeout),
      };
      if (this.st === "connected") this.sendRaw(this.register(c));
      else this.queue.push(c);
    });
  }

  // ---- connection ----

  private setState(s: State): void {
    if (this.st === s) return;
    this.st = s;
    this.emit("state", s);
  }

  private async open(): Promise<void> {
    this.timer = undefined;
    this.setState("connecting");
    this.emit("connecting", { attempt: this.attempt });
    let token: string;
    try {
      token = await this.getToken();
    } catch (err) {
      this.emit("error", new PartylineError("token", `partyline: token: ${String(err)}`));
      return this.lost(0, "token provider failed", false);
    }
    if (this.st !== "connecting") return;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.o.url, SUBPROTOCOL);
    } catch (err) {
      return this.lost(0, String(err), false);
    }
    this.ws = ws;
    this.lastToken = token;
    this.since = Date.now();
    this.timers.push(setTimeout(() => this.lost(1006, "no hello reply", false), this.o.timeout));
    ws.onopen = () => {
      this.helloId = ++this.ids;
      this.send({ type: "hello", id: this.helloId, token, ...(this.o.client ? { client: this.o.client } : {}) });
    };
    ws.onmessage = (ev) => this.frame(ev.data);
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.ws === ws) this.lost(ev.code, ev.reason, false);
    };
  }

  private async getToken(): Promise<string> {
    const t = this.o.token;
    if (typeof t === "string") return t;
    if (this.token !== null) {
      const next = this.token;
      this.token = null;
      return next;
    }
    return await t();
  }

  /** lost handles the end of the current connection and plans the next one. */
  private lost(code: number, reason: string, helloRefused: boolean): void {
    this.detach();
    if (this.st === "closed") return;
    const wasUp = this.st === "connected";
    // Requests in flight: retry the safe ones, fail the rest.
    for (const c of this.calls.values()) {
      if (c.retry) this.queue.push(c);
      else {
        clearTimeout(c.timer);
        c.reject(new PartylineError("disconnected", `partyline: ${c.type}: connection lost (${code})`, c.type));
      }
    }
    this.calls.clear();
    for (const s of this.subs.values()) {
      s.pending = false;
      s.held = [];
    }
    let delay: number;
    let again = true;
    const provider = typeof this.o.token !== "string";
    if (code === 4000 || (code === 4003 && (!provider || this.authRetry)) || (helloRefused && code !== 4003)) {
      again = false;
      delay = 0;
    } else if (code === 4003) {
      this.authRetry = true;
      delay = 0;
    } else if (this.drainAt) {
      delay = Math.max(0, this.drainAt - Date.now());
    } else if (code === 1012) {
      delay = Math.floor(this.o.random() * this.o.backoffBase);
    } else {
      if (wasUp && Date.now() - this.since >= this.o.backoffMax) this.attempt = 0;
      delay = backoff(this.attempt++, this.o.backoffBase, this.o.backoffMax, this.o.random);
    }
    this.drainAt = 0;
    this.emit("disconnected", { code, reason, reconnect: again, delay });
    if (!again) return this.stop(new PartylineError(code === 4003 ? "unauthorized" : "closed", `partyline: stopped: ${code} ${reason}`));
    this.setState("disconnected");
    this.timer = setTimeout(() => void this.open(), delay);
  }

  private stop(err: PartylineError): void {
    if (this.st === "closed") return;
    this.detach();
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const c of [...this.calls.values(), ...this.queue]) {
      clearTimeout(c.timer);
      c.reject(new PartylineError("closed", err.message, c.type));
    }
    this.calls.clear();
    this.queue = [];
    for (const s of this.subs.values()) s.waiters.forEach((w) => w.reject(err));
    this.subs.clear();
    this.setState("closed");
  }

  /** detach closes the current socket, if any, without hearing from it again, and stops its timers. */
  private detach(): void {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      // onerror stays: the ws package throws an error event nobody listens to.
      ws.onclose = ws.onmessage = ws.onopen = null;
      try {
        ws.close(1000);
      } catch {
        /* already closed */
      }
    }
    this.stopTimers();
  }

  private stopTimers(): void {
    this.timers.forEach((t) => clearTimeout(t));
    this.timers = [];
  }

  private send(m: Record<string, unknown>): void {
    this.sendRaw(JSON.stringify(m));
  }

  private sendRaw(frame: string): void {
    try {
      this.ws?.send(frame);
    } catch {
      /* the close event follows */
    }
  }

  /** register gives c an id, waits for its reply and returns its line. */
  private register(c: Call): string {
    c.id = ++this.ids;
    this.calls.set(c.id, c);
    return JSON.stringify({ ...c.body, type: c.type, id: c.id });
  }

  private forget(c: Call): void {
    if (c.id !== undefined) this.calls.delete(c.id);
    this.queue = this.queue.filter((q) => q !== c);
  }

  /** subLine registers a sub request for channel from its last position and returns its line. */
  private subLine(channel: string, s: Sub): string {
    const since = s.pos;
    s.pending = true;
    s.held = [];
    const c: Call = {
      type: "sub",
      body: { channel, ...(since ? { since } : {}) },
      retry: false,
      timer: undefined as unknown as ReturnType<typeof setTimeout>,
      resolve: (m) => this.subscribed(channel, s, since, m),
      reject: (e) => {
        if (e.code === "disconnected") return; // resent on the next connection
        if (this.subs.get(channel) === s) this.subs.delete(channel);
        if (s.waiters.length === 0) this.emit("error", e);
        s.waiters.splice(0).forEach((w) => w.reject(e));
      },
    };
    return this.register(c);
  }

  private subscribed(channel: string, s: Sub, since: Position | null, m: Incoming): void {
    if (this.subs.get(channel) !== s) return;
    const cur: Position = { epoch: String(m.epoch ?? ""), offset: Number(m.offset ?? 0) };
    const recovered = m.recovered === true;
    if (since && !recovered) {
      this.emit("gap", { channel, recovered: false, last: since, epoch: cur.epoch, offset: cur.offset + 1 });
    }
    // After a recovered since, the position stays at since and moves with the replay.
    s.pos = since && recovered ? since : cur;
    s.pending = false;
    const res: SubResult = { channel, epoch: cur.epoch, offset: cur.offset, recovered };
    if ("status" in m) res.status = m.status;
    s.waiters.splice(0).forEach((w) => w.resolve(res));
    // What came before the reply is at most its offset and comes again in
    // the replay; anything later waits for the replay to end.
    s.held = s.held.filter((p) => p.epoch === cur.epoch && p.offset > cur.offset);
    this.flush(s, !(since && recovered));
  }

  /** flush delivers the held publications once the replay has reached them (or at once with force). */
  private flush(s: Sub, force = false): void {
    const first = s.held[0];
    if (!first || !(force || (s.pos && s.pos.epoch === first.epoch && s.pos.offset >= first.offset - 1))) return;
    const held = s.held;
    s.held = [];
    for (const p of held) this.publication(p);
  }

  private ready(m: Incoming): void {
    this.stopTimers();
    const sess = m as unknown as Session;
    this.sess = sess;
    this.authRetry = false;
    this.since = Date.now();
    this.setState("connected");
    // Resubscribe, packed into frames under the server's limit.
    const limit = sess.limits?.max_frame_bytes || 65536;
    let frame = "";
    for (const [channel, s] of this.subs) {
      const l = this.subLine(channel, s);
      if (frame && frame.length + 1 + l.length > limit) {
        this.sendRaw(frame);
        frame = "";
      }
      frame = frame ? frame + "\n" + l : l;
    }
    if (frame) this.sendRaw(frame);
    const q = this.queue;
    this.queue = [];
    q.forEach((c) => this.sendRaw(this.register(c)));
    this.schedule(sess);
    this.emit("connected", sess);
  }

  /** schedule starts the pings and the token refresh of a new session. */
  private schedule(sess: Session): void {
    const every = this.o.ping ?? sess.heartbeat_ms ?? 0;
    if (every > 0) {
      this.lastPong = Date.now();
      this.timers.push(
        setInterval(() => {
          if (Date.now() - this.lastPong > 2 * every) return this.lost(1006, "no ping reply", false);
          this.request("ping").then(
            () => (this.lastPong = Date.now()),
            () => {},
          );
        }, every),
      );
    }
    const t = this.o.token;
    if (typeof t === "string") return;
    const exp = tokenExpiry(this.lastToken);
    if (!exp) return;
    const life = exp - Date.now();
    const wait = Math.max(0, life - Math.min(this.o.refreshBefore, life / 5));
    this.timers.push(
      setTimeout(() => {
        Promise.resolve()
          .then(t)
          .then(
            (tok) => (this.token = tok),
            (err) => this.emit("error", new PartylineError("token", `partyline: token: ${String(err)}`)),
          );
      }, wait),
    );
  }


  // ---- input ----

  private frame(data: unknown): void {
    if (typeof data !== "string") {
      this.emit("error", new PartylineError("bad_frame", "partyline: binary frame ignored"));
      return;
    }
    for (const line of data.split("\n")) {
      if (!line) continue;
      let m: Incoming;
      try {
        m = JSON.parse(line) as Incoming;
      } catch {
        this.emit("error", new PartylineError("bad_frame", `partyline: undecodable message: ${line.slice(0, 80)}`));
        continue;
      }
      if (!m || typeof m !== "object" || typeof m.type !== "string") {
        this.emit("error", new PartylineError("bad_frame", `partyline: message without a type: ${line.slice(0, 80)}`));
        continue;
      }
      this.message(m);
      if (!this.ws) return; // the message ended the connection
    }
  }

  private message(m: Incoming): void {
    switch (m.type) {
      case "ok":
      case "error":
        return this.reply(m);
      case "msg":
        return this.publication(m as unknown as Publication);
      case "event":
        return this.emit("event", m as unknown as ChannelEvent);
      case "gap":
        return this.gap(m);
      case "reconnect": {
        const n = m as unknown as ReconnectNotice;
        const wait = Math.max(0, Number(n.after_ms) || 0);
        this.drainAt = Date.now() + wait;
        // The server closes with 1012 after the notice; should it not, the
        // client goes at the deadline itself.
        const ws = this.ws;
        this.timers.push(setTimeout(() => this.ws === ws && this.lost(1012, "drain", false), wait));
        this.emit("reconnect", n);
        return;
      }
    }
    if (!notificationTypes.has(m.type)) {
      this.emit("error", new PartylineError("unknown_type", `partyline: unknown message type ${JSON.stringify(m.type)}`));
    }
    this.emit("notification", m);
  }

  private reply(m: Incoming): void {
    const id = Number(m.id);
    if (id === this.helloId && this.st === "connecting") {
      if (m.type === "ok") return this.ready(m);
      // The server closes a refused hello with 4003 when unauthorized.
      const code = String(m.code);
      if (code !== "unauthorized") {
        this.emit("error", new PartylineError(code as ErrorCode, `partyline: hello: ${String(m.message)}`, "hello"));
        this.lost(4000, `hello refused: ${code}`, true);
      }
      return;
    }
    const c = this.calls.get(id);
    if (!c) return;
    this.calls.delete(id);
    clearTimeout(c.timer);
    if (m.type === "ok") c.resolve(m);
    else c.reject(new PartylineError(String(m.code) as ErrorCode, String(m.message ?? m.code), c.type));
  }

  private publication(p: Publication): void {
    if (typeof p.channel !== "string" || typeof p.epoch !== "string" || typeof p.offset !== "number") {
      this.emit("error", new PartylineError("bad_frame", "partyline: msg without channel, epoch or offset"));
      return;
    }
    const s = this.subs.get(p.channel);
    if (!s) return; // not (or no longer) subscribed
    if (s.pending) {
      s.held.push(p);
      return;
    }
    const last = s.pos;
    if (last && p.epoch === last.epoch && p.offset <= last.offset) return; // seen already
    if (last && (p.epoch !== last.epoch || p.offset !== last.offset + 1)) {
      this.emit("gap", { channel: p.channel, recovered: false, last, epoch: p.epoch, offset: p.offset });
    }
    s.pos = { epoch: p.epoch, offset: p.offset };
    this.emit("publication", p);
    this.flush(s);
  }

  private gap(m: Incoming): void {
    const channel = String(m.channel);
    const s = this.subs.get(channel);
    if (!s) return;
    const epoch = String(m.epoch);
    const offset = Number(m.offset);
    this.emit("gap", { channel, recovered: false, last: s.pos, epoch, offset });
    s.pos = { epoch, offset: offset - 1 };
  }
}

/** tokenExpiry returns a JWT's `exp` in ms since the epoch, or 0 when it has none. */
export function tokenExpiry(token: string): number {
  try {
    const part = token.split(".")[1];
    if (!part) return 0;
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

function newIdem(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
}
