export { Client, tokenExpiry } from "./client.js";
export type { Events, Options, TokenSource, WebSocketCtor, WebSocketLike } from "./client.js";
export { backoff } from "./backoff.js";
export { PartylineError } from "./errors.js";
export type { ClientErrorCode, ErrorCode, ServerErrorCode } from "./errors.js";
export type * from "./types.js";
