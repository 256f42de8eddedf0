/** A place in a channel's stream: the offset within an epoch. */
export interface Position {
  epoch: string;
  offset: number;
}

/** A publication (`msg`) on a channel. */
export interface Publication<D = unknown> {
  type: "msg";
  channel: string;
  offset: number;
  epoch: string;
  /** The message id; for an edit or a delete, the id of the message it changes. */
  id: string;
  /** `message`, `edit`, `delete`, or a server kind such as `clip.new` or `status`. */
  kind: string;
  from: string;
  ts: number;
  data?: D;
}

/** An ephemeral event: typing, join, leave, speaking. At most once. */
export interface ChannelEvent {
  type: "event";
  channel: string;
  event: string;
  from?: string;
  user?: string;
  users?: string[];
}

/**
 * Publications on channel may be missing: after the last one delivered (last),
 * delivery goes on at offset in epoch. Reload what is needed through history.
 */
export interface Gap {
  channel: string;
  recovered: false;
  /** The last position the client delivered, null when it had seen none. */
  last: Position | null;
  /** Where delivery goes on: the next publication is after offset-1 in epoch. */
  epoch: string;
  offset: number;
}

/** The server's drain notice. */
export interface ReconnectNotice {
  type: "reconnect";
  after_ms: number;
  reason?: string;
}

export interface Limits {
  max_frame_bytes: number;
  max_subscriptions: number;
  publish_per_sec: number;
}

/** The reply to hello. */
export interface Session {
  session: string;
  user: string;
  node: string;
  heartbeat_ms: number;
  limits: Limits;
}

export interface Disconnect {
  code: number;
  reason: string;
  /** Whether the client reconnects, and after how many milliseconds. */
  reconnect: boolean;
  delay: number;
}

export interface SubResult {
  channel: string;
  epoch: string;
  offset: number;
  recovered: boolean;
  /** The current value of a `status:` channel. */
  status?: unknown;
}

export interface PubResult {
  msgId: string;
  offset: number;
}

export interface HistoryPage<D = unknown> {
  /** Newest first. */
  messages: Publication<D>[];
  more: boolean;
  /** Pass as `before` for the next (older) page; undefined when there is none. */
  next: string | undefined;
}

export interface Presence {
  count: number;
  members: { user: string; conns: number }[];
}

export type UserStatus = "online" | "idle" | "dnd" | "in_game" | "offline";

export type State = "connecting" | "connected" | "disconnected" | "closed";

/** Any message from the server, as parsed. */
export interface Incoming {
  type: string;
  [k: string]: unknown;
}
