// The REST helpers: rooms, clips, likes, comments, views, follows, feeds and
// clip upload over tus 1.0.0, with the routes and fields of the server's
// OpenAPI document. No runtime dependencies: fetch is global in browsers and
// Node 20, or passed in.
import type { TokenSource } from "./client.js";
import type { Publication } from "./types.js";

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface RestOptions {
  /** The server's HTTP base URL, such as `http://127.0.0.1:8080`. */
  url: string;
  /** The same token source as the realtime client's; a provider is asked again after a 401. */
  token: TokenSource;
  /** Default globalThis.fetch. */
  fetch?: FetchLike;
}

/**
 * Every failure of a REST helper: the problem+json fields of the server's
 * answer, or status 0 with title `network` or `aborted` when none came.
 */
export class RestError extends Error {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string | undefined;
  /** The body's `code`, when it has one. */
  readonly code: string | undefined;
  readonly instance: string | undefined;
  readonly requestId: string | undefined;
  constructor(p: Problem, cause?: unknown) {
    super(`partyline: ${p.status} ${p.title}${p.detail ? ": " + p.detail : ""}`, { cause });
    this.name = "RestError";
    this.type = p.type;
    this.title = p.title;
    this.status = p.status;
    this.detail = p.detail;
    this.code = p.code;
    this.instance = p.instance;
    this.requestId = p.request_id;
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code?: string;
  instance?: string;
  request_id?: string;
}

export type Visibility = "public" | "unlisted" | "private";

export interface Room {
  id: string;
  name: string;
  visibility: "public" | "private";
  owner: string;
  created_at: string;
}
export interface Member {
  room: string;
  user: string;
  role: "owner" | "member";
  joined_at: string;
}
export interface RoomDetail extends Room {
  members: Member[];
}
export interface MyRoom extends Room {
  role: "owner" | "member";
  unread: number;
  last_message: Publication | null;
}
export interface MessageList {
  /** Newest first. */
  messages: (Publication & { edited_ts?: number })[];
  more: boolean;
  next_cursor?: string;
}

export interface Clip {
  id: string;
  owner: string;
  title: string;
  game: string;
  tags: string[];
  visibility: Visibility;
  status: "uploading" | "processing" | "ready" | "failed";
  fail_reason: string | null;
  size_bytes: number | null;
  content_type: "video/mp4" | "video/webm" | null;
  sha256: string | null;
  duration_ms: number | null;
  width: number | null;
  height: number | null;
  thumbnail_url: string | null;
  media_url: string | null;
  upload_url: string | null;
  like_count: number;
  view_count: number;
  comment_count: number;
  created_at: string;
  updated_at: string;
}
export interface ClipCreate {
  title: string;
  game: string;
  tags?: string[];
  visibility?: Visibility;
}
export interface ClipPatch {
  title?: string;
  tags?: string[];
  visibility?: Visibility;
}
export interface Like {
  liked: boolean;
  like_count: number;
}
export interface Comment {
  id: string;
  clip: string;
  author: string;
  body: string;
  created_at: string;
}
export interface Profile {
  id: string;
  created_at: string;
  followers: number;
  following: number;
  clips: number;
  followed: boolean;
}
export interface Follow {
  user: string;
  followed_at: string;
}
export interface FeedItem {
  clip: Clip;
  source: "following" | "trending" | "game" | "creator";
  score?: number;
}
/** A page of a list: next_cursor is empty or null on the last page. */
export interface ClipList {
  clips: Clip[];
  next_cursor: string | null;
}
export interface CommentList {
  comments: Comment[];
  next_cursor: string | null;
}
export interface FollowList {
  items: Follow[];
  next_cursor: string;
}
export interface FeedPage {
  items: FeedItem[];
  next_cursor: string;
  /** The cursor had expired: this is the first page again. */
  restarted?: boolean;
}
export interface Page {
  cursor?: string;
  limit?: number;
}
export type Feed = "following" | "trending" | "for_you";

export interface UploadOptions {
  /** Bytes per PATCH; default 1 MiB. */
  chunkSize?: number;
  /** The declared type, such as `video/mp4`; default the Blob's type, if any. */
  type?: string;
  /** Called after each chunk the server kept. */
  onProgress?: (sent: number, total: number) => void;
  /** Aborts the upload; call upload again to resume it. */
  signal?: AbortSignal;
  /** Failed PATCHes in a row before giving up; each is followed by HEAD for the offset. Default 3. */
  retries?: number;
}

type Query = Page & { before?: string; game?: string };
type Body = Uint8Array | Blob;

const tus = "1.0.0";
const e = encodeURIComponent;

export class Rest {
  private base: string;
  private f: FetchLike;
  private tok: string | null = null;

  constructor(private o: RestOptions) {
    this.base = o.url.replace(/\/+$/, "");
    this.f = o.fetch ?? ((u, i) => fetch(u, i));
  }

  // Rooms.
  createRoom(name: string, visibility?: "public" | "private"): Promise<Room> {
    return this.json("POST", "/v1/rooms", { name, visibility });
  }
  room(id: string): Promise<RoomDetail> {
    return this.json("GET", `/v1/rooms/${e(id)}`);
  }
  /** The rooms the user is in, with unread counts. */
  async myRooms(): Promise<MyRoom[]> {
    return (await this.json<{ rooms: MyRoom[] }>("GET", "/v1/me/rooms")).rooms;
  }
  addMember(room: string, user: string): Promise<Member> {
    return this.json("PUT", `/v1/rooms/${e(room)}/members/${e(user)}`);
  }
  removeMember(room: string, user: string): Promise<void> {
    return this.json("DELETE", `/v1/rooms/${e(room)}/members/${e(user)}`);
  }
  messages(room: string, q: Page & { before?: string } = {}): Promise<MessageList> {
    return this.json("GET", `/v1/rooms/${e(room)}/messages`, undefined, q);
  }

  // Clips.
  createClip(c: ClipCreate): Promise<Clip> {
    return this.json("POST", "/v1/clips", c);
  }
  clip(id: string): Promise<Clip> {
    return this.json("GET", `/v1/clips/${e(id)}`);
  }
  editClip(id: string, p: ClipPatch): Promise<Clip> {
    return this.json("PATCH", `/v1/clips/${e(id)}`, p);
  }
  deleteClip(id: string): Promise<void> {
    return this.json("DELETE", `/v1/clips/${e(id)}`);
  }
  userClips(user: string, q?: Page): Promise<ClipList> {
    return this.json("GET", `/v1/users/${e(user)}/clips`, undefined, q);
  }
  /** The clip's media, or the bytes of range (such as `bytes=0-99`). */
  async media(id: string, range?: string): Promise<Uint8Array> {
    const r = await this.req("GET", `/v1/clips/${e(id)}/media`, range ? { range } : {});
    return new Uint8Array(await r.arrayBuffer());
  }
  /** Uploads small media in one request; upload() resumes. */
  putMedia(id: string, data: Body, type = "application/octet-stream"): Promise<Clip> {
    return this.json("PUT", `/v1/clips/${e(id)}/media`, data, undefined, { "content-type": type });
  }

  // Likes, views, comments.
  like(id: string): Promise<Like> {
    return this.json("PUT", `/v1/clips/${e(id)}/like`);
  }
  unlike(id: string): Promise<Like> {
    return this.json("DELETE", `/v1/clips/${e(id)}/like`);
  }
  view(id: string, watchedMs: number): Promise<void> {
    return this.json("POST", `/v1/clips/${e(id)}/views`, { watched_ms: watchedMs });
  }
  comments(id: string, q?: Page): Promise<CommentList> {
    return this.json("GET", `/v1/clips/${e(id)}/comments`, undefined, q);
  }
  comment(id: string, body: string): Promise<Comment> {
    return this.json("POST", `/v1/clips/${e(id)}/comments`, { body });
  }
  deleteComment(id: string, comment: string): Promise<void> {
    return this.json("DELETE", `/v1/clips/${e(id)}/comments/${e(comment)}`);
  }

  // Follows and feeds.
  profile(user: string): Promise<Profile> {
    return this.json("GET", `/v1/users/${e(user)}`);
  }
  follow(user: string): Promise<void> {
    return this.json("PUT", `/v1/users/${e(user)}/follow`);
  }
  unfollow(user: string): Promise<void> {
    return this.json("DELETE", `/v1/users/${e(user)}/follow`);
  }
  followers(user: string, q?: Page): Promise<FollowList> {
    return this.json("GET", `/v1/users/${e(user)}/followers`, undefined, q);
  }
  following(user: string, q?: Page): Promise<FollowList> {
    return this.json("GET", `/v1/users/${e(user)}/following`, undefined, q);
  }
  /** One page of a feed; `game` narrows trending. */
  feed(feed: Feed, q: Page & { game?: string } = {}): Promise<FeedPage> {
    return this.json("GET", `/v1/feed/${feed === "for_you" ? "for-you" : feed}`, undefined, q);
  }

  /**
   * upload sends the clip's media over tus: it creates the upload, or finds
   * the one already begun for the clip and resumes at the server's offset,
   * PATCHes chunkSize bytes at a time, asks HEAD for the offset after a
   * failed PATCH, and returns the clip once the last byte is in.
   */
  async upload(clip: string, data: Body, opts: UploadOptions = {}): Promise<Clip> {
    const total = data instanceof Uint8Array ? data.byteLength : data.size;
    const type = opts.type ?? (data instanceof Uint8Array ? "" : data.type);
    const h = { "tus-resumable": tus };
    const sig = opts.signal;
    let loc: string;
    let resume = false;
    try {
      const r = await this.req("POST", "/v1/uploads", {
        ...h,
        "upload-length": String(total),
        "upload-metadata": `clip_id ${btoa(clip)}` + (type ? `,filetype ${btoa(type)}` : ""),
      }, undefined, sig);
      loc = r.headers.get("location") ?? "";
    } catch (err) {
      // The clip's upload exists already: resume it.
      const l = err instanceof RestError && err.status === 409 ? (err.cause as Response).headers.get("location") : null;
      if (!l) throw err;
      loc = l;
      resume = true;
    }
    const url = new URL(loc, this.base + "/").pathname;
    const head = async () => Number((await this.req("HEAD", url, h, undefined, sig)).headers.get("upload-offset"));
    let at = resume ? await head() : 0;
    let fails = 0;
    const size = opts.chunkSize ?? 1 << 20;
    while (at < total) {
      const chunk = data.slice(at, Math.min(at + size, total));
      try {
        const r = await this.req("PATCH", url, {
          ...h,
          "upload-offset": String(at),
          "content-type": "application/offset+octet-stream",
        }, chunk, sig);
        at = Number(r.headers.get("upload-offset"));
        fails = 0;
      } catch (err) {
        // Retry after a lost connection, a conflict on the offset or a
        // server error; anything else, or an abort, ends the upload.
        const s = err instanceof RestError ? err.status : -1;
        if (sig?.aborted || !(s === 0 || s === 409 || s >= 500) || ++fails > (opts.retries ?? 3)) throw err;
        await new Promise((ok) => setTimeout(ok, 100 * fails));
        at = await head();
      }
      opts.onProgress?.(at, total);
    }
    return this.clip(clip);
  }

  /** json sends a request with a JSON (or binary) body and parses a JSON answer; undefined for 204. */
  private async json<T>(method: string, path: string, body?: unknown, q?: Query, hdr: Record<string, string> = {}): Promise<T> {
    const raw = body instanceof Uint8Array || (typeof Blob !== "undefined" && body instanceof Blob);
    if (body !== undefined && !raw) hdr["content-type"] = "application/json";
    const r = await this.req(method, path + query(q), hdr, body === undefined || raw ? (body as Body) : JSON.stringify(body));
    return (r.status === 204 ? undefined : await r.json()) as T;
  }

  /** req sends one authenticated request, asks a token provider again once after a 401, and throws RestError when the answer is not 2xx. */
  private async req(method: string, path: string, headers: Record<string, string>, body?: Body | string, signal?: AbortSignal): Promise<Response> {
    for (let again = typeof this.o.token !== "string"; ; again = false) {
      let r: Response;
      try {
        const t = (this.tok ??= await (typeof this.o.token === "string" ? this.o.token : this.o.token()));
        r = await this.f(this.base + path, {
          method,
          headers: { ...headers, authorization: `Bearer ${t}` },
          body: body as RequestInit["body"],
          signal: signal ?? null,
        });
      } catch (err) {
        const title = signal?.aborted ? "aborted" : "network";
        throw new RestError({ type: "about:blank", title, status: 0, detail: String(err) }, err);
      }
      if (r.ok) return r;
      if (r.status === 401 && again) {
        this.tok = null;
        continue;
      }
      let p: Partial<Problem> = {};
      try {
        p = (await r.json()) as Problem;
      } catch {
        /* not problem+json */
      }
      throw new RestError({ type: "about:blank", title: r.statusText, ...p, status: r.status }, r);
    }
  }
}

function query(q: Query = {}): string {
  const s = Object.entries(q as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${e(String(v))}`)
    .join("&");
  return s ? "?" + s : "";
}
